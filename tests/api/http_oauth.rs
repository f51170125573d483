//! POST /oauth/token, /oauth/revoke and /oauth/introspect over HTTP.
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn basic(client: &TestClient) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", client.client_id, client.client_secret))
    )
}

#[tokio::test]
async fn client_credentials_with_post_and_basic_auth_and_no_store_headers() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let post = app
        .http()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
            ("redirect_uri", OOB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.headers()["cache-control"], "no-store");
    assert_eq!(post.headers()["pragma"], "no-cache");
    let raw = post.text().await.unwrap();
    let token: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        token.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "token_type", "scope", "created_at"],
        "no expires_in or refresh_token when tokens do not expire"
    );
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "read");
    assert!(token["created_at"].as_i64().unwrap() > 1_700_000_000);

    let basic_auth = app
        .http()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&client))
        .json(&json!({"grant_type": "client_credentials", "scope": "write"}))
        .send()
        .await
        .unwrap();
    assert_eq!(basic_auth.status(), 200);
    assert_eq!(basic_auth.json::<Value>().await.unwrap()["scope"], "write");
}

#[tokio::test]
async fn token_endpoint_errors_are_rfc6749_json() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let token = |body: Value| app.http().post(app.url("/oauth/token")).json(&body).send();
    let cases = [
        (
            json!({"client_id": client.client_id, "client_secret": client.client_secret}),
            400,
            "invalid_request",
            Some("Missing required parameter: grant_type."),
        ),
        (
            json!({"grant_type": "password", "client_id": client.client_id, "client_secret": client.client_secret, "username": "a", "password": "b"}),
            400,
            "unsupported_grant_type",
            None,
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": "wrong"}),
            401,
            "invalid_client",
            None,
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}),
            401,
            "invalid_client",
            None,
        ),
        (
            json!({"grant_type": "client_credentials"}),
            401,
            "invalid_client",
            None,
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret, "scope": "admin:write"}),
            400,
            "invalid_scope",
            None,
        ),
        (
            json!({"grant_type": "authorization_code", "client_id": client.client_id, "client_secret": client.client_secret, "redirect_uri": OOB}),
            400,
            "invalid_request",
            Some("Missing required parameter: code."),
        ),
        (
            json!({"grant_type": "authorization_code", "client_id": client.client_id, "client_secret": client.client_secret, "redirect_uri": OOB, "code": "nope"}),
            400,
            "invalid_grant",
            None,
        ),
        (
            json!({"grant_type": "refresh_token", "client_id": client.client_id, "client_secret": client.client_secret, "refresh_token": "nope"}),
            400,
            "invalid_grant",
            None,
        ),
    ];
    for (body, status, error, description) in cases {
        let response = token(body.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let www = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], error, "{body}");
        assert!(answer["error_description"].is_string());
        if let Some(d) = description {
            assert_eq!(answer["error_description"], d);
        }
        if status == 401 {
            // Credentials in the body: Doorkeeper's challenge, not Basic.
            let www = www.expect("401 carries a challenge");
            assert!(
                www.starts_with(
                    "Bearer realm=\"authd\", error=\"invalid_client\", error_description=\""
                ),
                "{www}"
            );
        }
    }
}

#[tokio::test]
async fn basic_and_post_credentials_that_disagree_are_refused() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let (other, _) = app.http_register(OOB, "read").await;
    let response = app
        .http()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&client))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &other.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_duplicated_parameter_is_an_invalid_request() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let response = app
        .http()
        .post(app.url(&format!(
            "/oauth/token?grant_type=client_credentials&client_id={}",
            client.client_id
        )))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &client.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Parameter grant_type was given more than once."
    );
}

#[tokio::test]
async fn authorization_code_flow_over_http_with_pkce_and_code_reuse() {
    let app = spawn_app().await;
    let (client, _) = app
        .http_register("https://app.example/cb", "read write")
        .await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let query = format!(
        "{}&code_challenge={}&code_challenge_method=S256",
        authorize_query(&client, "https://app.example/cb", "read", "s1"),
        authd::domain::pkce::CodeChallenge::for_verifier(verifier)
    );
    let redirect = browser.approve(&query).await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let target = url::Url::parse(&location(&redirect)).unwrap();
    let code = target
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        target.query_pairs().find(|(k, _)| k == "state").unwrap().1,
        "s1"
    );

    let exchange = |verifier: &'static str| {
        app.http()
            .post(app.url("/oauth/token"))
            .header("authorization", basic(&client))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "https://app.example/cb"),
                ("code_verifier", verifier),
            ])
            .send()
    };
    let missing = exchange("").await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let token: Value = exchange(verifier).await.unwrap().json().await.unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token["scope"], "read");

    let reused = exchange(verifier).await.unwrap();
    assert_eq!(reused.status(), 400);
    assert_eq!(
        reused.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let verify = app
        .http()
        .get(app.url("/api/v1/accounts/verify_credentials"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), 401, "the reused code's token is revoked");
}

