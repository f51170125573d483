//! The one mapping from `AuthError` to HTTP. The same error looks different
//! on each surface, as in Mastodon:
//! - OAuth endpoints (token, revoke, introspect) answer RFC 6749 section 5.2
//!   JSON: `{"error": name, "error_description": text}`;
//! - the REST API answers `{"error": text}`;
//! - dynamic client registration (RFC 7591 section 3.2.2) answers the
//!   same JSON, but names every input error invalid_redirect_uri or
//!   invalid_client_metadata;
//! - the authorization endpoint answers an HTML error page, and never
//!   redirects an error about the client or the redirect URI.
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::domain::client_auth::ClientAuthMethod;
use crate::domain::error::{AuthError, ErrorKind, Throttle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    OAuth,
    Registration,
    Api,
    Page,
}

#[derive(Debug)]
pub struct HttpError {
    pub error: AuthError,
    pub surface: Surface,
    /// How the request's client authenticated: decides the challenge of
    /// an invalid_client.
    pub client_auth: ClientAuthMethod,
}

impl HttpError {
    pub fn new(error: AuthError, surface: Surface) -> Self {
        HttpError {
            error,
            surface,
            client_auth: ClientAuthMethod::default(),
        }
    }

    pub fn oauth(error: AuthError) -> Self {
        HttpError::new(error, Surface::OAuth)
    }

    pub fn registration(error: AuthError) -> Self {
        HttpError::new(error, Surface::Registration)
    }

    pub fn api(error: AuthError) -> Self {
        HttpError::new(error, Surface::Api)
    }

    pub fn page(error: AuthError) -> Self {
        HttpError::new(error, Surface::Page)
    }

    /// The error of a request whose client authenticated this way.
    pub fn with_client_auth(mut self, client_auth: ClientAuthMethod) -> Self {
        self.client_auth = client_auth;
        self
    }
}

pub fn http_status(kind: ErrorKind) -> StatusCode {
    use ErrorKind::*;
    match kind {
        InvalidRequest
        | InvalidGrant
        | InvalidScope
        | UnsupportedGrantType
        | UnsupportedResponseType
        | InvalidRedirectUri
        | InvalidCodeChallengeMethod
        | InvalidClientMetadata => StatusCode::BAD_REQUEST,
        InvalidClient | InvalidToken | TokenRevoked | TokenExpired | InvalidCredentials
        | InvalidSession => StatusCode::UNAUTHORIZED,
        UnauthorizedClient | AccessDenied | InsufficientScope | AccountDisabled | Forbidden => {
            StatusCode::FORBIDDEN
        }
        ValidationFailed | UserRequired | AlreadyExists => StatusCode::UNPROCESSABLE_ENTITY,
        NotFound => StatusCode::NOT_FOUND,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The WWW-Authenticate challenge an error carries, if any (RFC 6750
/// section 3 for bearer tokens, RFC 6749 section 5.2 for clients).
///
/// An invalid_client carries Doorkeeper's parameters (its
/// `ErrorResponse#authenticate_info`: realm, `error`, `error_description`).
/// Doorkeeper names the Bearer scheme whatever the client did; RFC 6749
/// section 5.2 wants the scheme the client used when it used the
/// Authorization header, so a client that sent Basic is challenged with
/// Basic, and one that sent parameters gets Doorkeeper's Bearer challenge,
/// never a Basic one (which would make a browser prompt for a password).
fn challenge(error: &AuthError, client_auth: ClientAuthMethod) -> Option<String> {
    let quoted = error.description.replace('\\', "\\\\").replace('"', "\\\"");
    match error.kind {
        ErrorKind::InvalidClient => {
            let scheme = match client_auth {
                ClientAuthMethod::Basic => "Basic",
                ClientAuthMethod::Parameters => "Bearer",
            };
            Some(format!(
                "{scheme} realm=\"authd\", error=\"invalid_client\", error_description=\"{quoted}\""
            ))
        }
        ErrorKind::InvalidToken | ErrorKind::TokenRevoked | ErrorKind::TokenExpired => {
            Some(format!(
                "Bearer realm=\"authd\", error=\"invalid_token\", error_description=\"{quoted}\""
            ))
        }
        ErrorKind::InsufficientScope => Some(format!(
            "Bearer realm=\"authd\", error=\"insufficient_scope\", error_description=\"{quoted}\""
        )),
        _ => None,
    }
}

impl IntoResponse for HttpError {
    fn into_response(mut self) -> Response {
        if self.surface == Surface::Registration {
            self.error = registration_error(self.error);
        }
        let status = http_status(self.error.kind);
        if status.is_server_error() {
            tracing::warn!(kind = %self.error.kind, "request failed: {}", self.error.description);
        }
        let mut response = match self.surface {
            Surface::OAuth | Surface::Registration => {
                let body = serde_json::json!({
                    "error": self.error.kind.as_str(),
                    "error_description": self.error.description,
                });
                (status, axum::Json(body)).into_response()
            }
            // Mastodon's exact body for a throttled API call.
            Surface::Api if self.error.kind == ErrorKind::RateLimited => {
                let body = serde_json::json!({ "error": "Too many requests" });
                (status, axum::Json(body)).into_response()
            }
            Surface::Api => {
                let body = serde_json::json!({ "error": self.error.description });
                (status, axum::Json(body)).into_response()
            }
            Surface::Page => (status, pages::error_page(&self.error)).into_response(),
        };
        if let Some(value) =
            challenge(&self.error, self.client_auth).and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(throttle) = self.error.throttle {
            add_rate_limit_headers(response.headers_mut(), throttle);
        }
        response
    }
}

/// RFC 7591 section 3.2.2 knows two input errors: a bad redirect URI, and
/// any other bad metadata. Malformed bodies, Mastodon's validation errors
/// and the like are the latter; every other error (rate limits, outages)
/// keeps its own name.
fn registration_error(error: AuthError) -> AuthError {
    match error.kind {
        ErrorKind::InvalidRequest | ErrorKind::ValidationFailed | ErrorKind::InvalidScope => {
            AuthError {
                kind: ErrorKind::InvalidClientMetadata,
                ..error
            }
        }
        _ => error,
    }
}

/// Retry-After (RFC 9110), and the X-RateLimit headers Mastodon sends
/// with a 429: the limit, what remains of it (nothing), and when it resets.
pub fn add_rate_limit_headers(headers: &mut axum::http::HeaderMap, throttle: Throttle) {
    let seconds = throttle.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let reset = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds);
    let values = [
        (header::RETRY_AFTER, seconds.to_string()),
        (X_RATELIMIT_LIMIT, throttle.limit.to_string()),
        (X_RATELIMIT_REMAINING, "0".to_owned()),
        (
            X_RATELIMIT_RESET,
            humantime::format_rfc3339_millis(reset).to_string(),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internal_errors_are_500s() {
        for kind in ErrorKind::ALL {
            let status = http_status(*kind);
            assert_eq!(
                status == StatusCode::INTERNAL_SERVER_ERROR,
                *kind == ErrorKind::Internal,
                "{kind}"
            );
        }
    }
}
