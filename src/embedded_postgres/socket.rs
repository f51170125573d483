//! Where the server's Unix socket goes: the data directory, or, when that path would not
//! fit in `sun_path`, a short private directory under /tmp.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{chown, geteuid};
use sha2::{Digest, Sha256};

use super::error::{EmbeddedPostgresError, Result, io_err, nix_err};
use super::permissions::RunAs;

/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The data dir is the socket dir unless its socket path would not fit in `sun_path`.
pub(super) fn socket_dir_for(
    data_dir: &Path,
    port: u16,
    run_as: Option<&RunAs>,
) -> Result<(PathBuf, bool)> {
    if socket_path_len(data_dir, port) <= MAX_SOCKET_PATH {
        return Ok((data_dir.to_path_buf(), false));
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = PathBuf::from(format!("/tmp/authd-pg-{hex}"));
    let owner = run_as.map_or_else(geteuid, |r| r.uid);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            if let Some(run_as) = run_as {
                chown(&dir, Some(run_as.uid), Some(run_as.gid))
                    .map_err(nix_err(format!("chown {}", dir.display())))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(format!("creating socket dir {}", dir.display()))(e)),
    }
    // /tmp is shared: a dir planted there by someone else could intercept our connections.
    let meta =
        fs::symlink_metadata(&dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(EmbeddedPostgresError::UnsafeSocketDir {
            dir,
            reason: "not a directory".into(),
        });
    }
    if meta.uid() != owner.as_raw() {
        return Err(EmbeddedPostgresError::UnsafeSocketDir {
            dir,
            reason: format!("owned by uid {}, expected {}", meta.uid(), owner),
        });
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod 0700 {}", dir.display())))?;
    Ok((dir, true))
}

fn socket_path_len(dir: &Path, port: u16) -> usize {
    dir.as_os_str().len() + "/.s.PGSQL.".len() + port.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_length_counts_port_digits() {
        let dir = PathBuf::from(format!("/{}", "d".repeat(90)));
        // "/" + 90 + "/.s.PGSQL." (10) + "5432" (4)
        assert_eq!(socket_path_len(&dir, 5432), 105);
        assert_eq!(socket_path_len(&dir, 55432), 106);
    }
}
