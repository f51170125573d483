//! authd.v1.Policy/Check, the decision every door asks for, over gRPC:
//! every row of the built-in Mastodon table is walked (with no token, with
//! a token holding exactly the scope the row names, and with one holding
//! none of its scopes), and each family of rows (the read and write
//! sub-scopes, the legacy follow scope, admin:*, push, profile, public and
//! optional-token routes) has a case of its own.
use std::collections::HashMap;

use authd::domain::policy::{Policy, TokenRequirement};
use authd::domain::scope::Scope;
use authd::proto::v1;
use authd::proto::v1::check_response::Decision;
use authd::proto::v1::policy_client::PolicyClient;

use crate::helpers::*;

async fn check(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> v1::CheckResponse {
    let mut headers = std::collections::BTreeMap::new();
    if let Some(token) = token {
        headers.insert("authorization".to_owned(), format!("Bearer {token}"));
    }
    PolicyClient::new(app.channel.clone())
        .check(v1::CheckRequest {
            method: method.into(),
            path: path.into(),
            headers,
        })
        .await
        .expect("Check answers")
        .into_inner()
}

fn decision(answer: &v1::CheckResponse) -> Decision {
    answer.decision()
}

/// A concrete path for a pattern: each `:name` segment becomes a number.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with(':') { "109" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Tokens of one admin account, one per scope (admin scopes need an
/// admin to be granted at all).
async fn token_per_scope(app: &TestApp) -> HashMap<Scope, String> {
    let root = app.create_user("root", true).await;
    let all: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let client = app.register_app(&[OOB], &all.join(" ")).await;
    let mut tokens = HashMap::new();
    for &scope in Scope::ALL {
        let token = app.user_token(&root, &client, scope.as_str()).await;
        assert_eq!(token.scope, scope.as_str());
        tokens.insert(scope, token.access_token);
    }
    tokens
}

#[tokio::test]
async fn every_row_of_the_built_in_table_is_decided_by_its_scopes() {
    let app = spawn_app().await;
    let tokens = token_per_scope(&app).await;
    let policy = Policy::mastodon();
    let mut decided = 0;
    for route in policy.routes() {
        let path = concrete(&route.path);
        for method in &route.methods {
            let method = method.as_str();
            let what = format!("{method} {}", route.path);
            // No token.
            let answer = check(&app, method, &path, None).await;
            let expected = match route.token {
                TokenRequirement::Required => Decision::Unauthenticated,
                TokenRequirement::Optional | TokenRequirement::None => Decision::Allow,
            };
            assert_eq!(decision(&answer), expected, "{what} without a token");
            assert_eq!(
                answer.route,
                if expected == Decision::Allow {
                    route.path.clone()
                } else {
                    String::new()
                },
                "{what}"
            );
            if route.token == TokenRequirement::None {
                // A public route looks at no token at all.
                let answer = check(&app, method, &path, Some("not-a-token")).await;
                assert_eq!(decision(&answer), Decision::Allow, "{what}");
                assert!(answer.upstream_headers.is_empty(), "{what}");
                decided += 1;
                continue;
            }
            // A token holding exactly one of the scopes named (or any
            // token, when the row names none).
            let scope = route.scopes.first().copied().unwrap_or(Scope::Push);
            let answer = check(&app, method, &path, Some(&tokens[&scope])).await;
            assert_eq!(decision(&answer), Decision::Allow, "{what} with {scope}");
            assert_eq!(answer.http_status, 200);
            assert!(
                answer
                    .upstream_headers
                    .iter()
                    .any(|h| h.name == "x-authd-scopes" && h.value == scope.as_str()),
                "{what}: {:?}",
                answer.upstream_headers
            );
            // A token holding none of them.
            if route.scopes.is_empty() {
                decided += 1;
                continue;
            }
            let other = Scope::ALL
                .iter()
                .copied()
                .find(|held| {
                    !route
                        .scopes
                        .iter()
                        .any(|&required| held.satisfies(required))
                })
                .unwrap();
            let answer = check(&app, method, &path, Some(&tokens[&other])).await;
            assert_eq!(
                decision(&answer),
                Decision::InsufficientScope,
                "{what} with {other}"
            );
            assert_eq!(answer.http_status, 403);
            let required: Vec<&str> = route.scopes.iter().map(|s| s.as_str()).collect();
            assert_eq!(answer.required_scopes, required, "{what}");
            decided += 1;
        }
    }
    assert!(decided > 280, "{decided} (method, route) pairs decided");
}

/// The decision for `scopes` on each of `requests`.
async fn decisions(
    app: &TestApp,
    user: &TestUser,
    client: &TestClient,
    scopes: &str,
    requests: &[(&str, &str)],
) -> Vec<Decision> {
    let token = app.user_token(user, client, scopes).await.access_token;
    let mut out = Vec::new();
    for (method, path) in requests {
        out.push(decision(&check(app, method, path, Some(&token)).await));
    }
    out
}

const ALLOW: Decision = Decision::Allow;
const SCOPE: Decision = Decision::InsufficientScope;

#[tokio::test]
async fn read_and_write_parents_grant_their_own_sub_scopes_only() {
    let app = spawn_app().await;
    let user = app.create_user("eve", false).await;
    let client = app
        .register_app(&[OOB], "read write follow push profile")
        .await;
    let requests = [
        ("GET", "/api/v1/timelines/home"),
        ("GET", "/api/v1/notifications/5"),
        ("POST", "/api/v1/statuses"),
        ("DELETE", "/api/v1/statuses/5"),
        ("POST", "/api/v1/media"),
    ];
    assert_eq!(
        decisions(&app, &user, &client, "read", &requests).await,
        [ALLOW, ALLOW, SCOPE, SCOPE, SCOPE]
    );
    assert_eq!(
        decisions(&app, &user, &client, "write", &requests).await,
        [SCOPE, SCOPE, ALLOW, ALLOW, ALLOW]
    );
    assert_eq!(
        decisions(
            &app,
            &user,
            &client,
            "read:notifications write:media",
            &requests
        )
        .await,
        [SCOPE, ALLOW, SCOPE, SCOPE, ALLOW]
    );
}

#[tokio::test]
async fn the_legacy_follow_scope_grants_its_six_sub_scopes() {
    let app = spawn_app().await;
    let user = app.create_user("frank", false).await;
    let client = app.register_app(&[OOB], "read write follow").await;
    let requests = [
        ("GET", "/api/v1/blocks"),
        ("GET", "/api/v1/mutes"),
        ("GET", "/api/v1/follow_requests"),
        ("POST", "/api/v1/accounts/5/follow"),
        ("POST", "/api/v1/accounts/5/block"),
        ("POST", "/api/v1/accounts/5/mute"),
        ("GET", "/api/v1/timelines/home"),
        ("POST", "/api/v1/statuses"),
    ];
    assert_eq!(
        decisions(&app, &user, &client, "follow", &requests).await,
        [ALLOW, ALLOW, ALLOW, ALLOW, ALLOW, ALLOW, SCOPE, SCOPE]
    );
}

#[tokio::test]
async fn admin_routes_need_admin_scopes_that_only_admins_hold() {
    let app = spawn_app().await;
    let root = app.create_user("root", true).await;
    let mallory = app.create_user("mallory", false).await;
    let client = app
        .register_app(&[OOB], "read admin:read admin:write")
        .await;
    let requests = [
        ("GET", "/api/v1/admin/accounts"),
        ("GET", "/api/v1/admin/reports/3"),
        ("POST", "/api/v1/admin/accounts/3/action"),
        ("POST", "/api/v1/admin/domain_blocks"),
    ];
    assert_eq!(
        decisions(&app, &root, &client, "admin:read", &requests).await,
        [ALLOW, ALLOW, SCOPE, SCOPE]
    );
    assert_eq!(
        decisions(
            &app,
            &root,
            &client,
            "admin:read:reports admin:write",
            &requests
        )
        .await,
        [SCOPE, ALLOW, ALLOW, ALLOW]
    );
    // A non-admin asking for admin scopes is granted the rest only.
    assert_eq!(
        decisions(
            &app,
            &mallory,
            &client,
            "read admin:read admin:write",
            &requests
        )
        .await,
        [SCOPE, SCOPE, SCOPE, SCOPE]
    );
    // An admin demoted: the token stops claiming them at the door.
    let token = app
        .user_token(&root, &client, "read admin:read")
        .await
        .access_token;
    assert_eq!(
        decision(&check(&app, "GET", "/api/v1/admin/accounts", Some(&token)).await),
        ALLOW
    );
    app.demote("root").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let answer = check(&app, "GET", "/api/v1/admin/accounts", Some(&token)).await;
        if decision(&answer) == SCOPE {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a demoted admin still passes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn push_and_profile_grant_their_own_routes_only() {
    let app = spawn_app().await;
    let user = app.create_user("grace", false).await;
    let client = app.register_app(&[OOB], "read push profile").await;
    let requests = [
        ("POST", "/api/v1/push/subscription"),
        ("GET", "/api/v1/push/subscription"),
        ("GET", "/api/v1/accounts/verify_credentials"),
        ("GET", "/api/v1/timelines/home"),
    ];
    assert_eq!(
        decisions(&app, &user, &client, "push", &requests).await,
        [ALLOW, ALLOW, SCOPE, SCOPE]
    );
    assert_eq!(
        decisions(&app, &user, &client, "profile", &requests).await,
        [SCOPE, SCOPE, ALLOW, SCOPE]
    );
}

#[tokio::test]
async fn optional_token_routes_pass_anonymous_calls_but_judge_a_token_sent() {
    let app = spawn_app().await;
    let user = app.create_user("heidi", false).await;
    let client = app.register_app(&[OOB], "read write").await;
    // GET /api/v1/statuses/:id: public statuses are readable anonymously
    // (Mastodon's authorize_if_got_token!).
    let anonymous = check(&app, "GET", "/api/v1/statuses/7", None).await;
    assert_eq!(decision(&anonymous), ALLOW);
    assert!(anonymous.upstream_headers.is_empty());
    let bad = check(&app, "GET", "/api/v1/statuses/7", Some(&"B".repeat(43))).await;
    assert_eq!(decision(&bad), Decision::Unauthenticated);
    assert!(
        bad.response_headers[0]
            .value
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(
        decisions(
            &app,
            &user,
            &client,
            "write",
            &[("GET", "/api/v1/statuses/7")]
        )
        .await,
        [SCOPE]
    );
    let read = app.user_token(&user, &client, "read").await.access_token;
    let answer = check(&app, "GET", "/api/v1/statuses/7", Some(&read)).await;
    assert_eq!(decision(&answer), ALLOW);
    let names: Vec<&str> = answer
        .upstream_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "x-authd-account-id",
            "x-authd-username",
            "x-authd-client-id",
            "x-authd-scopes"
        ]
    );
}

#[tokio::test]
async fn unmatched_requests_malformed_paths_and_tokens_sent_twice_are_refused() {
    let app = spawn_app().await;
    let user = app.create_user("ivan", false).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    let unmatched = check(&app, "GET", "/api/v1/nothing_here", Some(&token)).await;
    assert_eq!(decision(&unmatched), Decision::NoRoute);
    assert_eq!(unmatched.http_status, 403);
    for path in [
        "/api/v1/statuses/../timelines/home",
        "/api/v1/timelines%2Fhome",
        "/api/v1//timelines/home",
        "/api/v1/timelines/home;jsessionid=1",
    ] {
        let answer = check(&app, "GET", path, Some(&token)).await;
        assert_eq!(decision(&answer), Decision::BadRequest, "{path}");
        assert_eq!(answer.http_status, 400, "{path}");
    }
    // RFC 6750 section 2: one way at a time.
    let twice = check(
        &app,
        "GET",
        &format!("/api/v1/timelines/home?access_token={token}"),
        Some(&token),
    )
    .await;
    assert_eq!(decision(&twice), Decision::BadRequest);
    // The access_token parameter alone works, as Doorkeeper's does.
    let query = check(
        &app,
        "GET",
        &format!("/api/v1/timelines/home?limit=2&access_token={token}"),
        None,
    )
    .await;
    assert_eq!(decision(&query), ALLOW);
    // A refresh token is no access token.
    let app2 = spawn_app_with_access_token_ttl(std::time::Duration::from_secs(3600)).await;
    let user2 = app2.create_user("judy", false).await;
    let client2 = app2.register_app(&[OOB], "read").await;
    let refresh = app2
        .user_token(&user2, &client2, "read")
        .await
        .refresh_token
        .expect("a refresh token");
    let answer = check(&app2, "GET", "/api/v1/timelines/home", Some(&refresh)).await;
    assert_eq!(decision(&answer), Decision::Unauthenticated);
}
