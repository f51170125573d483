-- Client metadata beyond Mastodon's (RFC 7591 section 2, OpenID Connect
-- Registration, RP-Initiated Logout). Existing apps were registered the
-- Mastodon way: confidential, every grant type allowed, which the
-- defaults keep.

ALTER TABLE apps
    ADD COLUMN token_endpoint_auth_method text NOT NULL DEFAULT 'client_secret_basic',
    ADD COLUMN grant_types text[] NOT NULL
        DEFAULT ARRAY['authorization_code', 'refresh_token', 'client_credentials'],
    ADD COLUMN response_types text[] NOT NULL DEFAULT ARRAY['code'],
    ADD COLUMN id_token_signed_response_alg text,
    ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT ARRAY[]::text[];
