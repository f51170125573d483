//! /metrics: real requests move the counters by exactly their number, with
//! the right labels, in the exposition Prometheus scrapes (parsed here, not
//! grepped).
use std::collections::BTreeMap;
use std::time::Duration;

use authd::proto::v1;
use authd::service::throttle::{Rate, RateLimits};

use crate::helpers::*;

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of an OpenMetrics text exposition.
#[derive(Debug)]
pub(crate) struct Exposition(Vec<Sample>);

impl Exposition {
    pub(crate) fn parse(text: &str) -> Exposition {
        assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    (name.to_owned(), parse_labels(body))
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Exposition(samples)
    }

    /// The value of the sample with exactly these labels; 0 if absent
    /// (counters start at zero).
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<&Sample> = self
            .0
            .iter()
            .filter(|s| s.name == name && s.labels == wanted)
            .collect();
        assert!(found.len() <= 1, "{name}{labels:?} twice: {found:?}");
        found.first().map_or(0.0, |s| s.value)
    }

    pub(crate) fn series(&self, name: &str) -> Vec<&Sample> {
        self.0.iter().filter(|s| s.name == name).collect()
    }
}

/// `k="v",k2="v2"`, with OpenMetrics escapes in values.
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "quote after {key}=");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape"),
                },
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

async fn scrape_url(url: &str) -> Exposition {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    Exposition::parse(&response.text().await.expect("body"))
}

async fn scrape(app: &TestApp) -> Exposition {
    scrape_url(&app.url("/metrics")).await
}

