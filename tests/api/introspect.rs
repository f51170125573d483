use authd::proto::v1;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn introspection_of_an_active_user_token_returns_rfc7662_facts() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let token = app.user_token(&user, &client, "read").await;
    let r = app.introspect(&client, &token.access_token).await;
    assert!(r.is_active());
    assert_eq!(r.scope.as_deref(), Some("read"));
    assert_eq!(r.client_id.as_deref(), Some(client.client_id.as_str()));
    assert_eq!(r.username.as_deref(), Some("alice"));
    assert_eq!(r.token_type.as_deref(), Some("Bearer"));
    assert_eq!(r.exp, None, "never expires");
    assert_eq!(r.iat, Some(token.created_at));
    assert_eq!(r.sub.as_deref(), Some(user.id.as_str()));
    assert_eq!(r.iss.as_deref(), Some("http://authd.test"));
}

#[tokio::test]
async fn introspection_accepts_basic_metadata() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    let r = app
        .oauth()
        .introspect(with_basic(
            v1::IntrospectRequest {
                token,
                ..Default::default()
            },
            &client,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.is_active());
}

#[tokio::test]
async fn inactive_tokens_answer_active_false_and_nothing_else() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let r = app.introspect(&client, "forged-token").await;
    assert_eq!(r, v1::IntrospectResponse::inactive());
    let r = app.introspect(&client, &"x".repeat(100_000)).await;
    assert!(!r.is_active());
}

#[tokio::test]
async fn a_client_sees_only_its_own_tokens_unless_it_is_a_resource_server() {
    let app = spawn_app().await;
    let owner = app.register_app(&[OOB], "read").await;
    let stranger = app.register_app(&[OOB], "read").await;
    let gateway = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&owner, "")
        .await
        .unwrap()
        .access_token;
    assert!(app.introspect(&owner, &token).await.is_active());
    assert_eq!(
        app.introspect(&stranger, &token).await,
        v1::IntrospectResponse::inactive()
    );
    assert!(!app.introspect(&gateway, &token).await.is_active());
    app.application()
        .service()
        .store()
        .set_resource_server(&gateway.client_id, true)
        .await
        .unwrap();
    // Written straight to the database, as the CLI does: the cached client
    // record is dropped when the NOTIFY arrives, within a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !app.introspect(&gateway, &token).await.is_active() {
        assert!(
            std::time::Instant::now() < deadline,
            "still not a resource server after a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    let r = app
        .oauth()
        .introspect(v1::IntrospectRequest {
            token: token.clone(),
            ..Default::default()
        })
        .await;
    assert_error(r, Code::Unauthenticated, "invalid_client");
    let r = app
        .oauth()
        .introspect(v1::IntrospectRequest {
            token,
            client_id: client.client_id.clone(),
            client_secret: "wrong".into(),
            ..Default::default()
        })
        .await;
    assert_error(r, Code::Unauthenticated, "invalid_client");
}

#[tokio::test]
async fn expired_tokens_are_inactive() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    app.db()
        .await
        .execute(
            "UPDATE access_tokens SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert!(!app.introspect(&client, &token).await.is_active());
}
