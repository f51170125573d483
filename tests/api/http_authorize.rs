//! GET/POST /oauth/authorize, the login form and the pages, over HTTP.
use reqwest::StatusCode;

use crate::helpers::*;

const CB: &str = "https://app.example/cb";

/// A query parameter of a Location, absolute or relative to authd.
fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .or_else(|_| url::Url::parse(&format!("http://authd{location}")))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn assert_page_headers(response: &reqwest::Response) {
    let h = response.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn an_anonymous_authorize_request_goes_to_the_login_form_and_comes_back() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    let query = authorize_query(&client, CB, "read", "st");
    let first = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(first.status(), StatusCode::FOUND);
    let login_url = location(&first);
    assert!(
        login_url.starts_with("/auth/sign_in?next=%2Foauth%2Fauthorize%3F"),
        "{login_url}"
    );

    let form = browser.get(&login_url).await;
    assert_eq!(form.status(), 200);
    assert_page_headers(&form);
    let csrf_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("authd_csrf="))
        .expect("csrf cookie");
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    let page = form.text().await.unwrap();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let next = hidden(&page, "next").unwrap();
    assert!(next.starts_with("/oauth/authorize?"), "{next}");

    let logged_in = browser
        .post(
            "/auth/sign_in",
            &[
                ("csrf_token", &csrf),
                ("email", &email("alice")),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(logged_in.status(), StatusCode::FOUND);
    assert_eq!(location(&logged_in), next);
    let session_cookie = logged_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("authd_session="))
        .expect("session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );

    let consent = browser.get(&next).await;
    assert_eq!(consent.status(), 200);
    assert_page_headers(&consent);
    let page = consent.text().await.unwrap();
    assert!(page.contains("Hi alice!"));
    assert!(page.contains("Application <strong>Test App</strong> would like to perform actions on your behalf, with scope <em>read</em>"));
    assert!(page.contains(r#"name="csrf_token""#));
}

#[tokio::test]
async fn allow_redirects_with_code_and_state_and_the_code_works() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read write").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let allowed = browser
        .approve(&authorize_query(&client, CB, "read write", "xyz"))
        .await;
    assert_eq!(allowed.status(), StatusCode::FOUND);
    let target = url::Url::parse(&location(&allowed)).unwrap();
    assert_eq!(&target[..url::Position::AfterPath], CB);
    let code = target
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        target.query_pairs().find(|(k, _)| k == "state").unwrap().1,
        "xyz"
    );
    let token = app.exchange_code(&client, &code, CB, "").await.unwrap();
    assert_eq!(token.scope, "read write");
}

#[tokio::test]
async fn out_of_band_allow_shows_the_code_on_a_page() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let approved = browser
        .approve(&authorize_query(&client, OOB, "read", ""))
        .await;
    // As Doorkeeper does: a redirect to the page that shows the code, which
    // clients with embedded web views watch for.
    assert_eq!(approved.status(), StatusCode::FOUND);
    let target = location(&approved);
    assert!(
        target.starts_with("/oauth/authorize/native?code="),
        "{target}"
    );
    let page = browser.get(&target).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Copy this authorization code and paste it to the application."),
        "{html}"
    );
    let code = oob_code(&html).unwrap();
    assert_eq!(
        target,
        format!("/oauth/authorize/native?code={code}"),
        "the page shows the code of its URL"
    );
    assert!(app.exchange_code(&client, &code, OOB, "").await.is_ok());
    // Without a code there is nothing to show.
    for bad in ["/oauth/authorize/native", "/oauth/authorize/native?code="] {
        assert_eq!(
            browser.get(bad).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let long = format!("/oauth/authorize/native?code={}", "a".repeat(200));
    assert_eq!(browser.get(&long).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn force_login_without_a_session_still_asks_for_consent_after_the_login() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    app.create_user("alice", false).await;
    // Consent given once, and a token held: remembered.
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let approved = browser
        .approve(&authorize_query(&client, CB, "read", "a"))
        .await;
    let code = query_param(&location(&approved), "code").expect("code");
    app.exchange_code(&client, &code, CB, "").await.unwrap();

    // Another browser, signed out: a multi-account client's second login.
    let fresh = app.browser();
    let forced = fresh
        .get(&format!(
            "/oauth/authorize?{}&force_login=true",
            authorize_query(&client, CB, "read", "b")
        ))
        .await;
    let login = location(&forced);
    assert!(login.starts_with("/auth/sign_in?next="), "{login}");
    let next = query_param(&login, "next").expect("next");
    let signed_in = fresh.login(&email("alice"), PASSWORD, &next).await;
    assert_eq!(location(&signed_in), next);
    let consent = fresh.get(&next).await;
    assert_eq!(
        consent.status(),
        200,
        "Mastodon never answers at once when force_login is true: {:?}",
        consent.headers().get("location")
    );
    assert!(
        consent
            .text()
            .await
            .unwrap()
            .contains("would like to perform actions")
    );
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_or_shows_a_page_for_oob() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(&format!("{CB} {OOB}"), "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let csrf = browser.csrf().await;
    let deny = |redirect_uri: &'static str| {
        let client_id = client.client_id.clone();
        let csrf = csrf.clone();
        let browser = &browser;
        async move {
            browser
                .post(
                    "/oauth/authorize",
                    &[
                        ("csrf_token", &csrf),
                        ("response_type", "code"),
                        ("client_id", &client_id),
                        ("redirect_uri", redirect_uri),
                        ("state", "st8"),
                        ("decision", "deny"),
                    ],
                )
                .await
        }
    };
    let denied = deny(CB).await;
    assert_eq!(denied.status(), StatusCode::FOUND);
    let target = location(&denied);
    assert!(
        target.starts_with(&format!("{CB}?error=access_denied&")),
        "{target}"
    );
    assert!(target.ends_with("&state=st8"));
    let oob = deny(OOB).await;
    assert_eq!(oob.status(), 200);
    assert!(oob.text().await.unwrap().contains("Access denied"));
    let codes: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM authorization_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(codes, 0, "denying issues nothing");
}

#[tokio::test]
async fn consent_is_skipped_when_the_same_scopes_were_granted_unless_force_login() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read write").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let approved = browser
        .approve(&authorize_query(&client, CB, "read", "a"))
        .await;
    // Consent is remembered while a token of the app is held: redeem it.
    let code = query_param(&location(&approved), "code").expect("code");
    let token = app
        .http()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);

    let again = browser
        .get(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, CB, "read", "b")
        ))
        .await;
    assert_eq!(again.status(), StatusCode::FOUND, "consent skipped");
    assert!(location(&again).starts_with(&format!("{CB}?code=")));

    let wider = browser
        .get(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, CB, "read write", "c")
        ))
        .await;
    assert_eq!(wider.status(), 200, "more scopes need consent");

    let forced = browser
        .get(&format!(
            "/oauth/authorize?{}&force_login=true",
            authorize_query(&client, CB, "read", "d")
        ))
        .await;
    assert_eq!(forced.status(), StatusCode::FOUND);
    let login = location(&forced);
    assert!(
        login.starts_with("/auth/sign_in?next="),
        "force_login asks for the login again: {login}"
    );
    // A link cannot sign anyone out: the session is still open (the
    // sign-in replaces it).
    let after = browser
        .get(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, CB, "read", "e")
        ))
        .await;
    assert!(location(&after).starts_with(&format!("{CB}?code=")));
    // After logging in again, consent is asked even though it was given.
    let next = query_param(&login, "next").expect("next");
    let relogin = browser.login(&email("alice"), PASSWORD, &next).await;
    assert_eq!(location(&relogin), next);
    let consent = browser.get(&next).await;
    assert_eq!(consent.status(), 200);
    assert!(
        consent
            .text()
            .await
            .unwrap()
            .contains("would like to perform actions")
    );
}

