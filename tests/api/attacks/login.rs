//! Login brute force and enumeration (RFC 6819 5.1.4.2.3, OWASP ASVS
//! 2.2.1), and registration flooding: attempts are limited by address and
//! by account, answered 429 with when to come back, counted before the
//! password is hashed (so parallel attempts cannot slip through), and an
//! unknown email looks exactly like a wrong password.
use std::time::Duration;

use authd::domain::client_ip::TrustedProxies;
use authd::proto::v1;
use authd::service::ServiceConfig;
use authd::service::throttle::{Rate, RateLimits};
use tonic::Code;

use super::*;

fn per_hour(limit: u32) -> Option<Rate> {
    Some(Rate {
        limit,
        period: Duration::from_secs(3600),
    })
}

async fn spawn_with_limits(limits: RateLimits) -> TestApp {
    let mut service = ServiceConfig::new("http://authd.test");
    service.rate_limits = limits;
    spawn_app_with(TestOptions {
        service,
        ..Default::default()
    })
    .await
}

/// A login form POST from `address` (loopback is a trusted proxy, so its
/// X-Forwarded-For names the client).
async fn form_login(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(app.url("/auth/sign_in")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    client
        .post(app.url("/auth/sign_in"))
        .header("cookie", cookie)
        .header("x-forwarded-for", address)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap()
}

async fn grpc_login(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> Result<v1::LoginResponse, tonic::Status> {
    let mut request = tonic::Request::new(v1::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    app.sessions()
        .login(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn assert_throttled_page(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many requests; try again in"), "{page}");
}

#[tokio::test]
async fn login_brute_force_from_one_address_gets_429_with_retry_after() {
    let app = spawn_with_limits(RateLimits {
        login_per_ip: per_hour(5),
        ..RateLimits::off()
    })
    .await;
    app.create_user("alice", false).await;
    for i in 0..5 {
        let response = form_login(&app, "203.0.113.7", &format!("guess{i}@example.org"), "x").await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    assert_throttled_page(form_login(&app, "203.0.113.7", &email("alice"), "wrong").await).await;
    // Even the right password waits: the limit is checked before it is.
    assert_throttled_page(form_login(&app, "203.0.113.7", &email("alice"), PASSWORD).await).await;
    let status = grpc_login(&app, "203.0.113.7", &email("alice"), PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().starts_with("rate_limited"),
        "{}",
        status.message()
    );
    // Another address is not affected.
    assert_eq!(
        form_login(&app, "198.51.100.2", &email("alice"), PASSWORD)
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn login_brute_force_at_one_account_from_many_addresses_gets_429() {
    let app = spawn_with_limits(RateLimits {
        login_per_account: per_hour(5),
        ..RateLimits::off()
    })
    .await;
    app.create_user("alice", false).await;
    app.create_user("bob", false).await;
    for i in 0..5 {
        let address = format!("203.0.113.{}", 10 + i);
        // Case does not make it another account.
        let who = if i % 2 == 0 {
            email("alice")
        } else {
            email("ALICE")
        };
        assert_eq!(
            form_login(&app, &address, &who, "wrong").await.status(),
            401
        );
    }
    assert_throttled_page(form_login(&app, "203.0.113.99", &email("alice"), PASSWORD).await).await;
    assert_eq!(
        form_login(&app, "203.0.113.99", &email("bob"), PASSWORD)
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn parallel_login_attempts_cannot_get_around_the_limit() {
    let app = spawn_with_limits(RateLimits {
        login_per_ip: per_hour(5),
        ..RateLimits::off()
    })
    .await;
    app.create_user("alice", false).await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            grpc_login(
                app,
                "203.0.113.50",
                &format!("user{i}@example.org"),
                "wrong",
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let codes: Vec<Code> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().code())
        .collect();
    let tried = codes
        .iter()
        .filter(|c| **c == Code::Unauthenticated)
        .count();
    let throttled = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    assert_eq!((tried, throttled), (5, 15), "{codes:?}");
}

#[tokio::test]
async fn login_limits_are_configurable_and_successful_logins_do_not_count() {
    let app = spawn_with_limits(RateLimits {
        login_per_ip: per_hour(3),
        login_per_account: per_hour(3),
        app_registration_per_ip: None,
        cold_lookups_per_client: None,
    })
    .await;
    app.create_user("alice", false).await;
    for _ in 0..10 {
        grpc_login(&app, "203.0.113.60", &email("alice"), PASSWORD)
            .await
            .expect("a successful login is not an attack");
    }
    let off = spawn_with_limits(RateLimits::off()).await;
    for _ in 0..40 {
        let status = grpc_login(&off, "203.0.113.61", "nobody@example.org", "x")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
}

#[tokio::test]
async fn only_wrong_credentials_count_against_the_login_limits() {
    let app = spawn_with_limits(RateLimits {
        login_per_ip: per_hour(2),
        login_per_account: per_hour(2),
        app_registration_per_ip: None,
        cold_lookups_per_client: None,
    })
    .await;
    app.create_user("alice", false).await;
    app.db()
        .await
        .execute("UPDATE accounts SET disabled_at = now()", &[])
        .await
        .unwrap();
    // The right password for a disabled account is no guess: refused for
    // what it is, every time, and never throttled.
    for _ in 0..5 {
        let status = grpc_login(&app, "203.0.113.80", &email("alice"), PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    for _ in 0..2 {
        let status = grpc_login(&app, "203.0.113.80", &email("alice"), "wrong")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let status = grpc_login(&app, "203.0.113.80", &email("alice"), "wrong")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
}

/// The login page's answer with what legitimately differs (the CSRF token
/// and the email echoed back) taken out.
fn normalized(page: &str, email: &str) -> String {
    let token = hidden(page, "csrf_token").unwrap_or_default();
    page.replace(&token, "TOKEN").replace(email, "EMAIL")
}

#[tokio::test]
async fn no_user_enumeration_unknown_email_and_wrong_password_answer_alike_for_the_same_work() {
    let app = spawn_with_limits(RateLimits::off()).await;
    app.create_user("alice", false).await;
    let known = email("alice");
    let unknown = "nobody@example.org".to_owned();
    let mut pages = [String::new(), String::new()];
    for (i, who) in [&known, &unknown].into_iter().enumerate() {
        let response = form_login(&app, "203.0.113.70", who, "wrong password").await;
        assert_eq!(response.status(), 401, "{who}");
        pages[i] = normalized(&response.text().await.unwrap(), who);
    }
    assert_eq!(pages[0], pages[1], "the pages differ");
    // Over gRPC, the same status and message.
    let a = grpc_login(&app, "203.0.113.70", &known, "wrong password")
        .await
        .unwrap_err();
    let b = grpc_login(&app, "203.0.113.70", &unknown, "wrong password")
        .await
        .unwrap_err();
    assert_eq!((a.code(), a.message()), (b.code(), b.message()));
    // Both spend exactly one argon2 verification, with the same parameters
    // (domain/password.rs checks the dummy hash's): an unknown email that
    // skipped the hash would answer many times faster. Counted, not timed.
    for who in [&known, &unknown] {
        let before = app.password_hashes();
        let response = form_login(&app, "203.0.113.70", who, "wrong password").await;
        assert_eq!(response.status(), 401);
        assert_eq!(app.password_hashes() - before, 1, "{who}");
    }
}

async fn register_from(app: &TestApp, address: &str, name: &str) -> reqwest::Response {
    app.http()
        .post(app.url("/api/v1/apps"))
        .header("x-forwarded-for", address)
        .json(&serde_json::json!({ "client_name": name, "redirect_uris": OOB }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn app_registration_flood_from_one_address_gets_429_as_mastodon_answers() {
    // The defaults: Mastodon's 5 per 10 minutes.
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(
            register_from(&app, "198.51.100.1", &format!("app {i}"))
                .await
                .status(),
            200
        );
    }
    // Invalid input is refused, and counted (a flood of it is not free).
    let invalid = app
        .http()
        .post(app.url("/api/v1/apps"))
        .header("x-forwarded-for", "198.51.100.3")
        .json(&serde_json::json!({ "client_name": "", "redirect_uris": OOB }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let refused = register_from(&app, "198.51.100.1", "one too many").await;
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    assert_eq!(headers["x-ratelimit-limit"], "5");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "error": "Too many requests" }));
    // gRPC callers behind the same address share the limit.
    let mut request = tonic::Request::new(v1::RegisterAppRequest {
        client_name: "grpc".into(),
        redirect_uris: vec![OOB.into()],
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
    let status = app.apps().register_app(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Another address registers freely; so does the one with the 422.
    assert_eq!(
        register_from(&app, "198.51.100.2", "elsewhere")
            .await
            .status(),
        200
    );
    assert_eq!(
        register_from(&app, "198.51.100.3", "fixed").await.status(),
        200
    );
}

/// An HTTP client whose connections come from `local` (127.0.0.2: a
/// loopback address, but not one of the two Mastodon safelists).
fn http_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
    let mut options = TestOptions {
        trusted_proxies: TrustedProxies::none(),
        ..Default::default()
    };
    options.service.rate_limits = RateLimits::default();
    let app = spawn_app_with(options).await;
    // Each request claims another address; all are counted as 127.0.0.2,
    // the peer, which is no proxy authd trusts.
    let client = http_from("127.0.0.2");
    let register = |address: String| {
        client
            .post(app.url("/api/v1/apps"))
            .header("x-forwarded-for", address)
            .json(&serde_json::json!({ "client_name": "spoof", "redirect_uris": OOB }))
            .send()
    };
    for i in 0..5 {
        let response = register(format!("198.51.100.{i}")).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let refused = register("198.51.100.200".into()).await.unwrap();
    assert_eq!(refused.status(), 429);
}

#[tokio::test]
async fn the_host_itself_registers_apps_beyond_the_limit_as_mastodon_safelists_it() {
    // The defaults: 5 per 10 minutes, and loopback a trusted proxy.
    let app = spawn_app().await;
    for i in 0..8 {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&serde_json::json!({ "client_name": format!("local {i}"), "redirect_uris": OOB }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "registration {i}");
        // A loopback proxy that forwards for the host itself.
        assert_eq!(
            register_from(&app, "::1", &format!("local v6 {i}"))
                .await
                .status(),
            200
        );
    }
    // gRPC from loopback too.
    for i in 0..8 {
        app.apps()
            .register_app(v1::RegisterAppRequest {
                client_name: format!("grpc {i}"),
                redirect_uris: vec![OOB.into()],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // A client the loopback proxy forwards for is counted.
    for i in 0..5 {
        let response = register_from(&app, "198.51.100.40", &format!("remote {i}")).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        register_from(&app, "198.51.100.40", "one too many")
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn the_host_itself_is_not_limited_by_address_at_login() {
    let app = spawn_with_limits(RateLimits {
        login_per_ip: per_hour(2),
        ..RateLimits::off()
    })
    .await;
    app.create_user("alice", false).await;
    for i in 0..5 {
        let response = form_login(&app, "127.0.0.1", &email("alice"), "wrong").await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    for _ in 0..2 {
        let response = form_login(&app, "203.0.113.8", &email("alice"), "wrong").await;
        assert_eq!(response.status(), 401);
    }
    assert_throttled_page(form_login(&app, "203.0.113.8", &email("alice"), "wrong").await).await;
}

#[tokio::test]
async fn ipv6_clients_share_a_budget_per_64_as_mastodon_counts_them() {
    let app = spawn_app().await;
    for i in 1..=5 {
        let address = format!("2001:db8:1:2::{i:x}");
        assert_eq!(
            register_from(&app, &address, "v6").await.status(),
            200,
            "{address}"
        );
    }
    // Another address of the same /64 has nothing left.
    assert_eq!(
        register_from(&app, "2001:db8:1:2:ffff:ffff:ffff:fffe", "v6")
            .await
            .status(),
        429
    );
    // The next /64 has its own.
    assert_eq!(
        register_from(&app, "2001:db8:1:3::1", "v6").await.status(),
        200
    );
    // An IPv4 client through an IPv6 socket is that IPv4 client.
    for _ in 0..5 {
        assert_eq!(
            register_from(&app, "198.51.100.77", "v4").await.status(),
            200
        );
    }
    assert_eq!(
        register_from(&app, "::ffff:198.51.100.77", "mapped")
            .await
            .status(),
        429
    );
}
