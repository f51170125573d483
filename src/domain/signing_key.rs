//! JWT signing keys as kept: every replica signs with the same key and
//! publishes the same JWKS.
use std::fmt;
use std::time::SystemTime;

/// The JOSE algorithms authd signs with (RFC 7518, RFC 8037): EdDSA over
/// Ed25519, RS256 (RSA 2048), ES256 (P-256). OpenID Connect requires RS256
/// (Core 15.1), and many relying parties accept nothing else; one key of
/// each is active at a time, and a client registers which one its
/// id_tokens (and JWT access tokens) are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlgorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl SigningAlgorithm {
    /// Every algorithm, OpenID Connect's default (RS256) first.
    pub const ALL: &'static [SigningAlgorithm] = &[
        SigningAlgorithm::Rs256,
        SigningAlgorithm::Es256,
        SigningAlgorithm::EdDsa,
    ];

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key pair with its lifetime. `Debug` shows the kid and the
/// algorithm, never the private key.
#[derive(Clone)]
pub struct JwtKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    /// As stored: sealed under the key-encryption key (see
    /// `service::key_encryption`), empty once retired, or a plaintext
    /// Ed25519 seed from before keys were sealed.
    pub private_key: Vec<u8>,
    /// EdDSA: the 32-byte public key; RS256: PKCS#1 DER; ES256: the SEC1
    /// uncompressed point. Enough for the JWKS without the private half.
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
