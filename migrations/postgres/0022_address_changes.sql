-- A reader's change of address (issue 16, part 3): asked for on the
-- preferences page, it waits here until the link mailed to the new
-- address confirms it. Like a confirmation token, only the link's hash is
-- kept; a newer request ends the earlier ones (their `expires_at` becomes
-- the time of the newer one). A confirmed row stays as the proof of who
-- asked and who confirmed, from where; erasing the reader deletes it.
CREATE TABLE address_changes (
    token_hash BYTEA PRIMARY KEY,
    subscriber_id UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    new_email TEXT NOT NULL,
    new_email_key TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    requested_ip TEXT,
    expires_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    confirmed_ip TEXT
);

-- A reader's requests of the last day (the daily cap), and their pending one.
CREATE INDEX address_changes_subscriber ON address_changes (subscriber_id, requested_at);

-- The link's email goes through the transactional queue as a new kind.
-- An older worker cannot read an `address_change` row it claims: run this
-- once every worker knows it (the new kind is only written by the new
-- binary).
ALTER TABLE outgoing_mail DROP CONSTRAINT outgoing_mail_kind_check;
ALTER TABLE outgoing_mail ADD CONSTRAINT outgoing_mail_kind_check
    CHECK (kind IN ('confirmation', 'digest_test', 'welcome', 'address_change'));
