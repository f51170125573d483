-- Access and refresh tokens are found by a selector: the first 16 of their
-- 32 bytes, which begin with the millisecond they were issued. New index
-- entries then land at the right edge of the B-tree, where the pages are in
-- memory, instead of at a random place in a unique index on the digest,
-- which, once a table holds millions of tokens, no longer fits in
-- PostgreSQL's buffers and makes every issuance read and write pages all
-- over it. The digest of the whole token stays, and is what proves the
-- token: authd compares it, in constant time, with the presented token's.
--
-- Tokens issued before this migration have no selector. They keep working,
-- found by their digest in a partial index that holds only them, and that
-- new tokens never enter. The selector index leaves them out in turn, so
-- that a lookup of `selector IS NULL` can only be answered by the digest
-- index, whatever the planner's statistics say.

ALTER TABLE access_tokens
    ADD COLUMN selector bytea CHECK (length(selector) = 16);
CREATE UNIQUE INDEX access_tokens_selector_key ON access_tokens (selector)
    WHERE selector IS NOT NULL;
CREATE UNIQUE INDEX access_tokens_legacy_digest_key ON access_tokens (digest)
    WHERE selector IS NULL;
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_digest_key;

ALTER TABLE refresh_tokens
    ADD COLUMN selector bytea CHECK (length(selector) = 16);
CREATE UNIQUE INDEX refresh_tokens_selector_key ON refresh_tokens (selector)
    WHERE selector IS NOT NULL;
CREATE UNIQUE INDEX refresh_tokens_legacy_digest_key ON refresh_tokens (digest)
    WHERE selector IS NULL;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_digest_key;

-- Statistics for the new column, so that the first plans know how many rows
-- have no selector.
ANALYZE access_tokens, refresh_tokens;
