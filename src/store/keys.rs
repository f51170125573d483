//! JWT signing keys. Kept in PostgreSQL so that every replica signs with the
//! same keys and publishes the same JWKS. Private halves are stored as the
//! service hands them over (sealed); nothing here reads them.
use std::time::Duration;

use super::{Store, StoreError};
use crate::domain::signing_key::{JwtKey, SigningAlgorithm};

/// Serializes key creation across replicas ("authk" in ASCII).
const KEY_LOCK: i64 = 0x0061_7574_686b;

const INSERT: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, public_key)
                      VALUES ($1, $2, $3, $4)";

fn key_from_row(row: &tokio_postgres::Row) -> Result<JwtKey, StoreError> {
    let algorithm: String = row.try_get("algorithm")?;
    Ok(JwtKey {
        kid: row.try_get("kid")?,
        algorithm: SigningAlgorithm::parse(&algorithm)
            .ok_or_else(|| StoreError::Malformed(format!("signing key algorithm {algorithm:?}")))?,
        private_key: row.try_get("private_key")?,
        public_key: row.try_get("public_key")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

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
            .map(key_from_row)
            .collect()
    }

    /// The algorithms that have an unretired key.
    pub async fn active_signing_algorithms(&self) -> Result<Vec<SigningAlgorithm>, StoreError> {
        const SQL: &str = "SELECT DISTINCT algorithm FROM signing_keys WHERE retired_at IS NULL";
        let conn = self.conn().await?;
        conn.query(SQL, &[])
            .await?
            .iter()
            .map(|row| {
                let name: String = row.try_get(0)?;
                SigningAlgorithm::parse(&name)
                    .ok_or_else(|| StoreError::Malformed(format!("signing key algorithm {name:?}")))
            })
            .collect()
    }

    /// Retires every signing key and inserts `keys`, which sign from now
    /// on, in one transaction (serialized with key creation). The retired
    /// keys' private halves are wiped: nothing signs with them again, and
    /// their public halves are all that verification needs. Returns the
    /// kids retired.
    pub async fn rotate_signing_keys(&self, keys: &[JwtKey]) -> Result<Vec<String>, StoreError> {
        const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
        const RETIRE: &str = "UPDATE signing_keys SET retired_at = now(), private_key = ''::bytea
                              WHERE retired_at IS NULL RETURNING kid";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(LOCK, &[&KEY_LOCK]).await?;
        let retired = tx
            .query(RETIRE, &[])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        for key in keys {
            tx.execute(
                INSERT,
                &[
                    &key.kid,
                    &key.algorithm.as_str(),
                    &key.private_key,
                    &key.public_key,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(retired)
    }

    /// Inserts each of `keys` whose algorithm has no unretired key yet;
    /// replicas starting together create one key per algorithm.
    pub async fn ensure_signing_keys(&self, keys: &[JwtKey]) -> Result<(), StoreError> {
        const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
        const ACTIVE: &str =
            "SELECT 1 FROM signing_keys WHERE retired_at IS NULL AND algorithm = $1 LIMIT 1";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(LOCK, &[&KEY_LOCK]).await?;
        for key in keys {
            let algorithm = key.algorithm.as_str();
            if tx.query_opt(ACTIVE, &[&algorithm]).await?.is_none() {
                tx.execute(
                    INSERT,
                    &[&key.kid, &algorithm, &key.private_key, &key.public_key],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces an unretired key's stored private half (sealing one kept
    /// in the clear), unless it changed meanwhile.
    pub async fn reseal_signing_key(
        &self,
        kid: &str,
        was: &[u8],
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE signing_keys SET private_key = $3
                           WHERE kid = $1 AND private_key = $2 AND retired_at IS NULL";
        let conn = self.conn().await?;
        conn.execute(SQL, &[&kid, &was, &sealed]).await?;
        Ok(())
    }
}
