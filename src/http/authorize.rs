//! GET/POST/DELETE /oauth/authorize: log in, consent, then a redirect with
//! the code (or the out-of-band page that shows it). Every error the core
//! finds in the request is shown as a page, never redirected: a bad
//! client_id or redirect_uri must not turn authd into an open redirector.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::cookies::{self, SESSION_COOKIE};
use super::error::HttpError;
use super::input::PageInput;
use super::login::{to_login, with_cookie};
use super::pages;
use super::state::{ShimState, from_core, grpc_request};
use crate::domain::error::ErrorKind;
use crate::proto::v1;

/// The parameters of /oauth/authorize: the authorization request, which
/// the login and consent pages carry along, and the consent form's own.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    prompt: String,
    force_login: bool,
    /// The consent form's button: "allow" or "deny".
    decision: String,
    csrf_token: String,
}

impl AuthorizeParams {
    fn request(&self, session: String) -> v1::AuthorizeRequest {
        v1::AuthorizeRequest {
            session,
            response_type: self.response_type.clone(),
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
            state: self.state.clone(),
            code_challenge: self.code_challenge.clone(),
            code_challenge_method: self.code_challenge_method.clone(),
        }
    }

    /// The authorization request's parameters, by name, as the pages carry
    /// them along.
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.clone()))
        .collect()
    }
}

/// This authorization request as a GET URL, to come back to after login.
fn authorize_url(fields: &[(&str, String)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        if !v.is_empty() {
            query.append_pair(k, v);
        }
    }
    format!("/oauth/authorize?{}", query.finish())
}

/// The answer to an issued code: a redirect, or the out-of-band page.
fn code_response(issued: v1::AuthorizeResponse) -> Response {
    if issued.redirect_to.is_empty() {
        pages::oob_code_page(&issued.code, &issued.scope).into_response()
    } else {
        super::found(&issued.redirect_to)
    }
}

/// GET /oauth/authorize
pub async fn show(State(state): State<ShimState>, input: PageInput) -> Result<Response, HttpError> {
    let p: AuthorizeParams = input.read()?;
    let session = cookies::get(&input.headers, SESSION_COOKIE).unwrap_or_default();
    let mut fields = p.fields();
    let prepared = state
        .oauth()
        .prepare_authorization(grpc_request(p.request(session.clone()), &input.headers))
        .await;
    let prepared = match from_core(prepared) {
        Ok(prepared) => prepared,
        Err(e) if e.kind == ErrorKind::InvalidSession => {
            return Ok(to_login(&authorize_url(&fields)));
        }
        Err(e) => return Err(input.error(e)),
    };
    if p.force_login {
        // Sign the current account out and ask again (multi-account
        // clients, Mastodon issue 1627). The consent page is shown after
        // the login even when the scopes were granted before.
        let _ = state.sessions().logout(v1::LogoutRequest { session }).await;
        if let Some(prompt) = fields.iter_mut().find(|(k, _)| *k == "prompt") {
            prompt.1 = "consent".into();
        }
        let cookie = cookies::clear_session(state.secure_cookies());
        return Ok(with_cookie(to_login(&authorize_url(&fields)), cookie));
    }
    let prompt_consent = p.prompt.split(' ').any(|v| v == "consent");
    if prepared.previously_granted && !prompt_consent {
        let issued = state
            .oauth()
            .authorize(grpc_request(p.request(session), &input.headers))
            .await;
        return Ok(code_response(input.answer(issued)?));
    }
    let (csrf, cookie) = cookies::csrf_token(&input.headers, state.secure_cookies());
    let page = pages::consent_page(&pages::Consent {
        prepared: &prepared,
        fields,
        csrf: &csrf,
    });
    Ok(with_cookie(page.into_response(), cookie))
}

/// POST /oauth/authorize: the consent form's Allow or Deny.
pub async fn decide(
    State(state): State<ShimState>,
    input: PageInput,
) -> Result<Response, HttpError> {
    let p: AuthorizeParams = input.read()?;
    let deny = p.decision == "deny";
    respond(state, input, p, deny).await
}

/// DELETE /oauth/authorize: Doorkeeper's Deny.
pub async fn deny(State(state): State<ShimState>, input: PageInput) -> Result<Response, HttpError> {
    let p: AuthorizeParams = input.read()?;
    respond(state, input, p, true).await
}

async fn respond(
    state: ShimState,
    input: PageInput,
    p: AuthorizeParams,
    deny: bool,
) -> Result<Response, HttpError> {
    input.verify_csrf(&p.csrf_token)?;
    let Some(session) = cookies::get(&input.headers, SESSION_COOKIE) else {
        return Ok(to_login(&authorize_url(&p.fields())));
    };
    let request = grpc_request(p.request(session), &input.headers);
    if deny {
        let prepared = input.answer(state.oauth().prepare_authorization(request).await)?;
        tracing::info!("authorization denied by the user");
        return Ok(if prepared.deny_redirect.is_empty() {
            (StatusCode::OK, pages::oob_denied_page()).into_response()
        } else {
            super::found(&prepared.deny_redirect)
        });
    }
    let issued = input.answer(state.oauth().authorize(request).await)?;
    Ok(code_response(issued))
}
