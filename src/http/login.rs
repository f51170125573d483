//! The login form. A successful login opens a session in the core and sets
//! its id as an HttpOnly, SameSite=Lax cookie; any session the browser had
//! before is ended first, so a session id planted in the browser is never
//! promoted to a logged-in one (session fixation).
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cookies::CsrfForm;
use super::cookies::{self, SESSION_COOKIE};
use super::error::HttpError;
use super::input::{ClientAddress, PageInput};
use super::pages;
use super::state::{ShimState, from_core, grpc_request};
use crate::domain::error::ErrorKind;
use crate::proto::v1;

const DEFAULT_NEXT: &str = "/oauth/authorized_applications";

/// Only paths on this site: "//evil.example" and "/\evil.example" are
/// other sites to a browser.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if ok { next } else { DEFAULT_NEXT }
}

/// A redirect to the login form, which comes back to `next` afterwards.
pub fn to_login(next: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", safe_next(next))
        .finish();
    super::found(&format!("/auth/sign_in?{query}"))
}

/// Adds a Set-Cookie header, if there is one to add.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn form(
    state: &ShimState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = cookies::csrf_token(headers, state.secure_cookies());
    let page = pages::login_page(&csrf, safe_next(next), email, error);
    with_cookie((status, page).into_response(), cookie)
}

/// GET /auth/sign_in
pub async fn sign_in_form(
    State(state): State<ShimState>,
    input: PageInput,
) -> Result<Response, HttpError> {
    let SignInFormParams { next } = input.read()?;
    Ok(form(
        &state,
        &input.headers,
        StatusCode::OK,
        &next,
        "",
        None,
    ))
}

/// The parameters of the sign-in page: where to go after it.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct SignInFormParams {
    next: String,
}

/// The parameters of the sign-in form.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct SignInParams {
    csrf_token: String,
    next: String,
    email: String,
    password: String,
}

/// POST /auth/sign_in
pub async fn sign_in(
    State(state): State<ShimState>,
    client: ClientAddress,
    input: PageInput,
) -> Result<Response, HttpError> {
    let SignInParams {
        csrf_token,
        next,
        email,
        password,
    } = input.read()?;
    input.verify_csrf(&csrf_token)?;
    let secure = state.secure_cookies();
    if let Some(old) = cookies::get(&input.headers, SESSION_COOKIE) {
        let _ = state
            .sessions()
            .logout(v1::LogoutRequest { session: old })
            .await;
    }
    let request = client.forward(grpc_request(
        v1::LoginRequest {
            email: email.clone(),
            password,
        },
        &input.headers,
    ));
    match from_core(state.sessions().login(request).await) {
        Ok(opened) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or_default();
            let cookie =
                cookies::set_session(&opened.session, (opened.expires_at - now).max(0), secure);
            Ok(with_cookie(super::found(safe_next(&next)), cookie))
        }
        Err(e) if e.kind == ErrorKind::InvalidCredentials => Ok(form(
            &state,
            &input.headers,
            StatusCode::UNAUTHORIZED,
            &next,
            &email,
            Some("Invalid email or password."),
        )),
        Err(e) if e.kind == ErrorKind::RateLimited => {
            let mut response = form(
                &state,
                &input.headers,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &email,
                Some(&e.description),
            );
            if let Some(throttle) = e.throttle {
                super::error::add_rate_limit_headers(response.headers_mut(), throttle);
            }
            Ok(response)
        }
        Err(e) if e.kind == ErrorKind::AccountDisabled => Ok(form(
            &state,
            &input.headers,
            StatusCode::FORBIDDEN,
            &next,
            &email,
            Some(&e.description),
        )),
        Err(e) => Err(input.error(e)),
    }
}

/// POST /auth/sign_out: ends the session in the core, not only the cookie.
pub async fn sign_out(
    State(state): State<ShimState>,
    input: PageInput,
) -> Result<Response, HttpError> {
    let form: CsrfForm = input.read()?;
    input.verify_csrf(&form.csrf_token)?;
    if let Some(session) = cookies::get(&input.headers, SESSION_COOKIE) {
        input.answer(
            state
                .sessions()
                .logout(grpc_request(v1::LogoutRequest { session }, &input.headers))
                .await,
        )?;
    }
    let cookie = cookies::clear_session(state.secure_cookies());
    Ok(with_cookie(super::found("/auth/sign_in"), cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(
            safe_next("/oauth/authorize?client_id=x"),
            "/oauth/authorize?client_id=x"
        );
        for evil in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "",
            "/a\r\nSet-Cookie: x=y",
        ] {
            assert_eq!(safe_next(evil), DEFAULT_NEXT, "{evil:?}");
        }
    }
}
