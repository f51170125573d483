//! authd in front of a backend: the same policy at every door. Real nginx
//! (auth_request) and Caddy (forward_auth), started here on loopback, ask
//! /authd/check; the reverse proxy (`--upstream-api`) forwards itself. A
//! small backend served by the test records every request that reaches it,
//! so each case asserts what the backend saw, not only what the client got.
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// One request as the backend received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The backend: answers 200 "backend" to anything and records it; a
/// WebSocket upgrade is accepted and its bytes echoed; /api/v9/slow takes
/// longer than any test's timeout.
#[derive(Clone)]
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    async fn start() -> Backend {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let recorded = seen.clone();
        let app = axum::Router::new().fallback(move |mut request: Request| {
            let recorded = recorded.clone();
            async move {
                let upgrade = request
                    .headers()
                    .get("upgrade")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
                let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
                let (parts, body) = request.into_parts();
                let body: Bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                recorded.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    target: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| {
                            (
                                n.as_str().to_owned(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: body.to_vec(),
                });
                if let Some(on_upgrade) = on_upgrade {
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on_upgrade.await {
                            let mut io = hyper_util::rt::TokioIo::new(upgraded);
                            let mut buf = [0u8; 64];
                            while let Ok(n) = io.read(&mut buf).await {
                                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    });
                    return Response::builder()
                        .status(101)
                        .header("upgrade", "websocket")
                        .header("connection", "Upgrade")
                        .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                        .body(axum::body::Body::empty())
                        .unwrap();
                }
                if parts.uri.path() == "/api/v9/slow" {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                ([("x-backend", "yes")], "backend").into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Backend { addr, seen }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the backend saw a request")
    }
}

/// A gateway process, killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "authd-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for `port` to accept connections (the gateway is up), or fails
/// with what it logged.
async fn wait_for(port: u16, child: &mut Child, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the gateway exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the gateway did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn nginx_binary() -> &'static str {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx is installed (Debian's nginx-light; .ci/run installs it)")
}

/// nginx with auth_request in front of the backend, as the README shows.
async fn start_nginx(authd: SocketAddr, backend: SocketAddr) -> Gateway {
    let dir = TempDir::new("nginx");
    let port = free_port();
    let d = dir.0.display();
    let server = crate::readme::nginx_server_block()
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace("127.0.0.1:8080", &authd.to_string())
        .replace("127.0.0.1:3000", &backend.to_string());
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let log = dir.0.join("error.log");
    let mut child = Command::new(nginx_binary())
        .args(["-e", &log.display().to_string(), "-p"])
        .arg(&dir.0)
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    wait_for(port, &mut child, &log).await;
    Gateway {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Caddy with forward_auth in front of the backend, as the README shows.
async fn start_caddy(authd: SocketAddr, backend: SocketAddr) -> Gateway {
    let dir = TempDir::new("caddy");
    let port = free_port();
    let site = crate::readme::caddy_site_block()
        .replace("example.org", &format!("http://127.0.0.1:{port}"))
        .replace("127.0.0.1:8080", &authd.to_string())
        .replace("127.0.0.1:3000", &backend.to_string());
    let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}\n");
    let path = dir.0.join("Caddyfile");
    std::fs::write(&path, conf).unwrap();
    let log = dir.0.join("caddy.log");
    let mut child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", &dir.0)
        .env("XDG_DATA_HOME", &dir.0)
        .env("XDG_CONFIG_HOME", &dir.0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy is installed (Debian's caddy; .ci/run installs it)");
    wait_for(port, &mut child, &log).await;
    Gateway {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// A user with a `read` token, and the app it was issued to.
struct Caller {
    user: TestUser,
    client: TestClient,
    token: String,
}

async fn caller(app: &TestApp, username: &str) -> Caller {
    let user = app.create_user(username, false).await;
    let client = app.register_app(&[OOB], "read write").await;
    let token = app.user_token(&user, &client, "read").await.access_token;
    Caller {
        user,
        client,
        token,
    }
}

/// A raw HTTP/1.1 request, so that paths reach the door exactly as
/// written (no client normalizes them): the status line's code.
async fn raw_status(base: &str, method: &str, target: &str, token: Option<&str>) -> u16 {
    let authority = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// The cases every door must pass alike, through the door at `front`.
async fn the_door_holds(front: &str, app: &TestApp, backend: &Backend, door: &str) {
    let http = reqwest::Client::new();
    let alice = caller(app, &format!("alice{door}")).await;

    // A read token reaches the backend with the identity, and a forged
    // identity header never does.
    let response = http
        .get(format!("{front}/api/v1/timelines/home?limit=5"))
        .bearer_auth(&alice.token)
        .header("X-Authd-Username", "root")
        .header("X-Authd-Account-Id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{door}");
    assert_eq!(response.text().await.unwrap(), "backend");
    let seen = backend.last();
    assert_eq!(seen.method, "GET");
    assert!(
        seen.target.ends_with("/api/v1/timelines/home?limit=5"),
        "{door}: {seen:?}"
    );
    assert_eq!(
        seen.all("x-authd-account-id"),
        [alice.user.id.as_str()],
        "{door}"
    );
    assert_eq!(
        seen.all("x-authd-username"),
        [format!("alice{door}")],
        "{door}"
    );
    assert_eq!(
        seen.all("x-authd-client-id"),
        [alice.client.client_id.as_str()],
        "{door}"
    );
    assert_eq!(seen.all("x-authd-scopes"), ["read"], "{door}");

    // The same token may not post a status: 403 insufficient_scope, with
    // the scope needed, and the backend sees nothing.
    let before = backend.count();
    let response = http
        .post(format!("{front}/api/v1/statuses"))
        .bearer_auth(&alice.token)
        .form(&[("status", "hello")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "{door}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{door}: {challenge}"
    );
    assert!(
        challenge.contains("scope=\"write:statuses\""),
        "{door}: {challenge}"
    );
    assert_eq!(
        backend.count(),
        before,
        "{door}: a refused request reached the backend"
    );

    // A client naming another request in the gateways' own headers (the
    // pair its gateway does not set, or both) gets no decision for it.
    for forged in [
        &[
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/api/v1/timelines/home"),
        ][..],
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/api/v1/timelines/home"),
        ][..],
        &[
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/api/v1/timelines/home"),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/api/v1/timelines/home"),
        ][..],
    ] {
        let mut request = http
            .post(format!("{front}/api/v1/statuses"))
            .bearer_auth(&alice.token)
            .form(&[("status", "hello")]);
        for (name, value) in forged {
            request = request.header(*name, *value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert!(
            [400, 403, 500].contains(&status),
            "{door}: {forged:?} answered {status}"
        );
        assert_eq!(
            backend.count(),
            before,
            "{door}: {forged:?} reached the backend"
        );
    }

    // No token: 401 with a Bearer challenge (no error code: RFC 6750 3.1).
    let response = http
        .get(format!("{front}/api/v1/timelines/home"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{door}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm="),
        "{door}: {challenge}"
    );
    assert!(!challenge.contains("error="), "{door}: {challenge}");

    // A token authd never issued: 401 invalid_token.
    let response = http
        .get(format!("{front}/api/v1/timelines/home"))
        .bearer_auth("A".repeat(43))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{door}");
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""),
        "{door}"
    );
    assert_eq!(backend.count(), before, "{door}");

    // Path tricks get no decision meant for another route: refused (a
    // gateway may turn authd's 400 into its own 500), never passed on.
    for target in [
        "/api/v1/statuses/../timelines/home",
        "/api/v1/statuses/%2e%2e/timelines/home",
        "/api/v1/timelines%2Fhome",
        "/api/v1//timelines/home",
        "/api/v1/timelines/home;x=1",
        "/API/v1/timelines/home",
        "/api/v1/Timelines/home",
    ] {
        let status = raw_status(front, "GET", target, Some(&alice.token)).await;
        assert!(
            [400, 403, 404, 500].contains(&status),
            "{door}: {target} answered {status}"
        );
    }
    assert_eq!(
        backend.count(),
        before,
        "{door}: a path trick reached the backend"
    );
    // A trailing slash is the same route (Mastodon ignores it): the same
    // decision, and the backend gets it as sent.
    assert_eq!(
        raw_status(front, "GET", "/api/v1/timelines/home/", Some(&alice.token)).await,
        200,
        "{door}"
    );
    assert!(backend.last().target.ends_with("/api/v1/timelines/home/"));
    assert_eq!(
        raw_status(front, "POST", "/api/v1/statuses/", Some(&alice.token)).await,
        403,
        "{door}"
    );

    // Revoked: refused within a second.
    app.revoke(&alice.client, &alice.token).await.unwrap();
    let revoked_at = Instant::now();
    loop {
        let status = http
            .get(format!("{front}/api/v1/timelines/home"))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "{door}: a revoked token still passed after a second"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn nginx_auth_request_holds_the_door() {
    let app = spawn_app().await;
    let backend = Backend::start().await;
    let authd = app.application().http_addr().unwrap();
    let nginx = start_nginx(authd, backend.addr).await;
    the_door_holds(&nginx.url, &app, &backend, "nginx").await;
}

#[tokio::test]
async fn caddy_forward_auth_holds_the_door() {
    let app = spawn_app().await;
    let backend = Backend::start().await;
    let authd = app.application().http_addr().unwrap();
    let caddy = start_caddy(authd, backend.addr).await;
    the_door_holds(&caddy.url, &app, &backend, "caddy").await;
}

/// `--upstream-api` for `backend`, with a 1 MiB body limit and a short
/// timeout.
fn upstream(backend: SocketAddr, pass_token: bool) -> authd::http::door::UpstreamApi {
    authd::http::door::UpstreamApi {
        base: format!("http://{backend}").parse().unwrap(),
        pass_token,
        body_limit: 1024 * 1024,
        timeout: Duration::from_millis(800),
    }
}

/// authd with `--upstream-api` in front of `backend`, with a route of its
/// own for the slow endpoint, and a short timeout.
async fn spawn_proxy(backend: SocketAddr, pass_token: bool) -> TestApp {
    let mut service = authd::service::ServiceConfig::new("http://authd.test");
    service.policy = Arc::new(
        authd::domain::policy::Policy::from_toml(
            "[[route]]\nmethod = \"GET\"\npath = \"/api/v9/slow\"\ntoken = \"none\"\n",
        )
        .unwrap(),
    );
    let options = TestOptions {
        service,
        upstream_api: Some(upstream(backend, pass_token)),
        ..TestOptions::default()
    };
    spawn_app_with(options).await
}

#[tokio::test]
async fn the_reverse_proxy_holds_the_door() {
    let backend = Backend::start().await;
    let app = spawn_proxy(backend.addr, false).await;
    let front = app.url("");
    the_door_holds(&front, &app, &backend, "proxy").await;
}

#[tokio::test]
async fn the_reverse_proxy_passes_the_request_as_sent_minus_the_token_plus_identity() {
    let backend = Backend::start().await;
    let app = spawn_proxy(backend.addr, false).await;
    let bob = caller(&app, "bob").await;
    let write = app
        .user_token(&bob.user, &bob.client, "write:statuses")
        .await
        .access_token;
    let body = "status=hello%20world&visibility=public".repeat(200);
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/statuses?x=1&access_token=") + &write)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", "k-1")
        .header("x-authd-scopes", "admin:write")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The backend's answer comes back as it sent it: none of authd's own
    // defaults (no-store, CSP) are added.
    assert_eq!(response.headers()["x-backend"], "yes");
    assert!(response.headers().get("content-security-policy").is_none());
    let seen = backend.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target, "/api/v1/statuses?x=1",
        "the token's parameter is dropped"
    );
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.header("idempotency-key"), Some("k-1"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.all("x-authd-scopes"), ["write:statuses"]);
    assert_eq!(
        seen.header("x-authd-account-id"),
        Some(bob.user.id.as_str())
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));

    // authd's own routes stay authd's.
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/accounts/verify_credentials"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let account: serde_json::Value = response.json().await.unwrap();
    assert_eq!(account["username"], "bob");
    assert_ne!(backend.last().target, "/api/v1/accounts/verify_credentials");

    // A public route needs no token and carries no identity.
    let response = reqwest::get(app.url("/api/v1/custom_emojis"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backend.last().target, "/api/v1/custom_emojis");
    assert_eq!(backend.last().header("x-authd-account-id"), None);

    // A body over the limit: 413, and the backend never answers it.
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/statuses"))
        .bearer_auth(&write)
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // The same, streamed without a length: cut off at the limit.
    let before = backend.count();
    let chunks =
        futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 64 * 1024])));
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/statuses"))
        .bearer_auth(&write)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "The request body is too large");
    assert!(
        backend.count() <= before + 1,
        "the backend saw the request at most once, cut short"
    );
}

#[tokio::test]
async fn the_reverse_proxy_passes_the_token_only_when_told_to() {
    let backend = Backend::start().await;
    let app = spawn_proxy(backend.addr, true).await;
    let carol = caller(&app, "carol").await;
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/timelines/home"))
        .bearer_auth(&carol.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        backend.last().header("authorization"),
        Some(format!("Bearer {}", carol.token).as_str())
    );
}

#[tokio::test]
async fn a_websocket_upgrade_is_checked_then_passed_through() {
    let backend = Backend::start().await;
    let app = spawn_proxy(backend.addr, false).await;
    let dave = caller(&app, "dave").await;
    let authority = app.application().http_addr().unwrap();
    let handshake = |auth: String| {
        format!(
            "GET /api/v1/streaming?stream=user HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n{auth}\r\n"
        )
    };
    async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
                .await
                .expect("an answer")
                .unwrap();
            assert!(
                n > 0,
                "closed before the head: {}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    // Without a token, the upgrade is refused at the door.
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream
        .write_all(handshake(String::new()).as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let before = backend.count();

    // With one, the connection is the backend's, both ways.
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let auth = format!("Authorization: Bearer {}\r\n", dave.token);
    stream.write_all(handshake(auth).as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    assert_eq!(backend.count(), before + 1);
    assert_eq!(
        backend.last().header("x-authd-account-id"),
        Some(dave.user.id.as_str())
    );
    assert_eq!(backend.last().header("authorization"), None);
    stream.write_all(b"ping over the socket").await.unwrap();
    let mut echoed = [0u8; 20];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
        .await
        .expect("the backend echoes")
        .unwrap();
    assert_eq!(&echoed, b"ping over the socket");
}

#[tokio::test]
async fn a_backend_that_is_down_or_slow_is_a_502_or_504_never_a_hang() {
    // Slow: 504 within the timeout, with a JSON body.
    let backend = Backend::start().await;
    let app = spawn_proxy(backend.addr, false).await;
    let started = Instant::now();
    let response = reqwest::get(app.url("/api/v9/slow")).await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(4));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "The backend did not answer in time");

    // Down: 502 at once.
    let port = free_port();
    let app = spawn_proxy(format!("127.0.0.1:{port}").parse().unwrap(), false).await;
    let response = reqwest::get(app.url("/api/v1/custom_emojis"))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "The backend cannot be reached");
}

#[tokio::test]
async fn without_an_upstream_unknown_routes_are_not_found_and_forward_auth_needs_the_original_request()
 {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/api/v1/timelines/home"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = reqwest::get(app.url("/authd/check")).await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("X-Original-URI"));
}

#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_at_another_replicas_door_within_a_second() {
    let backend = Backend::start().await;
    let primary = spawn_proxy(backend.addr, false).await;
    let options = TestOptions {
        upstream_api: Some(upstream(backend.addr, false)),
        ..TestOptions::default()
    };
    let replica = primary.spawn_replica(options).await;
    let kim = caller(&primary, "kim").await;
    let through_replica = || async {
        reqwest::Client::new()
            .get(replica.url("/api/v1/timelines/home"))
            .bearer_auth(&kim.token)
            .send()
            .await
            .unwrap()
            .status()
    };
    // Cached on the replica first.
    assert_eq!(through_replica().await, 200);
    assert_eq!(through_replica().await, 200);
    primary.revoke(&kim.client, &kim.token).await.unwrap();
    let revoked_at = Instant::now();
    while through_replica().await != 401 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the replica's door still let a revoked token through after a second"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
