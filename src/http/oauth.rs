//! The OAuth endpoints with JSON answers: token (RFC 6749 section 3.2),
//! revocation (RFC 7009) and introspection (RFC 7662). Client credentials
//! come as HTTP Basic or as parameters; the shim resolves them with the
//! core's own rules (`client_auth::resolve`) and sends them as the
//! request's fields.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::entities::{Introspection, Token};
use super::error::HttpError;
use super::input::OAuthInput;
use super::state::{ShimState, from_core, grpc_request_without_authorization as grpc_request};
use crate::domain::client_auth;
use crate::domain::error::AuthError;
use crate::proto::v1;

/// The client's credentials, from Basic or the parameters: (id, secret),
/// empty when none were sent.
fn client_credentials(input: &OAuthInput) -> Result<(String, String), AuthError> {
    let p = &input.params;
    let header = input
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let resolved =
        client_auth::resolve(header, &p.string("client_id")?, &p.string("client_secret")?)?;
    Ok(match resolved {
        Some(c) => (c.client_id, c.client_secret.expose().to_owned()),
        None => (String::new(), String::new()),
    })
}

/// RFC 6749 section 5.1: token responses must not be cached.
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// POST /oauth/token
pub async fn token(
    State(state): State<ShimState>,
    input: OAuthInput,
) -> Result<Response, HttpError> {
    let p = &input.params;
    let fail = |e| input.error(e);
    let (client_id, client_secret) = client_credentials(&input).map_err(fail)?;
    let request = v1::ExchangeTokenRequest {
        grant_type: p.string("grant_type").map_err(fail)?,
        client_id,
        client_secret,
        code: p.string("code").map_err(fail)?,
        redirect_uri: p.string("redirect_uri").map_err(fail)?,
        code_verifier: p.string("code_verifier").map_err(fail)?,
        refresh_token: p.string("refresh_token").map_err(fail)?,
        scope: p.string("scope").map_err(fail)?,
    };
    let t = from_core(
        state
            .oauth()
            .exchange_token(grpc_request(request, &input.headers))
            .await,
    )
    .map_err(|e| input.error(e))?;
    Ok(no_store(
        Json(Token {
            access_token: t.access_token,
            token_type: t.token_type,
            scope: t.scope,
            created_at: t.created_at,
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
        })
        .into_response(),
    ))
}

/// POST /oauth/revoke
pub async fn revoke(
    State(state): State<ShimState>,
    input: OAuthInput,
) -> Result<Response, HttpError> {
    let p = &input.params;
    let fail = |e| input.error(e);
    let (client_id, client_secret) = client_credentials(&input).map_err(fail)?;
    let request = v1::RevokeRequest {
        token: p.string("token").map_err(fail)?,
        token_type_hint: p.string("token_type_hint").map_err(fail)?,
        client_id,
        client_secret,
    };
    from_core(
        state
            .oauth()
            .revoke(grpc_request(request, &input.headers))
            .await,
    )
    .map_err(|e| input.error(e))?;
    Ok(Json(serde_json::json!({})).into_response())
}

/// POST /oauth/introspect
pub async fn introspect(
    State(state): State<ShimState>,
    input: OAuthInput,
) -> Result<Response, HttpError> {
    let p = &input.params;
    let fail = |e| input.error(e);
    let (client_id, client_secret) = client_credentials(&input).map_err(fail)?;
    let request = v1::IntrospectRequest {
        token: p.string("token").map_err(fail)?,
        token_type_hint: p.string("token_type_hint").map_err(fail)?,
        client_id,
        client_secret,
    };
    let r = from_core(
        state
            .oauth()
            .introspect(grpc_request(request, &input.headers))
            .await,
    )
    .map_err(|e| input.error(e))?;
    Ok(no_store(Json(Introspection::from(r)).into_response()))
}
