//! OpenID Connect's values: the standard claims authd can release, which
//! scope releases each, the `claims` request parameter (Core 5.5) and the
//! `nonce` (Core 3.1.2.1), parsed at the edge.
//!
//! A claim is released only under the scope that covers it (Core 5.4),
//! even when the `claims` parameter asks for it by name: the consent page
//! shows scopes, so what the user approved is what the scopes say.
//! (`profile` and `picture` are left out: authd serves no profile page or
//! picture of its own, only Mastodon's placeholders.)
use std::collections::BTreeSet;

use super::error::AuthError;
use super::scope::{Scope, ScopeSet};

/// The standard claims (Core 5.1) an account has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Claim {
    Name,
    PreferredUsername,
    Email,
    EmailVerified,
}

impl Claim {
    pub const ALL: &'static [Claim] = &[
        Claim::Name,
        Claim::PreferredUsername,
        Claim::Email,
        Claim::EmailVerified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Name => "name",
            Claim::PreferredUsername => "preferred_username",
            Claim::Email => "email",
            Claim::EmailVerified => "email_verified",
        }
    }

    pub fn parse(name: &str) -> Option<Claim> {
        Claim::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The scope that releases this claim (Core 5.4).
    pub fn scope(self) -> Scope {
        match self {
            Claim::Name | Claim::PreferredUsername => Scope::Profile,
            Claim::Email | Claim::EmailVerified => Scope::Email,
        }
    }

    /// The claims `scopes` release.
    pub fn released_by(scopes: &ScopeSet) -> BTreeSet<Claim> {
        Claim::ALL
            .iter()
            .copied()
            .filter(|c| scopes.contains(c.scope()))
            .collect()
    }
}

/// Whether a grant is an OpenID Connect one: an id_token, the OIDC
/// userinfo. Without `openid`, everything is as Mastodon answers it.
pub fn is_openid(scopes: &ScopeSet) -> bool {
    scopes.contains(Scope::OpenId)
}

/// The `claims` request parameter beyond which nothing is read.
pub const MAX_CLAIMS_PARAMETER_LEN: usize = 4096;

/// What the `claims` parameter asked for the id_token (Core 5.5): names of
/// known claims; the rest (unknown names, `essential`, `value`) is ignored,
/// as the spec allows for claims the server does not supply. Its
/// `userinfo` member needs nothing: userinfo releases every claim the
/// scopes cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimsRequest {
    pub id_token: BTreeSet<Claim>,
}

impl ClaimsRequest {
    pub fn parse(input: &str) -> Result<ClaimsRequest, AuthError> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(ClaimsRequest::default());
        }
        let invalid = || {
            AuthError::invalid_request(
                "The claims parameter is not a valid JSON object of id_token and userinfo members.",
            )
        };
        if input.len() > MAX_CLAIMS_PARAMETER_LEN {
            return Err(invalid());
        }
        let value: serde_json::Value = serde_json::from_str(input).map_err(|_| invalid())?;
        let object = value.as_object().ok_or_else(invalid)?;
        for member in ["id_token", "userinfo"] {
            if object.get(member).is_some_and(|m| !m.is_object()) {
                return Err(invalid());
            }
        }
        let id_token = object
            .get("id_token")
            .and_then(|m| m.as_object())
            .map(|m| m.keys().filter_map(|name| Claim::parse(name)).collect())
            .unwrap_or_default();
        Ok(ClaimsRequest { id_token })
    }

    /// The stored form: claim names.
    pub fn names(&self) -> Vec<String> {
        self.id_token
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect()
    }

    /// Back from the stored form; names no longer known are dropped.
    pub fn from_names(names: &[String]) -> ClaimsRequest {
        ClaimsRequest {
            id_token: names.iter().filter_map(|n| Claim::parse(n)).collect(),
        }
    }
}

/// The longest nonce accepted: far above what relying parties send (a
/// hash or 32 random bytes), and small enough to store with every code.
pub const MAX_NONCE_LEN: usize = 512;

/// A relying party's `nonce`, echoed in the id_token (Core 3.1.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// None for an empty nonce (the code flow does not require one).
    pub fn parse(input: &str) -> Result<Option<Nonce>, AuthError> {
        if input.is_empty() {
            return Ok(None);
        }
        if input.len() > MAX_NONCE_LEN || input.chars().any(char::is_control) {
            return Err(AuthError::invalid_request(
                "The nonce is too long or holds control characters.",
            ));
        }
        Ok(Some(Nonce(input.to_owned())))
    }

    pub fn from_stored(value: String) -> Nonce {
        Nonce(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_released_by_their_scope_only() {
        let profile = ScopeSet::parse("openid profile").unwrap();
        let released = Claim::released_by(&profile);
        assert!(released.contains(&Claim::PreferredUsername));
        assert!(!released.contains(&Claim::Email));
        let email = ScopeSet::parse("openid email").unwrap();
        assert_eq!(
            Claim::released_by(&email),
            BTreeSet::from([Claim::Email, Claim::EmailVerified])
        );
        assert!(Claim::released_by(&ScopeSet::parse("read").unwrap()).is_empty());
    }

    #[test]
    fn the_claims_parameter_reads_known_names_and_refuses_what_is_not_json() {
        let parsed = ClaimsRequest::parse(
            r#"{"id_token":{"email":{"essential":true},"nickname":null,"name":null},"userinfo":{}}"#,
        )
        .unwrap();
        assert_eq!(parsed.id_token, BTreeSet::from([Claim::Name, Claim::Email]));
        assert_eq!(ClaimsRequest::parse("").unwrap(), ClaimsRequest::default());
        for bad in ["{", "[]", r#"{"id_token":[]}"#, r#"{"userinfo":1}"#, "null"] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
        let long = format!(r#"{{"id_token":{{"{}":null}}}}"#, "x".repeat(5000));
        assert!(ClaimsRequest::parse(&long).is_err());
        let stored = ClaimsRequest::from_names(&parsed.names());
        assert_eq!(stored, parsed);
    }

    #[test]
    fn nonces_are_bounded() {
        assert_eq!(Nonce::parse("").unwrap(), None);
        assert_eq!(
            Nonce::parse("n-0S6_WzA2Mj").unwrap().unwrap().as_str(),
            "n-0S6_WzA2Mj"
        );
        assert!(Nonce::parse(&"a".repeat(513)).is_err());
        assert!(Nonce::parse("a\nb").is_err());
    }
}
