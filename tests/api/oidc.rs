//! OpenID Connect over the code flow: the id_token an openid grant yields,
//! validated as a relying party does (the JWKS, iss, aud, nonce, at_hash),
//! its claims, userinfo for OpenID tokens, refresh, discovery, and
//! RP-initiated logout. Mastodon's behaviour without `openid` is the other
//! tests' to keep; here only that nothing OpenID leaks into it.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use sha2::Digest as _;

use crate::helpers::*;
use authd::proto::v1;

const RP: &str = "https://rp.example/callback";
const ISSUER: &str = "http://authd.test";

/// The JWKS as an RP fetches it.
pub async fn jwks(app: &TestApp) -> JwkSet {
    app.http()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Validates an id_token as a relying party must (Core 3.1.3.7): the
/// signature against the JWKS key its kid names, with the alg that key is
/// published for; iss; aud; exp. The error says which check refused.
pub async fn validate(app: &TestApp, id_token: &str, audience: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| e.to_string())?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let set = jwks(app).await;
    let jwk = set.find(&kid).ok_or("the kid is not in the JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

/// The claims of an id_token that must validate.
pub async fn validate_id_token(app: &TestApp, id_token: &str, client_id: &str) -> Value {
    validate(app, id_token, client_id)
        .await
        .unwrap_or_else(|e| panic!("the id_token validates: {e}"))
}

fn at_hash(access_token: &str, alg: &str) -> String {
    let digest: Vec<u8> = match alg {
        "EdDSA" => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

fn openid_request(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
    scope: &str,
    nonce: &str,
) -> v1::AuthorizeRequest {
    v1::AuthorizeRequest {
        nonce: nonce.into(),
        ..app.authorize_request(user, client, RP, scope)
    }
}

async fn code_for(app: &TestApp, request: v1::AuthorizeRequest) -> String {
    app.oauth()
        .authorize(request)
        .await
        .expect("authorize")
        .into_inner()
        .code
}

async fn openid_tokens(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
    scope: &str,
    nonce: &str,
) -> v1::TokenResponse {
    let code = code_for(app, openid_request(app, user, client, scope, nonce)).await;
    app.exchange_code(client, &code, RP, "")
        .await
        .expect("exchange")
}

#[tokio::test]
async fn an_openid_code_yields_an_id_token_a_relying_party_validates() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid profile email").await;
    let user = app.create_user("alice", false).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tokens = openid_tokens(&app, &user, &client, "openid profile", "n-0S6_WzA2Mj").await;
    let id_token = tokens.id_token.as_deref().expect("an id_token");
    let claims = validate_id_token(&app, id_token, &client.client_id).await;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], user.id.as_str(), "sub is the account's id");
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["azp"], client.client_id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let iat = claims["iat"].as_i64().unwrap();
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time <= iat && auth_time >= before - 5, "{claims}");
    assert!(claims["exp"].as_i64().unwrap() > iat);
    let alg = jsonwebtoken::decode_header(id_token).unwrap().alg;
    let alg = serde_json::to_value(alg).unwrap();
    assert_eq!(
        claims["at_hash"],
        at_hash(&tokens.access_token, alg.as_str().unwrap())
    );
    // The standard claims belong in userinfo unless the claims parameter
    // asks for them here (Core 5.4).
    assert!(claims.get("email").is_none() && claims.get("preferred_username").is_none());
    // An OpenID grant's access token expires and refreshes.
    assert!(tokens.expires_in.is_some() && tokens.refresh_token.is_some());
}

#[tokio::test]
async fn a_request_without_openid_gets_what_mastodon_gives_and_no_id_token() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "read openid").await;
    let user = app.create_user("alice", false).await;
    let tokens = openid_tokens(&app, &user, &client, "read", "ignored").await;
    assert_eq!(tokens.id_token, None);
    assert_eq!(tokens.expires_in, None, "Mastodon's tokens never expire");
    assert_eq!(tokens.refresh_token, None);
}

