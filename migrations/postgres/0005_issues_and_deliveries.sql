-- One issue per ISO week, with the rendered snapshot every reader gets,
-- and the delivery ledger: one row per (issue, reader), written in one
-- INSERT ... SELECT when the issue is queued.

CREATE TABLE issues (
    id UUID PRIMARY KEY,
    week TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    article_count INTEGER NOT NULL,
    -- articles published in [window_start, window_end) are in it; the next
    -- issue starts where this one ended
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE deliveries (
    issue_id UUID NOT NULL REFERENCES issues (id),
    subscriber_id UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    message_id TEXT,
    sent_at TIMESTAMPTZ,
    PRIMARY KEY (issue_id, subscriber_id)
);

CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
