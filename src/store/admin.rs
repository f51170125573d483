//! The administrative writes and reads: enabling accounts, resetting
//! passwords, revoking every token of an account or app, listing and
//! deleting apps. Each write is one transaction; the triggers of
//! migrations/0002 announce what it changed to every replica.
use std::time::SystemTime;

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::apps::{COLUMNS as APP_COLUMNS, app_from_row};
use super::{Store, StoreError};
use crate::domain::account::Account;
use crate::domain::app::{App, AppUsage};
use crate::domain::grant::{PasswordReset, RevokedTokens};
use crate::domain::id::{AccountId, AppId};

// Codes go first: a redemption in flight holds its code's row lock, so the
// DELETE waits for it, and the grant it made is then visible to the
// UPDATE's fresh snapshot (READ COMMITTED) and revoked with the rest.
const DELETE_ACCOUNT_CODES: &str =
    "DELETE FROM authorization_codes WHERE account_id = $1 AND redeemed_at IS NULL";
const REVOKE_ACCOUNT_GRANTS: &str =
    "UPDATE grants SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL";
const DELETE_APP_CODES: &str =
    "DELETE FROM authorization_codes WHERE app_id = $1 AND redeemed_at IS NULL";
const REVOKE_APP_GRANTS: &str =
    "UPDATE grants SET revoked_at = now() WHERE app_id = $1 AND revoked_at IS NULL";

impl Store {
    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        if !crate::domain::text::storable(username) {
            // No stored row can hold a NUL; PostgreSQL would refuse it.
            return Ok(None);
        }
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE lower(username) = lower($1)");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&username])
            .await?
            .map(|row| account_from_row(&row))
            .transpose()
    }

    /// Lets a disabled account log in again.
    pub async fn enable_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!(
            "UPDATE accounts SET disabled_at = NULL WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&id.get()])
            .await?
            .map(|row| account_from_row(&row))
            .transpose()
    }

    /// Replaces the password hash and ends every session; with
    /// `revoke_tokens`, also revokes every grant and unredeemed code. One
    /// transaction. None if there is no such account.
    pub async fn reset_password(
        &self,
        id: AccountId,
        password_hash: &str,
        revoke_tokens: bool,
    ) -> Result<Option<(Account, PasswordReset)>, StoreError> {
        let sql = format!(
            "UPDATE accounts SET password_hash = $2 WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        const END_SESSIONS: &str = "DELETE FROM sessions WHERE account_id = $1";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let id = id.get();
        let Some(row) = tx.query_opt(&sql, &[&id, &password_hash]).await? else {
            return Ok(None);
        };
        let account = account_from_row(&row)?;
        let mut reset = PasswordReset {
            ended_sessions: tx.execute(END_SESSIONS, &[&id]).await?,
            ..Default::default()
        };
        if revoke_tokens {
            reset.revoked.codes = tx.execute(DELETE_ACCOUNT_CODES, &[&id]).await?;
            reset.revoked.grants = tx.execute(REVOKE_ACCOUNT_GRANTS, &[&id]).await?;
        }
        tx.commit().await?;
        Ok(Some((account, reset)))
    }

    /// Revokes every grant of an account, and deletes its unredeemed codes.
    pub async fn revoke_account_tokens(
        &self,
        account_id: AccountId,
    ) -> Result<RevokedTokens, StoreError> {
        self.revoke_all(
            DELETE_ACCOUNT_CODES,
            REVOKE_ACCOUNT_GRANTS,
            account_id.get(),
        )
        .await
    }

    /// Revokes every grant of an app, and deletes its unredeemed codes.
    pub async fn revoke_app_tokens(&self, app_id: AppId) -> Result<RevokedTokens, StoreError> {
        self.revoke_all(DELETE_APP_CODES, REVOKE_APP_GRANTS, app_id.get())
            .await
    }

    async fn revoke_all(
        &self,
        delete_codes: &str,
        revoke_grants: &str,
        id: i64,
    ) -> Result<RevokedTokens, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let codes = tx.execute(delete_codes, &[&id]).await?;
        let grants = tx.execute(revoke_grants, &[&id]).await?;
        tx.commit().await?;
        Ok(RevokedTokens { grants, codes })
    }

    /// Up to `limit` apps with an id above `after` (all, if None), in id
    /// order.
    pub async fn list_apps(
        &self,
        after: Option<AppId>,
        limit: i64,
    ) -> Result<Vec<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE id > $1 ORDER BY id LIMIT $2");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        let after = after.map_or(0, AppId::get);
        conn.query(&stmt, &[&after, &limit])
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    /// What an app holds; its access tokens count as active if unexpired
    /// `at`, the service's time.
    pub async fn app_usage(&self, app_id: AppId, at: SystemTime) -> Result<AppUsage, StoreError> {
        const SQL: &str = "
            SELECT (SELECT count(*) FROM grants
                    WHERE app_id = $1 AND revoked_at IS NULL) AS live_grants,
                   (SELECT count(DISTINCT account_id) FROM grants
                    WHERE app_id = $1 AND revoked_at IS NULL) AS accounts,
                   (SELECT count(*) FROM access_tokens t JOIN grants g ON g.id = t.grant_id
                    WHERE g.app_id = $1 AND g.revoked_at IS NULL AND t.revoked_at IS NULL
                      AND (t.expires_at IS NULL OR t.expires_at > $2)) AS active_access_tokens";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        let row = conn.query_one(&stmt, &[&app_id.get(), &at]).await?;
        Ok(AppUsage {
            live_grants: row.try_get("live_grants")?,
            active_access_tokens: row.try_get("active_access_tokens")?,
            accounts: row.try_get("accounts")?,
        })
    }

    /// Deletes an app; its grants, tokens, codes and consents go with it
    /// (ON DELETE CASCADE), each announced by its trigger. Returns the app
    /// and how many of its grants were live, or None if there is no such
    /// app.
    pub async fn delete_app(&self, client_id: &str) -> Result<Option<(App, u64)>, StoreError> {
        if !crate::domain::text::storable(client_id) {
            // No stored row can hold a NUL; PostgreSQL would refuse it.
            return Ok(None);
        }
        let delete = format!("DELETE FROM apps WHERE client_id = $1 RETURNING {APP_COLUMNS}");
        const LOCK: &str = "SELECT id FROM apps WHERE client_id = $1 FOR UPDATE";
        const LIVE_GRANTS: &str =
            "SELECT count(*) FROM grants WHERE app_id = $1 AND revoked_at IS NULL";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let Some(locked) = tx.query_opt(LOCK, &[&client_id]).await? else {
            return Ok(None);
        };
        let app_id: i64 = locked.try_get(0)?;
        let live: i64 = tx.query_one(LIVE_GRANTS, &[&app_id]).await?.try_get(0)?;
        let row = tx.query_one(&delete, &[&client_id]).await?;
        let app = app_from_row(&row)?;
        tx.commit().await?;
        Ok(Some((app, u64::try_from(live).unwrap_or(0))))
    }
}
