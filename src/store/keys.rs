//! JWT signing keys. Kept in PostgreSQL so that every replica signs with the
//! same key and publishes the same JWKS.
use std::time::SystemTime;

use super::{Store, StoreError};

#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: SystemTime,
    pub retired_at: Option<SystemTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Serializes key creation across replicas ("authk" in ASCII).
const KEY_LOCK: i64 = 0x0061_7574_686b;

impl Store {
    /// Every key not yet past its retirement grace, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        const SQL: &str = "SELECT kid, algorithm, private_key, public_key, created_at, retired_at
                           FROM signing_keys ORDER BY created_at DESC, kid";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.query(&stmt, &[])
            .await?
            .iter()
            .map(|row| {
                Ok(SigningKeyRecord {
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

    /// Inserts `key` unless an unretired key exists already; either way
    /// returns afterwards. Replicas starting together create one key.
    pub async fn ensure_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
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
