-- Key rotation (authd key rotate, Admin/RotateSigningKey). A change to the
-- signing keys is announced on the invalidation channel, so that every
-- replica reloads its keys at once: after a rotation they all sign with the
-- new key, and a key an operator retired or deleted by hand stops verifying.
-- One notification per statement; the payload names no key.
--
-- signing_keys.retired_at is the moment a key stopped signing. A retired
-- key is still published in the JWKS and still verifies until every token
-- it signed has expired: retired_at plus the JWT access-token lifetime
-- (and a short margin for replicas that switched late); then it is dropped.
-- Its private key is wiped at rotation: nothing signs with it any more.

CREATE FUNCTION authd_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_invalidations', 'keys:changed');
    RETURN NULL;
END $$;

CREATE TRIGGER signing_keys_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION authd_notify_keys();

-- An account's unredeemed codes, found when its tokens are revoked.
CREATE INDEX authorization_codes_account_idx ON authorization_codes (account_id);
