//! PostgreSQL: the only place SQL lives. Each query is a `const` beside the
//! function that runs it; every statement is prepared (and cached per
//! connection) with bound parameters, never built from strings.
//!
//! Errors are classified once here: anything that means "the database cannot
//! be reached or did not answer" becomes `StoreError::Unavailable`, which the
//! transports report as UNAVAILABLE / 503 rather than as an internal error.
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::domain::error::AuthError;

pub mod accounts;
pub mod admin;
pub mod apps;
mod batch;
pub mod grants;
mod issue_batch;
pub mod keys;
mod lookup_batch;
pub use lookup_batch::TokenLookupStats;
pub mod migrate;
pub mod notify;
pub mod purge;
pub mod sessions;

/// What went wrong below the store, kept for the log where the request
/// ends; shared, so that one failure can answer a whole batch.
pub type Source = Arc<dyn std::error::Error + Send + Sync>;

/// A source that is only a message.
pub(crate) fn message(text: impl Into<String>) -> Source {
    Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
        text.into(),
    ))
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable")]
    Unavailable(#[source] Source),
    #[error("unique constraint {constraint} violated")]
    UniqueViolation {
        constraint: String,
        #[source]
        source: Source,
    },
    /// A value the server cannot hold (SQLSTATE class 22, data exception:
    /// a NUL in text, a number out of range). The input's fault, never an
    /// internal error; the domain's parsers refuse such input first, so
    /// this is the backstop for a field they missed.
    #[error("value refused by the database")]
    InvalidInput(#[source] Source),
    #[error("database error")]
    Database(#[source] Source),
    /// A stored value that does not parse: the database was edited by
    /// hand, which is worth an error rather than a guess.
    #[error("stored data is malformed: {0}")]
    Malformed(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(e)
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => classify(e),
            other => StoreError::Unavailable(Arc::new(other)),
        }
    }
}

fn classify(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code().cloned() else {
        // No SQLSTATE: an I/O error, a closed connection or a timeout while
        // connecting. All of them mean the server is out of reach.
        return StoreError::Unavailable(Arc::new(e));
    };
    if code == SqlState::UNIQUE_VIOLATION {
        let constraint = e
            .as_db_error()
            .and_then(|db| db.constraint())
            .unwrap_or_default()
            .to_owned();
        return StoreError::UniqueViolation {
            constraint,
            source: Arc::new(e),
        };
    }
    let class = &code.code()[..2];
    if class == "22" {
        return StoreError::InvalidInput(Arc::new(e));
    }
    // 08: connection exception; 57: operator intervention (shutdown, query
    // canceled by statement_timeout); 53: insufficient resources.
    if matches!(class, "08" | "57" | "53") || code == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE {
        return StoreError::Unavailable(Arc::new(e));
    }
    StoreError::Database(Arc::new(e))
}

/// The kind of failure each store error is to the caller. Nothing is logged
/// here: the error keeps its cause, and is logged once, where the request
/// ends (`grpc::status`).
impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        let error = match &e {
            StoreError::Unavailable(_) => AuthError::unavailable(),
            StoreError::InvalidInput(_) => {
                AuthError::invalid_request("The request holds a value that cannot be stored.")
            }
            StoreError::UniqueViolation { .. }
            | StoreError::Database(_)
            | StoreError::Malformed(_) => AuthError::internal(),
        };
        error.with_cause(e)
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
    /// How long a pooled connection is used before it is closed and a new
    /// one opened in its place (checked when it is taken from the pool).
    /// Each connection plans its statements once (see `Store::new`) and
    /// keeps the plans until PostgreSQL next analyzes the tables; a new
    /// connection plans them again for the tables as they are now, so a
    /// plan made when a table was tiny does not outlive this, even where
    /// autovacuum is off.
    pub connection_lifetime: Duration,
}

/// [`StoreConfig::connection_lifetime`] in `authd serve`: a connection's
/// opening and its statements' planning, a few milliseconds, once per ten
/// minutes per connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);

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
    /// The batched reader of tokens that missed the cache, started on first
    /// use (see lookup_batch.rs).
    lookup_queue: std::sync::Arc<std::sync::OnceLock<lookup_batch::Queue>>,
    lookup_counters: std::sync::Arc<lookup_batch::Counters>,
    /// The runtime the store was made on (the shared one, in `authd
    /// serve`), where its connections and its batch queues run, whichever
    /// thread first needs them. An HTTP connection's request runs on that
    /// connection's own thread (see `connections::pinned_runtimes`); a
    /// database connection or a batch writer started from there would stay
    /// there, and every other thread's queries would hop to it and back.
    /// None if the store was made outside a runtime.
    runtime: Option<tokio::runtime::Handle>,
}

