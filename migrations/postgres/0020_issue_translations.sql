-- The issue in every other language Gazette has a catalogue for (issue 16):
-- the same stories, the digest's own words (date line, contents, footer)
-- in the reader's language. `issues` keeps the site's default language's
-- rendering, which the archive and the staff pages show. A new table: a
-- previous release ignores it (and sends every reader the default).
CREATE TABLE issue_translations (
    issue_id UUID NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    html_links TEXT,
    text TEXT NOT NULL,
    text_links TEXT,
    article_count INTEGER NOT NULL,
    PRIMARY KEY (issue_id, language)
);
