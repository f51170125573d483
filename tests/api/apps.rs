use authd::proto::v1;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn register_app_returns_credentials_and_stores_only_a_digest() {
    let app = spawn_app().await;
    let r = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "Test Application".into(),
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".into()],
            scopes: "read write push".into(),
            website: "https://myapp.example".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.client_id.len(), 43);
    assert_eq!(r.client_secret.len(), 43);
    assert_eq!(r.client_secret_expires_at, 0);
    let registered = r.app.unwrap();
    assert_eq!(registered.name, "Test Application");
    assert_eq!(registered.scopes, ["read", "write", "push"]);
    assert_eq!(registered.redirect_uris, [OOB]);
    assert_eq!(registered.website, "https://myapp.example");
    assert_eq!(registered.access_token_format, "opaque");

    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT client_secret_digest FROM apps WHERE client_id = $1",
            &[&r.client_id],
        )
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    assert_eq!(stored.len(), 32, "a SHA-256 digest");
    assert_ne!(stored, r.client_secret.as_bytes());
    let dump = db
        .query_one(
            "SELECT row_to_json(apps)::text FROM apps WHERE client_id = $1",
            &[&r.client_id],
        )
        .await
        .unwrap();
    assert!(!dump.get::<_, String>(0).contains(&r.client_secret));
}

#[tokio::test]
async fn register_app_defaults_scopes_to_read_and_splits_uri_lists() {
    let app = spawn_app().await;
    let r = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "x".into(),
            redirect_uris: vec!["https://a.example/cb\nhttps://b.example/cb".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .app
        .unwrap();
    assert_eq!(r.scopes, ["read"]);
    assert_eq!(
        r.redirect_uris,
        ["https://a.example/cb", "https://b.example/cb"]
    );
}

#[tokio::test]
async fn register_app_rejects_invalid_input_with_validation_failed() {
    let app = spawn_app().await;
    let cases = [
        ("", vec![OOB], "read", "Name can't be blank"),
        ("x", vec![], "read", "Redirect URI"),
        ("x", vec!["javascript:alert(1)"], "read", "forbidden scheme"),
        ("x", vec!["https://a.example/cb#f"], "read", "fragment"),
        ("x", vec![OOB], "read fly", "Scopes doesn't match"),
    ];
    for (name, uris, scopes, wording) in cases {
        let status = app
            .apps()
            .register_app(v1::RegisterAppRequest {
                client_name: name.into(),
                redirect_uris: uris.into_iter().map(String::from).collect(),
                scopes: scopes.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status), "validation_failed");
        assert!(
            status.message().contains(wording),
            "{} lacks {wording}",
            status.message()
        );
    }
}

#[tokio::test]
async fn verify_app_credentials_accepts_user_and_app_tokens() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let user_token = app.user_token(&user, &client, "read").await.access_token;
    let app_token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    for token in [user_token, app_token] {
        let verified = app
            .apps()
            .verify_app_credentials(with_bearer(
                v1::VerifyAppCredentialsRequest::default(),
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(verified.id, client.app_id);
        assert_eq!(verified.name, "Test App");
        assert_eq!(verified.scopes, ["read", "write"]);
        assert!(
            verified.client_id.is_empty(),
            "no credentials in the Application entity"
        );
    }
}

#[tokio::test]
async fn verify_app_credentials_rejects_unknown_and_revoked_tokens() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    assert_error(
        app.apps()
            .verify_app_credentials(with_bearer(
                v1::VerifyAppCredentialsRequest::default(),
                "nope",
            ))
            .await,
        Code::Unauthenticated,
        "invalid_token",
    );
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    app.revoke(&client, &token).await.unwrap();
    assert_error(
        app.apps()
            .verify_app_credentials(v1::VerifyAppCredentialsRequest {
                access_token: token,
            })
            .await,
        Code::Unauthenticated,
        "token_revoked",
    );
}

#[tokio::test]
async fn set_resource_server_needs_an_admin() {
    let app = spawn_app().await;
    let admin_app = app.register_app(&[OOB], "read admin:write").await;
    let rs = app.register_app(&[OOB], "read").await;
    let admin = app.create_user("root", true).await;
    let mallory = app.create_user("mallory", true).await;
    let admin_token = app
        .user_token(&admin, &admin_app, "admin:write")
        .await
        .access_token;
    let mallory_token = app
        .user_token(&mallory, &admin_app, "admin:write")
        .await
        .access_token;
    // The token's account stops being an admin: the role is checked on
    // each call, whatever the token's scopes say.
    app.demote("mallory").await;
    let request = || v1::SetResourceServerRequest {
        client_id: rs.client_id.clone(),
        resource_server: true,
    };
    assert_error(
        app.apps()
            .set_resource_server(with_bearer(request(), &mallory_token))
            .await,
        Code::PermissionDenied,
        "forbidden",
    );
    let updated = app
        .apps()
        .set_resource_server(with_bearer(request(), &admin_token))
        .await
        .unwrap()
        .into_inner();
    assert!(updated.resource_server);
}

#[tokio::test]
async fn an_app_registered_without_client_metadata_is_confidential_with_every_grant() {
    let app = spawn_app().await;
    let r = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "Mastodon way".into(),
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.client_secret.len(), 43);
    let registered = r.app.unwrap();
    assert_eq!(registered.token_endpoint_auth_method, "client_secret_basic");
    assert_eq!(
        registered.grant_types,
        ["authorization_code", "refresh_token", "client_credentials"]
    );
    assert_eq!(registered.response_types, ["code"]);
    assert!(registered.id_token_signed_response_alg.is_empty());
    assert!(registered.post_logout_redirect_uris.is_empty());
}

#[tokio::test]
async fn a_public_app_registered_over_grpc_gets_no_secret_and_keeps_its_metadata() {
    let app = spawn_app().await;
    let r = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "native".into(),
            redirect_uris: vec!["myapp://cb".into()],
            token_endpoint_auth_method: "none".into(),
            id_token_signed_response_alg: "ES256".into(),
            post_logout_redirect_uris: vec!["myapp://bye".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.client_secret.is_empty());
    let registered = r.app.unwrap();
    assert_eq!(registered.token_endpoint_auth_method, "none");
    assert_eq!(
        registered.grant_types,
        ["authorization_code", "refresh_token"]
    );
    assert_eq!(registered.id_token_signed_response_alg, "ES256");
    assert_eq!(registered.post_logout_redirect_uris, ["myapp://bye"]);
    // An empty secret is not this app's secret: introspection, which needs
    // a confidential client, refuses it.
    let refused = app
        .oauth()
        .introspect(v1::IntrospectRequest {
            token: "x".repeat(43),
            client_id: r.client_id,
            ..Default::default()
        })
        .await;
    assert_error(refused, Code::Unauthenticated, "invalid_client");
}
