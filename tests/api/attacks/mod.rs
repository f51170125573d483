//! The attack matrix: one test per attack, named after what it attacks.
//! The cases come from RFC 9700 (OAuth 2.0 Security Best Current
//! Practice), RFC 6819 (threat model), and advisories against other
//! servers; SECURITY.md lists them with the test that covers each. The
//! tests go in through the front door (the HTTP shim, as an attacker
//! would), over a real PostgreSQL.
mod admin_scopes;
mod client_auth;
mod codes;
mod cold_lookups;
mod connections;
mod cost;
mod hostile_values;
mod input;
mod login;
mod matrix;
mod pkce;
mod redirect_uri;
mod scopes;
mod sessions;
mod tokens;

use crate::helpers::*;

/// POSTs a form to an OAuth endpoint; the status and the JSON answer.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let response = app
        .http()
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// Whether `caller` sees `token` as active, asked over HTTP.
pub async fn active(app: &TestApp, caller: &TestClient, token: &str) -> bool {
    let (status, body) = post_form(
        app,
        "/oauth/introspect",
        &[
            ("token", token),
            ("client_id", &caller.client_id),
            ("client_secret", &caller.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["active"].as_bool().expect("active")
}

/// An authorization code for `user`, over gRPC (the setup, not the attack).
pub async fn code_for(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
    redirect_uri: &str,
    scope: &str,
    challenge: Option<&str>,
) -> String {
    app.authorize(user, client, redirect_uri, scope, challenge)
        .await
}

/// Redeems a code over HTTP.
pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.client_secret.as_str()),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    post_form(app, "/oauth/token", &form).await
}

/// Asserts an RFC 6749 error answer.
pub fn assert_oauth_error(answer: &(u16, serde_json::Value), status: u16, error: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
}
