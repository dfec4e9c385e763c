-- Every reader gets a permanent, random unsubscribe token for the links and
-- List-Unsubscribe headers of their digests. It is stored as it is (not
-- hashed) because every digest must carry it again.

ALTER TABLE subscribers ADD COLUMN unsubscribe_token TEXT;
ALTER TABLE subscribers ADD COLUMN unsubscribed_at TEXT;

UPDATE subscribers SET unsubscribe_token = lower(hex(randomblob(32))) WHERE unsubscribe_token IS NULL;

CREATE UNIQUE INDEX subscribers_unsubscribe_token ON subscribers (unsubscribe_token);
