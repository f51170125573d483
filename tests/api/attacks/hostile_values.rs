//! Hostile values that once cost too much or answered 500: a RegisterApp
//! with tens of thousands of redirect URIs (quadratic deduplication on the
//! runtime), a NUL byte in any text field (PostgreSQL refuses it), and
//! names that display as something they are not (bidirectional overrides,
//! zero-width characters).
use std::time::{Duration, Instant};

use authd::proto::v1;
use tonic::Code;

use super::*;

#[tokio::test]
async fn a_register_app_with_thousands_of_redirect_uris_is_refused_at_once() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    // Doubling past the limit: each is refused, none takes longer than a
    // bounded moment (the old code took seconds at 46k).
    for n in [64usize, 1_000, 10_000, 46_000] {
        let uris: Vec<String> = (0..n)
            .map(|i| format!("https://a.example/cb/{i}"))
            .collect();
        let started = Instant::now();
        let status = app
            .apps()
            .register_app(v1::RegisterAppRequest {
                client_name: "many".into(),
                redirect_uris: uris,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
            ),
            "{n}: {status:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{n} took {:?}",
            started.elapsed()
        );
    }
    // Within the limit still registers.
    let uris: Vec<String> = (0..32)
        .map(|i| format!("https://a.example/cb/{i}"))
        .collect();
    let ok = app
        .apps()
        .register_app(v1::RegisterAppRequest {
            client_name: "enough".into(),
            redirect_uris: uris,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.app.unwrap().redirect_uris.len(), 32);
}

#[tokio::test]
async fn invalid_registrations_count_against_the_per_address_limit() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .header("x-forwarded-for", "198.51.100.9")
            .json(&serde_json::json!({ "client_name": "", "redirect_uris": OOB }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
    }
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&serde_json::json!({ "client_name": "ok", "redirect_uris": OOB }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn a_nul_byte_in_any_text_field_is_a_client_error_not_a_500() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    app.register_app(&[OOB], "read").await;
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "a\0b"),
            ("client_secret", "x"),
        ],
        vec![
            ("token", "t"),
            ("client_id", "a\0b"),
            ("client_secret", "x"),
        ],
    ] {
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let (status, body) = post_form(&app, path, &form).await;
            assert!((400..500).contains(&status), "{path}: {status} {body}");
            assert_ne!(body["error"], "internal", "{path}: {body}");
        }
    }
    let (status, body) = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "a\0b"),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Basic auth with a NUL in the client_id.
    let response = app
        .http()
        .post(app.url("/oauth/token"))
        .basic_auth("a\0b", Some("x"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The authorization page.
    let response = app
        .http()
        .get(app.url(&format!(
            "/oauth/authorize?response_type=code&client_id=a%00b&redirect_uri={}",
            OOB
        )))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // Registration: a NUL in the website or name is Mastodon's 422.
    for body in [
        serde_json::json!({ "client_name": "x", "website": "https://x.example/\u{0}", "redirect_uris": OOB }),
        serde_json::json!({ "client_name": "x\u{0}y", "redirect_uris": OOB }),
    ] {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
    }
    // The gRPC twins.
    let status = app
        .oauth()
        .exchange_token(v1::ExchangeTokenRequest {
            grant_type: "client_credentials".into(),
            client_id: "a\0b".into(),
            client_secret: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let admin = app.create_user("root", true).await;
    let console = app.register_app(&[OOB], "admin:read admin:write").await;
    let admin_token = app
        .user_token(&admin, &console, "admin:write admin:read")
        .await
        .access_token;
    let mut admin_client = authd::proto::v1::admin_client::AdminClient::new(app.channel.clone());
    for result in [
        admin_client
            .get_app(with_bearer(
                v1::GetAppRequest {
                    client_id: "a\0b".into(),
                },
                &admin_token,
            ))
            .await
            .map(|_| ()),
        admin_client
            .delete_app(with_bearer(
                v1::DeleteAppRequest {
                    client_id: "a\0b".into(),
                },
                &admin_token,
            ))
            .await
            .map(|_| ()),
    ] {
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // Still the two apps registered above: nothing else was stored.
    let row = app
        .db()
        .await
        .query_one("SELECT count(*) FROM apps", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
}

#[tokio::test]
async fn app_names_that_display_as_something_else_are_refused() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    for name in [
        "Official Client \u{202e}gnp.exe",
        "Zero\u{200b}Width",
        "Isolate \u{2067}x\u{2069}",
    ] {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&serde_json::json!({ "client_name": name, "redirect_uris": OOB }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{name:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["error"], "Validation failed: Name is invalid",
            "{name:?}"
        );
    }
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({ "client_name": "Dev 👩\u{200d}💻", "redirect_uris": OOB }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({
            "client_name": "x", "website": "https://x.example/\u{202e}", "redirect_uris": OOB,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}
