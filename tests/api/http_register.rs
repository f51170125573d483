//! RFC 7591 dynamic client registration (POST /oauth/register), and what
//! registered client metadata changes: public clients (no secret, PKCE
//! S256 required, no client_credentials) and enforced grant types.
use std::time::Duration;

use authd::domain::pkce::CodeChallenge;
use authd::proto::v1;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::*;

const CALLBACK: &str = "https://client.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn register(app: &TestApp, metadata: Value) -> reqwest::Response {
    app.http()
        .post(app.url("/oauth/register"))
        .json(&metadata)
        .send()
        .await
        .expect("POST /oauth/register")
}

/// Registers over /oauth/register and expects 201.
async fn registered(app: &TestApp, metadata: Value) -> (TestClient, Value) {
    let response = register(app, metadata).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let client = TestClient {
        client_id: body["client_id"].as_str().expect("client_id").into(),
        client_secret: body["client_secret"].as_str().unwrap_or_default().into(),
        app_id: String::new(),
    };
    (client, body)
}

async fn public_client(app: &TestApp) -> TestClient {
    registered(
        app,
        json!({
            "client_name": "public",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await
    .0
}

/// POST /oauth/token with a form; the status and JSON body.
async fn token(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<&TestClient>,
) -> (StatusCode, Value) {
    let mut request = app.http().post(app.url("/oauth/token")).form(form);
    if let Some(c) = basic {
        request = request.basic_auth(&c.client_id, Some(&c.client_secret));
    }
    let response = request.send().await.expect("POST /oauth/token");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

fn code_form<'a>(client_id: &'a str, code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if !client_id.is_empty() {
        form.push(("client_id", client_id));
    }
    if !verifier.is_empty() {
        form.push(("code_verifier", verifier));
    }
    form
}

#[tokio::test]
async fn a_public_client_registers_without_a_secret_and_completes_a_code_flow_with_pkce() {
    let app = spawn_app().await;
    let (client, body) = registered(
        &app,
        json!({
            "client_name": "Public App",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "scope": "read profile",
            "client_uri": "https://client.example",
            "post_logout_redirect_uris": ["https://client.example/bye"],
            "id_token_signed_response_alg": "EdDSA",
            "software_statement_unknown_member": {"ignored": true},
        }),
    )
    .await;
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["redirect_uris"], json!([CALLBACK]));
    assert_eq!(body["scope"], "read profile");
    assert_eq!(body["client_uri"], "https://client.example");
    assert_eq!(body["id_token_signed_response_alg"], "EdDSA");
    assert_eq!(
        body["post_logout_redirect_uris"],
        json!(["https://client.example/bye"])
    );

    let user = app.create_user("alice", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, CALLBACK, "read", Some(&challenge))
        .await;
    let (status, tokens) = token(&app, &code_form(&client.client_id, &code, VERIFIER), None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let verified = app
        .http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["name"], "Public App");
}

#[tokio::test]
async fn a_confidential_client_registered_over_rfc7591_is_the_app_the_mastodon_api_sees() {
    let app = spawn_app().await;
    let (client, body) = registered(
        &app,
        json!({ "client_name": "Confidential", "redirect_uris": [CALLBACK] }),
    )
    .await;
    assert_eq!(client.client_secret.len(), 43, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["scope"], "read");

    let user = app.create_user("bob", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, CALLBACK, "read", Some(&challenge))
        .await;
    let (status, tokens) = token(&app, &code_form("", &code, VERIFIER), Some(&client)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let verified: Value = app
        .http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["name"], "Confidential");
    assert_eq!(verified["redirect_uris"], json!([CALLBACK]));
    // Its grant types exclude client_credentials (RFC 7591's default).
    let (status, error) = token(&app, &[("grant_type", "client_credentials")], Some(&client)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"], "unauthorized_client");
}

#[tokio::test]
async fn registration_errors_are_rfc7591_error_codes() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "client_name": "a", "redirect_uris": ["not a uri"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "post_logout_redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "id_token_signed_response_alg": "HS256" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "", "redirect_uris": [CALLBACK] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": "a", "redirect_uris": [CALLBACK], "scope": "destroy" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "client_name": 5, "redirect_uris": [CALLBACK] }),
            "invalid_client_metadata",
        ),
    ];
    for (metadata, expected) in cases {
        let response = register(&app, metadata.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{metadata}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], expected, "{metadata}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test]
async fn malformed_json_or_another_content_type_is_invalid_client_metadata() {
    let app = spawn_app().await;
    let bodies = [
        ("application/json", "{\"client_name\":"),
        ("application/json", "[1,2]"),
        ("application/json", ""),
        (
            "application/x-www-form-urlencoded",
            "client_name=a&redirect_uris=https%3A%2F%2Fc.example",
        ),
        ("text/plain", "{}"),
    ];
    for (content_type, body) in bodies {
        let response = app
            .http()
            .post(app.url("/oauth/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{content_type} {body}"
        );
        let json: Value = response.json().await.unwrap();
        assert_eq!(
            json["error"], "invalid_client_metadata",
            "{content_type} {body}"
        );
    }
}

#[tokio::test]
async fn a_public_client_without_pkce_is_refused_at_authorize() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let user = app.create_user("carol", false).await;
    let request = app.authorize_request(&user, &client, CALLBACK, "read");
    assert_error(
        app.oauth().authorize(request.clone()).await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        app.oauth().prepare_authorization(request).await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

#[tokio::test]
async fn a_public_client_with_plain_pkce_is_refused() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let user = app.create_user("dave", false).await;
    let mut request = app.authorize_request(&user, &client, CALLBACK, "read");
    request.code_challenge = VERIFIER.into();
    request.code_challenge_method = "plain".into();
    assert_error(
        app.oauth().authorize(request).await,
        Code::InvalidArgument,
        "invalid_code_challenge_method",
    );
}

#[tokio::test]
async fn a_public_client_exchanging_a_code_without_its_verifier_gets_invalid_grant() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let user = app.create_user("erin", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, CALLBACK, "read", Some(&challenge))
        .await;
    let (status, error) = token(&app, &code_form(&client.client_id, &code, ""), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
}

#[tokio::test]
async fn a_public_client_may_not_use_client_credentials() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let (status, error) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"], "unauthorized_client");
    // Registering one for client_credentials over gRPC is refused too.
    let refused = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "public cc".into(),
            redirect_uris: vec![CALLBACK.into()],
            token_endpoint_auth_method: "none".into(),
            grant_types: vec!["client_credentials".into()],
            profile: v1::RegistrationProfile::Rfc7591.into(),
            ..Default::default()
        })
        .await;
    assert_error(refused, Code::InvalidArgument, "invalid_client_metadata");
}

