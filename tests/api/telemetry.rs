//! Logs and traces of the real `authd` binary: request ids in every log
//! line of a request, in the shim and in the core; no secret in any log
//! line, even at trace level; and OpenTelemetry spans exported to a
//! collector (a fake one here), the shim's and the core's in one trace.
//!
//! Each test runs `authd serve` as a process of its own, on the database of
//! an in-process authd (which creates it, migrates it, and creates the
//! account), and reads its standard error.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authd::proto::v1;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::helpers::*;

/// `authd serve` as a process, with its standard error kept line by line.
struct Process {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    grpc: String,
    http: String,
}

/// A libpq connection string for a test database.
fn conninfo(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => parts.push(format!("host={host}")),
        Some(Host::Unix(path)) => parts.push(format!("host={}", path.display())),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(password)));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(format!("dbname={dbname}"));
    }
    parts.join(" ")
}

impl Process {
    /// `authd serve` with the HTTP shim on a random port.
    async fn spawn(app: &TestApp, rust_log: &str, envs: &[(&str, &str)]) -> Process {
        Process::start(
            app,
            rust_log,
            envs,
            &["--http-addr", "127.0.0.1:0"],
            "http_addr",
        )
        .await
    }

    /// `authd serve` with these listener flags; `http` is then the address
    /// logged as `http_field` (the HTTP or the metrics listener's).
    async fn start(
        app: &TestApp,
        rust_log: &str,
        envs: &[(&str, &str)],
        listeners: &[&str],
        http_field: &str,
    ) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
            .env(
                "AUTHD_KEY_ENCRYPTION_KEY",
                app.key_encryption_key().to_base64(),
            )
            .args(["serve", "--grpc-addr", "127.0.0.1:0"])
            .args(listeners)
            .args([
                "--database-url",
                &conninfo(&app.db_config()),
                "--log-format",
                "json",
                "--purge-interval",
                "never",
                "--access-token-ttl",
                "1h",
            ])
            .env("RUST_LOG", rust_log)
            .env_remove("AUTHD_LOG_FORMAT")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_SERVICE_NAME")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authd");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut process = Process {
            child: Some(child),
            lines,
            grpc: String::new(),
            http: String::new(),
        };
        for _ in 0..600 {
            let (grpc, http) = {
                let lines = process.lines.lock().unwrap();
                let field = |name: &str| {
                    lines
                        .iter()
                        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                        .find_map(|l| l[name].as_str().map(str::to_owned))
                };
                (field("grpc_addr"), field(http_field))
            };
            if let (Some(grpc), Some(http)) = (grpc, http) {
                process.grpc = grpc;
                process.http = http;
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("authd did not start:\n{}", process.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect to authd")
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The log lines, parsed (every line must be JSON).
    fn json_lines(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    }

    /// SIGTERM, waits for a clean exit, and returns the whole log.
    async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            status.success(),
            "authd exited with {status}:\n{}",
            self.log()
        );
        // The reader thread drains what is left.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.log()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The request ids of the spans a JSON log line was emitted in, with the
/// spans' names.
fn span_ids(line: &Value) -> Vec<(String, String)> {
    line["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| {
                    Some((
                        s["name"].as_str()?.to_owned(),
                        s["request_id"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn target(line: &Value) -> &str {
    line["target"].as_str().unwrap_or_default()
}

/// Logs in through the form and approves `client` for `read`, as a
/// browser does; returns the code from the out-of-band page.
async fn browser_code(authd: &Process, client: &TestClient, request_id: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let get = |path: String| {
        browser
            .get(authd.url(&path))
            .header("x-request-id", request_id)
            .send()
    };
    let page = get("/auth/sign_in".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token").expect("csrf token");
    let query = authorize_query(client, OOB, "read", "s1");
    let next = format!("/oauth/authorize?{query}");
    let email = email("alice");
    let login = browser
        .post(authd.url("/auth/sign_in"))
        .header("x-request-id", request_id)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_redirection(), "login: {}", login.status());
    let consent = get(next).await.unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    let mut form: Vec<(String, String)> = [
        "csrf_token",
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "prompt",
    ]
    .iter()
    .filter_map(|name| hidden(&page, name).map(|v| (name.to_string(), v)))
    .collect();
    form.push(("decision".into(), "allow".into()));
    let approved = browser
        .post(authd.url("/oauth/authorize"))
        .header("x-request-id", request_id)
        .form(&form)
        .send()
        .await
        .unwrap();
    // Out of band: a redirect to the page that shows the code.
    let shown = approved
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a redirect to the out-of-band page")
        .to_owned();
    let page = get(shown).await.unwrap().text().await.unwrap();
    oob_code(&page).expect("code on the page")
}

/// Registers an app over HTTP with this request id, which must come back.
async fn http_register(authd: &Process, request_id: &str) -> TestClient {
    let response = reqwest::Client::new()
        .post(authd.url("/api/v1/apps"))
        .header("x-request-id", request_id)
        .json(&serde_json::json!({
            "client_name": "logs",
            "redirect_uris": OOB,
            "scopes": "read",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(echoed, request_id, "the id is echoed");
    TestClient {
        client_id: body["client_id"].as_str().unwrap().into(),
        client_secret: body["client_secret"].as_str().unwrap().into(),
        app_id: body["id"].as_str().unwrap().into(),
    }
}

async fn token(authd: &Process, client: &TestClient, form: &[(&str, &str)], id: &str) -> Value {
    let response = reqwest::Client::new()
        .post(authd.url("/oauth/token"))
        .header("x-request-id", id)
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post_token_endpoint(
    authd: &Process,
    path: &str,
    client: &TestClient,
    token: &str,
) -> Value {
    let response = reqwest::Client::new()
        .post(authd.url(path))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id_in_the_shim_and_the_core() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    let authd = Process::spawn(&app, "debug", &[]).await;
    let started = authd.lines.lock().unwrap().len();

    let register = "req-register-1";
    let client = http_register(&authd, register).await;
    // The login form: argon2 runs on threads of its own.
    let login = "req-login-2";
    let code = browser_code(&authd, &client, login).await;
    let exchange = "req-exchange-3";
    token(
        &authd,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", OOB),
        ],
        exchange,
    )
    .await;
    // client_credentials tokens are written by a group-commit task.
    let issue = "req-issue-4";
    token(
        &authd,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "read")],
        issue,
    )
    .await;
    // A gRPC caller's own id is honoured (see the log lines below).
    let grpc_id = "grpc-caller-5";
    let mut request = tonic::Request::new(v1::IntrospectRequest {
        token: authd::domain::secret::random_token(),
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", grpc_id.parse().unwrap());
    let mut oauth = v1::o_auth_client::OAuthClient::new(authd.channel().await);
    oauth.introspect(request).await.expect("introspect");
    // One a client could use to forge log lines is replaced, and the new
    // one returned.
    let mut request = tonic::Request::new(v1::GetJwksRequest {});
    request
        .metadata_mut()
        .insert("x-request-id", "a\"}{\"level\":\"ERROR".parse().unwrap());
    let answer = oauth.get_jwks(request).await.expect("jwks");
    let replaced = answer
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(replaced.len(), 16, "{replaced}");
    let long = "x".repeat(500);
    let response = reqwest::Client::new()
        .get(authd.url("/api/v1/instance"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    let replaced = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(replaced.len(), 16, "{replaced}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = authd.json_lines().split_off(started);
    let expectations: [(&str, &[&str]); 5] = [
        (register, &["http", "rpc"]),
        (login, &["http", "rpc"]),
        (exchange, &["http", "rpc"]),
        (issue, &["http", "rpc"]),
        (grpc_id, &["rpc"]),
    ];
    for (id, spans) in expectations {
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| span_ids(l).iter().any(|(_, rid)| rid == id))
            .collect();
        for span in spans {
            assert!(
                of_request.iter().any(|l| span_ids(l)
                    .iter()
                    .any(|(name, rid)| name == span && rid == id)),
                "no line of {id} in a {span} span:\n{}",
                authd.log()
            );
        }
        // A line never mixes two requests' ids.
        for line in &of_request {
            assert!(span_ids(line).iter().all(|(_, rid)| rid == id), "{line}");
        }
    }
    let of = |id: &str, target_prefix: &str, message: &str| {
        lines.iter().any(|l| {
            span_ids(l).iter().any(|(_, rid)| rid == id)
                && target(l).starts_with(target_prefix)
                && l["message"].as_str().unwrap_or_default().contains(message)
        })
    };
    // Core work in the service layer, and the database driver's own lines
    // (run on the request's task, or on the group-commit task for it).
    assert!(
        of(register, "authd::service::apps", "registered app"),
        "{}",
        authd.log()
    );
    assert!(
        of(login, "authd::service::sessions", "logged in"),
        "{}",
        authd.log()
    );
    assert!(of(
        exchange,
        "authd::service::token",
        "redeemed authorization code"
    ));
    assert!(of(issue, "tokio_postgres", ""), "{}", authd.log());
    // Every line authd itself logs while serving is inside a request; the
    // exceptions are background tasks and connections (which outlive and
    // serve many requests).
    let background = ["invalidation listener", "purge", "HTTP connection"];
    for line in &lines {
        if target(line).starts_with("authd")
            && !background
                .iter()
                .any(|b| line["message"].as_str().unwrap_or_default().contains(b))
        {
            assert!(
                !span_ids(line).is_empty(),
                "a line without a request id: {line}"
            );
        }
    }
    authd.stop().await;
}

#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    let authd = Process::spawn(&app, "trace", &[]).await;

    let client = http_register(&authd, "secrets-1").await;
    let code = browser_code(&authd, &client, "secrets-2").await;
    let first = token(
        &authd,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", OOB),
        ],
        "secrets-3",
    )
    .await;
    let refresh_token = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let second = token(
        &authd,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ],
        "secrets-4",
    )
    .await;
    let access = second["access_token"].as_str().unwrap().to_owned();
    let introspected = post_token_endpoint(&authd, "/oauth/introspect", &client, &access).await;
    assert_eq!(introspected["active"], true);
    post_token_endpoint(&authd, "/oauth/revoke", &client, &access).await;
    // And over gRPC, a login with the password in the message.
    let mut sessions = v1::sessions_client::SessionsClient::new(authd.channel().await);
    let session = sessions
        .login(v1::LoginRequest {
            email: email("alice"),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .session;
    let log = authd.stop().await;

    assert!(log.lines().count() > 100, "trace logging is on:\n{log}");
    let secrets = [
        ("password", PASSWORD.to_owned()),
        ("client_secret", client.client_secret.clone()),
        ("code", code),
        (
            "access token",
            first["access_token"].as_str().unwrap().to_owned(),
        ),
        ("refresh token", refresh_token),
        ("rotated access token", access),
        (
            "rotated refresh token",
            second["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("session", session),
    ];
    for (what, secret) in secrets {
        assert!(secret.len() >= 20, "{what}: {secret}");
        if let Some(line) = log.lines().find(|l| l.contains(&secret)) {
            panic!("the {what} is in the log: {line}");
        }
    }
}

#[tokio::test]
async fn with_http_off_metrics_are_served_on_their_own_listener() {
    let app = spawn_app().await;
    let authd = Process::start(
        &app,
        "info",
        &[],
        &["--http-addr", "off", "--metrics-addr", "127.0.0.1:0"],
        "metrics_addr",
    )
    .await;
    let mut sessions = v1::sessions_client::SessionsClient::new(authd.channel().await);
    let _ = sessions
        .login(v1::LoginRequest {
            email: email("nobody"),
            password: "not a password".into(),
        })
        .await
        .expect_err("no such account");
    let response = reqwest::get(authd.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let metrics = crate::metrics::Exposition::parse(&response.text().await.unwrap());
    assert_eq!(
        metrics.get(
            "authd_login_failures_total",
            &[("reason", "invalid_credentials")]
        ),
        1.0
    );
    assert!(metrics.series("authd_http_requests_total").is_empty());
    authd.stop().await;
}

// ---- OpenTelemetry ----

/// A span as the fake collector received it.
#[derive(Clone, Debug)]
struct ExportedSpan {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// An OTLP/HTTP collector on loopback that keeps every span it is sent.
async fn fake_collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<ExportedSpan>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;

    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut store = store.lock().unwrap();
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                            Any::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                        store.push(ExportedSpan {
                            service: service.clone(),
                            name: span.name,
                            trace_id: span.trace_id,
                            span_id: span.span_id,
                            parent_span_id: span.parent_span_id,
                        });
                    }
                }
                (
                    [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn spans_of_the_shim_and_the_core_are_exported_as_one_trace() {
    let (collector, received) = fake_collector().await;
    let app = spawn_app().await;
    let endpoint = format!("http://{collector}");
    let authd = Process::spawn(
        &app,
        "info",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "authd-under-test"),
        ],
    )
    .await;
    // A caller that is itself traced: its context is the parent.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let registered = reqwest::Client::new()
        .post(authd.url("/api/v1/apps"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&serde_json::json!({"client_name": "traced", "redirect_uris": OOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    // A caller that is not: the trace starts at the shim.
    let jwks = reqwest::get(authd.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    // Spans are exported in batches; shutting down flushes them.
    authd.stop().await;

    let spans = received.lock().unwrap().clone();
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
            .clone()
    };
    let shim = named("POST /api/v1/apps");
    let core = named("authd.v1.Apps/RegisterApp");
    assert_eq!(shim.service, "authd-under-test");
    assert_eq!(shim.trace_id, hex(trace_id));
    assert_eq!(shim.parent_span_id, hex(caller_span));
    assert_eq!(core.trace_id, shim.trace_id, "one trace");
    // The core's span hangs under the shim's (its span or one inside it).
    let in_trace: Vec<&Vec<u8>> = spans
        .iter()
        .filter(|s| s.trace_id == shim.trace_id)
        .map(|s| &s.span_id)
        .collect();
    assert!(in_trace.contains(&&core.parent_span_id), "{spans:#?}");

    let shim = named("GET /.well-known/jwks.json");
    let core = named("authd.v1.OAuth/GetJwks");
    assert_eq!(core.trace_id, shim.trace_id);
    assert_ne!(shim.trace_id, hex(trace_id));
    assert!(shim.parent_span_id.is_empty() || shim.parent_span_id == vec![0; 8]);
}

// ---- the issuer ----

#[tokio::test]
async fn without_issuer_the_public_url_is_the_http_listeners_address() {
    let app = spawn_app().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let authd = Process::start(&app, "info", &[], &["--http-addr", &addr], "http_addr").await;
    let meta: Value = reqwest::get(authd.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], format!("http://{addr}"));
    assert_eq!(meta["token_endpoint"], format!("http://{addr}/oauth/token"));
    let instance: Value = reqwest::get(authd.url("/api/v1/instance"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(instance["uri"], addr);
    let log = authd.stop().await;
    let issuer_warning = |l: &&str| l.contains("\"WARN\"") && l.contains("issuer");
    assert!(!log.lines().any(|l| issuer_warning(&l)), "{log}");
}

#[tokio::test]
async fn an_issuer_that_cannot_be_the_listener_is_warned_about_without_a_trusted_proxy() {
    let app = spawn_app().await;
    let authd = Process::start(
        &app,
        "info",
        &[],
        &[
            "--http-addr",
            "127.0.0.1:0",
            "--issuer",
            "https://auth.example.org",
            "--trusted-proxies",
            "none",
        ],
        "http_addr",
    )
    .await;
    let log = authd.stop().await;
    let warning = log
        .lines()
        .find(|l| l.contains("\"WARN\"") && l.contains("https://auth.example.org"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("speaks http"), "{warning}");
    assert!(warning.contains("--trusted-proxies"), "{warning}");
}

#[tokio::test]
async fn an_https_issuer_behind_a_trusted_proxy_is_not_warned_about() {
    let app = spawn_app().await;
    let authd = Process::start(
        &app,
        "info",
        &[],
        &[
            "--http-addr",
            "127.0.0.1:0",
            "--issuer",
            "https://auth.example.org",
        ],
        "http_addr",
    )
    .await;
    let log = authd.stop().await;
    let issuer_warning = |l: &&str| l.contains("\"WARN\"") && l.contains("issuer");
    assert!(!log.lines().any(|l| issuer_warning(&l)), "{log}");
}

// ---- one line per request at the default level ----

/// The lines of `lines` logged in a span of request `id`, or naming it.
fn lines_of<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| span_ids(l).iter().any(|(_, rid)| rid == id))
        .collect()
}

#[tokio::test]
async fn at_the_default_level_each_request_logs_one_line_and_shutdown_writes_out_the_queue() {
    let app = spawn_app().await;
    let authd = Process::spawn(&app, "info", &[]).await;
    let client = http_register(&authd, "req-one-line-register").await;
    let issued = token(
        &authd,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "read")],
        "req-one-line-token",
    )
    .await;
    let access_token = issued["access_token"].as_str().unwrap().to_owned();
    // Over HTTP: the shim's line, not also the in-process RPC's.
    let response = reqwest::Client::new()
        .post(authd.url("/oauth/introspect"))
        .header("x-request-id", "req-one-line-http")
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[("token", access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Over gRPC: the RPC's line.
    let mut request = tonic::Request::new(v1::IntrospectRequest {
        token: access_token.clone(),
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-one-line-grpc".parse().unwrap());
    let mut oauth = v1::o_auth_client::OAuthClient::new(authd.channel().await);
    assert!(
        oauth
            .introspect(request)
            .await
            .unwrap()
            .into_inner()
            .is_active()
    );
    // The last request just before SIGTERM: its line is in the queue when
    // the signal comes, and must still be written.
    let response = reqwest::Client::new()
        .get(authd.url("/api/v1/instance"))
        .header("x-request-id", "req-one-line-last")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = authd.stop().await;
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();

    let http = lines_of(&lines, "req-one-line-http");
    assert_eq!(http.len(), 1, "one line for the HTTP request:\n{http:#?}");
    assert_eq!(http[0]["message"], "request");
    assert_eq!(http[0]["level"], "INFO");
    assert_eq!(http[0]["status"], 200);
    assert!(http[0]["latency_us"].as_u64().is_some(), "{}", http[0]);
    let grpc = lines_of(&lines, "req-one-line-grpc");
    assert_eq!(grpc.len(), 1, "one line for the RPC:\n{grpc:#?}");
    assert_eq!(grpc[0]["message"], "rpc");
    assert_eq!(lines_of(&lines, "req-one-line-last").len(), 1, "{log}");
}
