-- Tokens of the JSON API (issue 18, part 1): a CMS or CRM presents one as
-- `Authorization: Bearer …`. Like a confirmation token, only its SHA-256 is
-- kept, so this table cannot be turned into working tokens; the token is
-- shown once, when it is made. A revoked token stays listed, with when.
CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('subscribers', 'articles', 'issues', 'all')),
    token_hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT
);
