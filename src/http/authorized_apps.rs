//! The applications an account has authorized, with a way to revoke each
//! one's access: a page (as Mastodon's settings page) and a JSON API, both
//! authenticated by the login session cookie.
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::cookies::{self, CsrfForm, SESSION_COOKIE};
use super::entities::iso_date;
use super::error::HttpError;
use super::input::{ApiInput, PageInput, SurfaceKind};
use super::login::{to_login, with_cookie};
use super::pages;
use super::state::{ShimState, grpc_request};
use crate::domain::error::AuthError;
use crate::proto::v1;

const PAGE: &str = "/oauth/authorized_applications";

/// The parameters of the page: whether it follows a revocation.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ListParams {
    revoked: bool,
}

#[derive(Serialize)]
struct AuthorizedApplication {
    id: String,
    name: String,
    website: Option<String>,
    scopes: Vec<String>,
    authorized_at: String,
}

async fn list<S: SurfaceKind>(
    state: &ShimState,
    input: &super::input::Input<S>,
    session: String,
) -> Result<Vec<v1::AuthorizedApp>, HttpError> {
    let request = grpc_request(v1::ListAuthorizedAppsRequest { session }, &input.headers);
    Ok(input
        .answer(state.oauth().list_authorized_apps(request).await)?
        .apps)
}

/// GET /oauth/authorized_applications
pub async fn page(State(state): State<ShimState>, input: PageInput) -> Result<Response, HttpError> {
    let Some(session) = cookies::get(&input.headers, SESSION_COOKIE) else {
        return Ok(to_login(PAGE));
    };
    let apps = match list(&state, &input, session).await {
        Err(e) if e.error.kind == crate::domain::error::ErrorKind::InvalidSession => {
            return Ok(to_login(PAGE));
        }
        other => other?,
    };
    let (csrf, cookie) = cookies::csrf_token(&input.headers, state.secure_cookies());
    let params: ListParams = input.read()?;
    let notice = params.revoked.then_some("Access revoked.");
    Ok(with_cookie(
        pages::authorized_apps_page(&apps, &csrf, notice).into_response(),
        cookie,
    ))
}

/// POST /oauth/authorized_applications/{id}/revoke
pub async fn revoke_from_page(
    State(state): State<ShimState>,
    Path(app_id): Path<String>,
    input: PageInput,
) -> Result<Response, HttpError> {
    let form: CsrfForm = input.read()?;
    input.verify_csrf(&form.csrf_token)?;
    let Some(session) = cookies::get(&input.headers, SESSION_COOKIE) else {
        return Ok(to_login(PAGE));
    };
    let request = grpc_request(
        v1::RevokeAuthorizedAppRequest { session, app_id },
        &input.headers,
    );
    input.answer(state.oauth().revoke_authorized_app(request).await)?;
    Ok(super::found(&format!("{PAGE}?revoked=true")))
}

fn api_session(input: &ApiInput) -> Result<String, HttpError> {
    cookies::get(&input.headers, SESSION_COOKIE)
        .ok_or_else(|| input.error(AuthError::invalid_session()))
}

/// GET /api/v1/authorized_applications
pub async fn api_list(
    State(state): State<ShimState>,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let session = api_session(&input)?;
    let apps = list(&state, &input, session).await?;
    let body: Vec<AuthorizedApplication> = apps
        .into_iter()
        .filter_map(|a| {
            let app = a.app?;
            Some(AuthorizedApplication {
                id: app.id,
                name: app.name,
                website: (!app.website.is_empty()).then_some(app.website),
                scopes: a.scopes,
                authorized_at: iso_date(a.authorized_at),
            })
        })
        .collect();
    Ok(Json(body).into_response())
}

/// DELETE /api/v1/authorized_applications/{id}. The session cookie is
/// SameSite=Lax, so browsers never send it with a cross-site DELETE.
pub async fn api_revoke(
    State(state): State<ShimState>,
    Path(app_id): Path<String>,
    input: ApiInput,
) -> Result<Response, HttpError> {
    let session = api_session(&input)?;
    let request = grpc_request(
        v1::RevokeAuthorizedAppRequest { session, app_id },
        &input.headers,
    );
    input.answer(state.oauth().revoke_authorized_app(request).await)?;
    Ok(Json(serde_json::json!({})).into_response())
}
