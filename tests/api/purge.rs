//! The background purge: expired codes, sessions and tokens, revoked tokens
//! a day old and dead grants (an app's own grant once its tokens are
//! gone) are deleted; everything still usable stays.
use std::time::Duration;

use authd::domain::secret::Secret;
use authd::store::purge::Purged;

use crate::helpers::*;

fn digest(secret: &str) -> Vec<u8> {
    Secret::new(secret).digest().as_bytes().to_vec()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.db()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn purge_deletes_expired_and_dead_rows_and_keeps_live_ones() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let db = app.db().await;
    let issue = || app.client_credentials(&client, "read");
    let live = issue().await.unwrap().access_token;
    let revoked_now = issue().await.unwrap().access_token;
    let expired = issue().await.unwrap().access_token;
    let revoked_long_ago = issue().await.unwrap().access_token;
    app.revoke(&client, &revoked_now).await.unwrap();
    db.execute(
        "UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE digest = $1",
        &[&digest(&expired)],
    )
    .await
    .unwrap();
    // Revoked two days ago, with its grant: both are dead.
    db.execute(
        "WITH t AS (UPDATE access_tokens SET revoked_at = now() - interval '2 days'
                    WHERE digest = $1 RETURNING grant_id)
         UPDATE grants SET revoked_at = now() - interval '2 days' WHERE id IN (SELECT grant_id FROM t)",
        &[&digest(&revoked_long_ago)],
    )
    .await
    .unwrap();
    let live_code = app.authorize(&user, &client, OOB, "read", None).await;
    let expired_code = app.authorize(&user, &client, OOB, "read", None).await;
    db.execute(
        "UPDATE authorization_codes SET expires_at = now() - interval '1 second' WHERE digest = $1",
        &[&digest(&expired_code)],
    )
    .await
    .unwrap();
    let expired_session = app.login(&email("alice"), PASSWORD).await.unwrap().session;
    db.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE digest = $1",
        &[&digest(&expired_session)],
    )
    .await
    .unwrap();
    let grants_before = count(&app, "grants").await;

    let purged = app.application().service().store().purge().await.unwrap();
    assert_eq!(
        purged,
        Purged {
            authorization_codes: 1,
            sessions: 1,
            access_tokens: 2,
            refresh_tokens: 0,
            // The revoked one's, and the expired one's: an app's own grant
            // is dead once its tokens are gone.
            grants: 2,
        }
    );
    assert_eq!(count(&app, "grants").await, grants_before - 2);
    assert_eq!(
        count(&app, "access_tokens").await,
        2,
        "live and revoked-now stay"
    );
    // What is still usable still works.
    assert!(app.introspect(&client, &live).await.is_active());
    assert!(!app.introspect(&client, &revoked_now).await.is_active());
    app.exchange_code(&client, &live_code, OOB, "")
        .await
        .expect("live code");
    app.sessions()
        .get_session(authd::proto::v1::GetSessionRequest {
            session: user.session.clone(),
        })
        .await
        .expect("live session");
    // Nothing left to purge.
    let again = app.application().service().store().purge().await.unwrap();
    assert_eq!(again.total(), 0, "{again:?}");
}

#[tokio::test]
async fn the_background_purge_runs_on_its_interval() {
    let app = spawn_app_with(TestOptions {
        purge_interval: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    app.create_user("alice", false).await;
    let session = app.login(&email("alice"), PASSWORD).await.unwrap().session;
    app.db()
        .await
        .execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE digest = $1",
            &[&digest(&session)],
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while count(&app, "sessions").await > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired session was not purged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&app, "sessions").await, 1, "the live session stays");
}
