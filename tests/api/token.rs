use std::time::Duration;

use authd::domain::pkce::CodeChallenge;
use authd::proto::v1;
use tonic::Code;

use crate::helpers::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// An app with expiring access tokens, so that refresh tokens are issued.
async fn spawn_app_with_expiring_tokens() -> TestApp {
    spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await
}

#[tokio::test]
async fn authorization_code_exchange_returns_a_mastodon_token() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read write", None).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = app.exchange_code(&client, &code, OOB, "").await.unwrap();
    assert_eq!(token.access_token.len(), 43);
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.scope, "read write");
    assert!((token.created_at - before).abs() <= 2);
    assert_eq!(
        token.expires_in, None,
        "Mastodon tokens do not expire by default"
    );
    assert_eq!(token.refresh_token, None);
    let introspected = app.introspect(&client, &token.access_token).await;
    assert!(introspected.is_active());
    assert_eq!(introspected.account_id.as_deref(), Some(user.id.as_str()));
}

#[tokio::test]
async fn exchange_accepts_basic_client_authentication() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .oauth()
        .exchange_token(with_basic(
            v1::ExchangeTokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
            &client,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.scope, "read");
}

#[tokio::test]
async fn exchange_rejects_a_wrong_client_secret() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let wrong = TestClient {
        client_secret: "wrong".into(),
        ..client.clone()
    };
    assert_error(
        app.client_credentials(&wrong, "").await,
        Code::Unauthenticated,
        "invalid_client",
    );
    let empty = TestClient {
        client_secret: String::new(),
        ..client
    };
    assert_error(
        app.client_credentials(&empty, "").await,
        Code::Unauthenticated,
        "invalid_client",
    );
}

#[tokio::test]
async fn exchange_rejects_an_unknown_client() {
    let app = spawn_app().await;
    let ghost = TestClient {
        client_id: "ghost".into(),
        client_secret: "secret".into(),
        app_id: String::new(),
    };
    assert_error(
        app.client_credentials(&ghost, "").await,
        Code::Unauthenticated,
        "invalid_client",
    );
}

#[tokio::test]
async fn exchange_requires_a_known_grant_type() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    for (grant, name) in [
        ("", "invalid_request"),
        ("password", "unsupported_grant_type"),
        ("implicit", "unsupported_grant_type"),
    ] {
        let r = app
            .oauth()
            .exchange_token(v1::ExchangeTokenRequest {
                grant_type: grant.into(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                ..Default::default()
            })
            .await;
        assert_error(r, Code::InvalidArgument, name);
    }
}

#[tokio::test]
async fn reused_code_fails_and_revokes_the_tokens_issued_from_it() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read", None).await;
    let token = app.exchange_code(&client, &code, OOB, "").await.unwrap();
    assert!(
        app.introspect(&client, &token.access_token)
            .await
            .is_active()
    );
    assert_error(
        app.exchange_code(&client, &code, OOB, "").await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert!(
        !app.introspect(&client, &token.access_token)
            .await
            .is_active(),
        "the first exchange's token is revoked"
    );
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_let_at_most_one_succeed() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read", None).await;
    let attempts = (0..8).map(|_| app.exchange_code(&client, &code, OOB, ""));
    let results = futures::future::join_all(attempts).await;
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    // The reuse attempts revoked what the one success issued.
    assert!(
        !app.introspect(&client, &ok[0].access_token)
            .await
            .is_active()
    );
}

#[tokio::test]
async fn expired_code_is_an_invalid_grant() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read", None).await;
    app.db()
        .await
        .execute(
            "UPDATE authorization_codes SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_error(
        app.exchange_code(&client, &code, OOB, "").await,
        Code::InvalidArgument,
        "invalid_grant",
    );
}

