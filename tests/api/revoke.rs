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

#[tokio::test]
async fn revocation_requires_client_authentication() {
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
    assert_error(
        app.revoke(&wrong, &token).await,
        Code::Unauthenticated,
        "invalid_client",
    );
    assert!(app.introspect(&client, &token).await.is_active());
}
