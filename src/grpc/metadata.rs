//! Credentials carried in gRPC metadata: `authorization: Basic ...` for
//! clients, `authorization: Bearer ...` for tokens.
use tonic::Request;

use crate::domain::client_auth::{self, ClientCredentials};
use crate::domain::client_ip::TrustedProxies;
use crate::domain::error::AuthError;

pub fn authorization<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get("authorization")?.to_str().ok()
}

/// The client's credentials, from Basic metadata or the request's fields.
pub fn client_credentials<T>(
    request: &Request<T>,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<ClientCredentials>, AuthError> {
    client_auth::resolve(authorization(request), client_id, client_secret)
}

/// The bearer token: the request's own field when set, else the
/// `authorization: Bearer` metadata. Empty when neither is present.
pub fn bearer_token<T>(request: &Request<T>, field: &str) -> String {
    if !field.is_empty() {
        return field.to_owned();
    }
    authorization(request)
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The caller's address, for rate limits: the TCP peer, or the address a
/// trusted proxy (such as the HTTP shim) names in `x-forwarded-for`. A
/// call without a peer is the in-process shim's, and trusted.
pub fn client_ip<T>(request: &Request<T>, trusted: &TrustedProxies) -> Option<std::net::IpAddr> {
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    trusted.client_ip(request.remote_addr().map(|a| a.ip()), forwarded)
}
