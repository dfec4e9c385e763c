-- Every reader gets a permanent unsubscribe link for their digests: the
-- subscriber's id (found through the primary key) and a random secret that
-- must match. The secret is stored as it is because every digest carries
-- it again; no extra index, so signups stay as fast as before.

ALTER TABLE subscribers ADD COLUMN unsubscribe_secret BYTEA;
ALTER TABLE subscribers ADD COLUMN unsubscribed_at TIMESTAMPTZ;

UPDATE subscribers
SET unsubscribe_secret = decode(replace(gen_random_uuid()::text, '-', ''), 'hex')
WHERE unsubscribe_secret IS NULL;

ALTER TABLE subscribers ALTER COLUMN unsubscribe_secret SET NOT NULL;
