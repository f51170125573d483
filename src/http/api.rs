//! The Mastodon REST endpoints: apps, verify_credentials, userinfo.
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::entities::{Account, Application, CredentialApplication, OpenIdUserInfo, UserInfo};
use super::error::HttpError;
use super::input::{ApiInput, ClientAddress};
use super::state::{ShimState, grpc_request};
use crate::domain::error::AuthError;
use crate::proto::v1;
use crate::proto::v1::userinfo::Answer;

/// The parameters of POST /api/v1/apps.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RegisterAppParams {
    client_name: String,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    website: String,
    access_token_format: String,
}

/// POST /api/v1/apps
pub async fn register_app(
    State(state): State<ShimState>,
    client: ClientAddress,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let p: RegisterAppParams = input.read()?;
    let request = v1::RegisterAppRequest {
        client_name: p.client_name,
        redirect_uris: p.redirect_uris,
        // Mastodon takes scopes as a space-separated string; clients also
        // send an array (Mastodon drops it, a known bug): both work here.
        scopes: p.scopes.join(" "),
        website: p.website,
        access_token_format: p.access_token_format,
        ..Default::default()
    };
    let r = input.answer(
        state
            .apps()
            .register_app(client.forward(grpc_request(request, &input.headers)))
            .await,
    )?;
    let app = r.app.unwrap_or_default();
    Ok(Json(CredentialApplication {
        id: app.id.clone(),
        name: app.name.clone(),
        website: (!app.website.is_empty()).then(|| app.website.clone()),
        scopes: app.scopes.clone(),
        redirect_uri: app.redirect_uris.join("\n"),
        redirect_uris: app.redirect_uris,
        vapid_key: String::new(),
        client_id: r.client_id,
        client_secret: r.client_secret,
        client_secret_expires_at: r.client_secret_expires_at,
    })
    .into_response())
}

/// GET /api/v1/apps/verify_credentials
pub async fn verify_app_credentials(
    State(state): State<ShimState>,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let token = input.bearer_token()?;
    let request = v1::VerifyAppCredentialsRequest {
        access_token: token,
    };
    let app = input.answer(
        state
            .apps()
            .verify_app_credentials(grpc_request(request, &input.headers))
            .await,
    )?;
    Ok(Json(Application::from(&app)).into_response())
}

async fn token_account(
    state: &ShimState,
    input: &ApiInput,
    purpose: v1::AccountPurpose,
) -> Result<v1::Account, HttpError> {
    let token = input.bearer_token()?;
    let request = v1::VerifyAccountCredentialsRequest {
        access_token: token,
        purpose: purpose.into(),
    };
    input.answer(
        state
            .accounts()
            .verify_account_credentials(grpc_request(request, &input.headers))
            .await,
    )
}

/// GET /api/v1/accounts/verify_credentials
pub async fn verify_account_credentials(
    State(state): State<ShimState>,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let account = token_account(&state, &input, v1::AccountPurpose::VerifyCredentials).await?;
    Ok(Json(Account::new(&account, &state.url(""))).into_response())
}

/// GET or POST /oauth/userinfo: Mastodon's answer for a Mastodon token,
/// OpenID Connect's for an openid one; the core says which.
pub async fn userinfo(
    State(state): State<ShimState>,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let request = v1::GetUserinfoRequest {
        access_token: input.bearer_token()?,
    };
    let userinfo = input.answer(
        state
            .accounts()
            .get_userinfo(grpc_request(request, &input.headers))
            .await,
    )?;
    Ok(match userinfo.answer {
        Some(Answer::Mastodon(account)) => {
            Json(UserInfo::new(&account, &state.url(""))).into_response()
        }
        Some(Answer::Openid(claims)) => Json(OpenIdUserInfo::from(claims)).into_response(),
        None => return Err(input.error(AuthError::internal())),
    })
}
