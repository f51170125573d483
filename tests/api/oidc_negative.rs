//! What a relying party must be able to rely on (issue 17's negative
//! cases), each its own test: the nonce binds the id_token to its request,
//! the audience to its client, the alg to the client's registration and the
//! kid to a published key; prompt=none never shows a page; end_session
//! never redirects where the client did not register; a public client
//! needs PKCE. Validation is done here as an RP does it, with jsonwebtoken
//! against the JWKS served over HTTP.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::admin::{admin, setup};
use crate::helpers::*;
use crate::oidc::{jwks, validate};
use authd::proto::v1;

const RP: &str = "https://rp.example/callback";

async fn id_token_for(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
    nonce: &str,
) -> v1::TokenResponse {
    let code = app
        .oauth()
        .authorize(v1::AuthorizeRequest {
            nonce: nonce.into(),
            ..app.authorize_request(user, client, RP, "openid")
        })
        .await
        .expect("authorize")
        .into_inner()
        .code;
    app.exchange_code(client, &code, RP, "")
        .await
        .expect("exchange")
}

#[tokio::test]
async fn the_id_token_carries_its_requests_nonce_so_another_nonce_is_detected() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    let tokens = id_token_for(&app, &user, &client, "nonce-of-this-request").await;
    let claims = validate(&app, tokens.id_token.as_deref().unwrap(), &client.client_id)
        .await
        .expect("valid");
    assert_eq!(claims["nonce"], "nonce-of-this-request");
    assert_ne!(
        claims["nonce"], "nonce-of-another-request",
        "an RP comparing its own nonce sees a replayed token"
    );
    // A request without a nonce: its id_token has none, so it can never
    // pass for the answer to a request that had one.
    let without = id_token_for(&app, &user, &client, "").await;
    let claims = validate(
        &app,
        without.id_token.as_deref().unwrap(),
        &client.client_id,
    )
    .await
    .expect("valid");
    assert!(claims.get("nonce").is_none(), "{claims}");
}

