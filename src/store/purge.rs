//! Deletes what can no longer be used, so that the tables do not grow
//! without bound: expired codes and sessions, expired access and refresh
//! tokens, revoked access tokens, and grants with nothing left that no
//! one can issue into again.
//! Rows go in batches, so that no purge holds locks for long.
use super::{Store, StoreError};

/// What one purge deleted, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub authorization_codes: u64,
    pub sessions: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub grants: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.authorization_codes
            + self.sessions
            + self.access_tokens
            + self.refresh_tokens
            + self.grants
    }
}

const BATCH: i64 = 5_000;

/// Each statement deletes one batch of rows matching its condition.
/// A revoked token stays a day (an unknown token is as inactive as a
/// revoked one, but the day keeps recent history for operators); a code
/// stays until it expires, so that its reuse can still revoke its grant.
const ACCESS_TOKENS: &str = "DELETE FROM access_tokens WHERE id IN (
    SELECT id FROM access_tokens
    WHERE expires_at < now() OR revoked_at < now() - interval '1 day'
    LIMIT $1)";
const REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE id IN (
    SELECT id FROM refresh_tokens WHERE expires_at < now() LIMIT $1)";
const CODES: &str = "DELETE FROM authorization_codes WHERE digest IN (
    SELECT digest FROM authorization_codes WHERE expires_at < now() LIMIT $1)";
const SESSIONS: &str = "DELETE FROM sessions WHERE digest IN (
    SELECT digest FROM sessions WHERE expires_at < now() LIMIT $1)";
/// A grant revoked a day ago with no token and no code left: nothing can
/// ever use it again. Nor can an app's own grant (client_credentials, no
/// account) once its tokens are gone: such a grant is never revoked
/// (revoking its token revokes the token alone), and nothing issues into
/// it again, so without this every such token would leave a grant behind
/// for good. Its tokens are written in the statement that writes it, so
/// no purge can see it without them.
const GRANTS: &str = "DELETE FROM grants WHERE id IN (
    SELECT g.id FROM grants g
    WHERE (g.revoked_at < now() - interval '1 day' OR g.account_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM access_tokens t WHERE t.grant_id = g.id)
      AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id)
      AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = g.id)
    LIMIT $1)";

impl Store {
    pub async fn purge(&self) -> Result<Purged, StoreError> {
        Ok(Purged {
            authorization_codes: self.delete_in_batches(CODES).await?,
            sessions: self.delete_in_batches(SESSIONS).await?,
            refresh_tokens: self.delete_in_batches(REFRESH_TOKENS).await?,
            access_tokens: self.delete_in_batches(ACCESS_TOKENS).await?,
            grants: self.delete_in_batches(GRANTS).await?,
        })
    }

    async fn delete_in_batches(&self, sql: &str) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(sql).await?;
        let mut total = 0;
        loop {
            let deleted = conn.execute(&stmt, &[&BATCH]).await?;
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
