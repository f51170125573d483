use std::time::Duration;

use authd::proto::v1;
use authd::service::clock::Clock;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn login_opens_a_session_that_logout_ends() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false).await;
    let opened = app.login("ALICE@example.org", PASSWORD).await.unwrap();
    assert_eq!(opened.session.len(), 43);
    assert_eq!(opened.account.unwrap().username, "alice");
    let session = app
        .sessions()
        .get_session(v1::GetSessionRequest {
            session: opened.session.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.account.unwrap().id, user.id);
    app.sessions()
        .logout(v1::LogoutRequest {
            session: opened.session.clone(),
        })
        .await
        .unwrap();
    assert_error(
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: opened.session,
            })
            .await,
        Code::Unauthenticated,
        "invalid_session",
    );
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let (clock, time) = Clock::manual();
    let mut options = TestOptions::default();
    options.service.lifetimes.session = Duration::from_secs(3600);
    options.service.clock = clock;
    let app = spawn_app_with(options).await;
    app.create_user("alice", false).await;
    let opened = app.login("alice@example.org", PASSWORD).await.unwrap();
    time.advance(Duration::from_secs(3599));
    assert!(
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: opened.session.clone(),
            })
            .await
            .is_ok(),
        "open until its expiry"
    );
    time.advance(Duration::from_secs(1));
    assert_error(
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: opened.session.clone(),
            })
            .await,
        Code::Unauthenticated,
        "invalid_session",
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    let before = app.password_hashes();
    let wrong = app
        .login("alice@example.org", "wrong password")
        .await
        .unwrap_err();
    let after_wrong = app.password_hashes();
    let unknown = app
        .login("nobody@example.org", "wrong password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), "invalid_credentials");
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(wrong.code(), unknown.code());
    // Both run one argon2 verification: an unknown email is not answered
    // without hashing. Counted, not timed.
    assert_eq!(after_wrong - before, 1);
    assert_eq!(app.password_hashes() - after_wrong, 1);
}

#[tokio::test]
async fn sessions_and_passwords_are_stored_as_digests_and_argon2id() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false).await;
    let db = app.db().await;
    let hash: String = db
        .query_one(
            "SELECT password_hash FROM accounts WHERE username = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let sessions: Vec<Vec<u8>> = db
        .query("SELECT digest FROM sessions", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!sessions.is_empty());
    assert!(
        sessions
            .iter()
            .all(|d| d.len() == 32 && d != user.session.as_bytes())
    );
}
