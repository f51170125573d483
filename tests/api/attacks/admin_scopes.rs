//! Admin scopes claimed by holders without admin rights: an app registered
//! anonymously with admin scopes asking for them through client_credentials,
//! and an admin's token after the account lost its role. Introspection (and
//! so every resource server that trusts it) must never say admin:* for a
//! holder that lacks the rights.
use std::time::Duration;

use authd::proto::v1;
use tonic::Code;

use super::*;
use crate::admin::{Setup, admin, eventually, setup, setup_on, synced};

/// Introspection's scope for `token`, as `gateway` (a resource server)
/// sees it; None when inactive.
async fn scope(app: &TestApp, gateway: &TestClient, token: &str) -> Option<String> {
    let answer = app.introspect(gateway, token).await;
    if answer.active == Some(true) {
        Some(answer.scope.unwrap_or_default())
    } else {
        None
    }
}

#[tokio::test]
async fn client_credentials_yields_admin_scopes_only_to_an_app_an_admin_allowed() {
    let Setup {
        app,
        token: admin_token,
        gateway,
    } = setup().await;
    synced(&app).await;
    // Anyone may register an app with admin scopes.
    let rogue = app
        .register_app(&[OOB], "read admin:read admin:write")
        .await;

    // Asked with other scopes, the grant is narrowed, and says so.
    let narrowed = app
        .client_credentials(&rogue, "read admin:read admin:write")
        .await
        .unwrap();
    assert_eq!(narrowed.scope, "read");
    assert_eq!(
        scope(&app, &gateway, &narrowed.access_token)
            .await
            .as_deref(),
        Some("read")
    );
    // Asked alone, nothing can be granted.
    assert_error(
        app.client_credentials(&rogue, "admin:read").await,
        Code::InvalidArgument,
        "invalid_scope",
    );
    // Over HTTP too.
    let (status, body) = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &rogue.client_id),
            ("client_secret", &rogue.client_secret),
            ("scope", "admin:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    // The app itself cannot allow itself, nor can a non-admin.
    let set = |allowed: bool, bearer: String| {
        let mut admin = admin(&app);
        let client_id = rogue.client_id.clone();
        async move {
            admin
                .set_app_admin_scopes(with_bearer(
                    v1::SetAppAdminScopesRequest { client_id, allowed },
                    &bearer,
                ))
                .await
        }
    };
    assert_error(
        set(true, narrowed.access_token.clone()).await,
        Code::FailedPrecondition,
        "user_required",
    );

    // An admin allows it: admin scopes are granted and introspect.
    let allowed = set(true, admin_token.clone()).await.unwrap().into_inner();
    assert!(allowed.admin_scopes);
    let privileged = app
        .client_credentials(&rogue, "read admin:read")
        .await
        .unwrap();
    assert_eq!(privileged.scope, "read admin:read");
    let admin_only = app.client_credentials(&rogue, "admin:read").await.unwrap();
    assert_eq!(
        scope(&app, &gateway, &privileged.access_token)
            .await
            .as_deref(),
        Some("read admin:read"),
        "cached now"
    );

    // Forbidden again: the tokens already issued lose their admin scopes at
    // once (the cache is told), and one that held nothing else is inactive.
    let forbidden = set(false, admin_token).await.unwrap().into_inner();
    assert!(!forbidden.admin_scopes);
    assert!(
        eventually(Duration::from_secs(2), || async {
            scope(&app, &gateway, &privileged.access_token)
                .await
                .as_deref()
                == Some("read")
        })
        .await,
        "still {:?}",
        scope(&app, &gateway, &privileged.access_token).await
    );
    assert_eq!(scope(&app, &gateway, &admin_only.access_token).await, None);
}

#[tokio::test]
async fn an_account_that_loses_the_admin_role_loses_its_tokens_admin_scopes() {
    // Tokens that expire, so that the grants have refresh tokens.
    let Setup { app, gateway, .. } =
        setup_on(spawn_app_with_access_token_ttl(Duration::from_secs(3600)).await).await;
    synced(&app).await;
    let console = app
        .register_app(&[OOB], "read admin:read admin:write")
        .await;
    let boss = app.create_user("boss", true).await;
    let grant = app.user_token(&boss, &console, "read admin:read").await;
    let admin_only = app.user_token(&boss, &console, "admin:read").await;
    assert_eq!(grant.scope, "read admin:read");
    assert_eq!(
        scope(&app, &gateway, &grant.access_token).await.as_deref(),
        Some("read admin:read"),
        "cached now"
    );

    // Demoted in the database, as an operator would: the notification drops
    // what the cache holds.
    app.demote("boss").await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            scope(&app, &gateway, &grant.access_token).await.as_deref() == Some("read")
        })
        .await,
        "still {:?}",
        scope(&app, &gateway, &grant.access_token).await
    );
    assert_eq!(
        scope(&app, &gateway, &admin_only.access_token).await,
        None,
        "a token of admin scopes only grants nothing now"
    );

    // Refreshing cannot bring them back; the family keeps the rest.
    let refreshed = app
        .refresh(&console, grant.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(refreshed.scope, "read");
    assert_eq!(
        scope(&app, &gateway, &refreshed.access_token)
            .await
            .as_deref(),
        Some("read")
    );
    let again = app
        .refresh(&console, refreshed.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(again.scope, "read");
    assert_error(
        app.refresh(&console, admin_only.refresh_token.as_deref().unwrap())
            .await,
        Code::InvalidArgument,
        "invalid_grant",
    );

    // authd's own admin API says why it refuses.
    assert_error(
        admin(&app)
            .list_apps(with_bearer(
                v1::ListAppsRequest::default(),
                &again.access_token,
            ))
            .await,
        Code::PermissionDenied,
        "forbidden",
    );
}
