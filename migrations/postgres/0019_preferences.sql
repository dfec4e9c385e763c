-- The reader's preferences page and welcome email (issue 16): a reader may
-- pause the digest until a date (NULL: not paused; a date in the past is
-- the same, so resuming needs no job), and a confirmed reader is sent a
-- welcome message through the transactional queue.
--
-- An older worker cannot read a `welcome` row it claims: run this once
-- every worker knows it (the new kind is only written by the new binary).
ALTER TABLE subscribers ADD COLUMN paused_until TIMESTAMPTZ;

ALTER TABLE outgoing_mail DROP CONSTRAINT outgoing_mail_kind_check;
ALTER TABLE outgoing_mail ADD CONSTRAINT outgoing_mail_kind_check
    CHECK (kind IN ('confirmation', 'digest_test', 'welcome'));
