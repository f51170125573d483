use authd::proto::v1;
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

#[tokio::test]
async fn prepare_authorization_shows_the_consent_and_remembers_it() {
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
    let prepared = app
        .oauth()
        .prepare_authorization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prepared.app.unwrap().name, "Test App");
    assert_eq!(prepared.account.unwrap().username, "alice");
    assert_eq!(prepared.scope, "read write:statuses");
    assert!(!prepared.previously_granted);
    assert_eq!(
        prepared.deny_redirect,
        "https://app.example/cb?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request.&state=xyz"
    );
    // Preparing issues nothing.
    let n: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM authorization_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);

    let code = app
        .oauth()
        .authorize(request.clone())
        .await
        .unwrap()
        .into_inner()
        .code;
    // A code alone is no token: Doorkeeper's matching_token? finds none.
    let unredeemed = app
        .oauth()
        .prepare_authorization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!unredeemed.previously_granted, "no token was issued yet");
    let token = app
        .exchange_code(&client, &code, "https://app.example/cb", "")
        .await
        .unwrap();
    let again = app
        .oauth()
        .prepare_authorization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(again.previously_granted, "same scopes were granted before");
    // Consent does not outlive the token it was given for (issue 14).
    app.revoke(&client, &token.access_token).await.unwrap();
    let revoked = app
        .oauth()
        .prepare_authorization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(
        !revoked.previously_granted,
        "after its only token is revoked, the user is asked again"
    );
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
    // A password reset (every token of the account revoked) ends it too.
    app.db()
        .await
        .execute(
            "UPDATE grants SET revoked_at = now() WHERE account_id = (SELECT id FROM accounts WHERE username = 'alice')",
            &[],
        )
        .await
        .unwrap();
    let reset = app
        .oauth()
        .prepare_authorization(request)
        .await
        .unwrap()
        .into_inner();
    assert!(!reset.previously_granted, "revoked grants end consent");
    let more = app.authorize_request(&user, &client, "https://app.example/cb", "read write");
    let wider = app
        .oauth()
        .prepare_authorization(more)
        .await
        .unwrap()
        .into_inner();
    assert!(!wider.previously_granted, "wider scopes need consent again");
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
