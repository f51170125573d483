//! PostgreSQL: the only place SQL lives. Each query is a `const` beside the
//! function that runs it; every statement is prepared (and cached per
//! connection) with bound parameters, never built from strings.
//!
//! Errors are classified once here: anything that means "the database cannot
//! be reached or did not answer" becomes `StoreError::Unavailable`, which the
//! transports report as UNAVAILABLE / 503 rather than as an internal error.
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::domain::error::AuthError;

pub mod accounts;
pub mod admin;
pub mod apps;
pub mod grants;
mod issue_batch;
pub mod keys;
pub mod migrate;
pub mod notify;
pub mod purge;
pub mod sessions;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unique constraint {0} violated")]
    UniqueViolation(String),
    /// A value the server cannot hold (SQLSTATE class 22, data exception:
    /// a NUL in text, a number out of range). The input's fault, never an
    /// internal error; the domain's parsers refuse such input first, so
    /// this is the backstop for a field they missed.
    #[error("value refused by the database: {0}")]
    InvalidInput(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(&e)
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => classify(&e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

fn classify(e: &tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: an I/O error, a closed connection or a timeout while
        // connecting. All of them mean the server is out of reach.
        return StoreError::Unavailable(e.to_string());
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        let constraint = e
            .as_db_error()
            .and_then(|db| db.constraint())
            .unwrap_or_default()
            .to_owned();
        return StoreError::UniqueViolation(constraint);
    }
    let class = &code.code()[..2];
    if class == "22" {
        return StoreError::InvalidInput(e.to_string());
    }
    // 08: connection exception; 57: operator intervention (shutdown, query
    // canceled by statement_timeout); 53: insufficient resources.
    if matches!(class, "08" | "57" | "53") || *code == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Other(e.to_string())
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                AuthError::unavailable()
            }
            StoreError::UniqueViolation(c) => {
                tracing::error!(constraint = %c, "unexpected unique violation");
                AuthError::internal()
            }
            StoreError::InvalidInput(detail) => {
                tracing::info!(error = %detail, "input refused by the database");
                AuthError::invalid_request("The request holds a value that cannot be stored.")
            }
            StoreError::Other(detail) => {
                tracing::error!(error = %detail, "database error");
                AuthError::internal()
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub pg: tokio_postgres::Config,
    pub max_connections: usize,
    /// How long a request may wait for a pooled connection, and for a new
    /// connection to open, before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Server-side limit on any one statement.
    pub statement_timeout: Duration,
}

/// The connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The pool's connection settings, for connections of their own
    /// (LISTEN).
    pg: tokio_postgres::Config,
    /// The group-commit writer of client_credentials tokens, started on
    /// first use (see issue_batch.rs).
    issue_queue: std::sync::Arc<std::sync::OnceLock<issue_batch::Queue>>,
}

pub type Conn = deadpool_postgres::Object;

impl Store {
    pub fn new(config: StoreConfig) -> Result<Store, StoreError> {
        let mut pg = config.pg.clone();
        pg.connect_timeout(config.acquire_timeout);
        // client_min_messages: NOTICEs ("relation already exists, skipping")
        // are noise in an operator's terminal.
        pg.options(format!(
            "-c statement_timeout={} -c client_min_messages=warning",
            config.statement_timeout.as_millis()
        ));
        if pg.get_application_name().is_none() {
            pg.application_name("authd");
        }
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.acquire_timeout))
            .recycle_timeout(Some(config.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Store {
            pool,
            pg,
            issue_queue: Default::default(),
        })
    }

    pub async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// A round trip to the server: what health checks use.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Closes the pool: idle connections are dropped, and no new ones made.
    pub fn close(&self) {
        self.pool.close();
    }

    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }
}

pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
