//! Databases in the cluster: created on demand, under names that are safe to quote.

use tracing::{debug, info};

use super::EmbeddedPostgres;
use super::error::{EmbeddedPostgresError, Result};

impl EmbeddedPostgres {
    /// Creates `dbname` if it does not exist.
    pub async fn ensure_database(&self, dbname: &str) -> Result<(), EmbeddedPostgresError> {
        validate_database_name(dbname)?;
        let client = connect(&self.connect_config("postgres")).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
            .await?
            .is_some();
        if exists {
            return Ok(());
        }
        // The name was validated above, so quoting it is enough to make it a safe identifier.
        match client
            .batch_execute(&format!("CREATE DATABASE \"{dbname}\""))
            .await
        {
            Ok(()) => {
                info!(dbname, "created database in embedded PostgreSQL");
                Ok(())
            }
            // Another process won the race to create it, which is just as good.
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "embedded postgres connection ended with error");
        }
    });
    Ok(client)
}

fn validate_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EmbeddedPostgresError::InvalidDatabaseName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_validated() {
        for ok in ["x", "authd", "authd_test_01", &"a".repeat(63)] {
            assert!(validate_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "X", "a-b", "a\"b", "a b", "é", &"a".repeat(64)] {
            assert!(validate_database_name(bad).is_err(), "{bad}");
        }
    }
}
