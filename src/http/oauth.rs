//! The OAuth endpoints with JSON answers: token (RFC 6749 section 3.2),
//! revocation (RFC 7009) and introspection (RFC 7662). Client credentials
//! come as HTTP Basic or as parameters; the shim resolves them with the
//! core's own rules (`client_auth::resolve`) and sends them as the
//! request's fields.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::entities::{Introspection, Token};
use super::error::HttpError;
use super::input::OAuthInput;
use super::state::{ShimState, grpc_request_without_authorization as grpc_request};
use crate::domain::client_auth;
use crate::proto::v1;

/// The client's credentials, from Basic or the parameters: (id, secret),
/// empty when none were sent.
fn client_credentials(
    input: &OAuthInput,
    client_id: &str,
    client_secret: &str,
) -> Result<(String, String), HttpError> {
    let header = input
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let resolved =
        client_auth::resolve(header, client_id, client_secret).map_err(|e| input.error(e))?;
    Ok(match resolved {
        Some(c) => (c.client_id, c.client_secret.expose().to_owned()),
        None => (String::new(), String::new()),
    })
}

/// The parameters of POST /oauth/token (RFC 6749 sections 4.1.3, 4.4.2, 6).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenParams {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
    refresh_token: String,
    scope: String,
    client_id: String,
    client_secret: String,
}

/// The parameters of revocation and introspection (RFC 7009, RFC 7662).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQueryParams {
    token: String,
    token_type_hint: String,
    client_id: String,
    client_secret: String,
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
    let p: TokenParams = input.read()?;
    let (client_id, client_secret) = client_credentials(&input, &p.client_id, &p.client_secret)?;
    let request = v1::ExchangeTokenRequest {
        grant_type: p.grant_type,
        client_id,
        client_secret,
        code: p.code,
        redirect_uri: p.redirect_uri,
        code_verifier: p.code_verifier,
        refresh_token: p.refresh_token,
        scope: p.scope,
    };
    let t = input.answer(
        state
            .oauth()
            .exchange_token(grpc_request(request, &input.headers))
            .await,
    )?;
    Ok(no_store(
        Json(Token {
            access_token: t.access_token,
            token_type: t.token_type,
            scope: t.scope,
            created_at: t.created_at,
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
        })
        .into_response(),
    ))
}

/// POST /oauth/revoke
pub async fn revoke(
    State(state): State<ShimState>,
    input: OAuthInput,
) -> Result<Response, HttpError> {
    let p: TokenQueryParams = input.read()?;
    let (client_id, client_secret) = client_credentials(&input, &p.client_id, &p.client_secret)?;
    let request = v1::RevokeRequest {
        token: p.token,
        token_type_hint: p.token_type_hint,
        client_id,
        client_secret,
    };
    input.answer(
        state
            .oauth()
            .revoke(grpc_request(request, &input.headers))
            .await,
    )?;
    Ok(Json(serde_json::json!({})).into_response())
}

/// POST /oauth/introspect
pub async fn introspect(
    State(state): State<ShimState>,
    input: OAuthInput,
) -> Result<Response, HttpError> {
    let p: TokenQueryParams = input.read()?;
    let (client_id, client_secret) = client_credentials(&input, &p.client_id, &p.client_secret)?;
    let request = v1::IntrospectRequest {
        token: p.token,
        token_type_hint: p.token_type_hint,
        client_id,
        client_secret,
    };
    let r = input.answer(
        state
            .oauth()
            .introspect(grpc_request(request, &input.headers))
            .await,
    )?;
    let body = Introspection::from(r).to_json();
    Ok(no_store(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    ))
}
