//! PKCE (RFC 7636). Only S256: `plain` protects nothing against an attacker
//! who can read the authorization request, and Mastodon rejects it too.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::error::{AuthError, ErrorKind};
use super::secret::ct_str_eq;

pub const S256: &str = "S256";

/// A validated S256 code challenge: base64url(SHA-256(verifier)), unpadded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses the authorization request's challenge and method. Neither
    /// present means no PKCE.
    pub fn parse(challenge: &str, method: &str) -> Result<Option<CodeChallenge>, AuthError> {
        if challenge.is_empty() {
            return if method.is_empty() {
                Ok(None)
            } else {
                Err(AuthError::invalid_request(
                    "code_challenge_method was sent without code_challenge.",
                ))
            };
        }
        if method != S256 {
            return Err(AuthError::new(
                ErrorKind::InvalidCodeChallengeMethod,
                "The code challenge method must be S256.",
            ));
        }
        if challenge.len() == 43 && challenge.bytes().all(is_base64url) {
            Ok(Some(CodeChallenge(challenge.to_owned())))
        } else {
            Err(AuthError::invalid_request(
                "code_challenge must be 43 characters of base64url (S256).",
            ))
        }
    }

    /// A challenge read back from storage, validated when it was stored.
    pub fn from_stored(value: String) -> CodeChallenge {
        CodeChallenge(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token endpoint's check (RFC 7636 section 4.6).
    pub fn verify(&self, verifier: &str) -> bool {
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        ct_str_eq(&computed, &self.0)
    }

    /// The challenge for a verifier: what a client sends. For tests and tools.
    pub fn for_verifier(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// RFC 7636 section 4.1: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        assert_eq!(CodeChallenge::for_verifier(VERIFIER), CHALLENGE);
        let c = CodeChallenge::parse(CHALLENGE, "S256").unwrap().unwrap();
        assert!(c.verify(VERIFIER));
        assert!(!c.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"));
        assert!(!c.verify(""));
        assert!(!c.verify("short"));
        assert!(!c.verify(&"a".repeat(129)));
    }

    #[test]
    fn absent_pkce_is_allowed() {
        assert_eq!(CodeChallenge::parse("", ""), Ok(None));
    }

    #[test]
    fn plain_and_missing_methods_are_rejected() {
        for method in ["plain", "", "s256", "S512"] {
            let err = CodeChallenge::parse(CHALLENGE, method).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidCodeChallengeMethod, "{method}");
        }
    }

    #[test]
    fn method_without_challenge_and_malformed_challenges_are_invalid_requests() {
        assert_eq!(
            CodeChallenge::parse("", "S256").unwrap_err().kind,
            ErrorKind::InvalidRequest
        );
        for bad in ["abc", &"a".repeat(44), &format!("{}=", &CHALLENGE[..42])] {
            assert_eq!(
                CodeChallenge::parse(bad, "S256").unwrap_err().kind,
                ErrorKind::InvalidRequest,
                "{bad}"
            );
        }
    }
}
