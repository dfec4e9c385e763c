-- Inbound mail (issue 15): bounces, complaints, replies to the per-reader
-- unsubscribe address, and provider webhook posts. Every arrival is kept
-- as it came (`raw`) before anything reads it, so a crash between storing
-- and applying leaves a `received` row that the next start applies.
-- `dedupe_key` makes a second arrival of the same message (an IMAP message
-- seen again after a crash, a webhook retried by its provider) a no-op.
-- New tables and one new nullable column: a previous release ignores them.
CREATE TABLE inbound_messages (
    id UUID PRIMARY KEY NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('smtp', 'imap', 'ses', 'postmark', 'mailgun')),
    dedupe_key TEXT UNIQUE,
    -- the envelope recipients, one per line, where the source knows them
    envelope_to TEXT NOT NULL,
    raw BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('received', 'applied', 'ignored', 'unknown')),
    kind TEXT CHECK (kind IN ('hard', 'soft', 'policy', 'complaint', 'unsubscribe', 'auto_reply', 'unknown')),
    subscriber_id UUID REFERENCES subscribers (id) ON DELETE SET NULL,
    issue_id UUID REFERENCES issues (id) ON DELETE SET NULL,
    recipient TEXT,
    -- the recipient's domain (or the reader's), lowercased: policy blocks
    -- are counted per receiving domain
    recipient_domain TEXT,
    status_code TEXT,
    reason TEXT,
    diagnostic TEXT,
    processed_at TIMESTAMPTZ
);

CREATE INDEX inbound_messages_received ON inbound_messages (received_at);
CREATE INDEX inbound_messages_status ON inbound_messages (status);
CREATE INDEX inbound_messages_subscriber ON inbound_messages (subscriber_id);
CREATE INDEX inbound_messages_issue ON inbound_messages (issue_id);

-- What happened to a reader, in order: bounces, complaints, unsubscribes
-- by mail, status changes. Shown on the reader's page in the staff area.
CREATE TABLE subscriber_events (
    id UUID PRIMARY KEY NOT NULL,
    subscriber_id UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    inbound_message_id UUID REFERENCES inbound_messages (id) ON DELETE SET NULL,
    issue_id UUID REFERENCES issues (id) ON DELETE SET NULL
);

CREATE INDEX subscriber_events_subscriber ON subscriber_events (subscriber_id, at);

-- A reader who reported an issue as spam: never mailed again.
ALTER TABLE subscribers ADD COLUMN complained_at TIMESTAMPTZ;

-- Keys the application makes once and every role shares through the
-- database (the HMAC key of return-path addresses).
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    secret BYTEA NOT NULL
);
