//! User accounts.
use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::domain::account::Account;
use crate::domain::id::AccountId;

/// The account id in a row's `column`: accounts are numbered from 1.
pub(crate) fn account_id(row: &Row, column: &str) -> Result<AccountId, StoreError> {
    optional_account_id(row, column)?
        .ok_or_else(|| StoreError::Malformed(format!("{column}: no account id")))
}

/// [`account_id`] where the column may be NULL (no account); 0 is
/// malformed, not "no account".
pub(crate) fn optional_account_id(
    row: &Row,
    column: &str,
) -> Result<Option<AccountId>, StoreError> {
    match row.try_get::<_, Option<i64>>(column)? {
        None => Ok(None),
        Some(id) => AccountId::new(id)
            .map(Some)
            .ok_or_else(|| StoreError::Malformed(format!("{column}: account id 0"))),
    }
}

/// The account of a row holding `ACCOUNT_COLUMNS`.
pub(crate) fn account_from_row(row: &Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: account_id(row, "id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get("is_admin")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, username, email, password_hash, is_admin, created_at, disabled_at";

/// What went wrong when creating an account.
#[derive(Debug)]
pub enum CreateAccountError {
    UsernameTaken,
    EmailTaken,
    Store(StoreError),
}

impl Store {
    pub async fn insert_account(
        &self,
        username: &str,
        email: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<Account, CreateAccountError> {
        let sql = format!(
            "INSERT INTO accounts (username, email, password_hash, is_admin)
             VALUES ($1, $2, $3, $4) RETURNING {ACCOUNT_COLUMNS}"
        );
        let run = async {
            let conn = self.conn().await?;
            let stmt = conn.prepare_cached(&sql).await?;
            let row = conn
                .query_one(&stmt, &[&username, &email, &password_hash, &is_admin])
                .await?;
            account_from_row(&row)
        };
        run.await.map_err(|e| match e {
            StoreError::UniqueViolation { constraint, .. }
                if constraint == "accounts_username_key" =>
            {
                CreateAccountError::UsernameTaken
            }
            StoreError::UniqueViolation { constraint, .. }
                if constraint == "accounts_email_key" =>
            {
                CreateAccountError::EmailTaken
            }
            other => CreateAccountError::Store(other),
        })
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        if !crate::domain::text::storable(email) {
            // No stored row can hold a NUL; PostgreSQL would refuse it.
            return Ok(None);
        }
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE lower(email) = lower($1)");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&email])
            .await?
            .map(|row| account_from_row(&row))
            .transpose()
    }

    pub async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        conn.query_opt(&stmt, &[&id.get()])
            .await?
            .map(|row| account_from_row(&row))
            .transpose()
    }

    /// Disables an account and ends its sessions, in one transaction.
    pub async fn disable_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!(
            "UPDATE accounts SET disabled_at = coalesce(disabled_at, now())
             WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        const END_SESSIONS: &str = "DELETE FROM sessions WHERE account_id = $1";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let row = tx.query_opt(&sql, &[&id.get()]).await?;
        tx.execute(END_SESSIONS, &[&id.get()]).await?;
        tx.commit().await?;
        row.map(|row| account_from_row(&row)).transpose()
    }
}
