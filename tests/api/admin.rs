//! Administration over gRPC (authd.v1.Admin, and Accounts' enable and
//! password reset): each operation does what it says, reaches the cache
//! and the other replicas, and refuses callers without admin rights.
use std::time::{Duration, Instant};

use authd::proto::v1;
use authd::proto::v1::admin_client::AdminClient;
use authd::proto::v1::revoke_tokens_request::Owner;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;

/// Waits until `cond` holds, up to `within`; whether it did.
pub async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Until the invalidation listener is up, the cache is bypassed; the
/// replica tests need it up, so that a cached answer is what is dropped.
pub async fn synced(app: &TestApp) {
    let cache = app.application().service().cache().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let cache = cache.clone();
            async move { cache.is_synced() }
        })
        .await,
        "the invalidation listener connects"
    );
}

pub struct Setup {
    pub app: TestApp,
    /// An admin's token with admin:read and admin:write.
    pub token: String,
    /// A resource server, to introspect any app's tokens (a deleted app
    /// can no longer introspect its own).
    pub gateway: TestClient,
}

pub async fn setup_on(app: TestApp) -> Setup {
    let console = app
        .register_app(&[OOB], "read admin:read admin:write")
        .await;
    let root = app.create_user("root", true).await;
    let token = app
        .user_token(&root, &console, "admin:read admin:write")
        .await
        .access_token;
    let gateway = app.register_app(&[OOB], "read").await;
    app.apps()
        .set_resource_server(with_bearer(
            v1::SetResourceServerRequest {
                client_id: gateway.client_id.clone(),
                resource_server: true,
            },
            &token,
        ))
        .await
        .unwrap();
    Setup {
        app,
        token,
        gateway,
    }
}

pub async fn setup() -> Setup {
    setup_on(spawn_app().await).await
}

pub fn admin(app: &TestApp) -> AdminClient<Channel> {
    AdminClient::new(app.channel.clone())
}

pub async fn active(app: &TestApp, caller: &TestClient, token: &str) -> bool {
    app.introspect(caller, token).await.is_active()
}

fn by_username(name: &str) -> v1::RevokeTokensRequest {
    v1::RevokeTokensRequest {
        owner: Some(Owner::Username(name.into())),
    }
}

fn by_client(client: &TestClient) -> v1::RevokeTokensRequest {
    v1::RevokeTokensRequest {
        owner: Some(Owner::ClientId(client.client_id.clone())),
    }
}