/// Connects to PostgreSQL on the store's runtime: the connection's socket
/// is registered with that runtime's reactor and its task runs there.
/// Otherwise as deadpool's own (`ConfigConnectImpl`).
struct ConnectOnRuntime {
    runtime: Option<tokio::runtime::Handle>,
}

impl deadpool_postgres::Connect for ConnectOnRuntime {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> futures::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        async fn connect(
            pg: tokio_postgres::Config,
        ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
        {
            let (client, connection) = pg.connect(NoTls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "a database connection failed");
                }
            });
            Ok((client, task))
        }
        let pg = pg.clone();
        let runtime = self.runtime.clone();
        Box::pin(async move {
            let Some(runtime) = runtime else {
                return connect(pg).await;
            };
            match runtime.spawn(connect(pg.clone())).await {
                Ok(connected) => connected,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // That runtime is shutting down: connect here instead.
                Err(_) => connect(pg).await,
            }
        })
    }
}

pub type Conn = deadpool_postgres::Object;

impl Store {
    pub fn new(config: StoreConfig) -> Result<Store, StoreError> {
        let mut pg = config.pg.clone();
        pg.connect_timeout(config.acquire_timeout);
        // client_min_messages: NOTICEs ("relation already exists, skipping")
        // are noise in an operator's terminal. plan_cache_mode: every
        // statement is prepared once per connection and then run with its
        // generic plan; left to choose, PostgreSQL plans the token lookup
        // (four tables, a list of keys) anew on every run, which cost more
        // than running it (BENCHMARKS.md, cold introspection).
        // random_page_cost: a generic plan is made once, from the tables'
        // sizes at that moment, and kept until PostgreSQL next analyzes
        // them. With the default (4, a spinning disk's) the token lookup
        // made while `grants` was still a few dozen pages joined it by a
        // hash over a full scan, and kept scanning it whole for every
        // lookup as it grew (tokens/s fell by a third in three rounds of
        // the cold benchmark, with autovacuum off). 1.1, the usual figure
        // for SSDs and for tables that stay cached, makes an index probe
        // per token the cheaper plan for any but a table of a page or two.
        pg.options(format!(
            "-c statement_timeout={} -c client_min_messages=warning -c plan_cache_mode=force_generic_plan \
             -c random_page_cost=1.1",
            config.statement_timeout.as_millis()
        ));
        if pg.get_application_name().is_none() {
            pg.application_name("authd");
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        let manager = Manager::from_connect(
            pg.clone(),
            ConnectOnRuntime {
                runtime: runtime.clone(),
            },
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
            .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
                if metrics.age() >= config.connection_lifetime {
                    Err(deadpool_postgres::HookError::message(
                        "past its lifetime; a new connection takes its place",
                    ))
                } else {
                    Ok(())
                }
            }))
            .build()
            .map_err(|e| StoreError::Database(Arc::new(e)))?;
        Ok(Store {
            pool,
            pg,
            runtime,
            issue_queue: Default::default(),
            lookup_queue: Default::default(),
            lookup_counters: Default::default(),
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

#[cfg(test)]
mod error_tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[test]
    fn a_store_error_becomes_its_kind_and_keeps_its_whole_cause() {
        let error: AuthError =
            StoreError::Database(message("relation \"grants\" does not exist")).into();
        assert_eq!(error.kind, ErrorKind::Internal);
        let cause = error.cause.expect("the cause is kept").to_string();
        assert_eq!(cause, "database error: relation \"grants\" does not exist");
        // Shown to the caller: the kind's description only.
        assert!(!error.description.contains("grants"));

        let unavailable: AuthError = StoreError::Unavailable(message("connection refused")).into();
        assert_eq!(unavailable.kind, ErrorKind::Unavailable);
        assert!(
            unavailable
                .cause
                .unwrap()
                .to_string()
                .ends_with("connection refused")
        );
    }
}
