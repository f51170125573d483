//! Access and refresh tokens are found by their selector (the first 16 of
//! their 32 bytes, time-ordered) and proven by the digest of the whole
//! token; tokens stored before selectors existed are found by digest.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use tonic::Code;

use crate::helpers::*;

fn decoded(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(token).expect("a 43-character token")
}

fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The same token with one character of its verifier (its last 16 bytes)
/// changed: same selector, wrong token.
fn with_forged_verifier(token: &str) -> String {
    let mut forged = token.to_owned();
    let replacement = if &token[30..31] == "A" { "B" } else { "A" };
    forged.replace_range(30..31, replacement);
    assert_eq!(decoded(&forged)[..16], decoded(token)[..16]);
    forged
}

async fn bearer_status(app: &TestApp, token: &str) -> reqwest::StatusCode {
    app.http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(token)
        .send()
        .await
        .expect("verify_credentials")
        .status()
}

#[tokio::test]
async fn tokens_are_stored_under_a_time_ordered_selector_taken_from_the_token() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let first = app.client_credentials(&client, "read").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = app.user_token(&user, &client, "read").await;
    let refresh = second.refresh_token.clone().expect("a refresh token");

    let db = app.db().await;
    let selector_of = |table: &'static str, token: String| {
        let db = &db;
        async move {
            let row = db
                .query_one(
                    &format!("SELECT selector FROM {table} WHERE digest = $1"),
                    &[&sha256(&token)],
                )
                .await
                .expect("the token's row");
            row.get::<_, Vec<u8>>(0)
        }
    };
    let a = selector_of("access_tokens", first.access_token.clone()).await;
    let b = selector_of("access_tokens", second.access_token.clone()).await;
    let r = selector_of("refresh_tokens", refresh.clone()).await;
    assert_eq!(a, decoded(&first.access_token)[..16]);
    assert_eq!(b, decoded(&second.access_token)[..16]);
    assert_eq!(r, decoded(&refresh)[..16]);
    assert!(a < b, "a later token sorts after an earlier one");

    let unique: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname IN
               ('access_tokens_digest_key', 'refresh_tokens_digest_key')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unique, 0, "no index over every token's random digest");

    assert!(
        app.introspect(&client, &first.access_token)
            .await
            .is_active()
    );
    assert_eq!(
        bearer_status(&app, &second.access_token).await,
        reqwest::StatusCode::OK
    );
    app.refresh(&client, &refresh).await.expect("refresh");
}

#[tokio::test]
async fn a_token_with_a_real_selector_and_a_forged_verifier_is_refused_everywhere() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await;
    let refresh = token.refresh_token.clone().expect("a refresh token");
    let forged_access = with_forged_verifier(&token.access_token);
    let forged_refresh = with_forged_verifier(&refresh);

    assert!(!app.introspect(&client, &forged_access).await.is_active());
    assert!(!app.introspect(&client, &forged_refresh).await.is_active());
    assert_eq!(
        bearer_status(&app, &forged_access).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert_error(
        app.refresh(&client, &forged_refresh).await,
        Code::InvalidArgument,
        "invalid_grant",
    );

    // The forgeries neither revoked nor used up the real tokens.
    assert!(
        app.introspect(&client, &token.access_token)
            .await
            .is_active()
    );
    assert_eq!(
        bearer_status(&app, &token.access_token).await,
        reqwest::StatusCode::OK
    );
    app.refresh(&client, &refresh)
        .await
        .expect("the real refresh token still rotates");
}

/// Undoes migration 4 by hand, as a database that has not had it yet would
/// be: no selectors, a unique index on every digest.
const BEFORE_SELECTORS: &str = "
    DROP INDEX access_tokens_selector_key, access_tokens_legacy_digest_key,
               refresh_tokens_selector_key, refresh_tokens_legacy_digest_key;
    ALTER TABLE access_tokens DROP COLUMN selector,
        ADD CONSTRAINT access_tokens_digest_key UNIQUE (digest);
    ALTER TABLE refresh_tokens DROP COLUMN selector,
        ADD CONSTRAINT refresh_tokens_digest_key UNIQUE (digest);
    DELETE FROM schema_migrations WHERE version = 4;";

#[tokio::test]
async fn tokens_issued_before_the_selector_migration_keep_working_after_it() {
    let old = spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await;
    let client = old.register_app(&[OOB], "read").await;
    let user = old.create_user("alice", false).await;
    let user_token = old.user_token(&user, &client, "read").await;
    let refresh = user_token.refresh_token.clone().expect("a refresh token");
    let app_token = old.client_credentials(&client, "read").await.unwrap();
    old.db()
        .await
        .batch_execute(BEFORE_SELECTORS)
        .await
        .unwrap();

    // A new replica applies migration 4 again over the old rows, and its
    // cache is empty, so every answer below comes from the database.
    let mut options = TestOptions::default();
    options.service.lifetimes.access_token = Some(Duration::from_secs(3600));
    let new = old.spawn_replica(options).await;
    let legacy: i64 = new
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM access_tokens WHERE selector IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(legacy, 2, "the old rows have no selector");

    assert!(
        new.introspect(&client, &app_token.access_token)
            .await
            .is_active()
    );
    assert!(new.introspect(&client, &refresh).await.is_active());
    assert_eq!(
        bearer_status(&new, &user_token.access_token).await,
        reqwest::StatusCode::OK
    );
    assert!(
        !new.introspect(&client, &with_forged_verifier(&app_token.access_token))
            .await
            .is_active()
    );

    // Rotation works on an old refresh token, and its reuse is still caught.
    let rotated = new.refresh(&client, &refresh).await.expect("refresh");
    assert!(
        new.introspect(&client, &rotated.access_token)
            .await
            .is_active()
    );
    assert_error(
        new.refresh(&client, &refresh).await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert!(
        !new.introspect(&client, &rotated.access_token)
            .await
            .is_active(),
        "reuse of the old refresh token revoked its family"
    );
}
