//! Versioned schema migrations, embedded in the binary so that a container
//! image needs nothing beside it. Applied at start-up and by `authd migrate`;
//! an advisory lock makes concurrent replicas take turns, and applied
//! versions are recorded, so running them again changes nothing.
use super::{Store, StoreError};

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "invalidation_notify",
        sql: include_str!("../../migrations/0002_invalidation_notify.sql"),
    },
    Migration {
        version: 3,
        name: "signing_key_notify",
        sql: include_str!("../../migrations/0003_signing_key_notify.sql"),
    },
    Migration {
        version: 4,
        name: "token_selectors",
        sql: include_str!("../../migrations/0004_token_selectors.sql"),
    },
    Migration {
        version: 5,
        name: "admin_scopes",
        sql: include_str!("../../migrations/0005_admin_scopes.sql"),
    },
    Migration {
        version: 6,
        name: "signing_key_algorithms",
        sql: include_str!("../../migrations/0006_signing_key_algorithms.sql"),
    },
    Migration {
        version: 7,
        name: "client_metadata",
        sql: include_str!("../../migrations/0007_client_metadata.sql"),
    },
    Migration {
        version: 8,
        name: "openid",
        sql: include_str!("../../migrations/0008_openid.sql"),
    },
];

/// An arbitrary constant: "authd" in ASCII. Identifies our advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x0061_7574_6864;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";
const LOCK: &str = "SELECT pg_advisory_lock($1)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
const APPLIED: &str = "SELECT version FROM schema_migrations";
const RECORD: &str = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

/// Applies every migration not yet applied. Returns how many were applied.
pub async fn run(store: &Store) -> Result<usize, StoreError> {
    let mut conn = store.conn().await?;
    conn.execute(LOCK, &[&MIGRATION_LOCK_KEY]).await?;
    let result = apply_pending(&mut conn).await;
    // Unlock even when a migration failed; a dropped connection would
    // release it too, but this one goes back to the pool.
    conn.execute(UNLOCK, &[&MIGRATION_LOCK_KEY]).await?;
    result
}

async fn apply_pending(conn: &mut super::Conn) -> Result<usize, StoreError> {
    conn.batch_execute(CREATE_LEDGER).await?;
    let applied = conn
        .query(APPLIED, &[])
        .await?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut count = 0;
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        let tx = conn.transaction().await?;
        tx.batch_execute(m.sql).await?;
        tx.execute(RECORD, &[&m.version, &m.name]).await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        count += 1;
    }
    Ok(count)
}

/// The newest schema version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
