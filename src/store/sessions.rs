//! Login sessions, stored by digest so that a database read does not yield a
//! usable cookie.
use std::time::SystemTime;

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::{Store, StoreError};
use crate::domain::id::AccountId;
use crate::domain::secret::Digest;
use crate::domain::session::Session;

impl Store {
    pub async fn insert_session(
        &self,
        digest: &Digest,
        account_id: AccountId,
        signed_in_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO sessions (digest, account_id, created_at, expires_at)
                           VALUES ($1, $2, $3, $4)";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.execute(
            &stmt,
            &[
                &digest.as_bytes().as_slice(),
                &account_id.get(),
                &signed_in_at,
                &expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    /// The session of `digest`, if unexpired `at`.
    /// The time is the caller's, not the database's: the service decides
    /// expiry by its own clock.
    pub async fn session_account(
        &self,
        digest: &Digest,
        at: SystemTime,
    ) -> Result<Option<Session>, StoreError> {
        let columns = ACCOUNT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, s.created_at AS session_created_at, s.expires_at AS session_expires_at
             FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.digest = $1 AND s.expires_at > $2"
        );
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await?;
        let Some(row) = conn
            .query_opt(&stmt, &[&digest.as_bytes().as_slice(), &at])
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            account: account_from_row(&row)?,
            signed_in_at: row.try_get("session_created_at")?,
            expires_at: row.try_get("session_expires_at")?,
        }))
    }

    pub async fn delete_session(&self, digest: &Digest) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM sessions WHERE digest = $1";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.execute(&stmt, &[&digest.as_bytes().as_slice()])
            .await?;
        Ok(())
    }
}
