//! Password hashing: argon2id with OWASP's parameters (19 MiB, t=2, p=1,
//! the argon2 crate's defaults), stored as PHC strings. These functions are
//! CPU-bound for tens of milliseconds: callers run them on the blocking pool.
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes a password into a PHC string with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed PHC string
/// never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// The fixed hash `verify_dummy` checks against, made on first use.
static DUMMY: OnceLock<String> = OnceLock::new();

/// Verifies against a fixed hash and returns false: what login does for an
/// unknown email, so that it costs the same time as a wrong password and
/// does not reveal which accounts exist.
pub fn verify_dummy(password: &str) -> bool {
    let phc = DUMMY.get_or_init(|| hash("authd-dummy-password").unwrap_or_default());
    let _ = verify(password, phc);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_with_owasp_parameters_and_verify() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert_ne!(phc, hash("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn dummy_verification_never_succeeds() {
        assert!(!verify_dummy("authd-dummy-password"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_stored_one_does() {
        // Same algorithm and parameters as every stored hash: an unknown
        // email costs a wrong password's time (tests/api/attacks/login.rs
        // counts one verification for each).
        verify_dummy("x");
        let dummy = DUMMY.get().expect("made by verify_dummy");
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(dummy), params(&hash("another").unwrap()));
    }
}
