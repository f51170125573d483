//! authd as the door in front of a backend, over HTTP: forward auth for
//! gateways (nginx's auth_request, Caddy's forward_auth, Traefik's
//! ForwardAuth) at `/authd/check`, and the reverse proxy (`--upstream-api`)
//! that forwards every request that is not authd's own. Both ask the core
//! (authd.v1.Policy/Check) and render its answer; nothing is decided here.
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::error::HttpError;
use super::state::{ShimState, from_core};
use crate::grpc::policy::is_identity_header;
use crate::proto::v1;
use crate::proto::v1::check_response::Decision;

/// The request target a client sent, before the shim's trailing-slash
/// normalization: what the door decides on and what the backend gets.
#[derive(Clone, Debug)]
pub struct OriginalTarget(pub Uri);

/// Where the reverse proxy sends what it lets through.
#[derive(Clone, Debug)]
pub struct UpstreamApi {
    /// `http://host:port`, with no path.
    pub base: Uri,
    /// Pass the client's token (Authorization, access_token) on to the
    /// backend; by default it never sees one.
    pub pass_token: bool,
    /// Largest request body forwarded, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// How long the backend may take to start its answer before the
    /// client gets 504.
    pub timeout: Duration,
}

impl UpstreamApi {
    /// Parses `--upstream-api`: an http:// URL with no path, query or
    /// credentials (TLS to the backend is not spoken: put it on loopback or
    /// a private network).
    pub fn parse(url: &str) -> Result<Uri, String> {
        let uri: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("{e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err("https backends are not supported; give an http:// URL".into());
            }
            _ => return Err("the URL must start with http://".into()),
        }
        if uri.authority().is_none_or(|a| a.as_str().contains('@')) {
            return Err("the URL must name a host, without credentials".into());
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err("the URL must have no path or query".into());
        }
        Ok(uri)
    }
}

/// The reverse proxy's HTTP/1.1 client, its connections kept alive.
pub type UpstreamClient = Client<HttpConnector, Body>;

pub fn upstream_client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

const X_ORIGINAL_URI: &str = "x-original-uri";
const X_ORIGINAL_METHOD: &str = "x-original-method";
const X_FORWARDED_URI: &str = "x-forwarded-uri";
const X_FORWARDED_METHOD: &str = "x-forwarded-method";

/// The headers the core reads a token from.
const TOKEN_HEADERS: [&str; 3] = ["authorization", "upgrade", "sec-websocket-protocol"];

