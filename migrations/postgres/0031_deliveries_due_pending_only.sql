-- The due index holds the rows a worker may still claim or hold (`queued`,
-- `sending`), not the settled ones (issue 14). Recording an outcome
-- (`sending` → `sent`, `failed`, `skipped`) then writes no entry in it:
-- one index entry fewer a copy sent, and the index stays the size of
-- what is pending instead of growing by a row per copy of every issue.
-- Every statement that reads it asks for pending rows (`status = 'queued'`,
-- `'sending'`, or both), which the predicate implies; settled rows are
-- read by issue (the primary key). A previous release runs unchanged.
-- Building it reads the table once, with writes to it waiting meanwhile:
-- run `gazette migrate` between sends.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at) WHERE status IN ('queued', 'sending');
