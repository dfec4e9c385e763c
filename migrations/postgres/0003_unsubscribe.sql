-- Every reader gets a permanent, random unsubscribe token for the links and
-- List-Unsubscribe headers of their digests. It is stored as it is (not
-- hashed) because every digest must carry it again.

ALTER TABLE subscribers ADD COLUMN unsubscribe_token TEXT;
ALTER TABLE subscribers ADD COLUMN unsubscribed_at TIMESTAMPTZ;

UPDATE subscribers
SET unsubscribe_token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
WHERE unsubscribe_token IS NULL;

ALTER TABLE subscribers ALTER COLUMN unsubscribe_token SET NOT NULL;
CREATE UNIQUE INDEX subscribers_unsubscribe_token ON subscribers (unsubscribe_token);
