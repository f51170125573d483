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

/// An instant to the second, in 8 bytes where a `SystemTime` takes 16: what
/// a cached token keeps of when it was issued, which `iat` shows to the
/// second anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSeconds(i64);

impl UnixSeconds {
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl From<SystemTime> for UnixSeconds {
    fn from(t: SystemTime) -> UnixSeconds {
        UnixSeconds(unix_seconds(t))
    }
}