#[tokio::test]
async fn client_and_redirect_errors_are_pages_never_redirects() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let ghost = TestClient {
        client_id: "ghost".into(),
        client_secret: String::new(),
        app_id: String::new(),
    };
    let cases = [
        (
            authorize_query(&ghost, CB, "read", "s"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            authorize_query(&client, "https://evil.example/cb", "read", "s"),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            authorize_query(&client, CB, "admin:write", "s"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            format!("client_id={}&redirect_uri={CB}", client.client_id),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            format!(
                "{}&code_challenge=x&code_challenge_method=plain",
                authorize_query(&client, CB, "read", "s")
            ),
            StatusCode::BAD_REQUEST,
            "invalid_code_challenge_method",
        ),
        (
            "response_type=code".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (query, status, name) in cases {
        let response = browser.get(&format!("/oauth/authorize?{query}")).await;
        assert_eq!(response.status(), status, "{query}");
        assert!(
            response.headers().get("location").is_none(),
            "never redirected: {query}"
        );
        assert_page_headers(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains(name), "{query}: {html}");
    }
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    let login = browser
        .post(
            "/auth/sign_in",
            &[("email", email("alice").as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    browser.login(&email("alice"), PASSWORD, "/").await;
    let forged = browser
        .post(
            "/oauth/authorize",
            &[
                ("csrf_token", "forged"),
                ("response_type", "code"),
                ("client_id", &client.client_id),
                ("redirect_uri", CB),
            ],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("location").is_none());
    let codes: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM authorization_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(codes, 0);
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_without_saying_which_part_was_wrong() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    for (who, password) in [
        (email("alice"), "wrong password"),
        ("nobody@example.org".to_owned(), PASSWORD),
    ] {
        let response = browser.login(&who, password, "/").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let html = response.text().await.unwrap();
        assert!(html.contains("Invalid email or password."));
        assert!(
            html.contains(&format!("value=\"{who}\"")),
            "the email is kept"
        );
    }
}

#[tokio::test]
async fn logout_ends_the_session_in_the_core() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    let login = browser.login(&email("alice"), PASSWORD, "/").await;
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("authd_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = browser.csrf().await;
    let out = browser
        .post("/auth/sign_out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status(), StatusCode::FOUND);
    // Replaying the old cookie does not bring the session back.
    let replay = app
        .http()
        .get(app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, CB, "read", "s")
        )))
        .header("cookie", format!("authd_session={session}"))
        .send()
        .await
        .unwrap();
    assert!(location(&replay).starts_with("/auth/sign_in"));
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    for next in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let response = app.browser().login(&email("alice"), PASSWORD, next).await;
        assert_eq!(
            location(&response),
            "/oauth/authorized_applications",
            "{next}"
        );
    }
}

#[tokio::test]
async fn pages_escape_what_they_print() {
    let app = spawn_app().await;
    let registered: serde_json::Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({
            "client_name": "<script>alert(1)</script>",
            "redirect_uris": CB,
            "scopes": "read",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = TestClient {
        client_id: registered["client_id"].as_str().unwrap().into(),
        client_secret: registered["client_secret"].as_str().unwrap().into(),
        app_id: registered["id"].as_str().unwrap().into(),
    };
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let query = authorize_query(&client, CB, "read", "\"><img src=x onerror=alert(2)>");
    let html = browser
        .get(&format!("/oauth/authorize?{query}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

#[tokio::test]
async fn prompt_none_redirects_login_required_instead_of_showing_the_login_page() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(&format!("{CB} {OOB}"), "read").await;
    let browser = app.browser();
    let answer = browser
        .get(&format!(
            "/oauth/authorize?{}&prompt=none",
            authorize_query(&client, CB, "read", "n1")
        ))
        .await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    let target = location(&answer);
    assert!(
        target.starts_with(&format!("{CB}?error=login_required&")),
        "{target}"
    );
    assert!(target.ends_with("&state=n1"), "{target}");
    // Out of band there is no client to tell: a page says why.
    let oob = browser
        .get(&format!(
            "/oauth/authorize?{}&prompt=none",
            authorize_query(&client, OOB, "read", "n2")
        ))
        .await;
    assert_eq!(oob.status(), StatusCode::BAD_REQUEST);
    assert!(oob.text().await.unwrap().contains("login_required"));
}

#[tokio::test]
async fn a_malformed_max_age_is_a_page_not_a_redirect() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(CB, "read").await;
    let browser = app.browser();
    for bad in ["-1", "soon", "99999999999"] {
        let answer = browser
            .get(&format!(
                "/oauth/authorize?{}&max_age={bad}",
                authorize_query(&client, CB, "read", "m")
            ))
            .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "max_age={bad}");
    }
}
