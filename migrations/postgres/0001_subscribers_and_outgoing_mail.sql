-- Readers, their confirmation tokens, and the queue of transactional mail.

CREATE TABLE subscribers (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    -- lowercased address: one row per mailbox however it is spelled
    email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
    -- consent record: when and from where the latest signup came
    signup_ip TEXT,
    signup_source TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    signed_up_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    -- caps confirmation emails per address per day
    mail_window_started_at TIMESTAMPTZ NOT NULL,
    mails_in_window INTEGER NOT NULL
);

CREATE INDEX subscribers_status ON subscribers (status);

CREATE TABLE confirmation_tokens (
    token_hash BYTEA PRIMARY KEY,
    subscriber_id UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX confirmation_tokens_subscriber ON confirmation_tokens (subscriber_id);

CREATE TABLE outgoing_mail (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation')),
    subscriber_id UUID REFERENCES subscribers (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    -- the link secret, kept only until the message is sent
    token TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    message_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);

CREATE INDEX outgoing_mail_due ON outgoing_mail (status, next_attempt_at);