/// The introspection cache counts only once its invalidation listener is
/// up (until then it is bypassed).
async fn wait_for_cache(app: &TestApp) {
    let cache = app.application().service().cache();
    for _ in 0..500 {
        if cache.is_synced() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the introspection cache never synced");
}

fn delta(before: &Exposition, after: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.get(name, labels) - before.get(name, labels)
}

const RPC: &str = "authd_grpc_requests_total";
const RPC_SECONDS: &str = "authd_grpc_request_duration_seconds_count";
const HTTP: &str = "authd_http_requests_total";

#[tokio::test]
async fn grpc_calls_tokens_revocations_logins_and_cache_lookups_are_counted_by_label() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    app.create_user("alice", false).await;
    wait_for_cache(&app).await;
    let before = scrape(&app).await;

    let token = app
        .client_credentials(&client, "read")
        .await
        .expect("token")
        .access_token;
    // A miss (the token is read from PostgreSQL, then cached), a hit, and
    // a token nobody issued (a miss that is not cached).
    assert_eq!(app.introspect(&client, &token).await.active, Some(true));
    assert_eq!(app.introspect(&client, &token).await.active, Some(true));
    let unknown = authd::domain::secret::random_token();
    assert_ne!(app.introspect(&client, &unknown).await.active, Some(true));
    app.revoke(&client, &token).await.expect("revoke");
    let failed = app
        .login(&email("alice"), "not the password")
        .await
        .expect_err("wrong password");
    let failed_code = format!("{:?}", failed.code());

    let after = scrape(&app).await;
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let rpc = |method: &str, code: &str| d(RPC, &[("method", method), ("code", code)]);
    assert_eq!(rpc("authd.v1.OAuth/ExchangeToken", "Ok"), 1.0);
    assert_eq!(rpc("authd.v1.OAuth/Introspect", "Ok"), 3.0);
    assert_eq!(rpc("authd.v1.OAuth/Revoke", "Ok"), 1.0);
    assert_eq!(rpc("authd.v1.Sessions/Login", &failed_code), 1.0);
    assert_eq!(rpc("authd.v1.Sessions/Login", "Ok"), 0.0);
    assert_eq!(
        d(RPC_SECONDS, &[("method", "authd.v1.OAuth/Introspect")]),
        3.0
    );
    // Every observation is under +Inf, and the buckets are cumulative.
    let inf = after.get(
        "authd_grpc_request_duration_seconds_bucket",
        &[("method", "authd.v1.OAuth/Introspect"), ("le", "+Inf")],
    );
    assert_eq!(
        inf,
        after.get(RPC_SECONDS, &[("method", "authd.v1.OAuth/Introspect")])
    );
    let buckets: Vec<f64> = after
        .series("authd_grpc_request_duration_seconds_bucket")
        .into_iter()
        .filter(|s| s.labels["method"] == "authd.v1.OAuth/Introspect")
        .map(|s| s.value)
        .collect();
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");

    let issued = |grant: &str| d("authd_tokens_issued_total", &[("grant_type", grant)]);
    assert_eq!(issued("client_credentials"), 1.0);
    assert_eq!(issued("authorization_code"), 0.0);
    assert_eq!(d("authd_tokens_revoked_total", &[]), 1.0);
    let failures = |reason: &str| d("authd_login_failures_total", &[("reason", reason)]);
    assert_eq!(failures("invalid_credentials"), 1.0);
    assert_eq!(failures("rate_limited"), 0.0);

    // Token cache: a miss then a hit for the issued token, a miss for the
    // unknown one (the revocation's lookup is the hit's twin: a second hit).
    let cache = |name: &str, which: &str| d(name, &[("cache", which)]);
    assert_eq!(cache("authd_cache_misses_total", "token"), 2.0);
    assert_eq!(cache("authd_cache_hits_total", "token"), 2.0);
    // Client authentication: the exchange reads the client from
    // PostgreSQL, every later call finds it in the cache.
    assert_eq!(cache("authd_cache_misses_total", "client"), 1.0);
    assert_eq!(cache("authd_cache_hits_total", "client"), 4.0);

    // The pool, read at scrape time: the tests' pool has 8 connections.
    assert_eq!(after.get("authd_db_pool_max", &[]), 8.0);
    let size = after.get("authd_db_pool_size", &[]);
    assert!((1.0..=8.0).contains(&size), "{size}");
    assert!(after.get("authd_db_pool_available", &[]) <= size);
    assert_eq!(after.get("authd_db_pool_waiting", &[]), 0.0);
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_never_by_raw_path() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let before = scrape(&app).await;

    let http = app.http();
    let instance = http.get(app.url("/api/v1/instance")).send().await.unwrap();
    assert_eq!(instance.status(), 200);
    let bad_grant = http
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "password-please")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_grant.status(), 400);
    let token: serde_json::Value = http
        .post(app.url("/oauth/token"))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token["access_token"].is_string(), "{token}");
    let revoke = http
        .delete(app.url("/api/v1/authorized_applications/12345"))
        .send()
        .await
        .unwrap();
    let revoke_status = revoke.status().as_u16().to_string();
    let unmatched = http
        .get(app.url("/no/such/path-with-a-secret-looking-suffix"))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), 404);

    let after = scrape(&app).await;
    let d = |route: &str, method: &str, status: &str| {
        delta(
            &before,
            &after,
            HTTP,
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(d("/api/v1/instance", "GET", "200"), 1.0);
    assert_eq!(d("/oauth/token", "POST", "400"), 1.0);
    assert_eq!(d("/oauth/token", "POST", "200"), 1.0);
    // The template, not the id in the path.
    assert_eq!(
        d(
            "/api/v1/authorized_applications/{id}",
            "DELETE",
            &revoke_status
        ),
        1.0
    );
    assert_eq!(d("unmatched", "GET", "404"), 1.0);
    for sample in after.series(HTTP) {
        assert!(
            !sample.labels["route"].contains("secret-looking")
                && !sample.labels["route"].contains("12345"),
            "a raw path became a label: {sample:?}"
        );
    }
    assert_eq!(
        delta(
            &before,
            &after,
            "authd_http_request_duration_seconds_count",
            &[("route", "/oauth/token"), ("method", "POST")]
        ),
        2.0
    );
    // The shim's calls reach the core, counted in the same registry.
    assert_eq!(
        delta(
            &before,
            &after,
            RPC,
            &[("method", "authd.v1.OAuth/ExchangeToken"), ("code", "Ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "authd_tokens_issued_total",
            &[("grant_type", "client_credentials")]
        ),
        1.0
    );
}

#[tokio::test]
async fn refused_logins_count_as_rate_limited() {
    let mut options = TestOptions::default();
    options.service.rate_limits = RateLimits {
        login_per_account: Some(Rate {
            limit: 1,
            period: Duration::from_secs(3600),
        }),
        ..RateLimits::off()
    };
    let app = spawn_app_with(options).await;
    let before = scrape(&app).await;
    for _ in 0..3 {
        let _ = app
            .sessions()
            .login(v1::LoginRequest {
                email: "nobody@example.org".into(),
                password: "wrong wrong wrong".into(),
            })
            .await
            .expect_err("no such account");
    }
    let after = scrape(&app).await;
    let failures = |reason: &str| {
        delta(
            &before,
            &after,
            "authd_login_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(failures("invalid_credentials"), 1.0);
    assert_eq!(failures("rate_limited"), 2.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "authd_rate_limited_total",
            &[("limit", "login_by_account")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            RPC,
            &[
                ("method", "authd.v1.Sessions/Login"),
                ("code", "ResourceExhausted")
            ]
        ),
        2.0
    );
}

#[tokio::test]
async fn with_a_metrics_address_metrics_leave_the_http_listener_for_their_own() {
    let app = spawn_app_with(TestOptions {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let addr = app.application().metrics_addr().expect("metrics listener");
    let on_http = app.http().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_http.status(), 404);
    app.register_app(&[OOB], "read").await;
    let metrics = scrape_url(&format!("http://{addr}/metrics")).await;
    assert_eq!(
        metrics.get(
            RPC,
            &[("method", "authd.v1.Apps/RegisterApp"), ("code", "Ok")]
        ),
        1.0
    );
    // The 404 on the public listener was counted, by the same registry.
    assert_eq!(
        metrics.get(
            HTTP,
            &[("route", "/metrics"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
}
