-- An admin:* scope is held only while its holder may hold it: an account
-- whose role is admin, or, for client_credentials, an app an admin has
-- marked as allowed to (`authd app admin-scopes`, Admin.SetAppAdminScopes).
-- Introspection reads both at lookup time, so a token whose account loses
-- the admin role stops reporting admin scopes; that change is announced
-- like the others that alter what a token says (apps already announce
-- every update).

ALTER TABLE apps
    ADD COLUMN may_use_admin_scopes boolean NOT NULL DEFAULT false;

DROP TRIGGER accounts_invalidate ON accounts;
CREATE TRIGGER accounts_invalidate
    AFTER UPDATE OF disabled_at, username, is_admin OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION authd_notify_account();
