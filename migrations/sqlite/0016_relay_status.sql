-- What each worker process saw of each SMTP relay (`mail.relays`): its
-- messages by outcome since the worker started, and until when it cools
-- down (NULL: healthy). Every worker rewrites its own rows every few
-- seconds (`db::relay_status`); `/metrics` of `serve` and the staff
-- dashboard add them up per relay. A new table only: a previous release
-- ignores it.
CREATE TABLE relay_status (
    relay TEXT NOT NULL,
    worker TEXT NOT NULL,
    sent INTEGER NOT NULL,
    deferred INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    unreachable INTEGER NOT NULL,
    cooling_until TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (relay, worker)
);
