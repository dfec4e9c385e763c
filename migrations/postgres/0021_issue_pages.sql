-- Each issue's page on the site (issue 16): the lead story's title, which
-- the archive lists the issue by, and the stories as an HTML fragment that
-- the archive shows inside the site's own layout, without anything of a
-- reader's. Per rendering: in `issues` for the default language, in
-- `issue_translations` for the others. NULL for issues stored before: the
-- archive lists those by their subject and shows their email as it was.
ALTER TABLE issues ADD COLUMN lead_title TEXT;
ALTER TABLE issues ADD COLUMN web_html TEXT;
ALTER TABLE issue_translations ADD COLUMN lead_title TEXT;
ALTER TABLE issue_translations ADD COLUMN web_html TEXT;
