//! GET/POST/DELETE /oauth/authorize and GET /oauth/authorize/native: the
//! pages of the authorization code flow. The core decides (sign in, ask,
//! or a code at once: `PrepareAuthorization`); these handlers only render
//! the decision. Every error the core finds in the request is shown as a
//! page, never redirected: a bad client_id or redirect_uri must not turn
//! authd into an open redirector.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::cookies::{self, SESSION_COOKIE};
use super::error::HttpError;
use super::input::PageInput;
use super::login::{to_login, with_cookie};
use super::pages;
use super::state::{ShimState, grpc_request};
use crate::domain::error::AuthError;
use crate::proto::v1;
use crate::proto::v1::authorization_decision::Outcome;

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
    /// OpenID Connect's max_age, seconds; "" when absent.
    max_age: String,
    nonce: String,
    claims: String,
    /// The consent form's button: "allow" or "deny".
    decision: String,
    csrf_token: String,
}

impl AuthorizeParams {
    fn request(&self, session: String) -> Result<v1::AuthorizeRequest, AuthError> {
        let max_age =
            match self.max_age.as_str() {
                "" => None,
                seconds => Some(seconds.parse::<u32>().map_err(|_| {
                    AuthError::invalid_request("max_age must be a number of seconds.")
                })?),
            };
        Ok(v1::AuthorizeRequest {
            session,
            response_type: self.response_type.clone(),
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
            state: self.state.clone(),
            code_challenge: self.code_challenge.clone(),
            code_challenge_method: self.code_challenge_method.clone(),
            prompt: self.prompt.clone(),
            force_login: self.force_login,
            max_age: max_age.map(i64::from),
            nonce: self.nonce.clone(),
            claims: self.claims.clone(),
        })
    }
}

/// An authorization request's parameters, by name, as the pages carry
/// them along (the session stays in its cookie).
fn fields(r: &v1::AuthorizeRequest) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> = [
        ("response_type", &r.response_type),
        ("client_id", &r.client_id),
        ("redirect_uri", &r.redirect_uri),
        ("scope", &r.scope),
        ("state", &r.state),
        ("code_challenge", &r.code_challenge),
        ("code_challenge_method", &r.code_challenge_method),
        ("prompt", &r.prompt),
        ("nonce", &r.nonce),
        ("claims", &r.claims),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.clone()))
    .collect();
    if r.force_login {
        fields.push(("force_login", "true".into()));
    }
    fields
}

/// An authorization request as a GET URL, to come back to after login.
fn authorize_url(request: &v1::AuthorizeRequest) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields(request) {
        if !v.is_empty() {
            query.append_pair(k, &v);
        }
    }
    format!("/oauth/authorize?{}", query.finish())
}

/// Where an issued code goes: its redirect, or, for the out-of-band URI,
/// the page that shows it (Doorkeeper's `/oauth/authorize/native?code=`,
/// which clients with embedded web views watch for).
fn code_response(issued: &v1::AuthorizeResponse) -> Response {
    if issued.redirect_to.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &issued.code)
            .finish();
        super::found(&format!("/oauth/authorize/native?{query}"))
    } else {
        super::found(&issued.redirect_to)
    }
}

/// GET /oauth/authorize
pub async fn show(State(state): State<ShimState>, input: PageInput) -> Result<Response, HttpError> {
    let p: AuthorizeParams = input.read()?;
    let session = cookies::get(&input.headers, SESSION_COOKIE).unwrap_or_default();
    let request = p.request(session).map_err(|e| input.error(e))?;
    let decision = input.answer(
        state
            .oauth()
            .prepare_authorization(grpc_request(request.clone(), &input.headers))
            .await,
    )?;
    match decision.outcome {
        Some(Outcome::LoginRequired(login)) => {
            let resume = login.resume.unwrap_or(request);
            Ok(to_login(&authorize_url(&resume)))
        }
        Some(Outcome::ConsentNeeded(consent)) => {
            let (csrf, cookie) = cookies::csrf_token(&input.headers, state.secure_cookies());
            let page = pages::consent_page(&pages::Consent {
                consent: &consent,
                fields: fields(&request),
                csrf: &csrf,
            });
            Ok(with_cookie(page.into_response(), cookie))
        }
        Some(Outcome::Issued(issued)) => Ok(code_response(&issued)),
        // prompt=none and a page would be needed: the client hears it at
        // its redirect URI; out of band, the user is told.
        Some(Outcome::InteractionRequired(refused)) if refused.redirect_to.is_empty() => {
            Err(input.error(AuthError::invalid_request(format!(
                "{}: the application asked for no page (prompt=none), but you would have to sign in or consent.",
                refused.error
            ))))
        }
        Some(Outcome::InteractionRequired(refused)) => Ok(super::found(&refused.redirect_to)),
        None => Err(input.error(AuthError::internal())),
    }
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
        let request = p.request(String::new()).map_err(|e| input.error(e))?;
        return Ok(to_login(&authorize_url(&request)));
    };
    let request = p.request(session).map_err(|e| input.error(e))?;
    let request = grpc_request(request, &input.headers);
    if deny {
        let denied = input.answer(state.oauth().deny_authorization(request).await)?;
        return Ok(if denied.redirect_to.is_empty() {
            (StatusCode::OK, pages::oob_denied_page()).into_response()
        } else {
            super::found(&denied.redirect_to)
        });
    }
    let issued = input.answer(state.oauth().authorize(request).await)?;
    Ok(code_response(&issued))
}

/// The parameters of the out-of-band page.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct NativeParams {
    code: String,
}

/// GET /oauth/authorize/native?code=...: the out-of-band page, showing the
/// code to copy into the application. It shows what its URL holds and
/// nothing more; the code is only worth something with the client's
/// credentials, once, for a few minutes.
pub async fn native(input: PageInput) -> Result<Response, HttpError> {
    let NativeParams { code } = input.read()?;
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(input.error(AuthError::invalid_request(
            "Missing or malformed parameter: code.",
        )));
    }
    Ok(pages::oob_code_page(&code).into_response())
}

/// Longer than any code authd issues, short enough to show.
const MAX_CODE_LEN: usize = 128;
