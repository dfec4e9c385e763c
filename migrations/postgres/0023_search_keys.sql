-- Search that folds case in every alphabet (issue 17): each reader's and
-- article's searchable text, folded in Rust (`domain::SearchKey`: Unicode
-- case folding, accents off Latin and Greek letters), written by every
-- statement that writes what it is made of. A reader's is their address
-- and name, an erased reader's is empty; an article's is its title.
-- NULL means not filled in yet: rows written before this migration, or by
-- the previous release during a rolling upgrade (new nullable columns: it
-- ignores them). `gazette migrate` fills them in, in batches
-- (`db::search_keys::backfill`), and searches compare them the old way
-- until then.
ALTER TABLE subscribers ADD COLUMN search_key TEXT;
ALTER TABLE articles ADD COLUMN search_key TEXT;

-- The rows left to fill in: empty once they are, so that looking for them
-- at every `gazette migrate` costs nothing.
CREATE INDEX subscribers_search_key_missing ON subscribers (id) WHERE search_key IS NULL;
CREATE INDEX articles_search_key_missing ON articles (id) WHERE search_key IS NULL;
