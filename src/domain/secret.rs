//! High-entropy secrets: client ids and secrets, codes, tokens and sessions.
//! They are 32 random bytes in URL-safe base64 (43 characters, as Mastodon's),
//! handed out once and stored only as SHA-256 digests: the entropy makes a
//! slow hash unnecessary, and a digest lets lookups stay a single index probe.
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in every generated secret.
pub const SECRET_BYTES: usize = 32;

/// 32 random bytes, URL-safe base64 without padding: 43 characters.
pub fn random_token() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret value handed to a caller once. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn generate() -> Self {
        Secret(SecretString::from(random_token()))
    }

    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn digest(&self) -> Digest {
        Digest::of(self.expose())
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// SHA-256 of a secret: what is stored, and what lookups use.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(secret: &str) -> Self {
        Digest(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, for comparing a presented secret's digest
    /// with a stored one.
    pub fn ct_eq(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines and reveals nothing usable.
        write!(
            f,
            "Digest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Constant-time comparison of two strings of public length.
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_43_url_safe_characters_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn digest_is_sha256_and_compares_in_constant_time() {
        let d = Digest::of("abc");
        assert_eq!(
            d.as_bytes()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert!(d.ct_eq(&Digest::of("abc")));
        assert!(!d.ct_eq(&Digest::of("abd")));
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.digest()).contains("hunter2"));
    }
}
