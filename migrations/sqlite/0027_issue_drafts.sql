-- The editor's desk (issue 17): what staff shape in a week's issue before
-- it goes out. One row per week that staff touched; a week without a row is
-- the issue as generated. Dispatch reads the week's row; the row stays after,
-- as the record of what was chosen.
CREATE TABLE issue_drafts (
    week TEXT PRIMARY KEY NOT NULL,
    -- NULL: the subject comes from `digest.subject` (the lead story's title).
    subject TEXT,
    -- NULL: the preheader is the lead story's summary.
    preheader TEXT,
    -- The editor's note above the stories, as typed (see domain::EditorNote).
    editor_note TEXT NOT NULL DEFAULT '',
    -- "Send at": this week's issue goes out then instead of on the weekly
    -- schedule; NULL when not scheduled (or once fired, with fired_at).
    -- The order of the digest's sections, one name per line; sections not
    -- named follow in the order their first story comes.
    section_order TEXT NOT NULL DEFAULT '',
    send_at TEXT,
    fired_at TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE INDEX issue_drafts_send_at ON issue_drafts (send_at) WHERE send_at IS NOT NULL;

-- The order staff gave the week's stories: position 0 is the lead. Stories
-- without a position follow the ordered ones, newest first.
CREATE TABLE issue_draft_order (
    week TEXT NOT NULL,
    article_id BLOB NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (week, article_id)
);

-- Sections (optional): an article's own, set by staff, else its source's.
-- The digest groups its stories by section after the lead story.
ALTER TABLE articles ADD COLUMN section TEXT;
ALTER TABLE feed_sources ADD COLUMN section TEXT;
