//! Discovery and liveness: RFC 8414 metadata, the JWKS, /healthz, /readyz,
//! and static assets.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::error::HttpError;
use super::pages::STYLESHEET;
use super::state::{ShimState, from_core};
use crate::proto::v1;

/// GET /.well-known/oauth-authorization-server (RFC 8414, Mastodon 4.3+;
/// the fields of Mastodon's OAuthMetadataPresenter, and those of what authd
/// serves besides: introspection and the JWKS). What is served (grant
/// types, scopes) is the core's to say; the shim adds only its URLs.
pub async fn authorization_server_metadata(
    State(state): State<ShimState>,
) -> Result<Response, HttpError> {
    let served = served_metadata(&state).await?;
    Ok(Json(rfc8414_metadata(&state, &served)).into_response())
}

/// GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0):
/// the RFC 8414 document, member for member, and OpenID's own.
pub async fn openid_configuration(State(state): State<ShimState>) -> Result<Response, HttpError> {
    let served = served_metadata(&state).await?;
    let mut document = rfc8414_metadata(&state, &served);
    let openid = serde_json::json!({
        "end_session_endpoint": state.url("/oauth/end_session"),
        "subject_types_supported": served.subject_types_supported,
        "id_token_signing_alg_values_supported": served.id_token_signing_alg_values_supported,
        "claims_supported": served.claims_supported,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": served.prompt_values_supported,
    });
    if let (Some(document), serde_json::Value::Object(openid)) = (document.as_object_mut(), openid)
    {
        document.extend(openid);
    }
    Ok(Json(document).into_response())
}

async fn served_metadata(state: &ShimState) -> Result<v1::GetServerMetadataResponse, HttpError> {
    from_core(
        state
            .oauth()
            .get_server_metadata(v1::GetServerMetadataRequest {})
            .await,
    )
    .map_err(HttpError::api)
}

fn rfc8414_metadata(
    state: &ShimState,
    served: &v1::GetServerMetadataResponse,
) -> serde_json::Value {
    serde_json::json!({
        "issuer": state.url(""),
        "authorization_endpoint": state.url("/oauth/authorize"),
        "token_endpoint": state.url("/oauth/token"),
        "revocation_endpoint": state.url("/oauth/revoke"),
        "introspection_endpoint": state.url("/oauth/introspect"),
        "userinfo_endpoint": state.url("/oauth/userinfo"),
        "jwks_uri": state.url("/.well-known/jwks.json"),
        "scopes_supported": served.scopes_supported.clone(),
        "response_types_supported": ["code"],
        // Doorkeeper would list fragment and form_post too; authd answers
        // in the query only.
        "response_modes_supported": ["query"],
        "grant_types_supported": served.grant_types_supported.clone(),
        "registration_endpoint": state.url("/oauth/register"),
        "token_endpoint_auth_methods_supported": served.token_endpoint_auth_methods_supported.clone(),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": "https://docs.joinmastodon.org/",
        "app_registration_endpoint": state.url("/api/v1/apps"),
    })
}

/// The Mastodon version authd answers for. Clients gate features on it:
/// from 4.3 on they read the RFC 8414 document above for the endpoints.
const MASTODON_API_COMPAT: &str = "4.3.0";

fn instance_version() -> String {
    format!(
        "{MASTODON_API_COMPAT} (compatible; authd {})",
        env!("CARGO_PKG_VERSION")
    )
}

fn instance_domain(state: &ShimState) -> String {
    url::Url::parse(&state.url(""))
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default()
}

/// GET /api/v1/instance: authd is no Mastodon server, but clients ask this
/// before they sign in, to learn which server and version they talk to
/// (Mastodon.py cannot log in without it). It answers only what it can
/// answer truthfully: no statuses, no registrations.
pub async fn instance_v1(State(state): State<ShimState>) -> Response {
    Json(serde_json::json!({
        "uri": instance_domain(&state),
        "title": "authd",
        "short_description": "OAuth 2.0 authorization server",
        "description": "OAuth 2.0 authorization server",
        "email": "",
        "version": instance_version(),
        "urls": {},
        "languages": [],
        "registrations": false,
        "approval_required": false,
        "invites_enabled": false,
        "rules": [],
    }))
    .into_response()
}

/// GET /api/v2/instance, with `api_versions` (Mastodon 4.3+).
pub async fn instance_v2(State(state): State<ShimState>) -> Response {
    Json(serde_json::json!({
        "domain": instance_domain(&state),
        "title": "authd",
        "version": instance_version(),
        "source_url": "",
        "description": "OAuth 2.0 authorization server",
        "languages": [],
        "registrations": { "enabled": false, "approval_required": false, "message": null },
        "api_versions": { "mastodon": 2 },
        "contact": { "email": "", "account": null },
        "rules": [],
    }))
    .into_response()
}

/// GET /.well-known/jwks.json: the keys that sign JWT access tokens.
pub async fn jwks(State(state): State<ShimState>) -> Result<Response, HttpError> {
    let r =
        from_core(state.oauth().get_jwks(v1::GetJwksRequest {}).await).map_err(HttpError::api)?;
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        )],
        r.jwks_json,
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// GET /healthz: the shim process is alive.
/// GET /openapi.json: the OpenAPI 3.1 description of this HTTP API.
/// tests/api/openapi.rs checks it against the router, route by route.
pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// GET /readyz: the core answers and PostgreSQL is reachable.
pub async fn readyz(State(state): State<ShimState>) -> Response {
    let status = HealthClient::new(state.channel())
        .check(HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status);
    match status {
        Ok(s) if s == ServingStatus::Serving as i32 => {
            Json(serde_json::json!({ "status": "ready" })).into_response()
        }
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "reason": "database unreachable" })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "reason": "core unreachable" })),
        )
            .into_response(),
    }
}

/// GET /assets/authd.css
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Mastodon's default avatar and header URLs; a transparent pixel.
pub async fn missing_image() -> Response {
    const PIXEL: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        PIXEL,
    )
        .into_response()
}