#[tokio::test]
async fn an_id_token_for_another_client_fails_audience_validation() {
    let app = spawn_app().await;
    let issued_to = app.register_app(&[RP], "openid").await;
    let other = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    let tokens = id_token_for(&app, &user, &issued_to, "n").await;
    let id_token = tokens.id_token.as_deref().unwrap();
    assert!(validate(&app, id_token, &issued_to.client_id).await.is_ok());
    assert_eq!(
        validate(&app, id_token, &other.client_id).await,
        Err("InvalidAudience".to_owned())
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_at_the_redirect_uri_with_state() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let query = authorize_query(&client, RP, "openid", "state-42") + "&prompt=none&nonce=n";
    let response = app
        .http()
        .get(app.url(&format!("/oauth/authorize?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let redirect = url::Url::parse(&location(&response)).unwrap();
    assert!(redirect.as_str().starts_with(RP), "{redirect}");
    let params: std::collections::HashMap<_, _> = redirect.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("login_required")
    );
    assert_eq!(params.get("state").map(String::as_str), Some("state-42"));
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn end_session_refuses_an_unregistered_post_logout_redirect_uri_without_redirecting() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let browser = app.browser();
    let user = app.create_user("alice", false).await;
    assert_eq!(
        browser.login(&email("alice"), PASSWORD, "/").await.status(),
        302
    );
    let id_token = id_token_for(&app, &user, &client, "n")
        .await
        .id_token
        .unwrap();
    let response = browser
        .get(&format!(
            "/oauth/end_session?id_token_hint={id_token}\
             &post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fsigned-out&state=s"
        ))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let page = browser.get("/oauth/authorized_applications").await;
    assert_eq!(page.status(), 200, "the user is still signed in");
}

/// A client registered at RFC 7591's endpoint; its JSON answer.
async fn register_dynamically(app: &TestApp, metadata: Value) -> Value {
    let response = app
        .http()
        .post(app.url("/oauth/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "RFC 7591 3.2.1: 201 Created");
    response.json().await.unwrap()
}

fn registered_client(registered: &Value) -> TestClient {
    TestClient {
        client_id: registered["client_id"].as_str().unwrap().into(),
        client_secret: registered["client_secret"]
            .as_str()
            .unwrap_or_default()
            .into(),
        app_id: String::new(),
    }
}

#[tokio::test]
async fn a_public_client_is_refused_without_pkce_and_served_with_it() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false).await;
    let registered = register_dynamically(
        &app,
        json!({
            "client_name": "a single-page app",
            "redirect_uris": [RP],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid",
        }),
    )
    .await;
    assert!(registered.get("client_secret").is_none(), "{registered}");
    let client = registered_client(&registered);
    let without_pkce = app
        .oauth()
        .authorize(app.authorize_request(&user, &client, RP, "openid"))
        .await
        .expect_err("a public client's request without code_challenge");
    assert!(
        without_pkce.message().starts_with("invalid_request"),
        "{without_pkce:?}"
    );
    let verifier = "a-verifier-of-forty-three-characters-or-more-0123";
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let code = app
        .oauth()
        .authorize(v1::AuthorizeRequest {
            code_challenge: challenge,
            code_challenge_method: "S256".into(),
            ..app.authorize_request(&user, &client, RP, "openid")
        })
        .await
        .expect("with PKCE")
        .into_inner()
        .code;
    let tokens = app
        .exchange_code(&client, &code, RP, verifier)
        .await
        .expect("a public client exchanges with its verifier alone");
    assert!(tokens.id_token.is_some());
}

#[tokio::test]
async fn the_id_token_is_signed_with_the_alg_the_client_registered_and_no_other() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let registered = register_dynamically(
            &app,
            json!({
                "client_name": format!("{alg} client"),
                "redirect_uris": [RP],
                "scope": "openid",
                "id_token_signed_response_alg": alg,
            }),
        )
        .await;
        assert_eq!(registered["id_token_signed_response_alg"], alg);
        let client = registered_client(&registered);
        for nonce in ["first", "second"] {
            let tokens = id_token_for(&app, &user, &client, nonce).await;
            let id_token = tokens.id_token.as_deref().unwrap();
            let header = jsonwebtoken::decode_header(id_token).unwrap();
            assert_eq!(serde_json::to_value(header.alg).unwrap(), alg);
            let claims = validate(&app, id_token, &client.client_id)
                .await
                .expect("valid with the key its kid names");
            assert_eq!(claims["nonce"], nonce);
        }
    }
}

#[tokio::test]
async fn an_id_token_of_a_key_rotated_out_no_longer_verifies() {
    let setup = setup().await;
    let (app, token) = (&setup.app, &setup.token);
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    let old = id_token_for(app, &user, &client, "n")
        .await
        .id_token
        .unwrap();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    assert!(validate(app, &old, &client.client_id).await.is_ok());

    let rotation = admin(app)
        .rotate_signing_key(with_bearer(v1::RotateSigningKeyRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    assert!(rotation.retired.iter().any(|k| k.kid == old_kid));
    // During the overlap the old key is still published.
    assert!(validate(app, &old, &client.client_id).await.is_ok());
    let new = id_token_for(app, &user, &client, "n")
        .await
        .id_token
        .unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        old_kid
    );
    // The overlap ends (as admin.rs's rotation test, by moving the
    // retirement back): the old kid leaves the JWKS and its tokens fail.
    app.db()
        .await
        .execute(
            "UPDATE signing_keys SET retired_at = now() - interval '1 day' WHERE kid = $1",
            &[&old_kid],
        )
        .await
        .unwrap();
    assert!(jwks(app).await.find(&old_kid).is_none());
    assert_eq!(
        validate(app, &old, &client.client_id).await,
        Err("the kid is not in the JWKS".to_owned())
    );
    assert!(validate(app, &new, &client.client_id).await.is_ok());
}
