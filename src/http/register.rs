//! RFC 7591 dynamic client registration, POST /oauth/register: JSON in, the
//! same Apps.RegisterApp call as POST /api/v1/apps (and so the same
//! per-address limit), JSON out. The core validates and fills in defaults
//! under the RFC 7591 profile; this only translates names.
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::HttpError;
use super::input::{ClientAddress, read_body};
use super::state::{ShimState, from_core, grpc_request};
use crate::domain::error::{AuthError, ErrorKind};
use crate::proto::v1;

/// The client metadata of RFC 7591 section 2 that authd reads. Unknown
/// members are ignored (section 2: "The authorization server MUST ignore
/// any client metadata sent by the client that it does not understand").
#[derive(Deserialize, Default)]
#[serde(default)]
struct ClientMetadata {
    redirect_uris: Vec<String>,
    client_name: String,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    token_endpoint_auth_method: String,
    scope: String,
    id_token_signed_response_alg: String,
    post_logout_redirect_uris: Vec<String>,
    client_uri: String,
}

/// Section 3.2.1's response: the credentials, then the metadata as
/// registered.
#[derive(Serialize)]
struct ClientInformation {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    client_id_issued_at: i64,
    /// 0: the secret does not expire (section 3.2.1). Sent for public
    /// clients too, harmlessly, as Mastodon sends it for every app.
    client_secret_expires_at: i64,
    client_name: String,
    redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    token_endpoint_auth_method: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    post_logout_redirect_uris: Vec<String>,
}

fn invalid_metadata(description: impl Into<String>) -> HttpError {
    HttpError::registration(AuthError::new(
        ErrorKind::InvalidClientMetadata,
        description,
    ))
}

/// POST /oauth/register
pub async fn register(
    State(state): State<ShimState>,
    client: ClientAddress,
    request: Request,
) -> Result<Response, HttpError> {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, &state).await {
        Ok(bytes) => bytes,
        // Too large or too slow: the status every route answers.
        Err((error, status)) => {
            let mut response = HttpError::registration(error).into_response();
            *response.status_mut() = status;
            return Ok(response);
        }
    };
    // Section 3.1: the metadata is a JSON document.
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(invalid_metadata(
            "Client metadata must be sent as application/json.",
        ));
    }
    let m: ClientMetadata = serde_json::from_slice(&bytes)
        .map_err(|_| invalid_metadata("The request body is not valid client metadata JSON."))?;
    let request = v1::RegisterAppRequest {
        client_name: m.client_name,
        redirect_uris: m.redirect_uris,
        scopes: m.scope,
        website: m.client_uri,
        access_token_format: String::new(),
        profile: v1::RegistrationProfile::Rfc7591.into(),
        token_endpoint_auth_method: m.token_endpoint_auth_method,
        grant_types: m.grant_types,
        response_types: m.response_types,
        id_token_signed_response_alg: m.id_token_signed_response_alg,
        post_logout_redirect_uris: m.post_logout_redirect_uris,
    };
    let r = from_core(
        state
            .apps()
            .register_app(client.forward(grpc_request(request, &parts.headers)))
            .await,
    )
    .map_err(HttpError::registration)?;
    let app = r.app.unwrap_or_default();
    let body = ClientInformation {
        client_id: r.client_id,
        client_secret: (!r.client_secret.is_empty()).then_some(r.client_secret),
        client_id_issued_at: app.created_at,
        client_secret_expires_at: r.client_secret_expires_at,
        client_name: app.name,
        redirect_uris: app.redirect_uris,
        grant_types: app.grant_types,
        response_types: app.response_types,
        token_endpoint_auth_method: app.token_endpoint_auth_method,
        scope: app.scopes.join(" "),
        client_uri: (!app.website.is_empty()).then_some(app.website),
        id_token_signed_response_alg: (!app.id_token_signed_response_alg.is_empty())
            .then_some(app.id_token_signed_response_alg),
        post_logout_redirect_uris: app.post_logout_redirect_uris,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
