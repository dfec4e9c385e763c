-- What the staff admin area needs: articles left out of this week's issue,
-- erased readers (their row stays, anonymous, so counts and delivery
-- history add up), paused and cancelled sends, test sends of a draft
-- issue through the transactional queue, and idempotency keys so a form
-- submitted twice acts once.

ALTER TABLE articles ADD COLUMN excluded BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE subscribers ADD COLUMN erased_at TIMESTAMPTZ;
ALTER TABLE issues ADD COLUMN paused_at TIMESTAMPTZ;
ALTER TABLE issues ADD COLUMN cancelled_at TIMESTAMPTZ;

-- A draft issue as rendered for a test send (drafts are not stored).
CREATE TABLE test_sends (
    id UUID PRIMARY KEY,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE outgoing_mail DROP CONSTRAINT outgoing_mail_kind_check;
ALTER TABLE outgoing_mail ADD CONSTRAINT outgoing_mail_kind_check CHECK (kind IN ('confirmation', 'digest_test'));
ALTER TABLE outgoing_mail ADD COLUMN test_send_id UUID REFERENCES test_sends (id) ON DELETE CASCADE;

-- One row per submitted form that must act once (send now, test sends).
CREATE TABLE admin_submissions (
    idempotency_key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
