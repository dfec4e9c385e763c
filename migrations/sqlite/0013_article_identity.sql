-- Article identity (issue 13): an article from a feed is its entry's id (or,
-- without one, its link) within its feed, so two feeds that both number
-- their items 1, or a podcast whose items all link to one page, no longer
-- overwrite each other. `feed` is the address the feed is read from (a
-- source's URL, a file's file:// URL); NULL for articles added by hand,
-- which stay unique by address among themselves. Rows written before this
-- migration have no feed: the next import of their feed adopts them (by
-- guid, or by address for a hand-added one), so none is lost or merged.
--
-- Only constraints are relaxed and columns added: the previous release's
-- statements still run (it finds articles by guid, then by address).
--
-- SQLite cannot drop a column's UNIQUE constraint in place: the table is
-- rebuilt, keeping every row, id and index. Nothing references articles.
CREATE TABLE articles_new (
    id BLOB PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    -- the feed the article came from; NULL when added by hand
    feed TEXT,
    -- the entry's id within its feed, or its link when it had none
    guid TEXT,
    -- what the digest names as where it came from (the source's name or the feed's title)
    source_name TEXT,
    title TEXT NOT NULL,
    author TEXT,
    published_at TEXT NOT NULL,
    body TEXT NOT NULL,
    summary TEXT NOT NULL,
    summary_source TEXT NOT NULL CHECK (summary_source IN ('staff', 'feed', 'generated')),
    edited_by_staff INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    excluded INTEGER NOT NULL DEFAULT 0,
    CHECK (feed IS NULL OR guid IS NOT NULL)
);
INSERT INTO articles_new (id, url, guid, title, author, published_at, body, summary, summary_source, edited_by_staff,
                          created_at, updated_at, excluded)
SELECT id, url, guid, title, author, published_at, body, summary, summary_source, edited_by_staff,
       created_at, updated_at, excluded
FROM articles;
DROP TABLE articles;
ALTER TABLE articles_new RENAME TO articles;
CREATE INDEX articles_published ON articles (published_at);
-- one article per entry of a feed (guid first: a lookup of a batch of entries by
-- guid walks the index once per entry, never the whole feed)
CREATE UNIQUE INDEX articles_feed_entry ON articles (guid, feed) WHERE feed IS NOT NULL;
-- one hand-added article per address
CREATE UNIQUE INDEX articles_hand_added_url ON articles (url) WHERE feed IS NULL;
-- finding an article by address (a hand-added one, or one a feed's entry may adopt)
CREATE INDEX articles_url ON articles (url);
-- rows from before this migration, which an import adopts by guid
CREATE INDEX articles_unclaimed_guid ON articles (guid) WHERE feed IS NULL;

-- What the import's page shows besides the counts.
ALTER TABLE feed_imports ADD COLUMN kept_staff_edit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feed_imports ADD COLUMN dated_at_import INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feed_imports ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
-- the first warnings, one a line, as `rejections` keeps the first rejected entries
ALTER TABLE feed_imports ADD COLUMN warnings TEXT NOT NULL DEFAULT '';
