//! JWT signing keys as kept: every replica signs with the same key and
//! publishes the same JWKS.
use std::fmt;
use std::time::SystemTime;

/// A signing key pair with its lifetime. `Debug` shows the kid and the
/// algorithm, never the private key.
#[derive(Clone)]
pub struct JwtKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: SystemTime,
    pub retired_at: Option<SystemTime>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
