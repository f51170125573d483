//! Cost: every input whose size a client chooses is doubled from below its
//! limit to well past it, and the answer past the limit is the refusal the
//! endpoint uses, given at once: the largest refused input takes not much
//! longer than the smallest, rather than the quadratic time that a
//! deduplication or a scan over client input once took.
use std::time::{Duration, Instant};

use authd::proto::v1;
use tonic::Code;

use super::*;

/// One size tried: whether the answer was the refusal, the answer for the
/// failure message, and the fastest of three tries.
struct Trial {
    size: usize,
    refused: bool,
    answer: String,
    took: Duration,
}

/// Half the limit, the limit, then twice, four and sixteen times it.
fn doubling(limit: usize) -> [usize; 5] {
    [limit / 2, limit, 2 * limit, 4 * limit, 16 * limit]
}

/// Tries each size three times; `attempt` says whether it was refused.
async fn trials<F, Fut>(sizes: [usize; 5], mut attempt: F) -> Vec<Trial>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = (bool, String)>,
{
    let mut out = Vec::new();
    for size in sizes {
        let mut best = None::<Trial>;
        for _ in 0..3 {
            let started = Instant::now();
            let (refused, answer) = attempt(size).await;
            let took = started.elapsed();
            if best.as_ref().is_none_or(|b| took < b.took) {
                best = Some(Trial {
                    size,
                    refused,
                    answer,
                    took,
                });
            }
        }
        out.push(best.expect("three tries"));
    }
    out
}

/// Each size within `limit` is accepted and each past it refused; and the
/// largest refused takes at most a generous multiple of the smallest
/// (linear work over 8 times the input is 8 times; quadratic, 64).
#[track_caller]
fn assert_refused_at_once_past(limit: usize, trials: &[Trial]) {
    for t in trials {
        assert_eq!(
            t.refused,
            t.size > limit,
            "size {} (limit {limit}): {}",
            t.size,
            t.answer
        );
    }
    assert_at_once(trials);
}

/// Inputs refused whatever their size (an unknown token, say), past the
/// limit before any lookup.
#[track_caller]
fn assert_refused_at_every_size(trials: &[Trial]) {
    for t in trials {
        assert!(t.refused, "size {}: {}", t.size, t.answer);
    }
    assert_at_once(trials);
}

/// The largest refused input costs not much more than the smallest.
#[track_caller]
fn assert_at_once(trials: &[Trial]) {
    let first = trials.iter().find(|t| t.refused).expect("a refusal");
    let last = trials.last().expect("trials");
    assert!(last.refused, "size {}: {}", last.size, last.answer);
    let bound = first.took * 12 + Duration::from_millis(100);
    assert!(
        last.took <= bound,
        "size {} took {:?}, size {} took {:?}: not refused at once",
        last.size,
        last.took,
        first.size,
        first.took
    );
}

async fn app_without_rate_limits() -> TestApp {
    spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await
}

/// An HTTP answer as status and body.
async fn answer(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (status, body.chars().take(300).collect())
}

/// POSTs `body` as it is, with `content_type`.
async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: String) -> (u16, String) {
    answer(
        app.http()
            .post(app.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST"),
    )
    .await
}

async fn register_json(app: &TestApp, body: &serde_json::Value) -> (u16, String) {
    answer(
        app.http()
            .post(app.url("/api/v1/apps"))
            .json(body)
            .send()
            .await
            .expect("POST /api/v1/apps"),
    )
    .await
}

#[tokio::test]
async fn redirect_uris_past_32_are_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(32), |n| async move {
        let uris: Vec<String> = (0..n).map(|i| format!("https://a.example/{i}")).collect();
        let result = app
            .apps()
            .register_app(v1::RegisterAppRequest {
                client_name: "many".into(),
                redirect_uris: uris,
                ..Default::default()
            })
            .await;
        match result {
            Ok(_) => (false, "registered".into()),
            Err(s) => (
                s.code() == Code::InvalidArgument && reason(&s) == "validation_failed",
                format!("{s:?}"),
            ),
        }
    })
    .await;
    assert_refused_at_once_past(32, &t);
}

#[tokio::test]
async fn a_redirect_uri_past_2000_bytes_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(2000), |n| async move {
        let uri = format!("https://a.example/{}", "a".repeat(n - 18));
        let (status, body) = register_json(
            app,
            &serde_json::json!({ "client_name": "long", "redirect_uris": uri }),
        )
        .await;
        (status == 422 && body.contains("Redirect URI"), body)
    })
    .await;
    assert_refused_at_once_past(2000, &t);
}

#[tokio::test]
async fn a_client_name_past_60_characters_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(60), |n| async move {
        let (status, body) = register_json(
            app,
            &serde_json::json!({ "client_name": "é".repeat(n), "redirect_uris": OOB }),
        )
        .await;
        (status == 422, body)
    })
    .await;
    assert_refused_at_once_past(60, &t);
}

#[tokio::test]
async fn a_website_past_2000_bytes_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(2000), |n| async move {
        let website = format!("https://a.example/{}", "a".repeat(n - 18));
        let (status, body) = register_json(
            app,
            &serde_json::json!({
                "client_name": "site", "redirect_uris": OOB, "website": website,
            }),
        )
        .await;
        (status == 422, body)
    })
    .await;
    assert_refused_at_once_past(2000, &t);
}

#[tokio::test]
async fn a_scope_past_1024_bytes_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let client = app.register_app(&[OOB], "read write").await;
    let (app, client) = (&app, &client);
    let limit = authd::domain::scope::MAX_SCOPE_INPUT_LEN;
    let t = trials(doubling(limit), |n| async move {
        // As many scopes as fit, padded to exactly n bytes.
        let scope = format!("{}{}", "read ".repeat(n / 5), " ".repeat(n % 5));
        let (status, body) = super::post_form(
            app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.client_id),
                ("client_secret", &client.client_secret),
                ("scope", &scope),
            ],
        )
        .await;
        (
            status == 400 && body["error"] == "invalid_scope",
            body.to_string(),
        )
    })
    .await;
    assert_refused_at_once_past(limit, &t);
}

