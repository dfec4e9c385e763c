-- One index fewer to write on every claim of a delivery (issue 14). A
-- claim sets `claimed_by`, and the partial index on it took one more index
-- entry per copy sent; it served only the sweep that returns a dead
-- worker's rows, which now finds them through `deliveries_due`: that
-- sweep looks for `status = 'sending'`, and the rows in that state are the
-- few that workers hold at the moment, never the queue.
-- Dropping an index changes no statement's meaning: a previous release
-- runs against this schema unchanged (its sweep reads the same rows).
DROP INDEX deliveries_claimed_by;
