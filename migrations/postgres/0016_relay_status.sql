-- What each worker process saw of each SMTP relay (`mail.relays`): its
-- messages by outcome since the worker started, and until when it cools
-- down (NULL: healthy). Every worker rewrites its own rows every few
-- seconds (`db::relay_status`); `/metrics` of `serve` and the staff
-- dashboard add them up per relay. A new table only: a previous release
-- ignores it.
CREATE TABLE relay_status (
    relay TEXT NOT NULL,
    worker TEXT NOT NULL,
    sent BIGINT NOT NULL,
    deferred BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    unreachable BIGINT NOT NULL,
    cooling_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (relay, worker)
);
