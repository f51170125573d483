//! The one mapping between `AuthError` and `tonic::Status`, both ways: the
//! server turns errors into statuses here, and the shim (a gRPC client)
//! turns statuses back into the same errors here, so that it can reproduce
//! the exact OAuth error. The error name travels as the `reason` of a
//! google.rpc.ErrorInfo and as the prefix of the status message.
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::error::{AuthError, ErrorKind, Throttle};

pub const ERROR_DOMAIN: &str = "authd";

pub fn grpc_code(kind: ErrorKind) -> Code {
    use ErrorKind::*;
    match kind {
        InvalidRequest
        | InvalidGrant
        | InvalidScope
        | InvalidRedirectUri
        | UnsupportedGrantType
        | UnsupportedResponseType
        | InvalidCodeChallengeMethod
        | InvalidClientMetadata
        | ValidationFailed => Code::InvalidArgument,
        InvalidClient | InvalidToken | TokenRevoked | TokenExpired | InvalidCredentials
        | InvalidSession => Code::Unauthenticated,
        UnauthorizedClient | InsufficientScope | AccountDisabled | AccessDenied | Forbidden => {
            Code::PermissionDenied
        }
        UserRequired => Code::FailedPrecondition,
        NotFound => Code::NotFound,
        AlreadyExists => Code::AlreadyExists,
        RateLimited => Code::ResourceExhausted,
        Unavailable => Code::Unavailable,
        Internal => Code::Internal,
    }
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Status {
        // Where a request ends: its cause is logged here, once, at the level
        // its kind deserves.
        if let Some(cause) = &e.cause {
            match e.kind {
                ErrorKind::Internal => tracing::error!(error = %cause, "internal error"),
                ErrorKind::Unavailable => tracing::warn!(error = %cause, "unavailable"),
                _ => tracing::info!(error = %cause, kind = %e.kind, "request refused"),
            }
        }
        // The limit travels in ErrorInfo's metadata (the shim rebuilds
        // Mastodon's X-RateLimit headers from it), the delay as RetryInfo,
        // which gRPC clients understand on their own.
        let limit = e
            .throttle
            .map(|t| ("limit".to_owned(), t.limit.to_string()));
        let mut details = ErrorDetails::with_error_info(
            e.kind.as_str(),
            ERROR_DOMAIN,
            limit.into_iter().collect::<HashMap<_, _>>(),
        );
        if let Some(t) = e.throttle {
            details.set_retry_info(Some(t.retry_after));
        }
        Status::with_error_details(
            grpc_code(e.kind),
            format!("{}: {}", e.kind, e.description),
            details,
        )
    }
}

fn throttle_from(status: &Status, info: &tonic_types::ErrorInfo) -> Option<Throttle> {
    Some(Throttle {
        limit: info.metadata.get("limit")?.parse().ok()?,
        retry_after: status.get_details_retry_info()?.retry_delay?,
    })
}

/// Recovers the error a core sent. Statuses that did not come from authd's
/// mapping become `unavailable` (a transport failure, say), `invalid_request`
/// (a message over the core's size limit) or `internal`.
pub fn auth_error_from_status(status: &Status) -> AuthError {
    let info = status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN);
    let kind = info
        .as_ref()
        .and_then(|info| ErrorKind::from_name(&info.reason));
    match kind {
        Some(kind) => {
            let prefix = format!("{kind}: ");
            let description = status
                .message()
                .strip_prefix(&prefix)
                .unwrap_or(status.message());
            let mut error = AuthError::new(kind, description);
            error.throttle = info.as_ref().and_then(|info| throttle_from(status, info));
            error
        }
        None => match status.code() {
            // The core itself cannot be reached (or did not answer in
            // time): not a database problem, whatever the cause.
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => AuthError::new(
                ErrorKind::Unavailable,
                "The authorization service is unavailable; try again shortly",
            ),
            // The core's decoder refused the message as larger than its
            // service takes (`grpc::max_message`): the client sent too
            // much, which is its error, not the server's.
            Code::OutOfRange | Code::ResourceExhausted => {
                AuthError::invalid_request("The request is too large.")
            }
            _ => match transport_failure(status) {
                // The channel to the core failed under the call: a TLS
                // refusal (say, of the shim's client certificate), or a
                // connection cut. The core was not reached.
                Some(error) => {
                    tracing::warn!(%error, "the core could not be reached");
                    AuthError::new(
                        ErrorKind::Unavailable,
                        "The authorization service is unavailable; try again shortly",
                    )
                }
                None => {
                    tracing::error!(code = ?status.code(), message = status.message(), "unexpected status from core");
                    AuthError::internal()
                }
            },
        },
    }
}

/// The chain of errors under a status that the client's own transport
/// made (tonic's `transport error`), if it is one.
fn transport_failure(status: &Status) -> Option<String> {
    let mut source = std::error::Error::source(status)?;
    // The shim's channel wraps what its transport said (CoreCallError).
    if let Some(wrapped) = source.downcast_ref::<super::CoreCallError>() {
        source = std::error::Error::source(wrapped)?;
    }
    source.downcast_ref::<tonic::transport::Error>()?;
    let mut chain = source.to_string();
    let mut next = source.source();
    while let Some(e) = next {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        next = e.source();
    }
    Some(chain)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_error_survives_the_round_trip_through_a_status() {
        for kind in ErrorKind::ALL {
            let e = AuthError::new(*kind, "some description");
            let status = Status::from(e.clone());
            assert_eq!(status.code(), grpc_code(*kind));
            assert!(status.message().starts_with(kind.as_str()));
            assert_eq!(auth_error_from_status(&status), e);
        }
    }

    #[test]
    fn a_rate_limit_keeps_its_limit_and_retry_delay_through_a_status() {
        let e = AuthError::rate_limited(Throttle {
            limit: 5,
            retry_after: Duration::from_millis(119_500),
        });
        let status = Status::from(e.clone());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_millis(119_500))
        );
        assert_eq!(auth_error_from_status(&status), e);
        assert!(e.description.contains("2 minutes"), "{}", e.description);
    }

    #[test]
    fn bad_requests_never_map_to_internal() {
        for kind in ErrorKind::ALL {
            if *kind != ErrorKind::Internal {
                assert_ne!(grpc_code(*kind), Code::Internal, "{kind}");
            }
        }
    }

    #[test]
    fn foreign_statuses_become_unavailable_or_internal() {
        assert_eq!(
            auth_error_from_status(&Status::unavailable("connection refused")).kind,
            ErrorKind::Unavailable
        );
        assert_eq!(
            auth_error_from_status(&Status::unknown("???")).kind,
            ErrorKind::Internal
        );
    }

    #[test]
    fn a_message_the_core_refused_as_too_large_is_the_clients_error() {
        let status = Status::out_of_range(
            "Error, decoded message length too large: found 32794 bytes, the limit is: 16384 bytes",
        );
        assert_eq!(
            auth_error_from_status(&status).kind,
            ErrorKind::InvalidRequest
        );
    }
}
