-- Readers, their confirmation tokens, and the queue of transactional mail.
-- Ids are UUIDs (16-byte blobs); times are RFC 3339 text in UTC, which
-- sorts in time order.

CREATE TABLE subscribers (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    -- lowercased address: one row per mailbox however it is spelled
    email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
    -- consent record: when and from where the latest signup came
    signup_ip TEXT,
    signup_source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    signed_up_at TEXT NOT NULL,
    confirmed_at TEXT,
    -- caps confirmation emails per address per day
    mail_window_started_at TEXT NOT NULL,
    mails_in_window INTEGER NOT NULL
);

CREATE INDEX subscribers_status ON subscribers (status);

CREATE TABLE confirmation_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX confirmation_tokens_subscriber ON confirmation_tokens (subscriber_id);

CREATE TABLE outgoing_mail (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation')),
    subscriber_id BLOB REFERENCES subscribers (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    -- the link secret, kept only until the message is sent
    token TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    message_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);

CREATE INDEX outgoing_mail_due ON outgoing_mail (status, next_attempt_at);
