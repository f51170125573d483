//! Finding the server binaries: initdb and postgres from one installation.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{EmbeddedPostgresError, Result};

/// Locations of the server binaries this module runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

/// Finds initdb and postgres: $PATH, then `pg_config --bindir`, then the highest
/// /usr/lib/postgresql/*/bin.
pub(super) fn find() -> Result<PgBinaries> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Some(bins) = binaries_in(&dir) {
                return Ok(bins);
            }
        }
    }
    if let Some(bins) = pg_config_bindir().and_then(|dir| binaries_in(&dir)) {
        return Ok(bins);
    }
    for dir in versioned_bindirs(Path::new("/usr/lib/postgresql")) {
        if let Some(bins) = binaries_in(&dir) {
            return Ok(bins);
        }
    }
    Err(EmbeddedPostgresError::BinariesNotFound)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Both binaries from one installation, with symlinks resolved so a mix of versions
/// (e.g. stray symlinks in /usr/local/bin) is never picked.
fn binaries_in(dir: &Path) -> Option<PgBinaries> {
    let initdb = dir.join("initdb");
    let postgres = dir.join("postgres");
    if !is_executable(&initdb) || !is_executable(&postgres) {
        return None;
    }
    let initdb = initdb.canonicalize().ok()?;
    let postgres = postgres.canonicalize().ok()?;
    let bindir = postgres.parent()?.to_path_buf();
    if initdb.parent()? != bindir {
        return None;
    }
    Some(PgBinaries {
        bindir,
        initdb,
        postgres,
    })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<root>/<version>/bin`, highest version first.
fn versioned_bindirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, OsString)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(name.to_str()?)?;
            Some((version, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, name)| root.join(name).join("bin"))
        .collect()
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("15beta"), None);
        let root = std::env::temp_dir().join(format!(
            "authd-pg-versions-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        for v in ["9.6", "15", "10", "notaversion"] {
            fs::create_dir_all(root.join(v)).expect("mkdir");
        }
        let dirs = versioned_bindirs(&root);
        let names: Vec<PathBuf> = ["15", "10", "9.6"]
            .iter()
            .map(|v| root.join(v).join("bin"))
            .collect();
        assert_eq!(dirs, names);
        fs::remove_dir_all(&root).expect("cleanup");
    }
}
