//! The door's decision: may this request reach the backend? One answer for
//! every door (the reverse proxy, forward auth for gateways, Envoy's
//! ext_authz), from the policy's route and the request's token, looked up
//! as introspection looks it up (the cache first), so that a revoked token
//! is refused at the door within the cache's coherence bound.
use super::AuthService;
use super::introspect::{ActiveToken, TokenTypeHint, active_view};
use crate::domain::error::AuthError;
use crate::domain::grant::TokenKind;
use crate::domain::policy::{
    PathError, RequestMethod, RequestPath, RouteDecision, TokenRequirement, Unmatched,
};
use crate::domain::scope::Scope;

/// A request as a door sees it. Only the headers that carry a token are
/// read.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoorRequest<'a> {
    pub method: &'a str,
    /// The request target as sent: path and query, not yet decoded.
    pub target: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Whether the request asks for a WebSocket upgrade: Mastodon's
    /// streaming clients send the token as the WebSocket subprotocol.
    pub websocket: bool,
    /// The `Sec-WebSocket-Protocol` header.
    pub websocket_protocol: Option<&'a str>,
}

/// Who the request is made by: what the backend is told, in headers.
#[derive(Clone, Debug)]
pub struct Identity {
    pub token: ActiveToken,
}

/// The decision.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Pass it on, with the caller's identity when a token was checked.
    Allow {
        identity: Option<Identity>,
        /// The pattern of the route that decided, for logs and metrics.
        route: Option<String>,
    },
    /// 401: no token where one is required, or one that is not active.
    Unauthenticated { token_sent: bool },
    /// 403 insufficient_scope: the token holds none of these.
    InsufficientScope { required: Vec<Scope>, route: String },
    /// 403: no route names the request, and the policy refuses those.
    NoRoute,
    /// 400: the request cannot be decided as sent.
    BadRequest(&'static str),
}

/// Where the request's token is, if anywhere.
enum Credential<'a> {
    None,
    Token(&'a str),
    /// Sent more than one way (RFC 6750 section 2: MUST NOT), or in an
    /// Authorization header of another scheme.
    Malformed(&'static str),
}

impl AuthService {
    /// Decides `request` by the configured policy.
    pub async fn check_door(&self, request: DoorRequest<'_>) -> Result<Decision, AuthError> {
        let policy = &self.config().policy;
        let method = match RequestMethod::parse(request.method) {
            Ok(method) => method,
            Err(e) => return Ok(Decision::BadRequest(path_reason(e))),
        };
        let path = match RequestPath::parse(request.target) {
            Ok(path) => path,
            Err(e) => return Ok(Decision::BadRequest(path_reason(e))),
        };
        let (token, scopes, route) = match policy.decide_route(method, &path) {
            RouteDecision::Preflight => {
                return Ok(Decision::Allow {
                    identity: None,
                    route: None,
                });
            }
            RouteDecision::Unmatched(Unmatched::Deny) => return Ok(Decision::NoRoute),
            RouteDecision::Unmatched(Unmatched::Authenticated) => {
                (TokenRequirement::Required, &[][..], None)
            }
            RouteDecision::Route(route) => (route.token, &route.scopes[..], Some(&route.path)),
        };
        if token == TokenRequirement::None {
            return Ok(Decision::Allow {
                identity: None,
                route: route.cloned(),
            });
        }
        let credential = match credential(&request, path.query()) {
            Credential::Malformed(reason) => return Ok(Decision::BadRequest(reason)),
            Credential::None if token == TokenRequirement::Optional => {
                return Ok(Decision::Allow {
                    identity: None,
                    route: route.cloned(),
                });
            }
            Credential::None => return Ok(Decision::Unauthenticated { token_sent: false }),
            Credential::Token(token) => token,
        };
        let Some(record) = self.active_access_token(credential).await? else {
            return Ok(Decision::Unauthenticated { token_sent: true });
        };
        if !scopes.is_empty() && !record.scopes.satisfies_any(scopes) {
            return Ok(Decision::InsufficientScope {
                required: scopes.to_vec(),
                route: route.cloned().unwrap_or_default(),
            });
        }
        Ok(Decision::Allow {
            identity: Some(Identity { token: record }),
            route: route.cloned(),
        })
    }

    /// An access token that is active now, from the cache when it can.
    /// A refresh token is no bearer token: it is looked up, and refused.
    async fn active_access_token(&self, token: &str) -> Result<Option<ActiveToken>, AuthError> {
        let found = self
            .find_token(token, TokenTypeHint::AccessToken, None)
            .await?;
        Ok(found
            .filter(|record| record.kind == TokenKind::Access)
            .and_then(|record| active_view(record, self.now())))
    }
}

fn path_reason(error: PathError) -> &'static str {
    match error {
        PathError::Method => "The method is not one an API route answers.",
        PathError::NotAbsolute => "The path must start with /.",
        PathError::TooLong => "The path is too long.",
        PathError::EmptySegment => "The path has an empty segment.",
        PathError::DotSegment => "The path has a dot segment.",
        PathError::EncodedSeparator => "The path has an encoded slash or a backslash.",
        PathError::Parameter => "The path has a ; parameter.",
        PathError::BadEncoding => "The path has a malformed percent-encoding.",
        PathError::ControlCharacter => "The path has a control character.",
        PathError::Fragment => "The path has a fragment.",
    }
}

/// The request's token: an `Authorization: Bearer` header, the
/// `access_token` query parameter (as Doorkeeper accepts), or, for a
/// WebSocket upgrade, the subprotocol (as Mastodon's streaming server
/// accepts). More than one is refused.
fn credential<'a>(request: &DoorRequest<'a>, query: Option<&'a str>) -> Credential<'a> {
    let mut found: Option<&'a str> = None;
    let mut count = 0;
    if let Some(header) = request.authorization {
        let Some((scheme, token)) = header.split_once(' ') else {
            return Credential::Malformed("The Authorization header is not a Bearer token.");
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Credential::Malformed("The Authorization header is not a Bearer token.");
        }
        found = Some(token.trim());
        count += 1;
    }
    if let Some(query) = query {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("access_token=") {
                found = Some(value);
                count += 1;
            }
        }
    }
    if request.websocket
        && let Some(protocol) = request.websocket_protocol
    {
        found = Some(protocol.trim());
        count += 1;
    }
    match (count, found) {
        (0, _) | (_, None) => Credential::None,
        (1, Some("")) => Credential::None,
        (1, Some(token)) => Credential::Token(token),
        _ => Credential::Malformed("The token was sent more than one way."),
    }
}