#[tokio::test]
async fn an_admin_lists_apps_page_by_page_and_shows_one_with_its_usage() {
    let Setup { app, token, .. } = setup().await;
    let client = app.register_app(&[OOB], "read write").await;
    let alice = app.create_user("alice", false).await;
    app.user_token(&alice, &client, "read").await;
    app.client_credentials(&client, "read").await.unwrap();

    // console, gateway, client: three apps, two per page.
    let first = admin(&app)
        .list_apps(with_bearer(
            v1::ListAppsRequest {
                page_size: 2,
                page_token: String::new(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.apps.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = admin(&app)
        .list_apps(with_bearer(
            v1::ListAppsRequest {
                page_size: 2,
                page_token: first.next_page_token,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.apps.len(), 1);
    assert_eq!(second.apps[0].client_id, client.client_id);
    assert!(second.next_page_token.is_empty(), "the last page");

    let details = admin(&app)
        .get_app(with_bearer(
            v1::GetAppRequest {
                client_id: client.client_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(details.app.unwrap().scopes, ["read", "write"]);
    assert_eq!(details.live_grants, 2, "one user grant, one app grant");
    assert_eq!(details.active_access_tokens, 2);
    assert_eq!(details.accounts, 1);
}

#[tokio::test]
async fn deleting_an_app_deactivates_its_tokens_at_once_and_its_client_can_no_longer_get_tokens() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let user_token = app.user_token(&alice, &client, "read").await.access_token;
    let app_token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let other_token = app
        .client_credentials(&other, "read")
        .await
        .unwrap()
        .access_token;
    for t in [&user_token, &app_token] {
        assert!(active(&app, &gateway, t).await);
        assert!(active(&app, &gateway, t).await, "cached");
    }

    let deleted = admin(&app)
        .delete_app(with_bearer(
            v1::DeleteAppRequest {
                client_id: client.client_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.app.unwrap().client_id, client.client_id);
    assert_eq!(deleted.revoked_grants, 2);

    // No waiting on the replica that deleted it.
    assert!(!active(&app, &gateway, &user_token).await);
    assert!(!active(&app, &gateway, &app_token).await);
    assert!(
        active(&app, &gateway, &other_token).await,
        "other apps stay"
    );
    assert_error(
        app.client_credentials(&client, "read").await,
        Code::Unauthenticated,
        "invalid_client",
    );
    assert_error(
        admin(&app)
            .get_app(with_bearer(
                v1::GetAppRequest {
                    client_id: client.client_id.clone(),
                },
                &token,
            ))
            .await,
        Code::NotFound,
        "not_found",
    );
}

#[tokio::test]
async fn an_app_deleted_on_one_replica_is_inactive_on_the_others_within_a_second() {
    let Setup {
        app: primary,
        token,
        gateway,
    } = setup().await;
    let replica = primary.spawn_replica(TestOptions::default()).await;
    synced(&primary).await;
    synced(&replica).await;
    let client = primary.register_app(&[OOB], "read").await;
    let app_token = primary
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(active(&replica, &client, &app_token).await);
    assert!(active(&replica, &gateway, &app_token).await, "cached");

    admin(&primary)
        .delete_app(with_bearer(
            v1::DeleteAppRequest {
                client_id: client.client_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&replica, &gateway, &app_token).await
        })
        .await,
        "the replica still says active after a second"
    );
    assert_error(
        replica.client_credentials(&client, "read").await,
        Code::Unauthenticated,
        "invalid_client",
    );
}

#[tokio::test]
async fn revoking_by_account_kills_that_accounts_tokens_and_no_one_elses() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    synced(&app).await;
    let client = app.register_jwt_app("read").await;
    let alice = app.create_user("alice", false).await;
    let bob = app.create_user("bob", false).await;
    let alice_tokens = app.user_token(&alice, &client, "read").await;
    let bob_token = app.user_token(&bob, &client, "read").await.access_token;
    let app_token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let pending_code = app.authorize(&alice, &client, OOB, "read", None).await;
    assert!(active(&app, &gateway, &alice_tokens.access_token).await);

    let revoked = admin(&app)
        .revoke_tokens(with_bearer(by_username("Alice"), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_grants, 1);
    assert_eq!(revoked.deleted_codes, 1);

    assert!(!active(&app, &gateway, &alice_tokens.access_token).await);
    let refresh = alice_tokens.refresh_token.expect("JWTs come with one");
    assert_error(
        app.refresh(&client, &refresh).await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert_error(
        app.exchange_code(&client, &pending_code, OOB, "").await,
        Code::InvalidArgument,
        "invalid_grant",
    );
    assert!(active(&app, &gateway, &bob_token).await, "bob keeps his");
    assert!(active(&app, &gateway, &app_token).await, "app tokens stay");
    // Alice's session stays: she can authorize again.
    let again = app.user_token(&alice, &client, "read").await.access_token;
    assert!(active(&app, &gateway, &again).await);
}

#[tokio::test]
async fn revoking_by_app_kills_that_apps_tokens_but_leaves_its_credentials() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    let client = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let user_token = app.user_token(&alice, &client, "read").await.access_token;
    let app_token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let other_user_token = app.user_token(&alice, &other, "read").await.access_token;

    let revoked = admin(&app)
        .revoke_tokens(with_bearer(by_client(&client), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_grants, 2);
    assert!(!active(&app, &gateway, &user_token).await);
    assert!(!active(&app, &gateway, &app_token).await);
    assert!(active(&app, &gateway, &other_user_token).await);
    let fresh = app
        .client_credentials(&client, "read")
        .await
        .expect("the app's credentials still work")
        .access_token;
    assert!(active(&app, &gateway, &fresh).await);
}

#[tokio::test]
async fn a_password_reset_ends_sessions_revokes_tokens_and_only_the_new_password_works() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;

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
        .unwrap()
        .into_inner();
    assert_eq!(reset.account.unwrap().id, alice.id);
    assert_eq!(reset.ended_sessions, 1, "the one create_user opened");
    assert_eq!(reset.revoked_grants, 1);

    assert_error(
        app.login(&email("alice"), PASSWORD).await,
        Code::Unauthenticated,
        "invalid_credentials",
    );
    app.login(&email("alice"), "a brand new password")
        .await
        .expect("the new password works");
    assert_error(
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: alice.session.clone(),
            })
            .await,
        Code::Unauthenticated,
        "invalid_session",
    );
    assert!(!active(&app, &gateway, &alice_token).await);
}

#[tokio::test]
async fn a_password_reset_with_keep_tokens_keeps_them_but_still_ends_sessions() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    let reset = app
        .accounts()
        .reset_account_password(with_bearer(
            v1::ResetAccountPasswordRequest {
                id: alice.id.clone(),
                password: "a brand new password".into(),
                keep_tokens: true,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.revoked_grants, 0);
    assert!(active(&app, &gateway, &alice_token).await);
    assert_error(
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: alice.session.clone(),
            })
            .await,
        Code::Unauthenticated,
        "invalid_session",
    );
}

#[tokio::test]
async fn enabling_a_disabled_account_undoes_the_disable() {
    let Setup {
        app,
        token,
        gateway,
    } = setup().await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    let disabled = app
        .accounts()
        .disable_account(with_bearer(
            v1::DisableAccountRequest {
                username: "alice".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(disabled.disabled);
    assert!(!active(&app, &gateway, &alice_token).await);
    assert_error(
        app.login(&email("alice"), PASSWORD).await,
        Code::PermissionDenied,
        "account_disabled",
    );

    let enabled = app
        .accounts()
        .enable_account(with_bearer(
            v1::EnableAccountRequest {
                username: "alice".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!enabled.disabled);
    app.login(&email("alice"), PASSWORD)
        .await
        .expect("alice logs in again");
    assert!(active(&app, &gateway, &alice_token).await);
}

fn jwks_kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

pub async fn http_jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = app
        .http()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks_kids(&jwks)
}

pub fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .unwrap()
        .kid
        .expect("a kid")
}

#[tokio::test]
async fn after_rotation_new_jwts_use_the_new_key_and_old_ones_verify_until_the_old_key_retires() {
    let Setup { app, token, .. } = setup().await;
    let replica = app.spawn_replica(TestOptions::default()).await;
    synced(&app).await;
    synced(&replica).await;
    let client = app.register_jwt_app("read").await;
    let old_jwt = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let old_kid = kid(&old_jwt);
    assert!(active(&app, &client, &old_jwt).await);

    let rotation = admin(&app)
        .rotate_signing_key(with_bearer(v1::RotateSigningKeyRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    let new_key = rotation.key.unwrap();
    assert_ne!(new_key.kid, old_kid);
    assert_eq!(new_key.retired_at, 0);
    assert_eq!(new_key.algorithm, "EdDSA", "the key of JWT access tokens");
    // One new key per algorithm replaces one old key per algorithm.
    let mut algorithms: Vec<&str> = rotation.keys.iter().map(|k| k.algorithm.as_str()).collect();
    algorithms.sort();
    assert_eq!(algorithms, ["ES256", "EdDSA", "RS256"]);
    assert_eq!(rotation.retired.len(), 3);
    let retired = rotation
        .retired
        .iter()
        .find(|k| k.kid == old_kid)
        .expect("the old key is retired");
    assert!(
        retired.published_until >= retired.retired_at + 3600,
        "kept for at least the JWT lifetime: {retired:?}"
    );

    // This replica signs with the new key at once, the other one as soon
    // as it hears of it.
    let new_jwt = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert_eq!(kid(&new_jwt), new_key.kid);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let jwt = replica
                .client_credentials(&client, "read")
                .await
                .unwrap()
                .access_token;
            kid(&jwt) == new_key.kid
        })
        .await,
        "the replica switched to the new key"
    );
    // The old key is still published, and its JWT still verifies.
    let kids = http_jwks_kids(&app).await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_key.kid),
        "{kids:?}"
    );
    assert!(active(&app, &client, &old_jwt).await);
    assert!(active(&replica, &client, &old_jwt).await);
    let listed = admin(&app)
        .list_signing_keys(with_bearer(v1::ListSigningKeysRequest {}, &token))
        .await
        .unwrap()
        .into_inner()
        .keys;
    let new_kids: Vec<String> = rotation.keys.iter().map(|k| k.kid.clone()).collect();
    let listed_kids: Vec<String> = listed.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(listed_kids.len(), 6, "{listed_kids:?}");
    assert!(
        listed_kids[..3].iter().all(|k| new_kids.contains(k)),
        "newest first: {listed_kids:?}"
    );
    assert!(listed_kids[3..].contains(&old_kid));
    let wiped: i32 = app
        .db()
        .await
        .query_one(
            "SELECT length(private_key) FROM signing_keys WHERE kid = $1",
            &[&old_kid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(wiped, 0, "the retired private key is wiped");

    // Its retirement time passes: it leaves the JWKS, and its JWTs stop
    // being active on every replica (even where they were cached).
    app.db()
        .await
        .execute(
            "UPDATE signing_keys SET retired_at = now() - interval '1 day' WHERE retired_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let mut published = http_jwks_kids(&app).await;
    published.sort();
    let mut expected = new_kids.clone();
    expected.sort();
    assert_eq!(published, expected);
    for node in [&app, &replica] {
        assert!(
            eventually(Duration::from_secs(5), || async {
                !active(node, &client, &old_jwt).await
            })
            .await,
            "a JWT of a dropped key is inactive"
        );
        assert!(active(node, &client, &new_jwt).await);
    }
}

#[tokio::test]
async fn admin_rpcs_refuse_callers_without_admin_rights() {
    let Setup { app, token, .. } = setup().await;
    let console = app
        .register_app(&[OOB], "read admin:read admin:write")
        .await;
    let victim = app.register_app(&[OOB], "read").await;
    let relogin = app.login(&email("root"), PASSWORD).await.unwrap();
    let root = TestUser {
        id: relogin.account.unwrap().id,
        session: relogin.session,
    };
    let read_only = app
        .user_token(&root, &console, "admin:read")
        .await
        .access_token;
    // A token with admin scopes whose account is no longer an admin: its
    // scopes were granted while it was (a non-admin is never granted
    // them), and each admin call checks the role again.
    let mallory = app.create_user("mallory", true).await;
    let not_admin = app
        .user_token(&mallory, &console, "admin:read admin:write")
        .await
        .access_token;
    app.demote("mallory").await;

    // Reading needs admin:read; the read-only token may.
    admin(&app)
        .list_apps(with_bearer(v1::ListAppsRequest::default(), &read_only))
        .await
        .expect("admin:read lists apps");
    admin(&app)
        .list_signing_keys(with_bearer(v1::ListSigningKeysRequest {}, &read_only))
        .await
        .expect("admin:read lists keys");

    for (bearer, code, name) in [
        (None, Code::Unauthenticated, "invalid_token"),
        (Some("garbage"), Code::Unauthenticated, "invalid_token"),
        (
            Some(not_admin.as_str()),
            Code::PermissionDenied,
            "forbidden",
        ),
        (
            Some(read_only.as_str()),
            Code::PermissionDenied,
            "insufficient_scope",
        ),
    ] {
        fn with<T>(message: T, bearer: Option<&str>) -> tonic::Request<T> {
            match bearer {
                Some(t) => with_bearer(message, t),
                None => tonic::Request::new(message),
            }
        }
        assert_error(
            admin(&app)
                .delete_app(with(
                    v1::DeleteAppRequest {
                        client_id: victim.client_id.clone(),
                    },
                    bearer,
                ))
                .await,
            code,
            name,
        );
        assert_error(
            admin(&app)
                .revoke_tokens(with(by_client(&victim), bearer))
                .await,
            code,
            name,
        );
        assert_error(
            admin(&app)
                .rotate_signing_key(with(v1::RotateSigningKeyRequest {}, bearer))
                .await,
            code,
            name,
        );
        assert_error(
            app.accounts()
                .reset_account_password(with(
                    v1::ResetAccountPasswordRequest {
                        username: "mallory".into(),
                        password: "taken over at last".into(),
                        ..Default::default()
                    },
                    bearer,
                ))
                .await,
            code,
            name,
        );
        assert_error(
            app.accounts()
                .enable_account(with(
                    v1::EnableAccountRequest {
                        username: "mallory".into(),
                        ..Default::default()
                    },
                    bearer,
                ))
                .await,
            code,
            name,
        );
        if bearer != Some(read_only.as_str()) {
            assert_error(
                admin(&app)
                    .list_apps(with(v1::ListAppsRequest::default(), bearer))
                    .await,
                code,
                name,
            );
        }
    }
    // Nothing happened: the app works, mallory's password is unchanged.
    app.client_credentials(&victim, "read").await.unwrap();
    app.login(&email("mallory"), PASSWORD).await.unwrap();
    // The full admin token does work.
    admin(&app)
        .get_app(with_bearer(
            v1::GetAppRequest {
                client_id: victim.client_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_admin_requests_get_clear_errors() {
    let Setup { app, token, .. } = setup().await;
    assert_error(
        admin(&app)
            .revoke_tokens(with_bearer(v1::RevokeTokensRequest { owner: None }, &token))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        admin(&app)
            .list_apps(with_bearer(
                v1::ListAppsRequest {
                    page_size: 5000,
                    ..Default::default()
                },
                &token,
            ))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        admin(&app)
            .list_apps(with_bearer(
                v1::ListAppsRequest {
                    page_token: "not a token".into(),
                    ..Default::default()
                },
                &token,
            ))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        admin(&app)
            .delete_app(with_bearer(
                v1::DeleteAppRequest {
                    client_id: "no-such-client".into(),
                },
                &token,
            ))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_error(
        admin(&app)
            .revoke_tokens(with_bearer(by_username("nobody"), &token))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_error(
        app.accounts()
            .reset_account_password(with_bearer(
                v1::ResetAccountPasswordRequest {
                    username: "root".into(),
                    password: "short".into(),
                    ..Default::default()
                },
                &token,
            ))
            .await,
        Code::InvalidArgument,
        "validation_failed",
    );
    assert_error(
        app.accounts()
            .enable_account(with_bearer(
                v1::EnableAccountRequest {
                    id: "1".into(),
                    username: "root".into(),
                },
                &token,
            ))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
}
