//! The one error type of authd's operations. Its kinds are the OAuth error
//! names (RFC 6749 section 5.2, RFC 7636, RFC 7009) and the Mastodon API
//! failures; each transport maps a kind to its own status exactly once
//! (`grpc::status` for gRPC, the shim for HTTP), and the shim recovers the
//! kind from the gRPC status by name.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    InvalidRedirectUri,
    InvalidCodeChallengeMethod,
    /// RFC 7591 section 3.2.2: registration metadata that is invalid.
    InvalidClientMetadata,
    /// App registration input that Mastodon answers with 422.
    ValidationFailed,
    InvalidToken,
    TokenRevoked,
    TokenExpired,
    /// Wrong email or password; deliberately says not which.
    InvalidCredentials,
    InvalidSession,
    InsufficientScope,
    AccountDisabled,
    /// Authenticated, but not allowed (e.g. an admin call by a non-admin).
    Forbidden,
    /// An app-only token where a user token is needed.
    UserRequired,
    NotFound,
    AlreadyExists,
    /// Too many attempts from one address or at one account; try later.
    RateLimited,
    /// PostgreSQL cannot be reached, or did not answer in time.
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidRequest,
        ErrorKind::InvalidClient,
        ErrorKind::InvalidGrant,
        ErrorKind::UnauthorizedClient,
        ErrorKind::UnsupportedGrantType,
        ErrorKind::InvalidScope,
        ErrorKind::AccessDenied,
        ErrorKind::UnsupportedResponseType,
        ErrorKind::InvalidRedirectUri,
        ErrorKind::InvalidCodeChallengeMethod,
        ErrorKind::InvalidClientMetadata,
        ErrorKind::ValidationFailed,
        ErrorKind::InvalidToken,
        ErrorKind::TokenRevoked,
        ErrorKind::TokenExpired,
        ErrorKind::InvalidCredentials,
        ErrorKind::InvalidSession,
        ErrorKind::InsufficientScope,
        ErrorKind::AccountDisabled,
        ErrorKind::Forbidden,
        ErrorKind::UserRequired,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::RateLimited,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::UnauthorizedClient => "unauthorized_client",
            ErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            ErrorKind::InvalidScope => "invalid_scope",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::UnsupportedResponseType => "unsupported_response_type",
            ErrorKind::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorKind::InvalidCodeChallengeMethod => "invalid_code_challenge_method",
            ErrorKind::InvalidClientMetadata => "invalid_client_metadata",
            ErrorKind::ValidationFailed => "validation_failed",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::TokenRevoked => "token_revoked",
            ErrorKind::TokenExpired => "token_expired",
            ErrorKind::InvalidCredentials => "invalid_credentials",
            ErrorKind::InvalidSession => "invalid_session",
            ErrorKind::InsufficientScope => "insufficient_scope",
            ErrorKind::AccountDisabled => "account_disabled",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::UserRequired => "user_required",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed operation: what kind, and a description safe to show the caller
/// (never a secret, never an internal detail).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {description}")]
pub struct AuthError {
    pub kind: ErrorKind,
    pub description: String,
    /// For `RateLimited`: the limit that was hit, and when to try again.
    pub throttle: Option<Throttle>,
    /// What caused it, for the operator's log; never shown to the caller.
    pub cause: Option<Cause>,
}

/// The cause of an [`AuthError`], with its whole chain of sources. It is
/// logged once, where the request ends, and ignored when errors are
/// compared (two errors of one kind and description are the same answer).
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for Cause {
    /// The error and each of its sources, `a: b: c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cause({self})")
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Cause) -> bool {
        true
    }
}

impl Eq for Cause {}

/// A rate limit that refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// Attempts allowed per period (Mastodon's X-RateLimit-Limit).
    pub limit: u32,
    /// How long until the next attempt would be allowed.
    pub retry_after: Duration,
}

impl AuthError {
    pub fn new(kind: ErrorKind, description: impl Into<String>) -> Self {
        AuthError {
            kind,
            description: description.into(),
            throttle: None,
            cause: None,
        }
    }

    /// This error, caused by `cause`.
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Cause(Arc::new(cause)));
        self
    }

    /// Too many attempts. The description says when to come back, in
    /// words a person reads on the login form.
    pub fn rate_limited(throttle: Throttle) -> Self {
        let seconds = throttle.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let wait = if seconds < 120 {
            format!("{seconds} seconds")
        } else {
            format!("{} minutes", seconds.div_ceil(60))
        };
        AuthError {
            kind: ErrorKind::RateLimited,
            description: format!("Too many requests; try again in {wait}."),
            throttle: Some(throttle),
            cause: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, description)
    }

    pub fn invalid_client() -> Self {
        Self::new(
            ErrorKind::InvalidClient,
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        )
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidScope, description)
    }

    pub fn validation_failed(description: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::ValidationFailed,
            format!("Validation failed: {}", description.into()),
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(ErrorKind::InvalidToken, "The access token is invalid")
    }

    pub fn token_revoked() -> Self {
        Self::new(ErrorKind::TokenRevoked, "The access token was revoked")
    }

    pub fn token_expired() -> Self {
        Self::new(ErrorKind::TokenExpired, "The access token expired")
    }

    pub fn insufficient_scope() -> Self {
        Self::new(
            ErrorKind::InsufficientScope,
            "This action is outside the authorized scopes",
        )
    }

    pub fn account_disabled() -> Self {
        Self::new(
            ErrorKind::AccountDisabled,
            "Your login is currently disabled",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorKind::Forbidden, "This action is not allowed")
    }

    pub fn user_required() -> Self {
        Self::new(
            ErrorKind::UserRequired,
            "This method requires an authenticated user",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(ErrorKind::InvalidCredentials, "Invalid email or password.")
    }

    pub fn invalid_session() -> Self {
        Self::new(
            ErrorKind::InvalidSession,
            "The session is unknown or has ended",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, what)
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "The database is unavailable; try again shortly",
        )
    }

    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "Internal error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(ErrorKind::from_name("no_such_error"), None);
    }
}
