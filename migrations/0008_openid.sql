-- OpenID Connect (issue 17). A code remembers what its id_token needs:
-- the relying party's nonce, when the user signed in (auth_time: the
-- session's sign-in, not the code's issue), and the claims the `claims`
-- parameter asked to see in the id_token. A grant remembers auth_time, so
-- that an id_token issued on refresh reports the original sign-in.
ALTER TABLE authorization_codes
    ADD COLUMN nonce           text,
    ADD COLUMN auth_time       timestamptz,
    ADD COLUMN id_token_claims text[] NOT NULL DEFAULT '{}';

ALTER TABLE grants
    ADD COLUMN auth_time timestamptz;
