//! High-entropy secrets: client ids and secrets, codes, tokens and sessions.
//! They are 32 bytes in URL-safe base64 (43 characters, as Mastodon's),
//! handed out once and stored only as SHA-256 digests: the entropy makes a
//! slow hash unnecessary.
//!
//! Access and refresh tokens, of which there are millions, are also split
//! into a selector and a verifier (see [`Secret::generate_token`]): rows are
//! found by the selector, which begins with the time it was made, so that a
//! new row's index entry lands at the right edge of the B-tree instead of at
//! a random place in an index too big to stay in memory; the digest of the
//! whole token, compared in constant time, is what proves the token.
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

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
    random_url_safe::<SECRET_BYTES>()
}

/// `N` random bytes, URL-safe base64 without padding (4 characters for
/// every 3 bytes).
pub fn random_url_safe<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Bytes of a token's selector: 6 of milliseconds since the epoch, then 10
/// random ones. The other 16 bytes of the token are random too, so a token
/// holds 208 random bits.
pub const SELECTOR_BYTES: usize = 16;
const SELECTOR_TIME_BYTES: usize = 6;

/// Where a token's row is found: the first 16 of its 32 bytes. Knowing a
/// selector does not help to forge its token; the verifier (the remaining
/// 16 bytes) is checked through the digest of the whole token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector([u8; SELECTOR_BYTES]);

impl Selector {
    /// The selector of an opaque token (43 characters of URL-safe base64),
    /// or of a JWT's `jti`. `None` for anything else.
    pub fn of_opaque(token: &str) -> Option<Selector> {
        if token.len() != 43 {
            return None;
        }
        // decode_slice wants room for its estimate, 33 bytes for 43 characters.
        let mut bytes = [0u8; SECRET_BYTES + 1];
        match URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), &mut bytes) {
            Ok(SECRET_BYTES) => {}
            _ => return None,
        }
        let mut selector = [0u8; SELECTOR_BYTES];
        selector.copy_from_slice(&bytes[..SELECTOR_BYTES]);
        Some(Selector(selector))
    }

    pub fn as_bytes(&self) -> &[u8; SELECTOR_BYTES] {
        &self.0
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector(")?;
        for b in &self.0[..SELECTOR_TIME_BYTES + 2] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// How a presented token is looked up: by its selector, and, for tokens
/// issued before selectors existed, by its digest alone. Either way the
/// stored digest must equal `digest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenKey {
    pub selector: Option<Selector>,
    pub digest: Digest,
}

/// A secret value handed to a caller once. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn generate() -> Self {
        Secret(SecretString::from(random_token()))
    }

    /// A token, and its selector: its first 6 bytes are the current time in
    /// milliseconds, big-endian, and the other 26 random, so that selectors
    /// sort by issuance. The time it reveals is one its holder already knows.
    pub fn generate_token() -> (Self, Selector) {
        Self::generate_token_at(SystemTime::now())
    }

    fn generate_token_at(at: SystemTime) -> (Self, Selector) {
        let millis = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut bytes = [0u8; SECRET_BYTES];
        bytes[..SELECTOR_TIME_BYTES]
            .copy_from_slice(&millis.to_be_bytes()[8 - SELECTOR_TIME_BYTES..]);
        rand::rng().fill_bytes(&mut bytes[SELECTOR_TIME_BYTES..]);
        let mut selector = [0u8; SELECTOR_BYTES];
        selector.copy_from_slice(&bytes[..SELECTOR_BYTES]);
        (
            Secret(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))),
            Selector(selector),
        )
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
    fn token_selectors_sort_by_issuance_time_and_tokens_stay_43_characters() {
        let t0 = UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_000);
        let (earlier, a) = Secret::generate_token_at(t0);
        let (_, b) = Secret::generate_token_at(t0 + std::time::Duration::from_millis(1));
        assert_eq!(earlier.expose().len(), 43);
        assert_eq!(
            Selector::of_opaque(earlier.expose()),
            Some(a),
            "read back from the token"
        );
        assert!(a.as_bytes() < b.as_bytes(), "{a:?} sorts before {b:?}");
        assert_eq!(
            a.as_bytes()[..6],
            1_795_000_000_000u64.to_be_bytes()[2..],
            "the selector begins with the milliseconds"
        );
        // Made in the same millisecond, two tokens still differ in both
        // the selector's random part and the verifier.
        let (twin, c) = Secret::generate_token_at(t0);
        assert_ne!(c, a);
        assert_ne!(twin.expose()[22..], earlier.expose()[22..]);
    }

    #[test]
    fn only_43_character_base64_has_a_selector() {
        assert!(Selector::of_opaque(&random_token()).is_some());
        assert!(Selector::of_opaque("short").is_none());
        assert!(Selector::of_opaque(&"*".repeat(43)).is_none());
        // 43 characters whose last one carries bits beyond the 32 bytes.
        let mut odd = random_token();
        odd.replace_range(42.., "B");
        assert!(Selector::of_opaque(&odd).is_none());
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.digest()).contains("hunter2"));
    }
}
