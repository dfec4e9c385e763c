-- Retention (`gazette prune`, `retention.delivery_months`): the delivery
-- rows of an issue sent long ago are replaced by their counts per outcome,
-- kept here, so the staff pages show the same figures for the issue after
-- its rows are gone. Only settled outcomes are ever summarised.
CREATE TABLE delivery_summaries (
    issue_id BLOB PRIMARY KEY NOT NULL REFERENCES issues (id),
    sent INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    pruned_at TEXT NOT NULL
);

-- Settled transactional mail that still holds an address: the daily prune
-- reads this range instead of the whole mail history each day.
CREATE INDEX outgoing_mail_addressed ON outgoing_mail (created_at) WHERE recipient <> '';
