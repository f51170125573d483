//! Client authentication attacks (RFC 6749 section 2.3, RFC 6819 5.2.3):
//! wrong, empty and huge secrets, and Basic and form credentials that
//! disagree, all answer 401 invalid_client with a Basic challenge.
use base64::Engine;

use super::*;

fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(id),
            encode(secret)
        ))
    )
}

async fn client_credentials_with_secret(
    app: &TestApp,
    client: &TestClient,
    secret: &str,
) -> reqwest::Response {
    app.http()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
}

/// A 401 invalid_client. The secret came in the body: no Basic challenge
/// (RFC 6749 section 5.2), but Doorkeeper's Bearer one with the error.
async fn assert_invalid_client(response: reqwest::Response) {
    assert_invalid_client_challenged(response, "Bearer").await;
}

/// A 401 invalid_client whose challenge names `scheme` and the error.
async fn assert_invalid_client_challenged(response: reqwest::Response, scheme: &str) {
    assert_eq!(response.status(), 401);
    let prefix = format!("{scheme} realm=\"authd\", error=\"invalid_client\", error_description=");
    assert!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&prefix)),
        "{:?}",
        response.headers()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_auth_with_a_wrong_secret_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let mut wrong = client.client_secret.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    assert_invalid_client(client_credentials_with_secret(&app, &client, &wrong).await).await;
    // Another app's real secret is just as wrong.
    let other = app.register_app(&[OOB], "read").await;
    assert_invalid_client(
        client_credentials_with_secret(&app, &client, &other.client_secret).await,
    )
    .await;
}

#[tokio::test]
async fn client_auth_with_an_empty_secret_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    assert_invalid_client(client_credentials_with_secret(&app, &client, "").await).await;
    let no_secret = app
        .http()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_invalid_client(no_secret).await;
    let empty_basic = app
        .http()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&client.client_id, ""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client_challenged(empty_basic, "Basic").await;
}

#[tokio::test]
async fn client_auth_with_a_10_kb_secret_is_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let huge = format!("{}{}", client.client_secret, "A".repeat(10 * 1024));
    assert_invalid_client(client_credentials_with_secret(&app, &client, &huge).await).await;
    let huge_basic = app
        .http()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&client.client_id, &huge))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client_challenged(huge_basic, "Basic").await;
}

#[tokio::test]
async fn client_auth_basic_and_post_credentials_that_disagree_are_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    // Basic names one client, the form another: each is valid alone.
    let response = app
        .http()
        .post(app.url("/oauth/token"))
        .header(
            "authorization",
            basic(&client.client_id, &client.client_secret),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", other.client_id.as_str()),
            ("client_secret", other.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        response.status() == 400 || response.status() == 401,
        "{}",
        response.status()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
    // Same client in both, secrets differ.
    let response = app
        .http()
        .post(app.url("/oauth/token"))
        .header(
            "authorization",
            basic(&client.client_id, &client.client_secret),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
}
