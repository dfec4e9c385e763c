-- What the staff admin area needs: articles left out of this week's issue,
-- erased readers (their row stays, anonymous, so counts and delivery
-- history add up), paused and cancelled sends, test sends of a draft
-- issue through the transactional queue, and idempotency keys so a form
-- submitted twice acts once.

ALTER TABLE articles ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN erased_at TEXT;
ALTER TABLE issues ADD COLUMN paused_at TEXT;
ALTER TABLE issues ADD COLUMN cancelled_at TEXT;

-- A draft issue as rendered for a test send (drafts are not stored).
CREATE TABLE test_sends (
    id BLOB PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- SQLite cannot change a CHECK constraint in place: the queue is rebuilt
-- to accept the new kind of mail. Nothing references this table.
CREATE TABLE outgoing_mail_new (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation', 'digest_test')),
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
    test_send_id BLOB REFERENCES test_sends (id) ON DELETE CASCADE
);
INSERT INTO outgoing_mail_new (id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
                               next_attempt_at, locked_until, last_error, message_id, created_at, sent_at)
SELECT id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
       next_attempt_at, locked_until, last_error, message_id, created_at, sent_at
FROM outgoing_mail;
DROP TABLE outgoing_mail;
ALTER TABLE outgoing_mail_new RENAME TO outgoing_mail;
CREATE INDEX outgoing_mail_due ON outgoing_mail (status, next_attempt_at);

-- One row per submitted form that must act once (send now, test sends).
CREATE TABLE admin_submissions (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    action TEXT NOT NULL,
    created_at TEXT NOT NULL
);
