//! Session and consent attacks (RFC 6819 4.4.1.9, RFC 9700 4.4/4.7):
//! cross-site forms need the browser's own CSRF token, a session id
//! planted in a browser is never promoted to a logged-in one, and logout
//! ends the session in the core, not only in the cookie.
use authd::proto::v1;

use super::*;

const CB: &str = "https://client.example/cb";

/// The session id a response set, if any.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("authd_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

async fn session_is_open(app: &TestApp, session: &str) -> bool {
    app.sessions()
        .get_session(v1::GetSessionRequest {
            session: session.into(),
        })
        .await
        .is_ok()
}

#[tokio::test]
async fn csrf_on_the_login_form_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    app.create_user("mallory", false).await;
    // Login CSRF: the attacker's page signs the victim into the attacker's
    // account, with no token, a made-up one, or the attacker's own.
    let attacker = app.browser();
    let attackers_token = attacker.csrf().await;
    let victim = app.browser();
    victim.csrf().await; // the victim has visited authd and holds a cookie
    for token in [None, Some("forged"), Some(attackers_token.as_str())] {
        let mut form = vec![
            ("email", email("mallory")),
            ("password", PASSWORD.to_owned()),
            ("next", "/".to_owned()),
        ];
        if let Some(token) = token {
            form.push(("csrf_token", token.to_owned()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = victim.post("/auth/sign_in", &form).await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert!(session_cookie(&response).is_none(), "token {token:?}");
    }
    // The cookies that carry it are SameSite and HttpOnly.
    let page = app
        .http()
        .get(app.url("/auth/sign_in"))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn csrf_on_the_consent_form_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[CB], "read").await;
    app.create_user("alice", false).await;
    let victim = app.browser();
    victim.login(&email("alice"), PASSWORD, "/").await;
    let attacker = app.browser();
    let attackers_token = attacker.csrf().await;
    for token in ["", "forged", attackers_token.as_str()] {
        let response = victim
            .post(
                "/oauth/authorize",
                &[
                    ("csrf_token", token),
                    ("response_type", "code"),
                    ("client_id", &client.client_id),
                    ("redirect_uri", CB),
                    ("scope", "read"),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert!(response.headers().get("location").is_none());
    }
    let codes: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM authorization_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(codes, 0, "no code was issued");
    // The consent page itself cannot be framed (clickjacking).
    let query = authorize_query(&client, CB, "read", "s");
    let consent = victim.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(consent.status(), 200);
    assert_eq!(consent.headers()["x-frame-options"], "DENY");
    assert!(
        consent.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn session_fixation_a_planted_session_is_never_promoted() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    app.create_user("mallory", false).await;
    // The attacker logs in and plants the session id in the victim's browser.
    let attacker = app.browser();
    let planted = session_cookie(&attacker.login(&email("mallory"), PASSWORD, "/").await)
        .expect("the attacker's session");
    let victim = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = victim.get(app.url("/auth/sign_in")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let response = victim
        .post(app.url("/auth/sign_in"))
        .header("cookie", format!("{csrf_cookie}; authd_session={planted}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", &email("alice")),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let fresh = session_cookie(&response).expect("a new session id");
    assert_ne!(fresh, planted, "the planted id was kept");
    assert!(
        !session_is_open(&app, &planted).await,
        "the planted session lives on"
    );
    let session = app
        .sessions()
        .get_session(v1::GetSessionRequest { session: fresh })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.account.unwrap().username, "alice");
    // A made-up id is no session at all.
    assert!(!session_is_open(&app, "made-up-session-id").await);
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let app = spawn_app().await;
    let client = app.register_app(&[CB], "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    let session = session_cookie(&browser.login(&email("alice"), PASSWORD, "/").await).unwrap();
    assert!(session_is_open(&app, &session).await);
    let csrf = browser.csrf().await;
    let response = browser
        .post("/auth/sign_out", &[("csrf_token", csrf.as_str())])
        .await;
    assert_eq!(response.status(), 302);
    assert!(
        !session_is_open(&app, &session).await,
        "the session outlived logout"
    );
    // Replaying the old cookie gets the login form, not consent.
    let query = authorize_query(&client, CB, "read", "s");
    let replay = app
        .http()
        .get(app.url(&format!("/oauth/authorize?{query}")))
        .header("cookie", format!("authd_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 302);
    assert!(
        location(&replay).starts_with("/auth/sign_in"),
        "{}",
        location(&replay)
    );
}
