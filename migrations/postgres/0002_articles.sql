-- Articles the digest is made from: imported from feeds, or added by hand.

CREATE TABLE articles (
    id UUID PRIMARY KEY,
    -- canonical address of the article: one row per article
    url TEXT NOT NULL UNIQUE,
    -- the feed entry's id, when it came from a feed
    guid TEXT UNIQUE,
    title TEXT NOT NULL,
    author TEXT,
    published_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    summary TEXT NOT NULL,
    summary_source TEXT NOT NULL CHECK (summary_source IN ('staff', 'feed', 'generated')),
    -- once staff edit an article, imports leave it alone
    edited_by_staff BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX articles_published ON articles (published_at);
