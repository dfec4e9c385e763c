-- Never lose work (issue 17, part 4). Deleting an article hides it
-- (`deleted_at`, and who did it) until retention purges it, 30 days later
-- by default (`retention.deleted_article_days`): it can be restored until
-- then, and a feed that brings its entry again neither resurrects nor
-- duplicates it. `version` counts the writes to an article, so that a
-- staff edit made against an older version is refused instead of
-- overwriting a newer one. A summary replaced by staff (an edit or
-- "regenerate") is kept in `summary_versions`, restorable.
--
-- Only columns and a table are added: the previous release's statements
-- still run (they see deleted articles, as they saw them before).
ALTER TABLE articles ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE articles ADD COLUMN deleted_by TEXT;
ALTER TABLE articles ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX articles_deleted_at ON articles (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE summary_versions (
    id UUID PRIMARY KEY,
    article_id UUID NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    -- the summary as it was before it was replaced, and where it came from
    summary TEXT NOT NULL,
    summary_source TEXT NOT NULL CHECK (summary_source IN ('staff', 'feed', 'generated')),
    -- when it was replaced, and by which staff member
    replaced_at TIMESTAMPTZ NOT NULL,
    replaced_by TEXT NOT NULL
);
CREATE INDEX summary_versions_article ON summary_versions (article_id, replaced_at);
