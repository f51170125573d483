use authd::proto::v1;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_revoked_token_is_inactive() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    assert!(app.introspect(&client, &token).await.is_active());
    app.revoke(&client, &token).await.unwrap();
    assert_eq!(
        app.introspect(&client, &token).await,
        v1::IntrospectResponse::inactive()
    );
    // Revoking again, or revoking an unknown token, is fine (RFC 7009 section 2.2).
    app.revoke(&client, &token).await.unwrap();
    app.revoke(&client, "never-issued").await.unwrap();
}

#[tokio::test]
async fn revoking_another_clients_token_is_refused() {
    let app = spawn_app().await;
    let owner = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&owner, "")
        .await
        .unwrap()
        .access_token;
    assert_error(
        app.revoke(&other, &token).await,
        Code::PermissionDenied,
        "unauthorized_client",
    );
    assert!(app.introspect(&owner, &token).await.is_active());
}

/// Doorkeeper's `validate_presence_of_client`: a caller that is missing or
/// fails to authenticate is refused as `unauthorized_client` (403), not as
/// RFC 6749's `invalid_client`, and the token stays active.
#[tokio::test]
async fn revocation_by_an_unauthenticated_caller_is_unauthorized_client() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    let wrong = TestClient {
        client_secret: "nope".into(),
        ..client.clone()
    };
    let nobody = TestClient {
        client_id: String::new(),
        client_secret: String::new(),
        app_id: String::new(),
    };
    for caller in [&wrong, &nobody] {
        assert_error(
            app.revoke(caller, &token).await,
            Code::PermissionDenied,
            "unauthorized_client",
        );
    }
    assert!(app.introspect(&client, &token).await.is_active());
}

#[tokio::test]
async fn revoking_a_blank_token_succeeds_as_in_doorkeeper() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    app.revoke(&client, "")
        .await
        .expect("a blank token is 200 {}");
}

/// Mastodon revokes an account's tokens when its password is reset (the
/// admin CLI since 4.4.6); ResetAccountPassword does so unless keep_tokens
/// is set, and the HTTP shim refuses the tokens at once.
#[tokio::test]
async fn a_password_reset_revokes_the_accounts_tokens_by_default_as_http_clients_see() {
    let crate::admin::Setup { app, token, .. } = crate::admin::setup().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let alice = app.create_user("alice", false).await;
    let bob = app.create_user("bob", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    let bob_token = app.user_token(&bob, &client, "read").await.access_token;
    let verify = |path: &'static str, bearer: String| {
        let request = app.http().get(app.url(path)).bearer_auth(bearer);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        verify("/api/v1/accounts/verify_credentials", alice_token.clone())
            .await
            .status(),
        200
    );

    let reset = app
        .accounts()
        .reset_account_password(with_bearer(
            v1::ResetAccountPasswordRequest {
                username: "alice".into(),
                password: "a brand new password".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(reset.revoked_grants, 1, "keep_tokens defaults to false");

    for path in [
        "/api/v1/accounts/verify_credentials",
        "/api/v1/apps/verify_credentials",
    ] {
        let refused = verify(path, alice_token.clone()).await;
        assert_eq!(refused.status(), 401, "{path}");
        assert_eq!(
            refused.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"error": "The access token was revoked"}),
            "{path}"
        );
        assert_eq!(
            verify(path, bob_token.clone()).await.status(),
            200,
            "{path}"
        );
    }
    // Revoking the already revoked token is still 200 {}.
    let again = app
        .http()
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[("token", alice_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({})
    );
}
