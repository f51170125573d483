//! Token attacks (RFC 6819 5.1.4, RFC 8725 for JWTs): expired, revoked and
//! forged tokens are inactive everywhere; a JWT is active only with an
//! EdDSA signature by the key its kid names, over the exact payload; and
//! a client that may not see a token learns nothing about it.
use std::time::Duration;

use authd::service::clock::Clock;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

/// Whether the token opens the Mastodon API.
async fn accepted_by_the_api(app: &TestApp, token: &str) -> bool {
    app.http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

#[tokio::test]
async fn expired_token_is_inactive_and_refused() {
    let (clock, time) = Clock::manual();
    let mut options = TestOptions::default();
    options.service.lifetimes.access_token = Some(Duration::from_secs(60));
    options.service.clock = clock;
    let app = spawn_app_with(options).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(active(&app, &client, &token).await, "warm the cache first");
    assert!(accepted_by_the_api(&app, &token).await);
    time.advance(Duration::from_secs(60));
    assert!(!active(&app, &client, &token).await);
    assert!(!accepted_by_the_api(&app, &token).await);
}

#[tokio::test]
async fn revoked_token_is_inactive_and_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(accepted_by_the_api(&app, &token).await);
    let (status, _) = post_form(
        &app,
        "/oauth/revoke",
        &[
            ("token", &token),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!active(&app, &client, &token).await);
    assert!(!accepted_by_the_api(&app, &token).await);
}

#[tokio::test]
async fn forged_tokens_are_inactive_and_refused() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let real = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let mut flipped = real.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    for forged in [
        String::from_utf8(flipped).unwrap(),
        "A".repeat(real.len()),
        format!("{real}x"),
        real[..real.len() - 1].to_owned(),
        "' OR '1'='1".to_owned(),
        "x".repeat(10_000),
    ] {
        assert!(!active(&app, &client, &forged).await, "{forged:.40}");
        assert!(!accepted_by_the_api(&app, &forged).await, "{forged:.40}");
    }
}

