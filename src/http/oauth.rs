//! The OAuth endpoints with JSON answers: token (RFC 6749 section 3.2),
//! revocation (RFC 7009) and introspection (RFC 7662). Client credentials
//! come as HTTP Basic or as parameters; the Authorization header travels to
//! the core unchanged, which parses both the same way for both transports.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::entities::{Introspection, Token};
use super::error::HttpError;
use super::input::OAuthInput;
use super::state::{ShimState, from_core, grpc_request};
use crate::proto::v1;

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
    let request = v1::ExchangeTokenRequest {
        grant_type: p.string("grant_type").map_err(fail)?,
        client_id: p.string("client_id").map_err(fail)?,
        client_secret: p.string("client_secret").map_err(fail)?,
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
    let request = v1::RevokeRequest {
        token: p.string("token").map_err(fail)?,
        token_type_hint: p.string("token_type_hint").map_err(fail)?,
        client_id: p.string("client_id").map_err(fail)?,
        client_secret: p.string("client_secret").map_err(fail)?,
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
    let request = v1::IntrospectRequest {
        token: p.string("token").map_err(fail)?,
        token_type_hint: p.string("token_type_hint").map_err(fail)?,
        client_id: p.string("client_id").map_err(fail)?,
        client_secret: p.string("client_secret").map_err(fail)?,
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
