//! GET/POST /oauth/end_session: OpenID Connect RP-initiated logout. The
//! core checks the request and decides whether to ask the user; this
//! renders its answer and clears the cookie once the session is ended.
//! A bad request (a forged hint, an unregistered post_logout_redirect_uri)
//! is shown as a page, never redirected.
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::cookies::{self, SESSION_COOKIE};
use super::error::HttpError;
use super::input::PageInput;
use super::login::with_cookie;
use super::pages;
use super::state::{ShimState, grpc_request};
use crate::domain::error::AuthError;
use crate::proto::v1;
use crate::proto::v1::end_session_response::Outcome;

/// The parameters of RP-Initiated Logout 1.0 section 2, and the
/// confirmation form's own.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct EndSessionParams {
    id_token_hint: String,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
    /// The confirmation form's: present only when the user submitted it.
    csrf_token: String,
}

impl EndSessionParams {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id_token_hint", self.id_token_hint.clone()),
            ("client_id", self.client_id.clone()),
            (
                "post_logout_redirect_uri",
                self.post_logout_redirect_uri.clone(),
            ),
            ("state", self.state.clone()),
        ]
    }
}

/// GET or POST /oauth/end_session. A POST that carries the confirmation
/// form's CSRF token is the user's confirmation; any other request (the
/// RP's redirect, by GET or an auto-submitted form) is only a request.
pub async fn end_session(
    State(state): State<ShimState>,
    input: PageInput,
) -> Result<Response, HttpError> {
    let params: EndSessionParams = input.read()?;
    let confirmed = !params.csrf_token.is_empty();
    if confirmed {
        input.verify_csrf(&params.csrf_token)?;
    }
    let session = cookies::get(&input.headers, SESSION_COOKIE);
    let request = v1::EndSessionRequest {
        session: session.clone().unwrap_or_default(),
        id_token_hint: params.id_token_hint.clone(),
        client_id: params.client_id.clone(),
        post_logout_redirect_uri: params.post_logout_redirect_uri.clone(),
        state: params.state.clone(),
        confirmed,
    };
    let answer = input.answer(
        state
            .sessions()
            .end_session(grpc_request(request, &input.headers))
            .await,
    )?;
    match answer.outcome {
        Some(Outcome::ConfirmationNeeded(confirmation)) => {
            let (csrf, cookie) = cookies::csrf_token(&input.headers, state.secure_cookies());
            let page =
                pages::logout_confirmation_page(&csrf, &confirmation.client_name, &params.fields());
            Ok(with_cookie(page.into_response(), cookie))
        }
        Some(Outcome::SignedOut(signed_out)) => {
            let response = if signed_out.redirect_to.is_empty() {
                pages::signed_out_page().into_response()
            } else {
                super::found(&signed_out.redirect_to)
            };
            let cookie = session.and_then(|_| cookies::clear_session(state.secure_cookies()));
            Ok(with_cookie(response, cookie))
        }
        None => Err(input.error(AuthError::internal())),
    }
}
