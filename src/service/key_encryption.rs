//! The key-encryption key (KEK) that seals the signing keys' private
//! halves at rest: AES-256-GCM, a random nonce per seal, and the kid and
//! algorithm as associated data, so that a sealed key moved to another
//! row does not open. The operator provides the KEK (a file or an
//! environment variable, see `config::DatabaseArgs`); every replica needs
//! the same one.
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// What a sealed private key starts with: the format's version.
pub const SEALED_PREFIX: &[u8] = b"kek1";

#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

/// A sealed key that does not open under this KEK.
#[derive(Debug, thiserror::Error)]
#[error("the sealed key does not open under this key-encryption key")]
pub struct OpenError;

impl KeyEncryptionKey {
    pub fn generate() -> KeyEncryptionKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        KeyEncryptionKey(key)
    }

    pub fn from_bytes(key: [u8; 32]) -> KeyEncryptionKey {
        KeyEncryptionKey(key)
    }

    /// 32 bytes in base64, standard or URL-safe, padded or not (what
    /// `openssl rand -base64 32` prints), or 32 raw bytes.
    pub fn parse(input: &[u8]) -> Option<KeyEncryptionKey> {
        if let Ok(raw) = <[u8; 32]>::try_from(input) {
            return Some(KeyEncryptionKey(raw));
        }
        let text = std::str::from_utf8(input).ok()?.trim();
        let decoded = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?;
        <[u8; 32]>::try_from(decoded.as_slice())
            .ok()
            .map(KeyEncryptionKey)
    }

    /// The form `parse` reads and the key file holds.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn cipher(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte AES-256 key"))
    }

    /// `SEALED_PREFIX || nonce || ciphertext || tag`, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut buffer = plaintext.to_vec();
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buffer,
            )
            .expect("AES-GCM seals any input under 64 GiB");
        [SEALED_PREFIX, &nonce, &buffer].concat()
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, OpenError> {
        let rest = sealed.strip_prefix(SEALED_PREFIX).ok_or(OpenError)?;
        if rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .cipher()
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| OpenError)?;
        Ok(plaintext.to_vec())
    }
}

pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_under_its_kek_and_its_context() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal(b"private", b"kid1\0RS256");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(kek.open(&sealed, b"kid1\0RS256").unwrap(), b"private");
        assert!(kek.open(&sealed, b"kid2\0RS256").is_err(), "moved row");
        assert!(
            KeyEncryptionKey::generate()
                .open(&sealed, b"kid1\0RS256")
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(kek.open(&tampered, b"kid1\0RS256").is_err());
        assert!(kek.open(b"kek1", b"").is_err());
    }

    #[test]
    fn keks_parse_from_base64_or_raw_bytes() {
        let kek = KeyEncryptionKey::generate();
        let text = kek.to_base64();
        let again = KeyEncryptionKey::parse(format!("{text}\n").as_bytes()).unwrap();
        assert_eq!(again.0, kek.0);
        let url = URL_SAFE_NO_PAD.encode(kek.0);
        assert_eq!(KeyEncryptionKey::parse(url.as_bytes()).unwrap().0, kek.0);
        assert_eq!(KeyEncryptionKey::parse(&kek.0).unwrap().0, kek.0);
        assert!(KeyEncryptionKey::parse(b"too short").is_none());
        assert!(format!("{kek:?}").contains(".."));
    }
}