#[tokio::test]
async fn an_introspection_batch_past_1000_tokens_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let client = app.register_app(&[OOB], "read").await;
    let (app, client) = (&app, &client);
    let limit = authd::service::introspect::MAX_BATCH;
    let t = trials(doubling(limit), |n| async move {
        let result = app
            .oauth()
            .introspect_batch(v1::IntrospectBatchRequest {
                tokens: vec!["a".repeat(43); n],
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                ..Default::default()
            })
            .await;
        match result {
            Ok(r) => (false, format!("{} answers", r.into_inner().results.len())),
            Err(s) => (s.code() == Code::InvalidArgument, format!("{s:?}")),
        }
    })
    .await;
    assert_refused_at_once_past(limit, &t);
}

#[tokio::test]
async fn a_bearer_token_past_4096_bytes_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    // Unknown tokens are refused at every size; past the limit, before
    // any lookup.
    let t = trials(doubling(4096), |n| async move {
        let (status, body) = answer(
            app.http()
                .get(app.url("/api/v1/accounts/verify_credentials"))
                .bearer_auth("a".repeat(n))
                .send()
                .await
                .expect("GET"),
        )
        .await;
        (status == 401, body)
    })
    .await;
    assert_refused_at_every_size(&t);
}

#[tokio::test]
async fn client_credentials_past_512_bytes_are_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(512), |n| async move {
        let long = "a".repeat(n);
        let (status, body) = super::post_form(
            app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &long),
                ("client_secret", &long),
            ],
        )
        .await;
        (
            status == 401 && body["error"] == "invalid_client",
            body.to_string(),
        )
    })
    .await;
    assert_refused_at_every_size(&t);
}

#[tokio::test]
async fn a_form_body_past_the_limit_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let limit = 64 * 1024;
    let t = trials(doubling(limit), |n| async move {
        let prefix = "grant_type=client_credentials&pad=";
        let body = format!("{prefix}{}", "a".repeat(n - prefix.len()));
        let (status, body) = post_raw(
            app,
            "/oauth/token",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
        (status == 413, body)
    })
    .await;
    assert_refused_at_once_past(limit, &t);
}

#[tokio::test]
async fn a_json_body_past_the_limit_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let limit = 64 * 1024;
    let t = trials(doubling(limit), |n| async move {
        let prefix = format!("{{\"client_name\":\"json\",\"redirect_uris\":\"{OOB}\",\"pad\":\"");
        let body = format!("{prefix}{}\"}}", "a".repeat(n - prefix.len() - 2));
        let (status, body) = post_raw(app, "/api/v1/apps", "application/json", body).await;
        (status == 413, body)
    })
    .await;
    assert_refused_at_once_past(limit, &t);
}

#[tokio::test]
async fn json_nested_past_32_levels_is_refused_at_once() {
    let app = app_without_rate_limits().await;
    let app = &app;
    let t = trials(doubling(32), |depth| async move {
        // The nesting holds the name, where a string belongs.
        let body = format!(
            "{{\"redirect_uris\":\"{OOB}\",\"client_name\":{}{}{}}}",
            "[".repeat(depth - 1),
            "\"x\"",
            "]".repeat(depth - 1)
        );
        let (status, body) = post_raw(app, "/api/v1/apps", "application/json", body).await;
        (
            status == 400 && body.contains("nested too deeply"),
            format!("{status} {body}"),
        )
    })
    .await;
    // Within the limit, the nesting is parsed and the name refused for its
    // type; past it, refused before parsing.
    assert_refused_at_once_past(32, &t);
}

#[tokio::test]
async fn a_password_past_1024_bytes_is_refused_before_it_is_hashed() {
    let app = app_without_rate_limits().await;
    app.create_user("costly", false).await;
    let app = &app;
    let t = trials(doubling(1024), |n| async move {
        let result = app.login(&email("costly"), &"a".repeat(n)).await;
        match result {
            Ok(_) => (false, "logged in".into()),
            Err(s) => (
                matches!(
                    s.code(),
                    Code::Unauthenticated | Code::ResourceExhausted | Code::OutOfRange
                ),
                format!("{s:?}"),
            ),
        }
    })
    .await;
    assert_refused_at_every_size(&t);
    // The wrong password within the limit is hashed (and checked); the
    // one past it is not hashed at all.
    assert!(
        t[2].took < t[1].took,
        "2048 bytes took {:?}, 1024 bytes {:?}",
        t[2].took,
        t[1].took
    );
}

#[tokio::test]
async fn an_authorize_state_is_refused_at_once_past_the_message_limit() {
    // The state has no bound of its own: it is echoed, not parsed. The
    // OAuth service's message limit bounds it.
    let app = app_without_rate_limits().await;
    let user = app.create_user("stately", false).await;
    let client = app.register_app(&[OOB], "read").await;
    let (app, user, client) = (&app, &user, &client);
    let limit = authd::grpc::max_message::OAUTH - 4096;
    let t = trials(doubling(limit), |n| async move {
        let mut request = app.authorize_request(user, client, OOB, "read");
        request.state = "s".repeat(n);
        match app.oauth().authorize(request).await {
            Ok(_) => (false, "authorized".into()),
            Err(s) => (
                matches!(s.code(), Code::ResourceExhausted | Code::OutOfRange),
                format!("{:?} {}", s.code(), s.message()),
            ),
        }
    })
    .await;
    assert_refused_at_once_past(limit, &t);
}
