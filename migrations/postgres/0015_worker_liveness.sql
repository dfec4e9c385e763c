-- Workers prove they are alive, so that the rows a dead worker had claimed
-- go back to the queue within seconds instead of when their lease runs out.
-- A worker holds a session-level advisory lock (class 1734441573, key
-- `lock_key`) on a connection of its own for as long as it lives; a row
-- here whose lock nobody holds belongs to a dead worker (or one that lost
-- its connection, which stops sending what it claimed under it). The
-- claims of both queues name their worker in `claimed_by`.
-- A new table and new nullable columns only: a previous release ignores
-- them (its claims leave `claimed_by` empty and fall back on the lease).
CREATE TABLE workers (
    id UUID PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    -- Where the process runs, for the operator; never used to decide.
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    lock_key BIGINT NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL
);

ALTER TABLE deliveries ADD COLUMN claimed_by UUID;
ALTER TABLE outgoing_mail ADD COLUMN claimed_by UUID;

-- Returning a dead worker's rows finds them without reading the queue.
CREATE INDEX deliveries_claimed_by ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX outgoing_mail_claimed_by ON outgoing_mail (claimed_by) WHERE claimed_by IS NOT NULL;
