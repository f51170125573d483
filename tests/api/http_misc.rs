//! Account endpoints, discovery, health, authorized applications, and the
//! shim's behaviour when the core is unreachable.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn verify_account_credentials_returns_the_account_entity() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    let response = app
        .http()
        .get(app.url("/api/v1/accounts/verify_credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["id"], user.id.as_str());
    assert_eq!(account["username"], "alice");
    assert_eq!(account["acct"], "alice");
    assert_eq!(account["url"], "http://authd.test/@alice");
    assert!(
        account["created_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z")
    );
    for field in [
        "display_name",
        "locked",
        "bot",
        "note",
        "avatar",
        "header",
        "followers_count",
        "emojis",
        "fields",
        "source",
    ] {
        assert!(account.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn verify_account_credentials_errors_match_mastodon() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let user = app.create_user("alice", false).await;
    let write_only = app.user_token(&user, &client, "write").await.access_token;
    let app_only = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    for (token, status, message) in [
        (
            write_only.as_str(),
            StatusCode::FORBIDDEN,
            "This action is outside the authorized scopes",
        ),
        (
            app_only.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "This method requires an authenticated user",
        ),
        (
            "forged",
            StatusCode::UNAUTHORIZED,
            "The access token is invalid",
        ),
    ] {
        let response = app
            .http()
            .get(app.url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": message })
        );
    }
}

#[tokio::test]
async fn userinfo_answers_for_profile_tokens() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "profile").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "profile").await.access_token;
    let info: Value = app
        .http()
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["iss"], "http://authd.test");
    assert_eq!(info["sub"], "http://authd.test/users/alice");
}

/// The userinfo claims in Mastodon's order (OAuthUserinfoSerializer), `sub`
/// the account's ActivityPub URI, the Account entity's `uri`; GET and POST.
#[tokio::test]
async fn userinfo_sub_is_the_accounts_activitypub_uri_as_mastodon_answers() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read profile").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "profile").await.access_token;
    for post in [false, true] {
        let request = if post {
            app.http().post(app.url("/oauth/userinfo"))
        } else {
            app.http().get(app.url("/oauth/userinfo"))
        };
        let response = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let raw = response.text().await.unwrap();
        let info: Value = serde_json::from_str(&raw).unwrap();
        let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "iss",
                "sub",
                "name",
                "preferred_username",
                "profile",
                "picture"
            ],
            "{raw}"
        );
        assert_eq!(info["sub"], "http://authd.test/users/alice");
        assert_eq!(info["profile"], "http://authd.test/@alice");
        assert_eq!(info["name"], "alice");
        assert_eq!(
            info["picture"],
            "http://authd.test/avatars/original/missing.png"
        );
    }
    let account: Value = app
        .http()
        .get(app.url("/api/v1/accounts/verify_credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["uri"], "http://authd.test/users/alice");
}

#[tokio::test]
async fn userinfo_refuses_a_read_token_as_outside_its_scopes() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read profile").await;
    let user = app.create_user("alice", false).await;
    for scope in ["read", "read read:accounts"] {
        let token = app.user_token(&user, &client, scope).await.access_token;
        let response = app
            .http()
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{scope}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": "This action is outside the authorized scopes" })
        );
    }
}

/// Mastodon checks the scope first (`doorkeeper_authorize! :profile`), then
/// for a user (`require_user!`).
#[tokio::test]
async fn userinfo_refuses_app_tokens_as_mastodon_does() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read profile").await;
    for (scope, status, message) in [
        ("profile", 422, "This method requires an authenticated user"),
        ("read", 403, "This action is outside the authorized scopes"),
    ] {
        let token = app
            .client_credentials(&client, scope)
            .await
            .unwrap()
            .access_token;
        let response = app
            .http()
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{scope}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": message })
        );
    }
}

#[tokio::test]
async fn discovery_metadata_and_jwks() {
    let app = spawn_app().await;
    let meta: Value = app
        .http()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], "http://authd.test");
    assert_eq!(meta["token_endpoint"], "http://authd.test/oauth/token");
    assert_eq!(
        meta["authorization_endpoint"],
        "http://authd.test/oauth/authorize"
    );
    assert_eq!(
        meta["revocation_endpoint"],
        "http://authd.test/oauth/revoke"
    );
    assert_eq!(
        meta["introspection_endpoint"],
        "http://authd.test/oauth/introspect"
    );
    assert_eq!(
        meta["app_registration_endpoint"],
        "http://authd.test/api/v1/apps"
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        meta["registration_endpoint"],
        "http://authd.test/oauth/register"
    );
    // Mastodon's 47 and OpenID Connect's openid and email.
    assert_eq!(meta["scopes_supported"].as_array().unwrap().len(), 49);
    let jwks = app
        .http()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = serde_json::from_str(&jwks.text().await.unwrap()).unwrap();
    let ed = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "EdDSA")
        .expect("the EdDSA key of JWT access tokens");
    assert_eq!(ed["kty"], "OKP");
}

#[tokio::test]
async fn health_endpoints() {
    let app = spawn_app().await;
    let live = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.http().get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = app
        .http()
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": "Record not found"})
    );
}

