//! authd.v1.Policy over `AuthService`: the door's decision, rendered once
//! for every door (status, identity headers for the backend, challenge and
//! body for the client). Envoy's ext_authz adapter renders from the same
//! [`check_response`].
use tonic::{Request, Response, Status};

use crate::proto::v1;
use crate::proto::v1::check_response::Decision as Wire;
use crate::proto::v1::policy_server::Policy;
use crate::service::AuthService;
use crate::service::policy::{Decision, DoorRequest};

/// The identity headers a backend receives; a door strips every header
/// with this prefix that a client sent.
pub const IDENTITY_HEADER_PREFIX: &str = "x-authd-";
pub const ACCOUNT_ID_HEADER: &str = "x-authd-account-id";
pub const USERNAME_HEADER: &str = "x-authd-username";
pub const CLIENT_ID_HEADER: &str = "x-authd-client-id";
pub const SCOPES_HEADER: &str = "x-authd-scopes";

/// Whether a header a client sent claims an identity only authd may give:
/// every door removes these before the backend sees the request.
pub fn is_identity_header(name: &str) -> bool {
    name.as_bytes()
        .get(..IDENTITY_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(IDENTITY_HEADER_PREFIX.as_bytes()))
}

pub struct PolicyService {
    pub service: AuthService,
}

#[tonic::async_trait]
impl Policy for PolicyService {
    async fn check(
        &self,
        request: Request<v1::CheckRequest>,
    ) -> Result<Response<v1::CheckResponse>, Status> {
        let r = request.get_ref();
        let header = |name: &str| r.headers.get(name).map(String::as_str);
        let decision = self
            .service
            .check_door(door_request(&r.method, &r.path, header))
            .await?;
        Ok(Response::new(check_response(decision)))
    }
}

/// A door's request from its method, target and a header lookup (names in
/// lower case).
pub fn door_request<'a>(
    method: &'a str,
    target: &'a str,
    header: impl Fn(&str) -> Option<&'a str>,
) -> DoorRequest<'a> {
    DoorRequest {
        method,
        target,
        authorization: header("authorization"),
        websocket: header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
        websocket_protocol: header("sec-websocket-protocol"),
    }
}

fn header(name: &str, value: impl Into<String>) -> v1::Header {
    v1::Header {
        name: name.to_owned(),
        value: value.into(),
    }
}

fn error_body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// RFC 6750 section 3's challenge; no error code when no token was sent
/// (section 3.1: the client did not know authentication was needed).
fn challenge(error: Option<(&str, &str)>, scope: Option<&str>) -> v1::Header {
    let mut value = String::from("Bearer realm=\"authd\"");
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    header("www-authenticate", value)
}

/// The decision on the wire.
pub fn check_response(decision: Decision) -> v1::CheckResponse {
    match decision {
        Decision::Allow { identity, route } => {
            let mut upstream_headers = Vec::new();
            if let Some(identity) = identity {
                let token = &identity.token;
                if let Some(account_id) = token.account_id {
                    upstream_headers.push(header(ACCOUNT_ID_HEADER, account_id.to_string()));
                }
                if let Some(username) = &token.username {
                    upstream_headers.push(header(USERNAME_HEADER, username.to_string()));
                }
                upstream_headers.push(header(CLIENT_ID_HEADER, token.client_id().to_string()));
                upstream_headers.push(header(SCOPES_HEADER, token.scopes.to_string()));
            }
            v1::CheckResponse {
                decision: Wire::Allow.into(),
                http_status: 200,
                upstream_headers,
                route: route.unwrap_or_default(),
                ..Default::default()
            }
        }
        Decision::Unauthenticated { token_sent } => {
            let error = token_sent.then_some((
                "invalid_token",
                "The access token is invalid, revoked or expired",
            ));
            v1::CheckResponse {
                decision: Wire::Unauthenticated.into(),
                http_status: 401,
                response_headers: vec![challenge(error, None)],
                body: error_body(if token_sent {
                    "The access token is invalid"
                } else {
                    "The access token is missing"
                }),
                ..Default::default()
            }
        }
        Decision::InsufficientScope { required, route } => {
            let scope = required
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            v1::CheckResponse {
                decision: Wire::InsufficientScope.into(),
                http_status: 403,
                response_headers: vec![challenge(
                    Some((
                        "insufficient_scope",
                        "The request requires higher privileges than provided by the access token",
                    )),
                    Some(&scope),
                )],
                body: error_body("This action is outside the authorized scopes"),
                required_scopes: required.iter().map(|s| s.as_str().to_owned()).collect(),
                route,
                ..Default::default()
            }
        }
        Decision::NoRoute => v1::CheckResponse {
            decision: Wire::NoRoute.into(),
            http_status: 403,
            body: error_body("This API is not open through authd's policy"),
            ..Default::default()
        },
        Decision::BadRequest(reason) => v1::CheckResponse {
            decision: Wire::BadRequest.into(),
            http_status: 400,
            response_headers: vec![challenge(Some(("invalid_request", reason)), None)],
            body: error_body(reason),
            ..Default::default()
        },
    }
}
