//! The shim's two cookies. The login session lives in the core; the cookie
//! holds only its opaque id, so several shim replicas behave as one. CSRF
//! protection is a double-submit token: a random cookie that every form
//! repeats in a hidden field, checked in constant time, plus an Origin
//! check when the browser sends one.
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

use crate::domain::error::AuthError;
use crate::domain::secret::{ct_str_eq, random_token};

pub const SESSION_COOKIE: &str = "authd_session";
pub const CSRF_COOKIE: &str = "authd_csrf";

/// A cookie's value from the request.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

fn build(
    name: &str,
    value: String,
    max_age_secs: Option<i64>,
    secure: bool,
) -> Option<HeaderValue> {
    let mut c = Cookie::new(name.to_owned(), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(secure);
    if let Some(age) = max_age_secs {
        c.set_max_age(cookie::time::Duration::seconds(age));
    }
    HeaderValue::from_str(&c.to_string()).ok()
}

pub fn set_session(value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    build(SESSION_COOKIE, value.to_owned(), Some(max_age_secs), secure)
}

pub fn clear_session(secure: bool) -> Option<HeaderValue> {
    build(SESSION_COOKIE, String::new(), Some(0), secure)
}

/// The CSRF token of this browser, and the Set-Cookie that creates it when
/// the browser has none yet.
pub fn csrf_token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match get(headers, CSRF_COOKIE) {
        Some(token) => (token, None),
        None => {
            let token = random_token();
            let cookie = build(CSRF_COOKIE, token.clone(), None, secure);
            (token, cookie)
        }
    }
}

/// Checks a form submission: the hidden token equals the cookie, and a
/// browser-sent Origin names this host.
/// A form whose only parameter is its CSRF token (sign-out, revoking an
/// app from the page).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf_token: String,
}

pub fn verify_csrf(headers: &HeaderMap, submitted: &str) -> Result<(), AuthError> {
    let refused = || {
        AuthError::new(
            crate::domain::error::ErrorKind::Forbidden,
            "The form has expired or did not come from this site; go back, reload and try again.",
        )
    };
    let cookie = get(headers, CSRF_COOKIE).ok_or_else(refused)?;
    if submitted.is_empty() || !ct_str_eq(&cookie, submitted) {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
    {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or_default();
        if origin_host != host {
            return Err(refused());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn reads_cookies_among_others() {
        let h = headers(&[("cookie", "a=1; authd_session=abc; b=2")]);
        assert_eq!(get(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(get(&h, CSRF_COOKIE), None);
    }

    #[test]
    fn session_cookie_is_http_only_and_lax() {
        let v = set_session("abc", 60, false).unwrap();
        let s = v.to_str().unwrap();
        assert!(
            s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Path=/"),
            "{s}"
        );
        assert!(!s.contains("Secure"));
        assert!(
            set_session("abc", 60, true)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn csrf_requires_matching_token_and_same_origin() {
        let ok = headers(&[
            ("cookie", "authd_csrf=tok"),
            ("host", "auth.example"),
            ("origin", "https://auth.example"),
        ]);
        assert!(verify_csrf(&ok, "tok").is_ok());
        assert!(verify_csrf(&ok, "other").is_err());
        assert!(verify_csrf(&ok, "").is_err());
        let no_cookie = headers(&[("host", "auth.example")]);
        assert!(verify_csrf(&no_cookie, "tok").is_err());
        let cross = headers(&[
            ("cookie", "authd_csrf=tok"),
            ("host", "auth.example"),
            ("origin", "https://evil.example"),
        ]);
        assert!(verify_csrf(&cross, "tok").is_err());
        let no_origin = headers(&[("cookie", "authd_csrf=tok"), ("host", "auth.example")]);
        assert!(verify_csrf(&no_origin, "tok").is_ok());
    }
}
