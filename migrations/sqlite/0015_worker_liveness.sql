-- Workers prove they are alive, so that the rows a dead worker had claimed
-- go back to the queue within seconds instead of when their lease runs out.
-- A worker holds an exclusive lock (flock) on a file of its own beside the
-- database, `<database>-worker-<id>.lock`, which the kernel releases when
-- the process dies; a row here whose file nobody holds belongs to a dead
-- worker. `lock_key` is unused on SQLite (0). The claims of both queues
-- name their worker in `claimed_by`.
-- A new table and new nullable columns only: a previous release ignores
-- them (its claims leave `claimed_by` empty and fall back on the lease).
CREATE TABLE workers (
    id BLOB PRIMARY KEY NOT NULL,
    started_at TEXT NOT NULL,
    -- Where the process runs, for the operator; never used to decide.
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    lock_key INTEGER NOT NULL,
    last_seen TEXT NOT NULL
);

ALTER TABLE deliveries ADD COLUMN claimed_by BLOB;
ALTER TABLE outgoing_mail ADD COLUMN claimed_by BLOB;

-- Returning a dead worker's rows finds them without reading the queue.
CREATE INDEX deliveries_claimed_by ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX outgoing_mail_claimed_by ON outgoing_mail (claimed_by) WHERE claimed_by IS NOT NULL;
