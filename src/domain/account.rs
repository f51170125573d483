//! Accounts: a stored `Account`, and account input parsed at the edge: a
//! `Username`, `Email` or `Password` that exists is valid.
use std::fmt;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};

use super::error::AuthError;
use super::id::AccountId;

/// A user account. `password_hash` is an argon2id PHC string, never a
/// password; `Debug` leaves it and the email out of logs all the same.
#[derive(Clone)]
pub struct Account {
    pub id: AccountId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: SystemTime,
    pub disabled_at: Option<SystemTime>,
}

impl Account {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .field("disabled", &self.is_disabled())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Username, AuthError> {
        let name = input.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > 30 {
            return Err(AuthError::validation_failed(
                "Username must be 1 to 30 characters.",
            ));
        }
        if !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(AuthError::validation_failed(
                "Username must contain only letters, numbers and underscores.",
            ));
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, AuthError> {
        let email = input.trim().to_lowercase();
        let invalid = || AuthError::validation_failed("Email is invalid.");
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.') {
            return Err(invalid());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 8 to 1024 characters. The upper bound keeps hashing cost
/// bounded; argon2 would accept more.
pub struct Password(SecretString);

impl Password {
    pub fn parse(input: &str) -> Result<Password, AuthError> {
        let n = input.chars().count();
        if n < 8 {
            return Err(AuthError::validation_failed(
                "Password is too short (minimum is 8 characters).",
            ));
        }
        if input.len() > 1024 {
            return Err(AuthError::validation_failed(
                "Password is too long (maximum is 1024 bytes).",
            ));
        }
        Ok(Password(SecretString::from(input.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(Username::parse(" Alice_1 ").unwrap().as_str(), "alice_1");
        for bad in ["", "a b", "alice!", "ålice", &"a".repeat(31)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_lowercased_and_need_a_domain() {
        assert_eq!(
            Email::parse(" Alice@Example.ORG ").unwrap().as_str(),
            "alice@example.org"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.org",
            "a@b@c.org",
            "a b@c.org",
            "a@localhost",
            "a@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounds_and_never_print() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        let p = Password::parse("correct horse").unwrap();
        assert_eq!(p.expose(), "correct horse");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
