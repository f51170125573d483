-- authd's schema. Secrets (client secrets, codes, tokens, sessions) are high
-- entropy, so only their SHA-256 digests are kept; passwords are argon2id
-- PHC strings.

CREATE TABLE accounts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text        NOT NULL,
    email          text        NOT NULL,
    password_hash  text        NOT NULL,
    is_admin       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
-- Usernames and emails are stored lowercased by the domain; the indexes make
-- that an invariant the database also keeps.
CREATE UNIQUE INDEX accounts_username_key ON accounts (lower(username));
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));

CREATE TABLE apps (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id             text        NOT NULL UNIQUE,
    client_secret_digest  bytea       NOT NULL,
    name                  text        NOT NULL,
    website               text,
    redirect_uris         text[]      NOT NULL,
    scopes                text[]      NOT NULL,
    access_token_format   text        NOT NULL DEFAULT 'opaque'
                          CHECK (access_token_format IN ('opaque', 'jwt')),
    is_resource_server    boolean     NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- One grant per code redemption or client_credentials issuance. Its tokens
-- (access tokens and the refresh-token family) live and die with it:
-- revocation, code reuse and refresh-token reuse all revoke the grant row,
-- which refreshes lock too, so no new token can slip into a revoked family.
CREATE TABLE grants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    account_id  bigint      REFERENCES accounts (id) ON DELETE CASCADE,
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX grants_account_app_idx ON grants (account_id, app_id) WHERE account_id IS NOT NULL;
CREATE INDEX grants_app_idx ON grants (app_id);

CREATE TABLE authorization_codes (
    digest          bytea PRIMARY KEY,
    app_id          bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    redirect_uri    text        NOT NULL,
    scopes          text[]      NOT NULL,
    code_challenge  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    redeemed_at     timestamptz,
    -- Set on redemption, so that a second presentation can revoke what the
    -- first one issued (RFC 6749 section 4.1.2).
    grant_id        bigint REFERENCES grants (id) ON DELETE CASCADE
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);

CREATE TABLE access_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      bytea       NOT NULL UNIQUE,
    grant_id    bigint      NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    format      text        NOT NULL CHECK (format IN ('opaque', 'jwt')),
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX access_tokens_grant_idx ON access_tokens (grant_id);

CREATE TABLE refresh_tokens (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest           bytea       NOT NULL UNIQUE,
    grant_id         bigint      NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    -- The access token issued alongside; rotation revokes it.
    access_token_id  bigint      REFERENCES access_tokens (id) ON DELETE SET NULL,
    scopes           text[]      NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    used_at          timestamptz
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);

-- What an account has agreed to give an app, so that the consent page can be
-- skipped when the same scopes are asked for again.
CREATE TABLE consents (
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    app_id      bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes      text[]      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, app_id)
);

CREATE TABLE sessions (
    digest      bytea PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_account_idx ON sessions (account_id);

-- Keys that sign JWT access tokens. The newest unretired key signs; every key
-- stays published in the JWKS until the tokens it signed have expired.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    algorithm    text        NOT NULL CHECK (algorithm IN ('EdDSA')),
    private_key  bytea       NOT NULL,
    public_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);
