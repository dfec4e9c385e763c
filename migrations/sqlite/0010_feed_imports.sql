-- A feed import requested from the admin: fetched and parsed by a
-- background task, its progress and result kept here for the page that
-- shows them.
CREATE TABLE feed_imports (
    id BLOB PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'fetching', 'parsing', 'saving', 'done', 'failed')),
    entries_total INTEGER,
    entries_done INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    rejections TEXT NOT NULL DEFAULT '',
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
