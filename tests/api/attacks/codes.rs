//! Authorization code attacks (RFC 9700 section 4.5, RFC 6819 4.4.1):
//! a code is bound to its client and redirect_uri, lives minutes, and is
//! redeemed once; a replayed code revokes what it issued.
use std::time::Duration;

use authd::service::ServiceConfig;
use authd::service::clock::Clock;

use super::*;

async fn setup() -> (TestApp, TestClient, TestUser) {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    (app, client, user)
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_every_token_issued_from_the_code() {
    let app = spawn_app_with_access_token_ttl(Duration::from_secs(600)).await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = code_for(&app, &user, &client, OOB, "read", None).await;
    let first = redeem(&app, &client, &code, OOB, None).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let access = first.1["access_token"].as_str().unwrap().to_owned();
    let refresh = first.1["refresh_token"].as_str().unwrap().to_owned();
    // A refreshed token descends from the code too.
    let (status, refreshed) = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let descendant = refreshed["access_token"].as_str().unwrap().to_owned();
    let descendant_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert!(active(&app, &client, &access).await || active(&app, &client, &descendant).await);

    let replay = redeem(&app, &client, &code, OOB, None).await;
    assert_oauth_error(&replay, 400, "invalid_grant");
    for token in [&access, &descendant, &descendant_refresh] {
        assert!(
            !active(&app, &client, token).await,
            "a token from the replayed code is still active"
        );
    }
}

#[tokio::test]
async fn code_redeemed_by_another_client_is_refused() {
    let (app, client, user) = setup().await;
    let thief = app.register_app(&[OOB], "read").await;
    let code = code_for(&app, &user, &client, OOB, "read", None).await;
    assert_oauth_error(
        &redeem(&app, &thief, &code, OOB, None).await,
        400,
        "invalid_grant",
    );
    // The thief's attempt neither used the code up nor revoked it.
    let rightful = redeem(&app, &client, &code, OOB, None).await;
    assert_eq!(rightful.0, 200, "{}", rightful.1);
}

#[tokio::test]
async fn code_with_a_different_redirect_uri_is_refused() {
    let app = spawn_app().await;
    let client = app
        .register_app(
            &["https://client.example/cb", "https://client.example/other"],
            "read",
        )
        .await;
    let user = app.create_user("alice", false).await;
    let code = code_for(
        &app,
        &user,
        &client,
        "https://client.example/cb",
        "read",
        None,
    )
    .await;
    for other in ["https://client.example/other", "https://evil.example/cb"] {
        assert_oauth_error(
            &redeem(&app, &client, &code, other, None).await,
            400,
            "invalid_grant",
        );
    }
    // Leaving it out does not skip the check (RFC 6749 section 4.1.3).
    assert_oauth_error(
        &redeem(&app, &client, &code, "", None).await,
        400,
        "invalid_request",
    );
    let right = redeem(&app, &client, &code, "https://client.example/cb", None).await;
    assert_eq!(right.0, 200, "{}", right.1);
}

#[tokio::test]
async fn expired_code_is_refused() {
    let (clock, time) = Clock::manual();
    let mut service = ServiceConfig::new("http://authd.test");
    service.lifetimes.authorization_code = Duration::from_secs(60);
    service.clock = clock;
    let app = spawn_app_with(TestOptions {
        service,
        ..Default::default()
    })
    .await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let code = code_for(&app, &user, &client, OOB, "read", None).await;
    let fresh = code_for(&app, &user, &client, OOB, "read", None).await;
    time.advance(Duration::from_secs(59));
    let before = redeem(&app, &client, &fresh, OOB, None).await;
    assert_eq!(before.0, 200, "redeemable until its expiry: {}", before.1);
    time.advance(Duration::from_secs(1));
    assert_oauth_error(
        &redeem(&app, &client, &code, OOB, None).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_let_exactly_one_succeed() {
    let (app, client, user) = setup().await;
    for _round in 0..3 {
        let code = code_for(&app, &user, &client, OOB, "read", None).await;
        let attempts = (0..8).map(|_| redeem(&app, &client, &code, OOB, None));
        let answers = futures::future::join_all(attempts).await;
        let won: Vec<_> = answers.iter().filter(|a| a.0 == 200).collect();
        assert_eq!(won.len(), 1, "{answers:?}");
        for lost in answers.iter().filter(|a| a.0 != 200) {
            assert_oauth_error(lost, 400, "invalid_grant");
        }
        // The replays revoked the winner's token: a code raced is a code
        // stolen, and nobody can tell the thief from the owner.
        let token = won[0].1["access_token"].as_str().unwrap();
        assert!(!active(&app, &client, token).await);
    }
}
