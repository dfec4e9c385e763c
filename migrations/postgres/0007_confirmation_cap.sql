-- `limits.confirmations_per_hour` counts the confirmation emails queued in
-- the last hour on every signup batch: an index keeps that a range read
-- however long the mail history grows.
CREATE INDEX outgoing_mail_confirmations_by_time ON outgoing_mail (kind, created_at);
