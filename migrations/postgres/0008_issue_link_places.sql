-- Where each reader's unsubscribe link goes in an issue's HTML and text
-- parts, recorded when the issue is rendered: byte offsets into `html` and
-- `text`, comma-separated. Filling a reader's copy never searches the text
-- (it holds articles' titles, links and summaries, which can say anything).
-- NULL for rows stored before: their parts hold the old placeholder at the
-- link place, read back by LinkedText::from_stored (its last occurrence in
-- each part is the template's, in the footer).
ALTER TABLE issues ADD COLUMN html_links TEXT;
ALTER TABLE issues ADD COLUMN text_links TEXT;
ALTER TABLE test_sends ADD COLUMN html_links TEXT;
ALTER TABLE test_sends ADD COLUMN text_links TEXT;
ALTER TABLE test_sends ADD COLUMN article_count INTEGER NOT NULL DEFAULT 0;