#[tokio::test]
async fn a_request_without_nonce_yields_an_id_token_without_one() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    let tokens = openid_tokens(&app, &user, &client, "openid", "").await;
    let claims =
        validate_id_token(&app, tokens.id_token.as_deref().unwrap(), &client.client_id).await;
    assert!(claims.get("nonce").is_none(), "{claims}");
}

#[tokio::test]
async fn the_claims_parameter_adds_only_claims_a_granted_scope_covers() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid profile email").await;
    let user = app.create_user("alice", false).await;
    let asked =
        r#"{"id_token":{"email":{"essential":true},"preferred_username":null,"nickname":null}}"#;
    let request = v1::AuthorizeRequest {
        claims: asked.into(),
        ..openid_request(&app, &user, &client, "openid email", "n")
    };
    let code = code_for(&app, request).await;
    let tokens = app.exchange_code(&client, &code, RP, "").await.unwrap();
    let claims =
        validate_id_token(&app, tokens.id_token.as_deref().unwrap(), &client.client_id).await;
    assert_eq!(claims["email"], email("alice"));
    // Only what was asked: email_verified was not.
    assert!(claims.get("email_verified").is_none(), "{claims}");
    // profile was not granted: preferred_username stays out.
    assert!(claims.get("preferred_username").is_none(), "{claims}");
    assert!(claims.get("nickname").is_none());
}

