//! Instants as the wire shows them.
use std::time::SystemTime;

/// Seconds since the Unix epoch (negative before it), saturating: what
/// `exp`, `iat` and the RPCs' timestamps carry.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