/// A JWT app, one of its tokens, and the token's parts decoded.
async fn jwt_setup() -> (TestApp, TestClient, String) {
    let app = spawn_app().await;
    let client = app.register_jwt_app("read write").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(active(&app, &client, &token).await);
    (app, client, token)
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let segment = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn encode(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The token with its header replaced and the signature kept.
fn with_header(token: &str, header: &serde_json::Value) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let header = encode(header);
    parts[0] = &header;
    parts.join(".")
}

/// The JWKS's public key bytes for the token's kid.
async fn public_key(app: &TestApp) -> Vec<u8> {
    let jwks: serde_json::Value = app
        .http()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The Ed25519 key, which signs JWT access tokens by default.
    let ed = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "EdDSA")
        .expect("an EdDSA key");
    URL_SAFE_NO_PAD.decode(ed["x"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn jwt_with_alg_none_is_inactive() {
    let (app, client, token) = jwt_setup().await;
    let mut header = part(&token, 0);
    for alg in ["none", "None", "NONE"] {
        header["alg"] = alg.into();
        let unsigned = format!("{}.{}.", encode(&header), token.split('.').nth(1).unwrap());
        assert!(!active(&app, &client, &unsigned).await, "{alg}");
        assert!(!accepted_by_the_api(&app, &unsigned).await, "{alg}");
        // The original signature, with the header now saying none.
        let relabelled = with_header(&token, &header);
        assert!(!active(&app, &client, &relabelled).await, "{alg}");
    }
}

#[tokio::test]
async fn jwt_hs256_signed_with_the_public_key_is_inactive() {
    // HS/ES confusion (CVE-2015-9235 and kin): the attacker signs with
    // HMAC, using the published public key as the shared secret.
    let (app, client, token) = jwt_setup().await;
    let key = public_key(&app).await;
    let header = part(&token, 0);
    let mut claims = part(&token, 1);
    claims["scope"] = "read write".into();
    for (alg, secret) in [
        (jsonwebtoken::Algorithm::HS256, key.clone()),
        (jsonwebtoken::Algorithm::HS512, key.clone()),
        (
            jsonwebtoken::Algorithm::HS256,
            URL_SAFE_NO_PAD.encode(&key).into_bytes(),
        ),
    ] {
        let mut forged_header = jsonwebtoken::Header::new(alg);
        forged_header.kid = header["kid"].as_str().map(str::to_owned);
        forged_header.typ = Some("at+jwt".into());
        let forged = jsonwebtoken::encode(
            &forged_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert!(!active(&app, &client, &forged).await, "{alg:?}");
        assert!(!accepted_by_the_api(&app, &forged).await, "{alg:?}");
    }
}

#[tokio::test]
async fn jwt_with_an_es256_or_rs256_header_is_inactive() {
    let (app, client, token) = jwt_setup().await;
    let mut header = part(&token, 0);
    for alg in ["ES256", "RS256", "PS256", "EdDSA "] {
        header["alg"] = alg.into();
        let relabelled = with_header(&token, &header);
        assert!(!active(&app, &client, &relabelled).await, "{alg}");
    }
}

#[tokio::test]
async fn jwt_with_a_wrong_or_unknown_kid_is_inactive() {
    let (app, client, token) = jwt_setup().await;
    // Another real key, so that the wrong kid names a key that exists.
    let seed = [7u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    app.db()
        .await
        .execute(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at)
             VALUES ('other-key', 'EdDSA', $1, $2, now() - interval '1 day')",
            &[&seed.as_slice(), &public.as_slice()],
        )
        .await
        .unwrap();
    let mut header = part(&token, 0);
    for kid in [
        serde_json::json!("other-key"),
        serde_json::json!("no-such-key"),
        serde_json::json!(""),
        serde_json::json!("../../etc/passwd"),
        serde_json::json!(1),
        serde_json::Value::Null,
    ] {
        header["kid"] = kid.clone();
        let relabelled = with_header(&token, &header);
        assert!(!active(&app, &client, &relabelled).await, "kid {kid}");
    }
    let mut no_kid = part(&token, 0);
    no_kid.as_object_mut().unwrap().remove("kid");
    assert!(!active(&app, &client, &with_header(&token, &no_kid)).await);
    assert!(active(&app, &client, &token).await);
}

#[tokio::test]
async fn jwt_with_a_tampered_payload_is_inactive() {
    let (app, client, token) = jwt_setup().await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = part(&token, 1);
    for (field, value) in [
        ("scope", serde_json::json!("read write")),
        ("exp", serde_json::json!(4_102_444_800i64)),
        ("sub", serde_json::json!("1")),
        ("client_id", serde_json::json!("someone-else")),
    ] {
        let original = claims[field].clone();
        claims[field] = value;
        let tampered = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);
        assert!(!active(&app, &client, &tampered).await, "{field}");
        assert!(!accepted_by_the_api(&app, &tampered).await, "{field}");
        claims[field] = original;
    }
    // A signature cut off or taken from another token.
    let other = app
        .client_credentials(&client, "read write")
        .await
        .unwrap()
        .access_token;
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).unwrap()
    );
    assert!(!active(&app, &client, &spliced).await);
    assert!(!active(&app, &client, &format!("{}.{}.", parts[0], parts[1])).await);
    assert!(active(&app, &client, &token).await);
}

#[tokio::test]
async fn introspection_by_a_client_that_may_not_see_the_token_is_inactive() {
    let app = spawn_app().await;
    let owner = app.register_app(&[OOB], "read").await;
    let stranger = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let user_token = app.user_token(&user, &owner, "read").await.access_token;
    let app_token = app
        .client_credentials(&owner, "read")
        .await
        .unwrap()
        .access_token;
    for token in [&user_token, &app_token] {
        assert!(active(&app, &owner, token).await);
        let (status, body) = post_form(
            &app,
            "/oauth/introspect",
            &[
                ("token", token.as_str()),
                ("client_id", &stranger.client_id),
                ("client_secret", &stranger.client_secret),
            ],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({ "active": false }),
            "nothing leaks"
        );
    }
    // Without client authentication, nobody may introspect at all.
    let (status, _) = post_form(&app, "/oauth/introspect", &[("token", &user_token)]).await;
    assert_eq!(status, 401);
}
