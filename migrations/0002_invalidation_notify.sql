-- Every change that can turn an active token inactive, or change what a
-- client may do, is announced on the channel authd_invalidations, so that
-- every replica drops what its in-memory caches hold (see
-- src/service/cache.rs). The triggers fire whoever writes: any replica, the
-- CLI, or an operator at psql. NOTIFY is sent at commit, so a replica never
-- hears of a change it cannot yet read.
--
-- Payloads: token:<hex digest> | grant:<id> | account:<id> | app:<id>

CREATE FUNCTION authd_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_invalidations', 'token:' || encode(OLD.digest, 'hex'));
    RETURN NULL;
END $$;

CREATE FUNCTION authd_notify_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_invalidations', 'grant:' || OLD.id);
    RETURN NULL;
END $$;

CREATE FUNCTION authd_notify_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_invalidations', 'account:' || OLD.id);
    RETURN NULL;
END $$;

CREATE FUNCTION authd_notify_app() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_invalidations', 'app:' || OLD.id);
    RETURN NULL;
END $$;

CREATE TRIGGER access_tokens_invalidate
    AFTER UPDATE OF revoked_at, expires_at, scopes OR DELETE ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION authd_notify_token();

CREATE TRIGGER refresh_tokens_invalidate
    AFTER UPDATE OF used_at, expires_at, scopes OR DELETE ON refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION authd_notify_token();

CREATE TRIGGER grants_invalidate
    AFTER UPDATE OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION authd_notify_grant();

CREATE TRIGGER accounts_invalidate
    AFTER UPDATE OF disabled_at, username OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION authd_notify_account();

CREATE TRIGGER apps_invalidate
    AFTER UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION authd_notify_app();
