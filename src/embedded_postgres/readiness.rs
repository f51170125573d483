//! Waiting until a starting server accepts connections, through crash recovery if need be.

use std::time::{Duration, Instant};

use tracing::info;

use super::EmbeddedPostgres;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Crash recovery of a big WAL backlog can legitimately take longer than a normal start;
/// we keep waiting this long as long as the server says it is still starting up.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(600);
const READY_POLL: Duration = Duration::from_millis(50);

impl EmbeddedPostgres {
    /// Waits until `SELECT 1` works over the socket; on failure returns why.
    pub(super) async fn wait_ready(&mut self) -> std::result::Result<(), String> {
        let config = self.connect_config("postgres");
        let started = Instant::now();
        let mut announced_recovery = false;
        loop {
            if let Some(exit) = self.postmaster.exit_status() {
                return Err(format!("postgres exited during startup ({exit})"));
            }
            let (starting_up, last_error) =
                match tokio::time::timeout(Duration::from_secs(5), select_one(&config)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => (
                        e.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW),
                        error_chain(&e),
                    ),
                    Err(_) => (false, "connection attempt timed out".to_string()),
                };
            let waited = started.elapsed();
            if waited >= READY_TIMEOUT {
                if !(starting_up && waited < RECOVERY_TIMEOUT) {
                    return Err(format!(
                        "not accepting connections after {}s (last error: {last_error})",
                        waited.as_secs()
                    ));
                }
                if !announced_recovery {
                    announced_recovery = true;
                    info!(
                        data_dir = %self.data_dir.display(),
                        "embedded PostgreSQL is still starting up (crash recovery?), waiting"
                    );
                }
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

async fn select_one(config: &tokio_postgres::Config) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(connection);
    let result = client.simple_query("SELECT 1").await.map(|_| ());
    drop(client);
    let _ = conn.await;
    result
}

/// An error with its causes on one line (tokio_postgres's own Display omits them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
