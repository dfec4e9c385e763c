-- Aggregate click counting (issue 17, `tracking.clicks = "aggregate"`): the
-- story links of an issue, numbered as its digest links to them
-- (`/c/{week}/{position}`), and how many times a person followed each. The
-- rows say nothing about who clicked: there is no reader here, by design.
CREATE TABLE issue_links (
    issue_id UUID NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    clicks BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (issue_id, position)
);
