-- A reader's change of address (issue 16, part 3): asked for on the
-- preferences page, it waits here until the link mailed to the new
-- address confirms it. Like a confirmation token, only the link's hash is
-- kept; a newer request ends the earlier ones (their `expires_at` becomes
-- the time of the newer one). A confirmed row stays as the proof of who
-- asked and who confirmed, from where; erasing the reader deletes it.
CREATE TABLE address_changes (
    token_hash BLOB PRIMARY KEY NOT NULL,
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    new_email TEXT NOT NULL,
    new_email_key TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    requested_ip TEXT,
    expires_at TEXT NOT NULL,
    confirmed_at TEXT,
    confirmed_ip TEXT
);

-- A reader's requests of the last day (the daily cap), and their pending one.
CREATE INDEX address_changes_subscriber ON address_changes (subscriber_id, requested_at);

-- The link's email goes through the transactional queue as a new kind.
-- An older worker cannot read an `address_change` row it claims: run this
-- once every worker knows it (the new kind is only written by the new
-- binary). SQLite cannot change a CHECK constraint in place: the queue is
-- rebuilt (as 0019 did). Nothing references it.
CREATE TABLE outgoing_mail_new (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation', 'digest_test', 'welcome', 'address_change')),
    subscriber_id BLOB REFERENCES subscribers (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    token TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    message_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    test_send_id BLOB REFERENCES test_sends (id) ON DELETE CASCADE,
    claimed_by BLOB
);
INSERT INTO outgoing_mail_new (id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
                               next_attempt_at, locked_until, last_error, message_id, created_at, sent_at,
                               test_send_id, claimed_by)
SELECT id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
       next_attempt_at, locked_until, last_error, message_id, created_at, sent_at,
       test_send_id, claimed_by
FROM outgoing_mail;
DROP TABLE outgoing_mail;
ALTER TABLE outgoing_mail_new RENAME TO outgoing_mail;
CREATE INDEX outgoing_mail_due ON outgoing_mail (status, next_attempt_at);
CREATE INDEX outgoing_mail_confirmations_by_time ON outgoing_mail (kind, created_at);
CREATE INDEX outgoing_mail_addressed ON outgoing_mail (created_at) WHERE recipient <> '';
CREATE INDEX outgoing_mail_claimed_by ON outgoing_mail (claimed_by) WHERE claimed_by IS NOT NULL;
