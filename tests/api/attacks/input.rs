//! Hostile input: SQL injection in every text field, CRLF header
//! injection, oversized and deeply nested JSON, invalid UTF-8, and slow
//! clients. Each gets a clear 4xx (or is stored verbatim as data), never a
//! 500, and never changes anything it should not.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const INJECTIONS: &[&str] = &[
    "'; DROP TABLE apps; --",
    "\" OR \"1\"=\"1",
    "' OR '1'='1' --",
    "1; SELECT pg_sleep(10)",
    "$$; DELETE FROM accounts; $$",
    "\\'; TRUNCATE access_tokens CASCADE; --",
];

async fn table_counts(app: &TestApp) -> Vec<i64> {
    let db = app.db().await;
    let mut counts = Vec::new();
    for table in ["apps", "accounts", "access_tokens", "sessions"] {
        let row = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("table {table}: {e}"));
        counts.push(row.get(0));
    }
    counts
}

#[tokio::test]
async fn sql_injection_strings_in_every_text_field_are_inert() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    let client = app.register_app(&[OOB], "read").await;
    app.create_user("alice", false).await;
    let before = table_counts(&app).await;
    for evil in INJECTIONS {
        // Registration: stored verbatim as the name and website.
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&serde_json::json!({
                "client_name": evil,
                "website": format!("https://x.example/?q={evil}"),
                "redirect_uris": OOB,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{evil}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["name"], *evil);
        // Fields that must name something real: refused as unknown.
        for (scopes, uris) in [(*evil, OOB), ("read", *evil)] {
            let status = app
                .http()
                .post(app.url("/api/v1/apps"))
                .json(&serde_json::json!({
                    "client_name": "x", "scopes": scopes, "redirect_uris": uris,
                }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 422, "{evil}");
        }
        for form in [
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", evil),
                ("client_secret", evil),
            ],
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &client.client_id),
                ("client_secret", &client.client_secret),
                ("code", evil),
                ("redirect_uri", OOB),
            ],
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", &client.client_id),
                ("client_secret", &client.client_secret),
                ("refresh_token", evil),
            ],
            vec![("grant_type", evil)],
        ] {
            let (status, body) = post_form(&app, "/oauth/token", &form).await;
            assert!((400..500).contains(&status), "{evil}: {status} {body}");
        }
        assert!(!active(&app, &client, evil).await);
        let response = form_login(&app, evil, evil).await;
        assert_eq!(response, 401, "{evil}");
        let bearer = app
            .http()
            .get(app.url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(evil)
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 401, "{evil}");
    }
    let after = table_counts(&app).await;
    assert_eq!(
        after[1..],
        before[1..],
        "accounts, tokens and sessions unchanged"
    );
    assert_eq!(
        after[0],
        before[0] + INJECTIONS.len() as i64,
        "one app per name"
    );
}

async fn form_login(app: &TestApp, email: &str, password: &str) -> u16 {
    let browser = app.browser();
    browser.login(email, password, "/").await.status().as_u16()
}

#[tokio::test]
async fn crlf_header_injection_never_reaches_a_header() {
    let app = spawn_app().await;
    let cb = "https://client.example/cb";
    let client = app.register_app(&[cb], "read").await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    browser.login(&email("alice"), PASSWORD, "/").await;
    // The state travels into the Location header: it must arrive encoded.
    let evil_state = "s\r\nSet-Cookie: injected=1\r\nX-Injected: 1";
    let response = browser
        .approve(&authorize_query(&client, cb, "read", evil_state))
        .await;
    assert_eq!(response.status(), 302);
    assert!(response.headers().get("x-injected").is_none());
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().contains("injected"))
    );
    let to = url::Url::parse(&location(&response)).unwrap();
    let state = to.query_pairs().find(|(k, _)| k == "state").unwrap().1;
    assert_eq!(state, evil_state, "the state round-trips as data");
    // A redirect_uri with CRLF is not registered, so it is refused.
    let query = authorize_query(
        &client,
        "https://client.example/cb\r\nX-Injected: 1",
        "read",
        "s",
    );
    let response = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("x-injected").is_none());
    // A request id with CRLF is replaced, not echoed.
    let response = app
        .http()
        .get(app.url("/healthz"))
        .header("x-request-id", "abc%0d%0aX-Injected:%201")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("x-injected").is_none());
}

#[tokio::test]
async fn oversized_json_is_413() {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "client_name": "a".repeat(100 * 1024),
        "redirect_uris": OOB,
    });
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("larger than"));
}

#[tokio::test]
async fn deeply_nested_json_is_400() {
    let app = spawn_app().await;
    for depth in [64, 10_000] {
        let nested = format!(
            "{{\"client_name\":{}1{},\"redirect_uris\":\"{OOB}\"}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .header("content-type", "application/json")
            .body(nested)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "depth {depth}");
    }
    // And at the OAuth endpoints, in their error shape.
    let response = app
        .http()
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"grant_type\":{}\"x\"{}}}",
            "{\"a\":".repeat(5000),
            "}".repeat(5000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let app = spawn_app().await;
    let bodies: [(&str, &[u8]); 3] = [
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&client_id=\xff\xfe",
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&client_id=%ff%fe",
        ),
        ("application/json", b"{\"grant_type\":\"\xc3\x28\"}"),
    ];
    for (content_type, body) in bodies {
        let response = app
            .http()
            .post(app.url("/oauth/token"))
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["error"], "invalid_request", "{body:?}");
    }
    let response = app
        .http()
        .get(app.url("/oauth/authorize?client_id=%ff%fe&response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

async fn slow_app() -> TestApp {
    spawn_app_with(TestOptions {
        http_request_timeout: Duration::from_millis(700),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn slow_client_headers_time_out_and_the_connection_closes() {
    let app = slow_app().await;
    let addr = app.application().http_addr().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Slowloris: a request line and one header, then nothing.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: authd.test\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    let read = read.expect("the server kept a slow client's connection open past its timeout");
    assert!(read.is_ok() || buf.is_empty());
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
    // The server still serves others.
    let ok = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert!(ok.status().is_success() || ok.status() == 503);
}

#[tokio::test]
async fn slow_client_body_gets_408() {
    let app = slow_app().await;
    let addr = app.application().http_addr().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: authd.test\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a body that never came");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}