#[tokio::test]
async fn authorized_applications_can_be_listed_and_revoked() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;

    let list: Value = browser
        .get("/api/v1/authorized_applications")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], client.app_id.as_str());
    assert_eq!(list[0]["name"], "Test App");
    assert_eq!(list[0]["scopes"], json!(["read"]));

    let page = browser.get("/oauth/authorized_applications").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Test App"));
    let csrf = hidden(&html, "csrf_token").unwrap();
    let revoked = browser
        .post(
            &format!("/oauth/authorized_applications/{}/revoke", client.app_id),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::FOUND);
    assert!(
        !app.introspect(&client, &token).await.is_active(),
        "the app's tokens are revoked"
    );
    let list: Value = browser
        .get("/api/v1/authorized_applications")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // Consent is forgotten too: the next authorization asks again.
    let ask = browser
        .get(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, OOB, "read", "")
        ))
        .await;
    assert!(
        ask.text()
            .await
            .unwrap()
            .contains("would like to perform actions")
    );

    let token2 = app.user_token(&user, &client, "read").await.access_token;
    let deleted = browser
        .client
        .delete(browser.url(&format!(
            "/api/v1/authorized_applications/{}",
            client.app_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(!app.introspect(&client, &token2).await.is_active());
    let anonymous = app
        .http()
        .get(app.url("/api/v1/authorized_applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_core_gets_503_json_quickly() {
    // A shim alone, in front of a core that is not there.
    let shim = authd::http::ShimState::new(
        "http://127.0.0.1:9",
        authd::http::ShimConfig {
            public_url: "http://authd.test".into(),
            body_limit: 65536,
            upstream_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            trusted_proxies: authd::domain::client_ip::TrustedProxies::loopback(),
            upstream_api: None,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(authd::http::serve(listener, shim, std::future::pending()));
    let http = reqwest::Client::new();
    let started = Instant::now();
    let token = http
        .post(format!("http://{addr}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "a"),
            ("client_secret", "b"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(token.json::<Value>().await.unwrap()["error"], "unavailable");
    let apps = http
        .post(format!("http://{addr}/api/v1/apps"))
        .json(&json!({"client_name": "x", "redirect_uris": OOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(apps.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(apps.json::<Value>().await.unwrap()["error"].is_string());
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn instance_documents_name_the_server_and_its_mastodon_version() {
    let app = spawn_app().await;
    for path in ["/api/v1/instance", "/api/v1/instance/"] {
        let v1: Value = app
            .http()
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v1["uri"], "authd.test", "{path}");
        assert!(
            v1["version"]
                .as_str()
                .unwrap()
                .starts_with("4.3.0 (compatible; authd "),
            "{v1}"
        );
        assert_eq!(v1["registrations"], false);
    }
    let v2: Value = app
        .http()
        .get(app.url("/api/v2/instance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["domain"], "authd.test");
    assert_eq!(v2["api_versions"]["mastodon"], 2);
}

async fn metadata(app: &TestApp) -> Value {
    app.http()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// grant_types_supported is the core's to say, and says what is served:
/// with opaque tokens that never expire (the default, as Mastodon), JWT
/// apps still get refresh tokens, so refresh_token is listed and works.
#[tokio::test]
async fn metadata_lists_refresh_token_because_jwt_apps_get_one_even_when_opaque_tokens_never_expire()
 {
    let app = spawn_app().await;
    let meta = metadata(&app).await;
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "client_credentials", "refresh_token"])
    );
    let user = app.create_user("alice", false).await;
    let opaque = app.register_app(&[OOB], "read").await;
    let token = app.user_token(&user, &opaque, "read").await;
    assert!(token.refresh_token.is_none(), "opaque tokens never expire");
    let jwt = app.register_jwt_app("read").await;
    let token = app.user_token(&user, &jwt, "read").await;
    let refresh_token = token.refresh_token.expect("a JWT expires");
    let refreshed = app
        .refresh(&jwt, &refresh_token)
        .await
        .expect("the listed grant is served");
    assert!(!refreshed.access_token.is_empty());
}

#[tokio::test]
async fn metadata_lists_what_the_core_serves_when_access_tokens_expire() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await;
    let meta = metadata(&app).await;
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "client_credentials", "refresh_token"])
    );
    let user = app.create_user("alice", false).await;
    let opaque = app.register_app(&[OOB], "read").await;
    let token = app.user_token(&user, &opaque, "read").await;
    assert!(token.refresh_token.is_some());
    // Every field of Mastodon 4.7's OAuthMetadataPresenter is there.
    for field in [
        "issuer",
        "service_documentation",
        "authorization_endpoint",
        "token_endpoint",
        "app_registration_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "scopes_supported",
        "response_types_supported",
        "response_modes_supported",
        "code_challenge_methods_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        assert!(meta.get(field).is_some(), "{field}: {meta}");
    }
    // Only a mode authd answers in.
    assert_eq!(meta["response_modes_supported"], json!(["query"]));
    // The scopes are the core's whole vocabulary.
    let scopes: Vec<String> = authd::domain::scope::Scope::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(meta["scopes_supported"], json!(scopes));
}
