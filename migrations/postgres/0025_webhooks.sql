-- Outbound webhooks (issue 18, part 2). An endpoint is a URL, a secret and
-- the events it wants. The secret signs every request (Standard Webhooks),
-- so it is kept as given out (`whsec_…`): shown once to staff, never listed.
-- New tables only: a previous release ignores them.
CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    disabled_at TIMESTAMPTZ,
    -- why: staff disabled it, or it answered 410 Gone
    disabled_reason TEXT
);

CREATE TABLE webhook_endpoint_events (
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event TEXT NOT NULL CHECK (event IN ('subscriber.created', 'subscriber.confirmed', 'subscriber.unsubscribed',
                                         'subscriber.bounced', 'subscriber.complained', 'issue.sent')),
    PRIMARY KEY (event, endpoint_id)
);

-- What happened, written in the transaction of the change that caused it
-- (only while some enabled endpoint wants the kind). What the request's
-- body says is kept here, so every attempt sends the same body. The sender
-- makes one `webhook_deliveries` row per endpoint that wants it, then sets
-- `fanned_out_at`.
CREATE TABLE webhook_events (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    subscriber_id UUID,
    email TEXT,
    issue_id UUID,
    week TEXT,
    fanned_out_at TIMESTAMPTZ
);

CREATE INDEX webhook_events_waiting ON webhook_events (at) WHERE fanned_out_at IS NULL;
CREATE INDEX webhook_events_subscriber ON webhook_events (subscriber_id);

-- The ledger: one row per (event, endpoint), claimed with a lease like the
-- mail deliveries.
CREATE TABLE webhook_deliveries (
    event_id UUID NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- retries stop after this (a day after it was queued, or resent)
    give_up_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    claimed_by UUID,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);

-- Every attempt and what came of it, for the staff area and the metrics.
CREATE TABLE webhook_attempts (
    id UUID PRIMARY KEY,
    event_id UUID NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed', 'disabled')),
    status_code INTEGER,
    error TEXT,
    next_attempt_at TIMESTAMPTZ
);

CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at);
