-- Feed sources: feeds registered once (`gazette feeds add`, the staff's
-- Sources page) and polled by `gazette serve` every `feeds.poll_minutes`
-- and once more before the scheduled dispatch. A row keeps what the last
-- poll did and the validators for the next conditional request. With
-- several instances, a poller first takes the row's claim (`claimed_by`
-- until `claimed_until`) in one conditional UPDATE, so one instance polls
-- a source at a time. Removing a source leaves its articles.
-- A new table only: a previous release ignores it.
CREATE TABLE feed_sources (
    -- AUTOINCREMENT: the id of a removed source is never given to another,
    -- so an id in a script or a note never names the wrong feed.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The address as the importer writes it (`url::Url`), which is also the
    -- feed's identity for its articles.
    url TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Staff gave the name; otherwise it follows the feed's own title.
    named_by_staff INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_polled_at TEXT,
    last_result TEXT CHECK (last_result IN ('ok', 'not_modified', 'failed')),
    last_error TEXT,
    last_added INTEGER NOT NULL DEFAULT 0,
    last_updated INTEGER NOT NULL DEFAULT 0,
    last_rejected INTEGER NOT NULL DEFAULT 0,
    total_added INTEGER NOT NULL DEFAULT 0,
    -- Failed polls in a row, and when the first of them was.
    failures INTEGER NOT NULL DEFAULT 0,
    failing_since TEXT,
    next_poll_at TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    claimed_by TEXT,
    claimed_until TEXT
);

CREATE INDEX feed_sources_due ON feed_sources (next_poll_at);