#[tokio::test]
async fn code_of_another_client_or_redirect_uri_is_an_invalid_grant() {
    let app = spawn_app().await;
    let client = app
        .register_app(&[OOB, "https://app.example/cb"], "read")
        .await;
    let other = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read", None).await;
    assert_error(
        app.exchange_code(&other, &code, OOB, "").await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert_error(
        app.exchange_code(&client, &code, "https://app.example/cb", "")
            .await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert_error(
        app.exchange_code(&client, "bogus", OOB, "").await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    // None of that burned the code.
    app.exchange_code(&client, &code, OOB, "").await.unwrap();
}

#[tokio::test]
async fn pkce_verifier_is_required_when_a_challenge_was_sent() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = app
        .authorize(&user, &client, OOB, "read", Some(&challenge))
        .await;
    assert_error(
        app.exchange_code(&client, &code, OOB, "").await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        app.exchange_code(
            &client,
            &code,
            OOB,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
        )
        .await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    let token = app
        .exchange_code(&client, &code, OOB, VERIFIER)
        .await
        .unwrap();
    assert!(
        app.introspect(&client, &token.access_token)
            .await
            .is_active()
    );
}

#[tokio::test]
async fn pkce_verifier_without_a_challenge_is_an_invalid_grant() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = app.authorize(&user, &client, OOB, "read", None).await;
    assert_error(
        app.exchange_code(&client, &code, OOB, VERIFIER).await,
        Code::InvalidArgument,
        "invalid_grant",
    );
}

#[tokio::test]
async fn client_credentials_defaults_to_read_and_checks_scopes() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write:statuses").await;
    let token = app.client_credentials(&client, "").await.unwrap();
    assert_eq!(token.scope, "read");
    assert_eq!(token.refresh_token, None, "RFC 6749 section 4.4.3");
    let narrower = app
        .client_credentials(&client, "read:accounts write:statuses")
        .await
        .unwrap();
    assert_eq!(narrower.scope, "read:accounts write:statuses");
    assert_error(
        app.client_credentials(&client, "write").await,
        Code::InvalidArgument,
        "invalid_scope",
    );
    assert_error(
        app.client_credentials(&client, "read bogus").await,
        Code::InvalidArgument,
        "invalid_scope",
    );
    let introspected = app.introspect(&client, &token.access_token).await;
    assert!(introspected.is_active());
    assert_eq!(introspected.sub.as_deref(), Some(client.client_id.as_str()));
    assert_eq!(introspected.username, None);
}

#[tokio::test]
async fn expiring_access_tokens_come_with_a_refresh_token_that_rotates() {
    let app = spawn_app_with_expiring_tokens().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let first = app.user_token(&user, &client, "read write").await;
    assert_eq!(first.expires_in, Some(3600));
    let refresh = first.refresh_token.clone().expect("refresh token");
    let second = app.refresh(&client, &refresh).await.unwrap();
    assert_eq!(second.scope, "read write");
    assert_ne!(
        second.refresh_token.as_deref(),
        Some(refresh.as_str()),
        "rotated"
    );
    assert!(
        app.introspect(&client, &second.access_token)
            .await
            .is_active()
    );
    assert!(
        !app.introspect(&client, &first.access_token)
            .await
            .is_active(),
        "the access token issued with the used refresh token is revoked"
    );
    // Refresh tokens are introspectable too.
    let r = app
        .introspect(&client, second.refresh_token.as_deref().unwrap())
        .await;
    assert!(r.is_active());
    assert_eq!(r.token_type.as_deref(), Some("refresh_token"));
}

#[tokio::test]
async fn reused_refresh_token_revokes_its_whole_family() {
    let app = spawn_app_with_expiring_tokens().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let first = app.user_token(&user, &client, "read").await;
    let used = first.refresh_token.unwrap();
    let second = app.refresh(&client, &used).await.unwrap();
    assert_error(
        app.refresh(&client, &used).await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert!(
        !app.introspect(&client, &second.access_token)
            .await
            .is_active()
    );
    assert_error(
        app.refresh(&client, second.refresh_token.as_deref().unwrap())
            .await,
        Code::InvalidArgument,
        "invalid_grant",
    );
}

#[tokio::test]
async fn refresh_may_narrow_scopes_but_never_widen_them() {
    let app = spawn_app_with_expiring_tokens().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let first = app.user_token(&user, &client, "read").await;
    let refresh = first.refresh_token.unwrap();
    let request = |scope: &str, token: &str| v1::ExchangeTokenRequest {
        grant_type: "refresh_token".into(),
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        refresh_token: token.into(),
        scope: scope.into(),
        ..Default::default()
    };
    assert_error(
        app.oauth()
            .exchange_token(request("read write", &refresh))
            .await,
        Code::InvalidArgument,
        "invalid_scope",
    );
    let narrowed = app
        .oauth()
        .exchange_token(request("read:accounts", &refresh))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(narrowed.scope, "read:accounts");
    // The new refresh token keeps the grant's full scope (RFC 6749 section 6).
    let next = app
        .refresh(&client, narrowed.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(next.scope, "read");
}

#[tokio::test]
async fn refresh_token_of_another_client_is_an_invalid_grant() {
    let app = spawn_app_with_expiring_tokens().await;
    let client = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let first = app.user_token(&user, &client, "read").await;
    assert_error(
        app.refresh(&other, first.refresh_token.as_deref().unwrap())
            .await,
        Code::InvalidArgument,
        "invalid_grant",
    );
}

#[tokio::test]
async fn concurrent_client_credentials_tokens_are_each_durable_and_revoked_alone() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write").await;
    let issued = futures::future::join_all((0..64).map(|i| {
        let scope = if i % 2 == 0 { "read" } else { "write" };
        let (app, client) = (&app, &client);
        async move { (scope, app.client_credentials(client, scope).await.unwrap()) }
    }))
    .await;
    let distinct: std::collections::HashSet<&str> = issued
        .iter()
        .map(|(_, t)| t.access_token.as_str())
        .collect();
    assert_eq!(distinct.len(), 64);
    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT grant_id),
                    count(*) FILTER (WHERE t.scopes <> g.scopes)
             FROM access_tokens t JOIN grants g ON g.id = t.grant_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        64,
        "every token was stored before its answer"
    );
    // Tokens issued together share a grant, one per scope set.
    let grants = row.get::<_, i64>(1);
    assert!(grants < 64, "no two tokens were written together");
    assert_eq!(
        row.get::<_, i64>(2),
        0,
        "a token in another scope set's grant"
    );
    for (scope, token) in &issued {
        let facts = app.introspect(&client, &token.access_token).await;
        assert_eq!(facts.scope.as_deref(), Some(*scope));
    }
    // Revoking one token leaves the others alone, its grant's included.
    let grant_of = |token: &str| {
        let db = &db;
        let digest = authd::domain::secret::Secret::new(token)
            .digest()
            .as_bytes()
            .to_vec();
        async move {
            db.query_one(
                "SELECT grant_id FROM access_tokens WHERE digest = $1",
                &[&digest],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    let mut by_grant: std::collections::HashMap<i64, Vec<&str>> = Default::default();
    for (_, token) in &issued {
        let grant = grant_of(&token.access_token).await;
        by_grant.entry(grant).or_default().push(&token.access_token);
    }
    let mates = by_grant
        .values()
        .find(|tokens| tokens.len() >= 2)
        .expect("a grant of two tokens or more");
    app.revoke(&client, mates[0]).await.unwrap();
    assert!(!app.introspect(&client, mates[0]).await.is_active());
    for (_, token) in &issued {
        if token.access_token != mates[0] {
            assert!(
                app.introspect(&client, &token.access_token)
                    .await
                    .is_active(),
                "another token was revoked with the first"
            );
        }
    }
    // And the revocation reached the database, not just this cache.
    let revoked: i64 = db
        .query_one(
            "SELECT count(*) FROM access_tokens WHERE revoked_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(revoked, 1);
}