#[tokio::test]
async fn malformed_nonce_or_claims_are_invalid_requests() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    for request in [
        v1::AuthorizeRequest {
            claims: "{not json".into(),
            ..openid_request(&app, &user, &client, "openid", "n")
        },
        openid_request(&app, &user, &client, "openid", &"n".repeat(600)),
    ] {
        assert_error(
            app.oauth().authorize(request).await,
            tonic::Code::InvalidArgument,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn userinfo_for_an_openid_token_has_the_id_tokens_sub_and_what_the_scopes_release() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid profile email").await;
    let user = app.create_user("alice", false).await;
    let userinfo = |token: String| {
        let app = &app;
        async move {
            let response = app
                .http()
                .get(app.url("/oauth/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let all = openid_tokens(&app, &user, &client, "openid profile email", "n").await;
    let id_claims =
        validate_id_token(&app, all.id_token.as_deref().unwrap(), &client.client_id).await;
    let info = userinfo(all.access_token).await;
    assert_eq!(info["sub"], id_claims["sub"]);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["name"], "alice");
    assert_eq!(info["email"], email("alice"));
    assert_eq!(info["email_verified"], false);
    assert!(info.get("iss").is_none(), "not Mastodon's answer: {info}");

    let bare = openid_tokens(&app, &user, &client, "openid", "n").await;
    let info = userinfo(bare.access_token).await;
    assert_eq!(
        info,
        serde_json::json!({"sub": user.id}),
        "openid alone releases only sub"
    );

    // A Mastodon token (profile, no openid) still gets Mastodon's answer.
    let mastodon = openid_tokens(&app, &user, &client, "profile", "").await;
    let info = userinfo(mastodon.access_token).await;
    assert_eq!(info["sub"], "http://authd.test/users/alice");
    assert_eq!(info["iss"], ISSUER);
}

#[tokio::test]
async fn userinfo_over_grpc_says_which_answer_it_is() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid email profile").await;
    let user = app.create_user("alice", false).await;
    let tokens = openid_tokens(&app, &user, &client, "openid email", "n").await;
    let answer = app
        .accounts()
        .get_userinfo(v1::GetUserinfoRequest {
            access_token: tokens.access_token,
        })
        .await
        .unwrap()
        .into_inner()
        .answer;
    let Some(v1::userinfo::Answer::Openid(claims)) = answer else {
        panic!("an OpenID answer: {answer:?}");
    };
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.email.as_deref(), Some(email("alice").as_str()));
    assert_eq!(claims.preferred_username, None);
    let mastodon = openid_tokens(&app, &user, &client, "profile", "").await;
    let answer = app
        .accounts()
        .get_userinfo(v1::GetUserinfoRequest {
            access_token: mastodon.access_token,
        })
        .await
        .unwrap()
        .into_inner()
        .answer;
    assert!(matches!(answer, Some(v1::userinfo::Answer::Mastodon(_))));
    // Neither openid nor profile: Mastodon's insufficient_scope.
    let read = openid_tokens(&app, &user, &client, "email", "").await;
    assert_error(
        app.accounts()
            .get_userinfo(v1::GetUserinfoRequest {
                access_token: read.access_token,
            })
            .await,
        tonic::Code::PermissionDenied,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn a_refresh_gives_a_new_id_token_for_the_same_sign_in_without_the_nonce() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    let first = openid_tokens(&app, &user, &client, "openid", "n1").await;
    let first_claims =
        validate_id_token(&app, first.id_token.as_deref().unwrap(), &client.client_id).await;
    let refreshed = app
        .refresh(&client, first.refresh_token.as_deref().unwrap())
        .await
        .expect("refresh");
    let claims = validate_id_token(
        &app,
        refreshed
            .id_token
            .as_deref()
            .expect("an id_token on refresh"),
        &client.client_id,
    )
    .await;
    assert_eq!(claims["sub"], first_claims["sub"]);
    assert_eq!(claims["auth_time"], first_claims["auth_time"]);
    assert!(claims.get("nonce").is_none());
    let alg = serde_json::to_value(
        jsonwebtoken::decode_header(refreshed.id_token.as_deref().unwrap())
            .unwrap()
            .alg,
    )
    .unwrap();
    assert_eq!(
        claims["at_hash"],
        at_hash(&refreshed.access_token, alg.as_str().unwrap())
    );
}

#[tokio::test]
async fn auth_time_is_when_the_user_signed_in_not_when_the_code_was_issued() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let user = app.create_user("alice", false).await;
    // The session's sign-in, moved back an hour, is what auth_time says.
    app.db()
        .await
        .execute(
            "UPDATE sessions SET created_at = created_at - interval '1 hour'",
            &[],
        )
        .await
        .unwrap();
    let tokens = openid_tokens(&app, &user, &client, "openid", "n").await;
    let claims =
        validate_id_token(&app, tokens.id_token.as_deref().unwrap(), &client.client_id).await;
    let gap = claims["iat"].as_i64().unwrap() - claims["auth_time"].as_i64().unwrap();
    assert!((3590..3700).contains(&gap), "{claims}");
}

#[tokio::test]
async fn the_openid_configuration_is_the_rfc8414_document_and_openids_members() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let response = app.http().get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let openid = get("/.well-known/openid-configuration").await;
    for (name, value) in oauth.as_object().unwrap() {
        assert_eq!(&openid[name], value, "{name} differs between the two");
    }
    // Discovery 1.0 section 3's required members, and what authd adds.
    for name in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_endpoint",
        "end_session_endpoint",
        "claims_supported",
    ] {
        assert!(openid.get(name).is_some(), "{name}: {openid}");
    }
    assert_eq!(openid["issuer"], ISSUER);
    assert_eq!(
        openid["subject_types_supported"],
        serde_json::json!(["public"])
    );
    let scopes = openid["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&"openid".into()) && scopes.contains(&"email".into()));
    let claims = openid["claims_supported"].as_array().unwrap();
    for claim in ["sub", "email", "preferred_username", "auth_time", "nonce"] {
        assert!(claims.contains(&claim.into()), "{claim}");
    }
    // Every algorithm offered has a key in the JWKS.
    let set = jwks(&app).await;
    for alg in openid["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
    {
        assert!(
            set.keys
                .iter()
                .any(|k| { serde_json::to_value(k.common.key_algorithm).unwrap() == *alg }),
            "no key for {alg}"
        );
    }
}

/// Signs `user` in through the browser, and returns an id_token for them.
async fn browser_with_id_token(
    app: &TestApp,
    client: &TestClient,
    username: &str,
) -> (Browser, String) {
    let browser = app.browser();
    let _ = app.create_user(username, false).await;
    let signed_in = browser.login(&email(username), PASSWORD, "/").await;
    assert_eq!(signed_in.status(), 302, "signed in");
    let query = authorize_query(client, RP, "openid", "s") + "&nonce=n";
    let allowed = browser.approve(&query).await;
    let redirect = url::Url::parse(&location(&allowed)).unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let tokens = app.exchange_code(client, &code, RP, "").await.unwrap();
    (browser, tokens.id_token.expect("an id_token"))
}

async fn signed_in(browser: &Browser) -> bool {
    let page = browser.get("/oauth/authorized_applications").await;
    page.status() == 200
}

#[tokio::test]
async fn end_session_with_the_users_id_token_signs_out_at_once() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let (browser, id_token) = browser_with_id_token(&app, &client, "alice").await;
    assert!(signed_in(&browser).await);
    let response = browser
        .get(&format!(
            "/oauth/end_session?id_token_hint={id_token}&state=s1"
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are signed out")
    );
    assert!(!signed_in(&browser).await, "the session ended");
}

#[tokio::test]
async fn end_session_without_a_hint_asks_the_user_first() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let (browser, _) = browser_with_id_token(&app, &client, "alice").await;
    let page = browser.get("/oauth/end_session").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out of authd?"), "{html}");
    assert!(signed_in(&browser).await, "a link alone signs nobody out");
    let csrf = hidden(&html, "csrf_token").expect("a csrf token");
    // A forged confirmation (wrong CSRF token) is refused.
    let forged = browser
        .post("/oauth/end_session", &[("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    assert!(signed_in(&browser).await);
    let confirmed = browser
        .post("/oauth/end_session", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(confirmed.status(), 200);
    assert!(!signed_in(&browser).await);
}

#[tokio::test]
async fn end_session_refuses_a_forged_hint_and_an_unregistered_redirect_without_redirecting() {
    let app = spawn_app().await;
    let client = app.register_app(&[RP], "openid").await;
    let (browser, id_token) = browser_with_id_token(&app, &client, "alice").await;
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"http://authd.test","sub":"1","aud":"x"}"#);
    let forged = parts.join(".");
    for query in [
        format!("id_token_hint={forged}"),
        format!("id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"),
        format!("id_token_hint={id_token}&client_id=someone-else"),
    ] {
        let response = browser.get(&format!("/oauth/end_session?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.headers().get("location").is_none());
        assert!(signed_in(&browser).await, "{query}: still signed in");
    }
}

#[tokio::test]
async fn end_session_sends_the_browser_to_a_registered_post_logout_redirect_uri_with_state() {
    let app = spawn_app().await;
    let client = app
        .register_app_with(v1::RegisterAppRequest {
            client_name: "RP".into(),
            redirect_uris: vec![RP.into()],
            scopes: "openid".into(),
            post_logout_redirect_uris: vec!["https://rp.example/signed-out".into()],
            ..Default::default()
        })
        .await;
    let (browser, id_token) = browser_with_id_token(&app, &client, "alice").await;
    let response = browser
        .get(&format!(
            "/oauth/end_session?id_token_hint={id_token}&state=s1&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fsigned-out"
        ))
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "https://rp.example/signed-out?state=s1"
    );
    assert!(!signed_in(&browser).await);
    // Someone else's registered URI, named with this client's hint, is not
    // this client's.
    let other = app
        .register_app_with(v1::RegisterAppRequest {
            client_name: "other".into(),
            redirect_uris: vec![RP.into()],
            scopes: "openid".into(),
            post_logout_redirect_uris: vec!["https://other.example/bye".into()],
            ..Default::default()
        })
        .await;
    let _ = other;
    let response = browser
        .get(&format!(
            "/oauth/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fother.example%2Fbye"
        ))
        .await;
    assert_eq!(response.status(), 400);
}