#[tokio::test]
async fn refresh_tokens_rotate_over_http() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(600)).await;
    let (client, _) = app.http_register(OOB, "read").await;
    let user = app.create_user("alice", false).await;
    let first = app.user_token(&user, &client, "read").await;
    let refresh = |token: String| {
        app.http()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.client_secret.as_str()),
            ])
            .send()
    };
    let rotated: Value = refresh(first.refresh_token.clone().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["expires_in"], 600);
    assert!(rotated["refresh_token"].is_string());
    let reuse = refresh(first.refresh_token.unwrap()).await.unwrap();
    assert_eq!(reuse.status(), 400);
    assert_eq!(
        reuse.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn revoke_and_introspect_over_http() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let (other, _) = app.http_register(OOB, "read").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await;
    let introspect = |caller: &TestClient, token: &str| {
        app.http()
            .post(app.url("/oauth/introspect"))
            .header("authorization", basic(caller))
            .form(&[("token", token)])
            .send()
    };
    let active: Value = introspect(&client, &token.access_token)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["scope"], "read");
    assert_eq!(active["client_id"], client.client_id.as_str());
    assert_eq!(active["username"], "alice");
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["iat"], token.created_at);
    assert_eq!(active["sub"], user.id.as_str());
    assert_eq!(active["iss"], "http://authd.test");
    assert!(active.get("exp").is_none(), "never expires");
    let foreign: Value = introspect(&other, &token.access_token)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign, json!({"active": false}));

    let forbidden = app
        .http()
        .post(app.url("/oauth/revoke"))
        .form(&[
            ("token", token.access_token.as_str()),
            ("client_id", &other.client_id),
            ("client_secret", &other.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );

    for t in [token.access_token.as_str(), "never-issued"] {
        let revoked = app
            .http()
            .post(app.url("/oauth/revoke"))
            .header("authorization", basic(&client))
            .form(&[("token", t)])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        assert_eq!(revoked.json::<Value>().await.unwrap(), json!({}));
    }
    let inactive = introspect(&client, &token.access_token)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(inactive, r#"{"active":false}"#);

    let unauthenticated = app
        .http()
        .post(app.url("/oauth/introspect"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

/// POST /oauth/revoke answers as Doorkeeper 5 (Mastodon 4.7): 403
/// `unauthorized_client` for a caller that is missing or fails to
/// authenticate and for another client's token; 200 `{}` for a blank, an
/// unknown or an already revoked token.
#[tokio::test]
async fn http_revocation_answers_as_doorkeeper() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    let revoke = |form: Vec<(&'static str, String)>| {
        let request = app.http().post(app.url("/oauth/revoke")).form(&form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let refused = json!({
        "error": "unauthorized_client",
        "error_description": "You are not authorized to revoke this token",
    });
    let no_client = revoke(vec![("token", token.clone())]).await;
    assert_eq!(no_client, (StatusCode::FORBIDDEN, refused.clone()));
    let wrong_secret = revoke(vec![
        ("token", token.clone()),
        ("client_id", client.client_id.clone()),
        ("client_secret", "wrong".into()),
    ])
    .await;
    assert_eq!(wrong_secret, (StatusCode::FORBIDDEN, refused));
    assert!(app.introspect(&client, &token).await.is_active());

    let as_client = |t: &str| {
        vec![
            ("token", t.to_owned()),
            ("client_id", client.client_id.clone()),
            ("client_secret", client.client_secret.clone()),
        ]
    };
    for t in ["", token.as_str(), token.as_str(), "never-issued"] {
        assert_eq!(
            revoke(as_client(t)).await,
            (StatusCode::OK, json!({})),
            "token {t:?}"
        );
    }
    assert!(!app.introspect(&client, &token).await.is_active());
}

/// RFC 6749 section 5.2 and Doorkeeper's ErrorResponse#headers: a client
/// that authenticated with the Authorization header is challenged in its
/// scheme, Basic; one that sent its secret in the body never gets a Basic
/// challenge (a browser would prompt for a password), but Doorkeeper's
/// Bearer one. Both carry error="invalid_client" and its description.
#[tokio::test]
async fn invalid_client_is_challenged_in_the_scheme_the_client_used() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    // (/oauth/revoke answers a failed client authentication as Doorkeeper
    // does, 403 unauthorized_client: http_revocation_answers_as_doorkeeper.)
    for path in ["/oauth/token", "/oauth/introspect"] {
        let in_body = app
            .http()
            .post(app.url(path))
            .form(&[
                ("grant_type", "client_credentials"),
                ("token", "x"),
                ("client_id", client.client_id.as_str()),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(in_body.status(), 401, "{path}");
        let www = in_body.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = in_body.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(!www.starts_with("Basic"), "{path}: {www}");
        assert_eq!(
            www,
            format!(
                "Bearer realm=\"authd\", error=\"invalid_client\", error_description=\"{}\"",
                body["error_description"].as_str().unwrap()
            ),
            "{path}"
        );

        let in_header = app
            .http()
            .post(app.url(path))
            .basic_auth(&client.client_id, Some("wrong"))
            .form(&[("grant_type", "client_credentials"), ("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(in_header.status(), 401, "{path}");
        let www = in_header.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = in_header.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(
            www,
            format!(
                "Basic realm=\"authd\", error=\"invalid_client\", error_description=\"{}\"",
                body["error_description"].as_str().unwrap()
            ),
            "{path}"
        );
    }
}