fn check_request(method: &str, target: &str, headers: &HeaderMap) -> v1::CheckRequest {
    let headers = TOKEN_HEADERS
        .iter()
        .filter_map(|&name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    v1::CheckRequest {
        method: method.to_owned(),
        path: target.to_owned(),
        headers,
    }
}

async fn check(
    state: &ShimState,
    request: v1::CheckRequest,
) -> Result<v1::CheckResponse, HttpError> {
    from_core(state.policy().check(tonic::Request::new(request)).await).map_err(HttpError::api)
}

/// A denial as the core rendered it: its status, challenge and body.
fn denial(answer: v1::CheckResponse) -> Response {
    let status = StatusCode::from_u16(answer.http_status as u16).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    append(headers, &answer.response_headers);
    response
}

fn append(headers: &mut HeaderMap, from: &[v1::Header]) {
    for h in from {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// GET /authd/check: forward auth. The gateway names the original request
/// in its own headers (nginx: X-Original-Method and X-Original-URI, which
/// its configuration sets; Caddy and Traefik: X-Forwarded-Method and
/// X-Forwarded-Uri) and passes the client's Authorization. 200 with the
/// identity headers for the gateway to copy onto the request, or the
/// denial (401, 403, 400) with its challenge, which the gateway returns.
pub async fn forward_auth(State(state): State<ShimState>, headers: HeaderMap) -> Response {
    let (method, target) = match original_request(&headers) {
        Ok(original) => original,
        Err(message) => {
            let body = serde_json::json!({ "error": message });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let answer = match check(&state, check_request(&method, &target, &headers)).await {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    if answer.decision() != Decision::Allow {
        return denial(answer);
    }
    let mut response = StatusCode::OK.into_response();
    append(response.headers_mut(), &answer.upstream_headers);
    response
}

/// The original request a gateway names: nginx's pair (which its
/// configuration sets) or Caddy's and Traefik's (which they set), never a
/// method from one and a target from the other. A gateway passes the
/// client's other headers on to the check, so a client can add the pair its
/// gateway does not set: both pairs present and disagreeing is refused,
/// or a client behind Caddy could have `POST /api/v1/statuses` decided as
/// the `GET /api/v1/timelines/home` it names in X-Original-*.
fn original_request(headers: &HeaderMap) -> Result<(String, String), &'static str> {
    let get = |name: &str| headers.get(name).map(|v| v.to_str().map(str::to_owned));
    let pair = |method: &str, uri: &str| match (get(method), get(uri)) {
        (None, None) => Ok(None),
        (Some(Ok(method)), Some(Ok(uri))) => Ok(Some((method, uri))),
        _ => Err("An original-request header is missing or not text"),
    };
    match (
        pair(X_ORIGINAL_METHOD, X_ORIGINAL_URI)?,
        pair(X_FORWARDED_METHOD, X_FORWARDED_URI)?,
    ) {
        (Some(original), None) | (None, Some(original)) => Ok(original),
        (Some(original), Some(forwarded)) if original == forwarded => Ok(original),
        (Some(_), Some(_)) => Err(
            "X-Original-Method/X-Original-URI and X-Forwarded-Method/X-Forwarded-Uri name different requests",
        ),
        (None, None) => Err(
            "Forward auth needs the original request: X-Original-Method and X-Original-URI (nginx), or X-Forwarded-Method and X-Forwarded-Uri (Caddy, Traefik)",
        ),
    }
}

/// Headers that belong to one connection (RFC 9110 section 7.6.1), not to
/// the request or response passed on.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap, websocket: bool) {
    // Names the Connection header lists are hop-by-hop too.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        if websocket && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        headers.remove(name);
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The target without its access_token parameter, for a backend that
/// is not to see tokens.
fn without_access_token(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("access_token="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Whether the upstream request failed because the client's body went
/// past the limit (`Limited`'s error, somewhere down the error's causes).
fn body_over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn proxy_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Marks a response that came from the backend, so that the shim's own
/// defaults (security headers) leave it as the backend sent it.
#[derive(Clone, Copy, Debug)]
pub struct FromBackend;

/// Every request that is not authd's own, with `--upstream-api`: checked,
/// then forwarded with the identity headers, its body and the answer's
/// streamed, a WebSocket upgrade passed through once checked.
pub async fn proxy(State(state): State<ShimState>, mut request: Request) -> Response {
    let Some(upstream) = state.config().upstream_api.as_ref() else {
        return super::not_found().await;
    };
    let target = request
        .extensions()
        .get::<OriginalTarget>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    let target = target
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let answer = match check(
        &state,
        check_request(request.method().as_str(), &target, request.headers()),
    )
    .await
    {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    if answer.decision() != Decision::Allow {
        return denial(answer);
    }
    if request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > upstream.body_limit as u64)
    {
        return proxy_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large",
        );
    }
    let websocket = is_websocket(request.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());

    let (mut parts, body) = request.into_parts();
    let target = if upstream.pass_token {
        target
    } else {
        without_access_token(&target)
    };
    let (scheme, authority) = (
        upstream.base.scheme_str().unwrap_or("http"),
        upstream.base.authority().map_or("", |a| a.as_str()),
    );
    let uri = match Uri::try_from(format!("{scheme}://{authority}{target}")) {
        Ok(uri) => uri,
        Err(_) => return proxy_error(StatusCode::BAD_REQUEST, "The request target is malformed"),
    };
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, websocket);
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(&name);
    }
    if !upstream.pass_token {
        headers.remove(header::AUTHORIZATION);
    }
    append(headers, &answer.upstream_headers);
    if let Some(ip) = peer {
        let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(previous) => format!("{previous}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            headers.insert("x-forwarded-for", value);
        }
    }
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let limit = upstream.body_limit;
    let body = Body::new(http_body_util::Limited::new(body, limit));
    let outgoing = Request::from_parts(parts, body);

    let sent = tokio::time::timeout(upstream.timeout, state.upstream_client().request(outgoing));
    let mut response = match sent.await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            if body_over_limit(&e) {
                return proxy_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The request body is too large",
                );
            }
            tracing::warn!(error = ?e, backend = %upstream.base, "the backend cannot be reached");
            return proxy_error(StatusCode::BAD_GATEWAY, "The backend cannot be reached");
        }
        Err(_) => {
            tracing::warn!(backend = %upstream.base, timeout = ?upstream.timeout, "the backend did not answer in time");
            return proxy_error(
                StatusCode::GATEWAY_TIMEOUT,
                "The backend did not answer in time",
            );
        }
    };
    if let Some(client_upgrade) = client_upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let backend_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match tokio::join!(client_upgrade, backend_upgrade) {
                (Ok(client), Ok(backend)) => {
                    let mut client = TokioIo::new(client);
                    let mut backend = TokioIo::new(backend);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                }
                (client, backend) => {
                    tracing::debug!(
                        client_ok = client.is_ok(),
                        backend_ok = backend.is_ok(),
                        "a WebSocket upgrade failed"
                    );
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(
        &mut parts.headers,
        parts.status == StatusCode::SWITCHING_PROTOCOLS,
    );
    parts.extensions.insert(FromBackend);
    Response::from_parts(parts, Body::new(body.map_err(axum::Error::new)))
}
