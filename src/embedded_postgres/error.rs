//! What can go wrong, with the context the operator needs to fix it.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPostgresError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found in $PATH, `pg_config --bindir` or /usr/lib/postgresql/*/bin: install PostgreSQL's server (e.g. `apt-get install postgresql`) or set DATABASE_URL to use an existing database"
    )]
    BinariesNotFound,
    #[error(
        "OS user {0:?} does not exist; PostgreSQL refuses to run as root, so an unprivileged user is needed to run it (create it, or set DATABASE_URL)"
    )]
    UnknownUser(String),
    #[error(
        "directory {} is not traversable by OS user {user:?}, which runs PostgreSQL; put the data directory elsewhere (e.g. under /var/lib) or make it traversable (chmod o+x)",
        .dir.display()
    )]
    NotTraversable { dir: PathBuf, user: String },
    #[error(
        "data directory {} is owned by uid {owner}, but PostgreSQL would run as {user:?} (uid {uid}); chown it or use another directory",
        .data_dir.display()
    )]
    WrongOwner {
        data_dir: PathBuf,
        owner: u32,
        user: String,
        uid: u32,
    },
    #[error(
        "data directory {} is in use by another running postgres (pid {pid}); stop it or use another directory",
        .data_dir.display()
    )]
    AlreadyRunning { pid: i32, data_dir: PathBuf },
    #[error("unsafe socket directory {}: {reason}", .dir.display())]
    UnsafeSocketDir { dir: PathBuf, reason: String },
    #[error("invalid database name {0:?}: must be 1-63 characters of [a-z0-9_]")]
    InvalidDatabaseName(String),
    #[error("initdb failed for {} ({status}):\n{output}", .data_dir.display())]
    Initdb {
        data_dir: PathBuf,
        status: String,
        output: String,
    },
    #[error("postgres failed to start in {}: {reason}\n--- last lines of {} ---\n{tail}", .data_dir.display(), .log.display())]
    Startup {
        data_dir: PathBuf,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("postgres (pid {pid}) did not shut down in time and was killed")]
    StopTimeout { pid: i32 },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("query on embedded PostgreSQL failed")]
    Postgres(#[from] tokio_postgres::Error),
}

pub(super) type Result<T, E = EmbeddedPostgresError> = std::result::Result<T, E>;

pub(super) fn io_err(
    context: impl Into<String>,
) -> impl FnOnce(io::Error) -> EmbeddedPostgresError {
    let context = context.into();
    move |source| EmbeddedPostgresError::Io { context, source }
}

pub(super) fn nix_err(context: impl Into<String>) -> impl FnOnce(Errno) -> EmbeddedPostgresError {
    let context = context.into();
    move |errno| EmbeddedPostgresError::Io {
        context,
        source: io::Error::from(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_message_is_one_line() {
        let msg = EmbeddedPostgresError::BinariesNotFound.to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("apt-get install postgresql"));
        assert!(msg.contains("DATABASE_URL"));
    }
}