#[tokio::test]
async fn a_public_client_sending_a_secret_is_refused() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let user = app.create_user("frank", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, CALLBACK, "read", Some(&challenge))
        .await;
    let mut form = code_form(&client.client_id, &code, VERIFIER);
    form.push(("client_secret", "guessed-secret"));
    let (status, error) = token(&app, &form, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"], "invalid_client");
    // An empty Basic password is not a way in for a confidential client.
    let (confidential, _) = registered(
        &app,
        json!({ "client_name": "conf", "redirect_uris": [CALLBACK] }),
    )
    .await;
    let (status, _) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &confidential.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_public_client_revokes_its_own_token_with_its_client_id() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let user = app.create_user("gina", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, CALLBACK, "read", Some(&challenge))
        .await;
    let (_, tokens) = token(&app, &code_form(&client.client_id, &code, VERIFIER), None).await;
    let access = tokens["access_token"].as_str().unwrap();
    // Another public client cannot revoke it.
    let other = public_client(&app).await;
    let refused = app
        .http()
        .post(app.url("/oauth/revoke"))
        .form(&[("token", access), ("client_id", &other.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let revoked = app
        .http()
        .post(app.url("/oauth/revoke"))
        .form(&[("token", access), ("client_id", &client.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let verified = app
        .http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::UNAUTHORIZED);
}

/// Decision: an app that did not register refresh_token gets no refresh
/// token, even where tokens expire; and a refresh grant is refused.
#[tokio::test]
async fn an_app_without_the_refresh_token_grant_gets_no_refresh_token() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await;
    let client = app
        .register_app_with(v1::RegisterAppRequest {
            client_name: "no refresh".into(),
            redirect_uris: vec![OOB.into()],
            grant_types: vec!["authorization_code".into()],
            ..Default::default()
        })
        .await;
    let user = app.create_user("hana", false).await;
    let tokens = app.user_token(&user, &client, "read").await;
    assert!(tokens.refresh_token.is_none(), "{tokens:?}");
    assert!(tokens.expires_in.is_some_and(|s| s > 0));
    assert_error(
        app.refresh(&client, "anything").await,
        Code::PermissionDenied,
        "unauthorized_client",
    );
    // With the grant registered, the same flow yields one.
    let with = app
        .register_app_with(v1::RegisterAppRequest {
            client_name: "refresh".into(),
            redirect_uris: vec![OOB.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Default::default()
        })
        .await;
    assert!(
        app.user_token(&user, &with, "read")
            .await
            .refresh_token
            .is_some()
    );
}

#[tokio::test]
async fn an_app_without_authorization_code_cannot_be_authorized() {
    let app = spawn_app().await;
    let client = app
        .register_app_with(v1::RegisterAppRequest {
            client_name: "machine".into(),
            redirect_uris: vec![OOB.into()],
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;
    let user = app.create_user("ivan", false).await;
    assert_error(
        app.oauth()
            .authorize(app.authorize_request(&user, &client, OOB, "read"))
            .await,
        Code::PermissionDenied,
        "unauthorized_client",
    );
    assert!(app.client_credentials(&client, "read").await.is_ok());
}

#[tokio::test]
async fn registrations_over_both_endpoints_share_one_per_address_limit() {
    // The defaults: Mastodon's 5 per 10 minutes, as the existing limit
    // test of POST /api/v1/apps has it.
    let app = spawn_app().await;
    let address = "198.51.100.7";
    let mastodon = |name: &str| {
        app.http()
            .post(app.url("/api/v1/apps"))
            .header("x-forwarded-for", address)
            .json(&json!({ "client_name": name, "redirect_uris": OOB }))
    };
    let rfc7591 = |name: &str| {
        app.http()
            .post(app.url("/oauth/register"))
            .header("x-forwarded-for", address)
            .json(&json!({ "client_name": name, "redirect_uris": [CALLBACK] }))
    };
    for i in 0..5 {
        let response = if i % 2 == 0 {
            mastodon(&format!("m{i}"))
        } else {
            rfc7591(&format!("r{i}"))
        }
        .send()
        .await
        .unwrap();
        assert!(response.status().is_success(), "{i}: {}", response.status());
    }
    let refused = rfc7591("one too many").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["x-ratelimit-limit"], "5");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    let refused = mastodon("one too many").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
}
