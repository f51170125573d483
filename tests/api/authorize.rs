use authd::proto::v1;
use authd::proto::v1::authorization_decision::Outcome;
use authd::service::clock::Clock;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn authorize_issues_a_code_and_redirects_with_code_and_state() {
    let app = spawn_app().await;
    let client = app
        .register_app(&["https://app.example/cb"], "read write")
        .await;
    let user = app.create_user("alice", false).await;
    let r = app
        .oauth()
        .authorize(app.authorize_request(&user, &client, "https://app.example/cb", "read"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.code.len(), 43);
    assert_eq!(r.scope, "read");
    assert_eq!(r.state, "xyz");
    assert_eq!(r.expires_in, 600);
    assert_eq!(
        r.redirect_to,
        format!("https://app.example/cb?code={}&state=xyz", r.code)
    );
    // Only a digest is stored.
    let db = app.db().await;
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM authorization_codes WHERE digest = sha256($1::text::bytea)",
            &[&r.code],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn out_of_band_authorization_has_no_redirect() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let r = app
        .oauth()
        .authorize(app.authorize_request(&user, &client, OOB, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(r.redirect_to.is_empty());
    assert_eq!(r.redirect_uri, OOB);
    assert_eq!(r.scope, "read", "scope defaults to read");
}

/// The core's decision on `request`.
async fn decide(app: &TestApp, request: &v1::AuthorizeRequest) -> Outcome {
    app.oauth()
        .prepare_authorization(request.clone())
        .await
        .unwrap()
        .into_inner()
        .outcome
        .expect("a decision")
}

fn consent_needed(outcome: Outcome) -> v1::ConsentNeeded {
    match outcome {
        Outcome::ConsentNeeded(consent) => consent,
        other => panic!("expected consent_needed, got {other:?}"),
    }
}

#[tokio::test]
async fn prepare_authorization_asks_then_issues_while_consent_is_remembered() {
    let app = spawn_app().await;
    let client = app
        .register_app(&["https://app.example/cb"], "read write")
        .await;
    let user = app.create_user("alice", false).await;
    let request = app.authorize_request(
        &user,
        &client,
        "https://app.example/cb",
        "read write:statuses",
    );
    let consent = consent_needed(decide(&app, &request).await);
    assert_eq!(consent.app.unwrap().name, "Test App");
    assert_eq!(consent.account.unwrap().username, "alice");
    assert_eq!(consent.scope, "read write:statuses");
    assert_eq!(
        consent.deny_redirect,
        "https://app.example/cb?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request.&state=xyz"
    );
    // Asking issues nothing.
    let codes = || async {
        app.db()
            .await
            .query_one("SELECT count(*) FROM authorization_codes", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(codes().await, 0);

    let code = app
        .oauth()
        .authorize(request.clone())
        .await
        .unwrap()
        .into_inner()
        .code;
    // A code alone is no token: Doorkeeper's matching_token? finds none.
    consent_needed(decide(&app, &request).await);
    let token = app
        .exchange_code(&client, &code, "https://app.example/cb", "")
        .await
        .unwrap();
    // Same scopes, a live token: a code at once, as Mastodon answers.
    match decide(&app, &request).await {
        Outcome::Issued(issued) => {
            assert_eq!(issued.scope, "read write:statuses");
            assert_eq!(
                issued.redirect_to,
                format!("https://app.example/cb?code={}&state=xyz", issued.code)
            );
        }
        other => panic!("expected issued, got {other:?}"),
    }
    assert_eq!(codes().await, 2);
    // prompt=consent always asks.
    let confirm = v1::AuthorizeRequest {
        prompt: "consent".into(),
        ..request.clone()
    };
    consent_needed(decide(&app, &confirm).await);
    // Consent does not outlive the token it was given for (issue 14).
    app.revoke(&client, &token.access_token).await.unwrap();
    consent_needed(decide(&app, &request).await);
    let code = app
        .oauth()
        .authorize(request.clone())
        .await
        .unwrap()
        .into_inner()
        .code;
    app.exchange_code(&client, &code, "https://app.example/cb", "")
        .await
        .unwrap();
    // Every token of the account revoked (a password reset) ends it too.
    app.db()
        .await
        .execute(
            "UPDATE grants SET revoked_at = now() WHERE account_id = (SELECT id FROM accounts WHERE username = 'alice')",
            &[],
        )
        .await
        .unwrap();
    consent_needed(decide(&app, &request).await);
    let wider = app.authorize_request(&user, &client, "https://app.example/cb", "read write");
    consent_needed(decide(&app, &wider).await);
}

/// A user with a remembered consent for `client` (a redeemed code).
async fn remembered_consent(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
) -> v1::AuthorizeRequest {
    let request = app.authorize_request(user, client, "https://app.example/cb", "read");
    let code = app
        .oauth()
        .authorize(request.clone())
        .await
        .unwrap()
        .into_inner()
        .code;
    app.exchange_code(client, &code, "https://app.example/cb", "")
        .await
        .unwrap();
    assert!(matches!(decide(app, &request).await, Outcome::Issued(_)));
    request
}

#[tokio::test]
async fn force_login_asks_to_sign_in_again_and_then_always_asks_for_consent() {
    let app = spawn_app().await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    let request = remembered_consent(&app, &user, &client).await;
    for forced in [
        v1::AuthorizeRequest {
            force_login: true,
            ..request.clone()
        },
        v1::AuthorizeRequest {
            prompt: "login".into(),
            ..request.clone()
        },
        v1::AuthorizeRequest {
            prompt: "select_account".into(),
            ..request.clone()
        },
    ] {
        let Outcome::LoginRequired(login) = decide(&app, &forced).await else {
            panic!("{forced:?} must ask to sign in again");
        };
        let resume = login.resume.unwrap();
        assert!(resume.session.is_empty(), "the new session goes in");
        assert!(!resume.force_login, "or the user would sign in forever");
        assert_eq!(resume.prompt, "consent");
        assert_eq!(resume.client_id, request.client_id);
        assert_eq!(resume.state, "xyz");
        // The link did not sign the user out.
        app.sessions()
            .get_session(v1::GetSessionRequest {
                session: request.session.clone(),
            })
            .await
            .expect("the session is still open");
        // Signed in again, the user is asked, though consent is remembered.
        let session = app
            .login("alice@example.org", PASSWORD)
            .await
            .unwrap()
            .session;
        let resumed = v1::AuthorizeRequest { session, ..resume };
        let consent = consent_needed(decide(&app, &resumed).await);
        assert_eq!(consent.account.unwrap().username, "alice");
    }
}

#[tokio::test]
async fn without_a_session_the_core_asks_to_sign_in_after_checking_the_request() {
    let app = spawn_app().await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    let request = v1::AuthorizeRequest {
        session: String::new(),
        ..app.authorize_request(&user, &client, "https://app.example/cb", "read")
    };
    let Outcome::LoginRequired(login) = decide(&app, &request).await else {
        panic!("no session: sign in");
    };
    assert_eq!(login.resume.unwrap(), request, "come back unchanged");
    // A bad request is an error, not a login.
    let bad = v1::AuthorizeRequest {
        redirect_uri: "https://evil.example/cb".into(),
        ..request
    };
    let status = app.oauth().prepare_authorization(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn deny_authorization_redirects_with_access_denied_and_records_nothing() {
    let app = spawn_app().await;
    let client = app
        .register_app(&["https://app.example/cb", OOB], "read")
        .await;
    let user = app.create_user("alice", false).await;
    let request = app.authorize_request(&user, &client, "https://app.example/cb", "read");
    let denied = app
        .oauth()
        .deny_authorization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        denied.redirect_to,
        "https://app.example/cb?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request.&state=xyz"
    );
    let oob = app.authorize_request(&user, &client, OOB, "read");
    let denied = app
        .oauth()
        .deny_authorization(oob)
        .await
        .unwrap()
        .into_inner();
    assert!(
        denied.redirect_to.is_empty(),
        "out of band: the user is told"
    );
    let recorded: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM consents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 0);
    consent_needed(decide(&app, &request).await);
}

#[tokio::test]
async fn authorize_rejects_unknown_client() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false).await;
    let client = TestClient {
        client_id: "unknown".into(),
        client_secret: String::new(),
        app_id: String::new(),
    };
    assert_error(
        app.oauth()
            .authorize(app.authorize_request(&user, &client, OOB, "read"))
            .await,
        Code::Unauthenticated,
        "invalid_client",
    );
    let mut missing = app.authorize_request(&user, &client, OOB, "read");
    missing.client_id.clear();
    assert_error(
        app.oauth().authorize(missing).await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

#[tokio::test]
async fn authorize_rejects_an_unregistered_redirect_uri() {
    let app = spawn_app().await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    for uri in [
        "https://evil.example/cb",
        "https://app.example/cb/../x",
        "https://app.example/cb?x=1",
        OOB,
    ] {
        assert_error(
            app.oauth()
                .authorize(app.authorize_request(&user, &client, uri, "read"))
                .await,
            Code::InvalidArgument,
            "invalid_redirect_uri",
        );
    }
}

#[tokio::test]
async fn authorize_rejects_scopes_the_app_was_not_registered_for() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    for scope in ["write", "read admin:read", "read nonsense"] {
        assert_error(
            app.oauth()
                .authorize(app.authorize_request(&user, &client, OOB, scope))
                .await,
            Code::InvalidArgument,
            "invalid_scope",
        );
    }
    // A sub-scope of a registered scope is allowed (GoToSocial's rule).
    app.oauth()
        .authorize(app.authorize_request(&user, &client, OOB, "read:statuses"))
        .await
        .unwrap();
}

#[tokio::test]
async fn authorize_checks_response_type_and_pkce_method() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    let mut r = app.authorize_request(&user, &client, OOB, "read");
    r.response_type = "token".into();
    assert_error(
        app.oauth().authorize(r).await,
        Code::InvalidArgument,
        "unsupported_response_type",
    );
    let mut r = app.authorize_request(&user, &client, OOB, "read");
    r.response_type.clear();
    assert_error(
        app.oauth().authorize(r).await,
        Code::InvalidArgument,
        "invalid_request",
    );
    let mut r = app.authorize_request(&user, &client, OOB, "read");
    r.code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into();
    r.code_challenge_method = "plain".into();
    assert_error(
        app.oauth().authorize(r).await,
        Code::InvalidArgument,
        "invalid_code_challenge_method",
    );
}

#[tokio::test]
async fn authorize_needs_a_valid_session() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let mut user = app.create_user("alice", false).await;
    user.session = "not-a-session".into();
    assert_error(
        app.oauth()
            .authorize(app.authorize_request(&user, &client, OOB, "read"))
            .await,
        Code::Unauthenticated,
        "invalid_session",
    );
}

#[tokio::test]
async fn loopback_redirect_uris_may_use_any_port() {
    let app = spawn_app().await;
    let client = app
        .register_app(&["http://127.0.0.1/callback"], "read")
        .await;
    let user = app.create_user("alice", false).await;
    let r = app
        .oauth()
        .authorize(app.authorize_request(&user, &client, "http://127.0.0.1:49152/callback", "read"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.redirect_to
            .starts_with("http://127.0.0.1:49152/callback?code=")
    );
    let token = app
        .exchange_code(&client, &r.code, "http://127.0.0.1:49152/callback", "")
        .await
        .unwrap();
    assert!(!token.access_token.is_empty());
}

#[tokio::test]
async fn empty_redirect_uri_means_the_only_registered_one() {
    let app = spawn_app().await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    let r = app
        .oauth()
        .authorize(v1::AuthorizeRequest {
            redirect_uri: String::new(),
            ..app.authorize_request(&user, &client, "", "read")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.redirect_uri, "https://app.example/cb");
}

#[tokio::test]
async fn prompt_none_never_shows_a_page_as_openid_connect_asks() {
    let app = spawn_app().await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    let request = app.authorize_request(&user, &client, "https://app.example/cb", "read");
    let none = |r: &v1::AuthorizeRequest| v1::AuthorizeRequest {
        prompt: "none".into(),
        ..r.clone()
    };
    let refused = |outcome: Outcome| match outcome {
        Outcome::InteractionRequired(refused) => refused,
        other => panic!("expected interaction_required, got {other:?}"),
    };
    // Signed out: login_required, at the client's redirect URI, with state.
    let signed_out = v1::AuthorizeRequest {
        session: String::new(),
        ..none(&request)
    };
    let login = refused(decide(&app, &signed_out).await);
    assert_eq!(login.error, "login_required");
    assert!(
        login
            .redirect_to
            .starts_with("https://app.example/cb?error=login_required&error_description="),
        "{login:?}"
    );
    assert!(login.redirect_to.ends_with("&state=xyz"), "{login:?}");
    // Signed in, never asked: consent_required.
    let consent = refused(decide(&app, &none(&request)).await);
    assert_eq!(consent.error, "consent_required");
    // force_login cannot be honoured without a page either.
    let forced = v1::AuthorizeRequest {
        force_login: true,
        ..none(&request)
    };
    assert_eq!(refused(decide(&app, &forced).await).error, "login_required");
    // Consent remembered: the code, without a page.
    let request = remembered_consent(&app, &user, &client).await;
    assert!(matches!(
        decide(&app, &none(&request)).await,
        Outcome::Issued(_)
    ));
    // "none" with any other value is refused.
    let mixed = v1::AuthorizeRequest {
        prompt: "none consent".into(),
        ..request
    };
    let status = app.oauth().prepare_authorization(mixed).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn max_age_counts_an_older_sign_in_as_none() {
    let (clock, time) = Clock::manual();
    let mut options = TestOptions::default();
    options.service.clock = clock;
    let app = spawn_app_with(options).await;
    let client = app.register_app(&["https://app.example/cb"], "read").await;
    let user = app.create_user("alice", false).await;
    let request = v1::AuthorizeRequest {
        max_age: Some(60),
        ..app.authorize_request(&user, &client, "https://app.example/cb", "read")
    };
    time.advance(std::time::Duration::from_secs(60));
    consent_needed(decide(&app, &request).await);
    time.advance(std::time::Duration::from_secs(1));
    let Outcome::LoginRequired(login) = decide(&app, &request).await else {
        panic!("a sign-in 61 s old is older than max_age=60");
    };
    let resume = login.resume.unwrap();
    assert_eq!(
        resume.max_age, None,
        "the new sign-in is fresh: no round again"
    );
    assert!(resume.session.is_empty());
    // With prompt=none, the client hears login_required.
    let silent = v1::AuthorizeRequest {
        prompt: "none".into(),
        ..request.clone()
    };
    let Outcome::InteractionRequired(refused) = decide(&app, &silent).await else {
        panic!("prompt=none with a stale sign-in");
    };
    assert_eq!(refused.error, "login_required");
    // Signed in again: within max_age. max_age=0 right after a sign-in
    // passes too (whole seconds).
    let session = app
        .login("alice@example.org", PASSWORD)
        .await
        .unwrap()
        .session;
    let fresh = v1::AuthorizeRequest {
        session,
        max_age: Some(0),
        ..request
    };
    consent_needed(decide(&app, &fresh).await);
}
