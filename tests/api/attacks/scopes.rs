//! Scope escalation (RFC 6749 sections 3.3 and 6, RFC 6819 5.1.5.1): a
//! token never carries more than the app registered, the user granted, or
//! (on refresh) the original grant held.
use std::time::Duration;

use super::*;

#[tokio::test]
async fn scope_the_app_lacks_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    app.create_user("alice", false).await;
    // client_credentials
    let answer = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
            ("scope", "read write"),
        ],
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_scope");
    // authorization: admin scopes the app never registered
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let query = authorize_query(&client, OOB, "read admin:write", "s");
    let response = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn refresh_asking_for_more_than_was_granted_is_refused() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(600)).await;
    // The app may have write, but the user granted read only.
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let code = code_for(&app, &user, &client, OOB, "read", None).await;
    let tokens = redeem(&app, &client, &code, OOB, None).await.1;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for wider in ["read write", "write", "read admin:read", "follow"] {
        let answer = post_form(
            &app,
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client.client_id),
                ("client_secret", &client.client_secret),
                ("scope", wider),
            ],
        )
        .await;
        assert_oauth_error(&answer, 400, "invalid_scope");
    }
    // Narrowing is allowed, and the refused attempts did not burn it.
    let narrower = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
            ("scope", "read:accounts"),
        ],
    )
    .await;
    assert_eq!(narrower.0, 200, "{}", narrower.1);
    assert_eq!(narrower.1["scope"], "read:accounts");
}

#[tokio::test]
async fn unknown_scope_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    for unknown in [
        "reads",
        "read:everything",
        "admin",
        "READ",
        "read\u{0}",
        "openid%20read",
    ] {
        let answer = post_form(
            &app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.client_id),
                ("client_secret", &client.client_secret),
                ("scope", unknown),
            ],
        )
        .await;
        assert_oauth_error(&answer, 400, "invalid_scope");
    }
    // Nor can an app register one.
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({
            "client_name": "greedy",
            "redirect_uris": OOB,
            "scopes": "read superuser",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}
