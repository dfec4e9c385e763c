-- The reader's preferences page and welcome email (issue 16): a reader may
-- pause the digest until a date (NULL: not paused; a date in the past is
-- the same, so resuming needs no job), and a confirmed reader is sent a
-- welcome message through the transactional queue.
--
-- An older worker cannot read a `welcome` row it claims: run this once
-- every worker knows it (the new kind is only written by the new binary).
ALTER TABLE subscribers ADD COLUMN paused_until TEXT;

-- SQLite cannot change a CHECK constraint in place: the queue is rebuilt
-- to accept the new kind of mail (as 0006 did). Nothing references it.
CREATE TABLE outgoing_mail_new (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation', 'digest_test', 'welcome')),
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
