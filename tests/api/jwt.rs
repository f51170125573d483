use authd::proto::v1;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::helpers::*;

#[derive(Debug, serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    client_id: String,
    scope: String,
    exp: i64,
    iat: i64,
    jti: String,
}

#[tokio::test]
async fn jwt_apps_get_signed_rfc9068_tokens_that_verify_against_the_jwks() {
    let app = spawn_app().await;
    let client = app.register_jwt_app("read write").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await;
    assert_eq!(token.expires_in, Some(3600), "JWTs always expire");
    assert!(
        token.refresh_token.is_some(),
        "expiring tokens come with a refresh token"
    );

    let jwks: serde_json::Value = serde_json::from_str(
        &app.oauth()
            .get_jwks(v1::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .jwks_json,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&token.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["http://authd.test"]);
    let claims = jsonwebtoken::decode::<Claims>(
        &token.access_token,
        &DecodingKey::from_ed_der(&x),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.iss, "http://authd.test");
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.client_id, client.client_id);
    assert_eq!(claims.scope, "read");
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(claims.jti.len(), 43);

    // Stored and revocable like any token.
    let r = app.introspect(&client, &token.access_token).await;
    assert!(r.is_active());
    assert_eq!(r.exp, Some(claims.exp));
    app.revoke(&client, &token.access_token).await.unwrap();
    assert!(
        !app.introspect(&client, &token.access_token)
            .await
            .is_active()
    );
}

/// A key another replica signs with, added after this replica loaded its
/// keys, is fetched on first sight of its kid, so the JWTs it signed are
/// active here too (the signature check that guards the database must not
/// turn them away).
#[tokio::test]
async fn a_jwt_signed_with_a_key_added_after_start_up_is_active() {
    let first = spawn_app().await;
    let seed = [9u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    first
        .db()
        .await
        .execute(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at)
             VALUES ('added-later', 'EdDSA', $1, $2, now() + interval '1 second')",
            &[&seed.as_slice(), &public.as_slice()],
        )
        .await
        .unwrap();
    // A replica started now signs with the newest key.
    let second = first.spawn_replica(TestOptions::default()).await;
    let client = second.register_jwt_app("read").await;
    let token = second
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert_eq!(kid, "added-later");
    assert!(first.introspect(&client, &token).await.is_active());
}
