//! PKCE attacks (RFC 7636, RFC 9700 section 4.8): a code issued with a
//! challenge is redeemed only with its verifier, and only S256 exists.
use authd::domain::pkce::CodeChallenge;

use super::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn setup() -> (TestApp, TestClient, TestUser) {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("alice", false).await;
    (app, client, user)
}

#[tokio::test]
async fn pkce_downgrade_a_challenge_was_sent_and_the_verifier_is_missing() {
    let (app, client, user) = setup().await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = code_for(&app, &user, &client, OOB, "read", Some(&challenge)).await;
    let answer = redeem(&app, &client, &code, OOB, None).await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(answer.1.get("access_token").is_none());
    let answer = redeem(&app, &client, &code, OOB, Some("")).await;
    assert_eq!(answer.0, 400, "{}", answer.1);
}

#[tokio::test]
async fn pkce_verifier_sent_without_a_challenge_is_refused() {
    let (app, client, user) = setup().await;
    let code = code_for(&app, &user, &client, OOB, "read", None).await;
    assert_oauth_error(
        &redeem(&app, &client, &code, OOB, Some(VERIFIER)).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn pkce_wrong_verifier_is_refused() {
    let (app, client, user) = setup().await;
    let challenge = CodeChallenge::for_verifier(VERIFIER);
    let code = code_for(&app, &user, &client, OOB, "read", Some(&challenge)).await;
    for wrong in [
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
        challenge.as_str(),
        "short",
        &"a".repeat(129),
    ] {
        let answer = redeem(&app, &client, &code, OOB, Some(wrong)).await;
        assert_eq!(answer.0, 400, "{wrong}: {}", answer.1);
        assert!(answer.1.get("access_token").is_none());
    }
    let right = redeem(&app, &client, &code, OOB, Some(VERIFIER)).await;
    assert_eq!(right.0, 200, "{}", right.1);
}

#[tokio::test]
async fn pkce_plain_method_is_refused() {
    let (app, client, _user) = setup().await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    let query = format!(
        "{}&code_challenge={VERIFIER}&code_challenge_method=plain",
        authorize_query(&client, OOB, "read", "s")
    );
    let response = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    // Over gRPC the same request names the error.
    let user = app.create_user("bob", false).await;
    let mut request = app.authorize_request(&user, &client, OOB, "read");
    request.code_challenge = VERIFIER.into();
    request.code_challenge_method = "plain".into();
    assert_error(
        app.oauth().authorize(request).await,
        tonic::Code::InvalidArgument,
        "invalid_code_challenge_method",
    );
    // And the metadata advertises S256 alone.
    let meta: serde_json::Value = app
        .http()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}
