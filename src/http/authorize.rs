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
use super::params::Params;
use super::state::{ShimState, from_core, grpc_request};
use crate::domain::error::{AuthError, ErrorKind};
use crate::proto::v1;

/// The parameters of an authorization request that the pages carry along.
const FIELDS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
];

fn request(p: &Params, session: String) -> Result<v1::AuthorizeRequest, AuthError> {
    Ok(v1::AuthorizeRequest {
        session,
        response_type: p.string("response_type")?,
        client_id: p.string("client_id")?,
        redirect_uri: p.string("redirect_uri")?,
        scope: p.string("scope")?,
        state: p.string("state")?,
        code_challenge: p.string("code_challenge")?,
        code_challenge_method: p.string("code_challenge_method")?,
    })
}

fn fields(p: &Params) -> Result<Vec<(&'static str, String)>, AuthError> {
    FIELDS.iter().map(|f| Ok((*f, p.string(f)?))).collect()
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
    let p = &input.params;
    let fail = |e| input.error(e);
    let session = cookies::get(&input.headers, SESSION_COOKIE).unwrap_or_default();
    let mut fields = fields(p).map_err(fail)?;
    let force_login = p.flag("force_login").map_err(fail)?;
    let prepared = state
        .oauth()
        .prepare_authorization(grpc_request(
            request(p, session.clone()).map_err(fail)?,
            &input.headers,
        ))
        .await;
    let prepared = match from_core(prepared) {
        Ok(prepared) => prepared,
        Err(e) if e.kind == ErrorKind::InvalidSession => {
            return Ok(to_login(&authorize_url(&fields)));
        }
        Err(e) => return Err(fail(e)),
    };
    if force_login {
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
    let prompt_consent = p
        .string("prompt")
        .map_err(fail)?
        .split(' ')
        .any(|v| v == "consent");
    if prepared.previously_granted && !prompt_consent {
        let issued = state
            .oauth()
            .authorize(grpc_request(
                request(p, session).map_err(fail)?,
                &input.headers,
            ))
            .await;
        return Ok(code_response(from_core(issued).map_err(fail)?));
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
    let deny = input
        .params
        .string("decision")
        .map_err(|e| input.error(e))?
        == "deny";
    respond(state, input, deny).await
}

/// DELETE /oauth/authorize: Doorkeeper's Deny.
pub async fn deny(State(state): State<ShimState>, input: PageInput) -> Result<Response, HttpError> {
    respond(state, input, true).await
}

async fn respond(state: ShimState, input: PageInput, deny: bool) -> Result<Response, HttpError> {
    let p = &input.params;
    let fail = |e| input.error(e);
    cookies::verify_csrf(&input.headers, &p.string("csrf_token").map_err(fail)?).map_err(fail)?;
    let Some(session) = cookies::get(&input.headers, SESSION_COOKIE) else {
        return Ok(to_login(&authorize_url(&fields(p).map_err(fail)?)));
    };
    let request = grpc_request(request(p, session).map_err(fail)?, &input.headers);
    if deny {
        let prepared =
            from_core(state.oauth().prepare_authorization(request).await).map_err(fail)?;
        tracing::info!("authorization denied by the user");
        return Ok(if prepared.deny_redirect.is_empty() {
            (StatusCode::OK, pages::oob_denied_page()).into_response()
        } else {
            super::found(&prepared.deny_redirect)
        });
    }
    let issued = from_core(state.oauth().authorize(request).await).map_err(fail)?;
    Ok(code_response(issued))
}
