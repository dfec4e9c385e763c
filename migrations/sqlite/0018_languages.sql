-- Two languages (issue 16): every reader has the language of the page they
-- signed up on, used for every mail to them; an article keeps the language
-- it was published in, and a feed source can declare its own. Readers who
-- signed up before were shown English pages. New columns with defaults: a
-- previous release ignores them.
ALTER TABLE subscribers ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE articles ADD COLUMN language TEXT;
ALTER TABLE feed_sources ADD COLUMN language TEXT;
