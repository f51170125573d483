//! JWT signing keys. Kept in PostgreSQL so that every replica signs with the
//! same key and publishes the same JWKS.
use std::time::Duration;

use super::{Store, StoreError};
use crate::domain::signing_key::JwtKey;

/// Serializes key creation across replicas ("authk" in ASCII).
const KEY_LOCK: i64 = 0x0061_7574_686b;

impl Store {
    /// Every key that signs or still verifies, newest first: the unretired
    /// ones, and those retired less than `retention` ago (the JWT lifetime
    /// and a margin: the tokens they signed may still be alive).
    pub async fn signing_keys(&self, retention: Duration) -> Result<Vec<JwtKey>, StoreError> {
        const SQL: &str = "SELECT kid, algorithm, private_key, public_key, created_at, retired_at
                           FROM signing_keys
                           WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
                           ORDER BY created_at DESC, kid";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.query(&stmt, &[&retention.as_secs_f64()])
            .await?
            .iter()
            .map(|row| {
                Ok(JwtKey {
                    kid: row.try_get("kid")?,
                    algorithm: row.try_get("algorithm")?,
                    private_key: row.try_get("private_key")?,
                    public_key: row.try_get("public_key")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Retires every signing key and inserts `key`, which signs from now on,
    /// in one transaction (serialized with key creation). The retired keys'
    /// private halves are wiped: nothing signs with them again, and their
    /// public halves are all that verification needs. Returns the kids
    /// retired.
    pub async fn rotate_signing_key(&self, key: &JwtKey) -> Result<Vec<String>, StoreError> {
        const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
        const RETIRE: &str = "UPDATE signing_keys SET retired_at = now(), private_key = ''::bytea
                              WHERE retired_at IS NULL RETURNING kid";
        const INSERT: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, public_key)
                              VALUES ($1, $2, $3, $4)";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(LOCK, &[&KEY_LOCK]).await?;
        let retired = tx
            .query(RETIRE, &[])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        tx.execute(
            INSERT,
            &[&key.kid, &key.algorithm, &key.private_key, &key.public_key],
        )
        .await?;
        tx.commit().await?;
        Ok(retired)
    }

    /// Inserts `key` unless an unretired key exists already; either way
    /// returns afterwards. Replicas starting together create one key.
    pub async fn ensure_signing_key(&self, key: &JwtKey) -> Result<(), StoreError> {
        const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
        const ACTIVE: &str = "SELECT 1 FROM signing_keys WHERE retired_at IS NULL LIMIT 1";
        const INSERT: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, public_key)
                              VALUES ($1, $2, $3, $4)";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(LOCK, &[&KEY_LOCK]).await?;
        if tx.query_opt(ACTIVE, &[]).await?.is_none() {
            tx.execute(
                INSERT,
                &[&key.kid, &key.algorithm, &key.private_key, &key.public_key],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
