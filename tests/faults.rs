//! Fault tests: authd as real processes (the built binary) over a private
//! PostgreSQL of each test's own, which a test may stop, crash and start
//! again. They prove three things the hardening issue asks for:
//!
//! - a PostgreSQL outage under load: fast UNAVAILABLE / 503 answers, health
//!   NOT_SERVING, recovery without a restart, and no token lost;
//! - several replicas on one database: revocations reach every replica's
//!   (warm) introspection cache within a second, and a code authorized on
//!   one replica is redeemed on another;
//! - a graceful shutdown under load completes every request already in
//!   flight, gRPC and HTTP, and exits 0.
//!
//! Loopback only. Each test is bounded by an overall timeout. The load and
//! outage last `AUTHD_FAULT_LOAD_SECS` seconds each (default 2); the
//! longer run is `scripts/faults.sh`.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authd::embedded_postgres::{EmbeddedPostgres, EmbeddedPostgresOptions};
use authd::proto::v1;
use authd::proto::v1::o_auth_client::OAuthClient;
use authd::proto::v1::sessions_client::SessionsClient;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod common;
use common::{
    OOB, PASSWORD, TestClient, client_credentials, hidden, is_active, login, register_app, revoke,
};

/// The key every authd of these tests seals its signing keys with (the
/// replicas of one database must share one), instead of a file beside the
/// machine's default data directory.
const KEY_ENCRYPTION_KEY: &str = "dGVzdHMgb2YgYXV0aGQ6IG5vdCBhIHJlYWwga2V5ISE=";

/// The outage test's `--db-timeout`: the wait for a connection, and the
/// statement timeout.
const DB_TIMEOUT: Duration = Duration::from_secs(1);
/// The outage test's `--request-timeout`: every request that fails for
/// want of PostgreSQL, gone or hung, must fail within it, plus `MARGIN`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded two-core machine, on top of a timeout.
const MARGIN: Duration = Duration::from_secs(2);
/// No single request in these tests may take longer; past it, it counts as
/// a hang.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// How long each phase of load (and the outage) lasts.
fn load_duration() -> Duration {
    std::env::var("AUTHD_FAULT_LOAD_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(2))
}

/// The whole test, start-up included, must end within this.
fn test_timeout() -> Duration {
    Duration::from_secs(120) + load_duration() * 8
}

async fn bounded<F: Future>(test: F) -> F::Output {
    match tokio::time::timeout(test_timeout(), test).await {
        Ok(output) => output,
        Err(_) => panic!("test timed out after {:?}", test_timeout()),
    }
}

// ---- a private PostgreSQL that can be stopped, crashed and restarted ----

struct Cluster {
    pg: Option<EmbeddedPostgres>,
    options: EmbeddedPostgresOptions,
    url: String,
    socket_dir: PathBuf,
}

impl Cluster {
    /// A durable cluster (fsync and synchronous commit on, as in
    /// production), with a database "authd". Its path is short, so that its
    /// socket lives in the data directory and keeps its path across
    /// restarts.
    async fn start(tag: &str) -> Cluster {
        let data_dir = std::env::temp_dir().join(format!(
            "authd-faults-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let options = EmbeddedPostgresOptions {
            data_dir,
            durable: true,
            run_as: None,
            // Only names the Unix socket, in the data directory.
            port: 55_437,
            max_connections: 120,
        };
        let pg = EmbeddedPostgres::start(options.clone())
            .await
            .expect("start a private PostgreSQL");
        pg.ensure_database("authd").await.expect("create database");
        let socket_dir = pg.socket_dir().to_owned();
        let url = format!(
            "host={} port={} user={} dbname=authd",
            socket_dir.display(),
            options.port,
            pg.superuser()
        );
        Cluster {
            pg: Some(pg),
            options,
            url,
            socket_dir,
        }
    }

    /// A fast shutdown: sessions are ended, as when an operator stops it.
    async fn stop(&mut self) {
        self.pg
            .take()
            .expect("running")
            .stop()
            .await
            .expect("stop PostgreSQL");
    }

    /// An immediate shutdown (SIGQUIT to the postmaster): no checkpoint,
    /// the next start runs crash recovery, as after a power cut.
    async fn crash(&mut self) {
        let pg = self.pg.take().expect("running");
        kill(postmaster_pid(pg.data_dir()), Signal::SIGQUIT).expect("SIGQUIT postgres");
        // Reaps it (it has exited, or soon will).
        let _ = pg.stop().await;
    }

    /// Every PostgreSQL process stopped (SIGSTOP) where it stands: sockets
    /// stay open and nothing answers, as when the server's host hangs or
    /// the network drops packets. `thaw` resumes them.
    fn freeze(&self) -> Vec<Pid> {
        let pg = self.pg.as_ref().expect("running");
        let postmaster = postmaster_pid(pg.data_dir());
        // Backends are the postmaster's children, each in a session of its
        // own, so a process group signal would miss them.
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(postmaster.as_raw()) {
                pids.push(Pid::from_raw(pid));
            }
        }
        for pid in &pids {
            kill(*pid, Signal::SIGSTOP).expect("SIGSTOP postgres");
        }
        pids
    }

    fn thaw(pids: &[Pid]) {
        for pid in pids {
            let _ = kill(*pid, Signal::SIGCONT);
        }
    }

    async fn start_again(&mut self) {
        assert!(self.pg.is_none(), "already running");
        let pg = EmbeddedPostgres::start(self.options.clone())
            .await
            .expect("restart PostgreSQL");
        assert_eq!(pg.socket_dir(), self.socket_dir, "same socket path");
        self.pg = Some(pg);
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = self
            .pg
            .as_ref()
            .expect("running")
            .connect_config("authd")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        client
    }

    /// `authd account create`, as an operator runs it.
    fn create_account(&self, username: &str) -> String {
        use std::io::Write;
        let email = format!("{username}@example.org");
        let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
            .env("AUTHD_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)
            .args([
                "account",
                "create",
                "--username",
                username,
                "--email",
                &email,
                "--database-url",
                &self.url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authd account create");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("write the password");
        let out = child.wait_with_output().expect("authd account create");
        assert!(
            out.status.success(),
            "account create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        email
    }
}

fn postmaster_pid(data_dir: &std::path::Path) -> Pid {
    let pid_file =
        std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    let pid = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("postmaster pid");
    Pid::from_raw(pid)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropping the handle asks the server to stop; the files go once
        // it has (best effort: a failed test keeps them for a post-mortem
        // only until the next run of the OS's tmp cleaner).
        if let Some(pg) = self.pg.take() {
            drop(pg);
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.options.data_dir);
    }
}

// ---- authd as a process ----

struct Authd {
    name: String,
    child: Option<Child>,
    grpc: String,
    http: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Authd {
    /// `authd serve` on `database_url`, on random loopback ports; returns
    /// once both listeners are up.
    async fn spawn(name: &str, database_url: &str, extra: &[&str]) -> Authd {
        let mut command = Command::new(env!("CARGO_BIN_EXE_authd"));
        command
            .env("AUTHD_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--database-url",
                database_url,
                "--health-interval",
                "200ms",
            ])
            .args(extra)
            .env("RUST_LOG", "info,authd::service::cache=debug")
            .env_remove("AUTHD_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn authd");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                let (mut grpc, mut http) = (None, None);
                // Drains to the end, so authd never blocks on a full pipe.
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if grpc.is_none() {
                        grpc = value_after(&line, "grpc_addr=");
                    }
                    if http.is_none() {
                        http = value_after(&line, "http_addr=");
                    }
                    logs.lock().unwrap().push(line);
                    if let (Some(g), Some(h)) = (&grpc, &http)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send((g.clone(), h.clone()));
                    }
                }
            });
        }
        let mut authd = Authd {
            name: name.to_owned(),
            child: Some(child),
            grpc: String::new(),
            http: String::new(),
            logs,
        };
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok((grpc, http))) => {
                authd.grpc = grpc;
                authd.http = http;
                authd
            }
            _ => panic!(
                "authd {name} did not start listening:\n{}",
                authd.logs.lock().unwrap().join("\n")
            ),
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .expect("connect to authd")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// Still running (not crashed).
    fn assert_running(&mut self) {
        let status = self
            .child
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("try_wait");
        assert!(
            status.is_none(),
            "authd {} exited ({status:?}):\n{}",
            self.name,
            self.tail()
        );
    }

    /// Waits until a log line contains `needle`.
    async fn wait_logged(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.logs.lock().unwrap().iter().any(|l| l.contains(needle)) {
            assert!(
                Instant::now() < deadline,
                "authd {} never logged {needle:?}:\n{}",
                self.name,
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn tail(&self) -> String {
        let logs = self.logs.lock().unwrap();
        let from = logs.len().saturating_sub(40);
        logs[from..].join("\n")
    }

    /// SIGTERM; returns the exit status, waited for within `within`.
    async fn terminate(mut self, within: Duration) -> ExitStatus {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM");
        self.wait(within).await
    }

    async fn wait(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = Pid::from_raw(child.id() as i32);
        let waited =
            tokio::time::timeout(within, tokio::task::spawn_blocking(move || child.wait())).await;
        match waited {
            Ok(status) => status.expect("join").expect("wait"),
            Err(_) => {
                let _ = kill(pid, Signal::SIGKILL);
                panic!(
                    "authd {} did not exit within {within:?}:\n{}",
                    self.name,
                    self.tail()
                );
            }
        }
    }
}

impl Drop for Authd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if std::thread::panicking() {
                eprintln!(
                    "--- last log lines of authd {}:\n{}",
                    self.name,
                    self.tail()
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn value_after(line: &str, key: &str) -> Option<String> {
    let value = line.split(key).nth(1)?.split_whitespace().next()?;
    Some(value.trim_matches('"').to_owned())
}

// ---- API helpers ----

/// Every token in `tokens` that introspection does not call active.
async fn inactive_tokens(channel: &Channel, client: &TestClient, tokens: &[String]) -> Vec<String> {
    let mut inactive = Vec::new();
    for chunk in tokens.chunks(1000) {
        let results = OAuthClient::new(channel.clone())
            .introspect_batch(v1::IntrospectBatchRequest {
                tokens: chunk.to_vec(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                ..Default::default()
            })
            .await
            .expect("introspect batch")
            .into_inner()
            .results;
        assert_eq!(results.len(), chunk.len());
        for (token, r) in chunk.iter().zip(results) {
            if r.active != Some(true) {
                inactive.push(token.clone());
            }
        }
    }
    inactive
}

async fn health(channel: &Channel) -> Option<ServingStatus> {
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        HealthClient::new(channel.clone()).check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .ok()?
    .ok()?;
    ServingStatus::try_from(r.into_inner().status).ok()
}

/// Waits until health reports `want`; returns when it did.
async fn wait_health(channel: &Channel, want: ServingStatus, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if health(channel).await == Some(want) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "health did not become {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_LIMIT)
        .build()
        .expect("client")
}

// ---- 1. PostgreSQL outage under load ----

#[derive(Debug, Clone)]
enum Outcome {
    /// Succeeded; the token, if one was issued.
    Ok(Option<String>),
    /// UNAVAILABLE (gRPC) or 503 (HTTP).
    Unavailable,
    /// Anything else: never acceptable.
    Wrong(String),
}

#[derive(Debug, Clone)]
struct Record {
    op: &'static str,
    started: Instant,
    took: Duration,
    outcome: Outcome,
}

fn grpc_outcome<T>(
    result: Result<Result<T, tonic::Status>, tokio::time::error::Elapsed>,
) -> Result<T, Outcome> {
    match result {
        Err(_) => Err(Outcome::Wrong(format!(
            "no answer within {REQUEST_LIMIT:?}"
        ))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(s)) if s.code() == Code::Unavailable => Err(Outcome::Unavailable),
        Ok(Err(s)) => Err(Outcome::Wrong(format!("{:?}: {}", s.code(), s.message()))),
    }
}

/// Issues and introspects tokens over gRPC and HTTP until `stop`,
/// recording every request.
fn start_load(
    authd: &Authd,
    channel: &Channel,
    client: &TestClient,
    known: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<Record>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut workers = Vec::new();
    for w in 0..4usize {
        let (channel, client, known, stop, records) = (
            channel.clone(),
            client.clone(),
            known.clone(),
            stop.clone(),
            records.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let started = Instant::now();
                let (op, outcome) = if i % 2 == 0 {
                    let r = tokio::time::timeout(
                        REQUEST_LIMIT,
                        client_credentials(&channel, &client, "read"),
                    )
                    .await;
                    let outcome = match grpc_outcome(r) {
                        Ok(t) => Outcome::Ok(Some(t.access_token)),
                        Err(o) => o,
                    };
                    ("grpc token", outcome)
                } else {
                    let token = &known[i % known.len()];
                    let r =
                        tokio::time::timeout(REQUEST_LIMIT, is_active(&channel, &client, token))
                            .await;
                    let outcome = match grpc_outcome(r) {
                        Ok(true) => Outcome::Ok(None),
                        Ok(false) => Outcome::Wrong(format!("token {token} inactive")),
                        Err(o) => o,
                    };
                    ("grpc introspect", outcome)
                };
                records.lock().unwrap().push(Record {
                    op,
                    started,
                    took: started.elapsed(),
                    outcome,
                });
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    for _ in 0..2 {
        let (http, url, client, stop, records) = (
            http(),
            authd.url("/oauth/token"),
            client.clone(),
            stop.clone(),
            records.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = http
                    .post(&url)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", &client.client_id),
                        ("client_secret", &client.client_secret),
                    ])
                    .send()
                    .await;
                let outcome = match r {
                    Err(e) => Outcome::Wrong(format!("HTTP: {e}")),
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        match (status, body["access_token"].as_str()) {
                            (200, Some(t)) => Outcome::Ok(Some(t.to_owned())),
                            (503, _) if body["error"].is_string() => Outcome::Unavailable,
                            _ => Outcome::Wrong(format!("HTTP {status}: {body}")),
                        }
                    }
                };
                records.lock().unwrap().push(Record {
                    op: "http token",
                    started,
                    took: started.elapsed(),
                    outcome,
                });
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    workers
}

/// How PostgreSQL goes away.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// A fast shutdown: sessions are ended cleanly.
    Stop,
    /// An immediate shutdown: crash recovery on the way back.
    Crash,
    /// Every process stopped in place: connections stay open, and hang.
    Freeze,
}

/// Resumes frozen processes when dropped, whatever happens meanwhile, so
/// that the cluster can always be stopped.
struct Thaw(Vec<Pid>);

impl Drop for Thaw {
    fn drop(&mut self) {
        Cluster::thaw(&self.0);
    }
}

/// One outage: `fault` takes PostgreSQL away, under load, for the load
/// duration; then it comes back. Checks health and /readyz on the way.
/// Returns the window in which failures are acceptable.
async fn outage(
    cluster: &mut Cluster,
    authd: &mut Authd,
    channel: &Channel,
    fault: Fault,
) -> (Instant, Instant) {
    let down_at = Instant::now();
    let mut frozen = Vec::new();
    match fault {
        Fault::Stop => cluster.stop().await,
        Fault::Crash => cluster.crash().await,
        Fault::Freeze => frozen = cluster.freeze(),
    }
    let thaw = Thaw(frozen);
    let not_serving =
        wait_health(channel, ServingStatus::NotServing, DB_TIMEOUT + MARGIN * 2).await;
    eprintln!(
        "outage ({fault:?}): NOT_SERVING after {:?}",
        not_serving - down_at
    );
    let started = Instant::now();
    let ready = http()
        .get(authd.url("/readyz"))
        .send()
        .await
        .expect("/readyz");
    assert_eq!(ready.status(), 503, "/readyz during the outage");
    assert!(
        started.elapsed() <= REQUEST_TIMEOUT + MARGIN,
        "/readyz answers fast"
    );
    // A hang must outlast the timeouts to show whether they hold.
    let length = match fault {
        Fault::Stop | Fault::Crash => load_duration(),
        Fault::Freeze => load_duration().max(DB_TIMEOUT + MARGIN * 2),
    };
    tokio::time::sleep(length.saturating_sub(down_at.elapsed())).await;
    authd.assert_running();

    match fault {
        Fault::Stop | Fault::Crash => cluster.start_again().await,
        Fault::Freeze => drop(thaw),
    }
    let up_at = Instant::now();
    let serving = wait_health(channel, ServingStatus::Serving, Duration::from_secs(15)).await;
    eprintln!(
        "recovered: SERVING {:?} after PostgreSQL was up",
        serving - up_at
    );
    let ready = http()
        .get(authd.url("/readyz"))
        .send()
        .await
        .expect("/readyz");
    assert_eq!(ready.status(), 200, "/readyz after the outage");
    // Requests already under way when health flipped may still fail; from
    // a moment later on, everything must succeed.
    (down_at, serving + Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_fast_recovers_and_loses_no_token() {
    // A stop (fast shutdown: sessions are ended cleanly), then a crash
    // (immediate shutdown, crash recovery on the way back).
    outage_under_load(&[Fault::Stop, Fault::Crash]).await;
}

/// A PostgreSQL that hangs instead of going away (SIGSTOP). Health flips
/// to NOT_SERVING within about a second, and requests waiting for a pooled
/// connection fail at --db-timeout; a request whose statement is already on
/// a connection to the frozen server (whose statement_timeout then enforces
/// nothing) is cut off at --request-timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_postgres_fails_fast_and_recovers() {
    outage_under_load(&[Fault::Freeze]).await;
}

async fn outage_under_load(faults: &[Fault]) {
    bounded(async {
        let mut cluster = Cluster::start("outage").await;
        let db_timeout = format!("{}ms", DB_TIMEOUT.as_millis());
        let request_timeout = format!("{}ms", REQUEST_TIMEOUT.as_millis());
        let mut authd = Authd::spawn(
            "outage",
            &cluster.url,
            &[
                "--db-timeout",
                &db_timeout,
                "--request-timeout",
                &request_timeout,
                "--upstream-timeout",
                "5s",
                "--db-pool-size",
                "8",
            ],
        )
        .await;
        let channel = authd.channel().await;
        wait_health(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;
        let client = register_app(&channel, &[OOB], "read").await;
        let mut known = Vec::new();
        for _ in 0..20 {
            known.push(
                client_credentials(&channel, &client, "read")
                    .await
                    .expect("token")
                    .access_token,
            );
        }
        let known = Arc::new(known);

        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let workers = start_load(
            &authd,
            &channel,
            &client,
            known.clone(),
            stop.clone(),
            records.clone(),
        );
        tokio::time::sleep(load_duration()).await;
        let mut windows = Vec::new();
        for fault in faults {
            windows.push(outage(&mut cluster, &mut authd, &channel, *fault).await);
            tokio::time::sleep(load_duration()).await;
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.expect("load worker");
        }
        authd.assert_running();

        let records = records.lock().unwrap().clone();
        let in_outage = |r: &Record| {
            windows
                .iter()
                .any(|(from, to)| r.started <= *to && r.started + r.took >= *from)
        };
        let mut wrong = Vec::new();
        let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
        for r in &records {
            let kind = match &r.outcome {
                Outcome::Ok(_) => "ok",
                Outcome::Unavailable => "unavailable",
                Outcome::Wrong(_) => "wrong",
            };
            *counts.entry((r.op, kind)).or_default() += 1;
            match &r.outcome {
                Outcome::Wrong(e) => wrong.push(format!("{}: {e}", r.op)),
                Outcome::Unavailable if !in_outage(r) => {
                    wrong.push(format!("{}: unavailable outside the outage", r.op))
                }
                Outcome::Unavailable if r.took > REQUEST_TIMEOUT + MARGIN => {
                    wrong.push(format!("{}: unavailable only after {:?}", r.op, r.took))
                }
                _ => {}
            }
            if in_outage(r) && r.took > REQUEST_TIMEOUT + MARGIN {
                wrong.push(format!("{}: took {:?} during the outage", r.op, r.took));
            }
        }
        let slowest_failure = records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Unavailable))
            .map(|r| r.took)
            .max();
        eprintln!("outcomes: {counts:?}; slowest UNAVAILABLE/503: {slowest_failure:?}");
        assert!(
            wrong.is_empty(),
            "{} bad requests, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(10)]
        );
        for op in ["grpc token", "grpc introspect", "http token"] {
            // A frozen server does not drop the invalidation listener's
            // connection, so until its ping times out the warm cache keeps
            // answering introspection, safely: no revocation can be written
            // while PostgreSQL is frozen. Either answer is right there; a
            // hang is not, and is caught above.
            let frozen = faults.iter().any(|f| matches!(f, Fault::Freeze));
            if frozen && op == "grpc introspect" {
                continue;
            }
            assert!(
                counts.get(&(op, "unavailable")).copied().unwrap_or(0) > 0,
                "{op}: no request saw the outage"
            );
            assert!(
                counts.get(&(op, "ok")).copied().unwrap_or(0) > 0,
                "{op}: nothing succeeded"
            );
        }
        // The last phase of load succeeded throughout: recovered, no restart.
        let (_, recovered) = *windows.last().expect("window");
        assert!(
            records
                .iter()
                .any(|r| r.started > recovered && matches!(r.outcome, Outcome::Ok(_))),
            "requests succeed after the outage"
        );

        // Nothing lost: every token issued, before, between or after the
        // outages, is active now.
        let mut issued: Vec<String> = known.to_vec();
        issued.extend(records.iter().filter_map(|r| match &r.outcome {
            Outcome::Ok(Some(t)) => Some(t.clone()),
            _ => None,
        }));
        let lost = inactive_tokens(&channel, &client, &issued).await;
        assert!(
            lost.is_empty(),
            "{} of {} issued tokens lost",
            lost.len(),
            issued.len()
        );
        eprintln!("{} tokens issued, all active", issued.len());

        let status = authd.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "authd exited with {status}");
    })
    .await;
}

// ---- 2. Several replicas on one database ----

/// Polls `channel` until `token` is inactive; returns how long it took
/// from `since`, or None if it was still active after `limit`.
async fn inactive_within(
    channel: &Channel,
    client: &TestClient,
    token: &str,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    loop {
        let active = is_active(channel, client, token).await.expect("introspect");
        if !active {
            return Some(since.elapsed());
        }
        if since.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_see_each_others_revocations_within_a_second_and_share_codes() {
    bounded(async {
        let cluster = Cluster::start("replicas").await;
        // Three replicas started at once: they also race to migrate.
        let (a, b, c) = tokio::join!(
            Authd::spawn("a", &cluster.url, &[]),
            Authd::spawn("b", &cluster.url, &[]),
            Authd::spawn("c", &cluster.url, &[]),
        );
        let replicas = [&a, &b, &c];
        // Until its listener is up, a replica bypasses its cache, so warm
        // it only afterwards.
        for r in replicas {
            r.wait_logged("invalidation listener connected", Duration::from_secs(20))
                .await;
        }
        let channels = [a.channel().await, b.channel().await, c.channel().await];
        let email = cluster.create_account("alice");
        let client = register_app(&channels[0], &[OOB], "read write").await;

        // Tokens issued on every replica, each introspected on every
        // replica twice: a miss that fills the cache, then a hit.
        let mut tokens = Vec::new();
        for i in 0..15 {
            let t = client_credentials(&channels[i % 3], &client, "read")
                .await
                .expect("token");
            tokens.push(t.access_token);
        }
        let warm = |tokens: Vec<String>| {
            let channels = channels.clone();
            let client = client.clone();
            async move {
                for token in &tokens {
                    for ch in &channels {
                        for _ in 0..2 {
                            assert!(is_active(ch, &client, token).await.unwrap(), "active");
                        }
                    }
                }
            }
        };
        warm(tokens.clone()).await;

        // The caches really are warm: a revocation PostgreSQL does not
        // announce (triggers off for this session) goes unseen by every
        // replica that cached the token. Only NOTIFY can tell them.
        let canary = &tokens[0];
        let db = cluster.client().await;
        db.batch_execute("SET session_replication_role = replica")
            .await
            .unwrap();
        let digest = authd::domain::secret::Digest::of(canary);
        let changed = db
            .execute(
                "UPDATE access_tokens SET revoked_at = now() WHERE digest = $1",
                &[&digest.as_bytes().as_slice()],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        for ch in &channels {
            assert!(
                is_active(ch, &client, canary).await.unwrap(),
                "served from the cache"
            );
        }
        // Announced the normal way (a trigger on the same row), every
        // replica drops it.
        let since = Instant::now();
        db.batch_execute("SET session_replication_role = origin")
            .await
            .unwrap();
        db.execute(
            "UPDATE access_tokens SET revoked_at = now() WHERE digest = $1",
            &[&digest.as_bytes().as_slice()],
        )
        .await
        .unwrap();
        for ch in &channels {
            let took = inactive_within(ch, &client, canary, since, Duration::from_secs(1)).await;
            assert!(
                took.is_some(),
                "a revocation made at psql reaches every replica"
            );
        }

        // Each remaining token is revoked on one replica (gRPC, or HTTP
        // through its shim), all at once, and must be inactive on the two
        // others within a second.
        let revocations = tokens[1..].iter().enumerate().map(|(i, token)| {
            let (channels, client, token) = (channels.clone(), client.clone(), token.clone());
            let via = i % 3;
            let http_url = replicas[via].url("/oauth/revoke");
            async move {
                if i % 2 == 0 {
                    revoke(&channels[via], &client, &token)
                        .await
                        .expect("revoke");
                } else {
                    let r = http()
                        .post(&http_url)
                        .basic_auth(&client.client_id, Some(&client.client_secret))
                        .form(&[("token", token.as_str())])
                        .send()
                        .await
                        .expect("HTTP revoke");
                    assert_eq!(r.status(), 200, "HTTP revoke");
                }
                let since = Instant::now();
                // All three replicas watched at once.
                let seen = channels
                    .iter()
                    .map(|ch| inactive_within(ch, &client, &token, since, Duration::from_secs(1)));
                let seen = futures::future::join_all(seen).await;
                let mut worst = Duration::ZERO;
                for (j, took) in seen.into_iter().enumerate() {
                    let took = took.unwrap_or_else(|| {
                        panic!("token revoked on replica {via} still active on {j} after 1s")
                    });
                    worst = worst.max(took);
                }
                worst
            }
        });
        let worst = futures::future::join_all(revocations)
            .await
            .into_iter()
            .max()
            .unwrap();
        eprintln!("slowest revocation to reach every replica: {worst:?}");

        // Tokens nobody revoked stay active everywhere.
        let survivors: Vec<String> = {
            let mut v = Vec::new();
            for ch in &channels {
                v.push(
                    client_credentials(ch, &client, "read")
                        .await
                        .unwrap()
                        .access_token,
                );
            }
            v
        };
        warm(survivors.clone()).await;

        // A session opened on a, a code authorized on b, exchanged on c.
        let session = login(&channels[0], &email, PASSWORD)
            .await
            .expect("login on a")
            .session;
        let code = OAuthClient::new(channels[1].clone())
            .authorize(v1::AuthorizeRequest {
                session: session.clone(),
                response_type: "code".into(),
                client_id: client.client_id.clone(),
                redirect_uri: OOB.into(),
                scope: "read".into(),
                ..Default::default()
            })
            .await
            .expect("authorize on b")
            .into_inner()
            .code;
        let user_token = OAuthClient::new(channels[2].clone())
            .exchange_token(v1::ExchangeTokenRequest {
                grant_type: "authorization_code".into(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                code: code.clone(),
                redirect_uri: OOB.into(),
                ..Default::default()
            })
            .await
            .expect("exchange on c")
            .into_inner()
            .access_token;
        for ch in &channels {
            assert!(is_active(ch, &client, &user_token).await.unwrap());
        }
        // A second code, from c, redeemed over HTTP at a's shim; the code
        // cannot be redeemed again on b.
        let code = OAuthClient::new(channels[2].clone())
            .authorize(v1::AuthorizeRequest {
                session,
                response_type: "code".into(),
                client_id: client.client_id.clone(),
                redirect_uri: OOB.into(),
                scope: "read".into(),
                ..Default::default()
            })
            .await
            .expect("authorize on c")
            .into_inner()
            .code;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", OOB),
        ];
        let r = http()
            .post(a.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "HTTP exchange on a");
        let body: serde_json::Value = r.json().await.unwrap();
        let http_token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let r = http()
            .post(b.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            400,
            "a code is redeemed once, whichever replica"
        );
        // Reusing the code revoked what it gave, on every replica.
        let since = Instant::now();
        for ch in &channels {
            assert!(
                inactive_within(ch, &client, &http_token, since, Duration::from_secs(1))
                    .await
                    .is_some(),
                "a reused code's token is revoked everywhere"
            );
        }

        for r in [a, b, c] {
            let status = r.terminate(Duration::from_secs(30)).await;
            assert!(status.success(), "replica exited with {status}");
        }
    })
    .await;
}

// ---- 3. Graceful shutdown under load ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_completes_every_request_in_flight() {
    bounded(async {
        let cluster = Cluster::start("shutdown").await;
        let email = cluster.create_account("bob");
        // One argon2 at a time: concurrent logins queue, and stay in flight
        // for as long as the queue takes.
        let authd = Authd::spawn(
            "shutdown",
            &cluster.url,
            &[
                "--password-hash-concurrency",
                "1",
                "--shutdown-grace",
                "60s",
                // 25 logins at once for one account is the point here.
                "--login-limit-per-account",
                "off",
                "--login-limit-per-ip",
                "off",
            ],
        )
        .await;
        let channel = authd.channel().await;
        let client = register_app(&channel, &[OOB], "read").await;

        // Browsers that loaded the login form (its CSRF cookie and token).
        let mut browsers = Vec::new();
        for _ in 0..5 {
            let browser = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let page = browser
                .get(authd.url("/auth/sign_in"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = hidden(&page, "csrf_token").expect("csrf token");
            browsers.push((browser, csrf));
        }

        // An HTTP request whose headers have arrived but whose body has
        // not: in flight in the shim, which has not yet called the core.
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            client.client_id, client.client_secret
        );
        let (first, rest) = body.split_at(20);
        let mut slow = tokio::net::TcpStream::connect(&authd.http).await.unwrap();
        slow.write_all(
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
                authd.http,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();

        // 20 gRPC logins (two connections) and 5 HTTP logins, queued
        // behind one another for argon2.
        let channel2 = authd.channel().await;
        let (first_done, mut first_done_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut grpc_logins = Vec::new();
        for i in 0..20 {
            let ch = if i % 2 == 0 { channel.clone() } else { channel2.clone() };
            let (email, done) = (email.clone(), first_done.clone());
            grpc_logins.push(tokio::spawn(async move {
                let r = login(&ch, &email, PASSWORD).await;
                let _ = done.send(());
                (r, Instant::now())
            }));
        }
        let mut http_logins = Vec::new();
        for (browser, csrf) in browsers {
            let (url, email) = (authd.url("/auth/sign_in"), email.clone());
            http_logins.push(tokio::spawn(async move {
                let r = browser
                    .post(url)
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("email", email.as_str()),
                        ("password", PASSWORD),
                        ("next", "/oauth/authorized_applications"),
                    ])
                    .send()
                    .await;
                (r, Instant::now())
            }));
        }
        // Let every request reach authd, and the queue start moving (the
        // first login is answered: one argon2 later, the rest still wait),
        // then ask it to stop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::time::timeout(Duration::from_secs(30), first_done_rx.recv())
            .await
            .expect("a first login is answered");
        let pid = authd.pid();
        let sigterm_at = Instant::now();
        kill(pid, Signal::SIGTERM).expect("SIGTERM");

        // The rest of the slow request's body, once shutdown has begun.
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.write_all(rest.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(30), slow.read_to_string(&mut response))
            .await
            .expect("the slow request is answered")
            .expect("read the response");
        let status_line = response.lines().next().unwrap_or_default().to_owned();
        assert!(
            status_line.starts_with("HTTP/1.1 200"),
            "the request in flight at SIGTERM is served: {response}"
        );
        let json = &response[response.find("\r\n\r\n").expect("body") + 4..];
        let json: serde_json::Value = serde_json::from_str(json).expect("token JSON");
        let slow_token = json["access_token"].as_str().expect("access_token").to_owned();

        let mut sessions = Vec::new();
        let mut after_sigterm = 0;
        for task in grpc_logins {
            let (r, done) = task.await.unwrap();
            let r = r.expect("a gRPC login in flight at SIGTERM succeeds");
            sessions.push(r.session);
            after_sigterm += usize::from(done > sigterm_at);
        }
        for task in http_logins {
            let (r, done) = task.await.unwrap();
            let r = r.expect("an HTTP login in flight at SIGTERM is answered");
            assert_eq!(r.status(), 302, "HTTP login succeeds");
            assert!(
                r.headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|c| c.to_str().unwrap_or_default().starts_with("authd_session=")),
                "the session cookie is set"
            );
            after_sigterm += usize::from(done > sigterm_at);
        }
        eprintln!("{after_sigterm} of 25 logins finished after SIGTERM");
        assert!(
            after_sigterm >= 10,
            "most logins were still in flight at SIGTERM ({after_sigterm} of 25), or the test proves nothing"
        );
        let mut authd = authd;
        let status = authd.wait(Duration::from_secs(60)).await;
        assert!(status.success(), "authd exited with {status}");
        drop(authd);

        // What they were answered is real: a new authd on the same
        // database knows the sessions and the token.
        let again = Authd::spawn("shutdown-again", &cluster.url, &[]).await;
        let ch = again.channel().await;
        for session in &sessions {
            SessionsClient::new(ch.clone())
                .get_session(v1::GetSessionRequest {
                    session: session.clone(),
                })
                .await
                .expect("the session exists");
        }
        assert!(is_active(&ch, &client, &slow_token).await.unwrap());
        let status = again.terminate(Duration::from_secs(30)).await;
        assert!(status.success());
    })
    .await;
}

// ---- 4. A replica whose invalidation listener hangs ----

/// The LISTEN connection's server process stops answering (as in a
/// network partition between this replica and PostgreSQL, while others
/// still reach it): no notification arrives, and the connection does not
/// close. A revocation made meanwhile must not be hidden by the cache for
/// long: the replica has to notice that its listener is deaf, stop
/// trusting its cache and ask PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listener_hangs_stops_trusting_its_cache() {
    bounded(async {
        let cluster = Cluster::start("deaf").await;
        let authd = Authd::spawn("deaf", &cluster.url, &[]).await;
        authd
            .wait_logged("invalidation listener connected", Duration::from_secs(20))
            .await;
        let channel = authd.channel().await;
        let client = register_app(&channel, &[OOB], "read").await;
        let token = client_credentials(&channel, &client, "read")
            .await
            .expect("token")
            .access_token;
        for _ in 0..2 {
            assert!(is_active(&channel, &client, &token).await.unwrap());
        }

        let db = cluster.client().await;
        let listener: i32 = db
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'authd-listener'",
                &[],
            )
            .await
            .expect("one listener")
            .get(0);
        kill(Pid::from_raw(listener), Signal::SIGSTOP).expect("SIGSTOP the listener");
        let _thaw = Thaw(vec![Pid::from_raw(listener)]);

        // Revoked by an operator at psql: the trigger announces it, to a
        // listener that cannot hear.
        let digest = authd::domain::secret::Digest::of(&token);
        db.execute(
            "UPDATE access_tokens SET revoked_at = now() WHERE digest = $1",
            &[&digest.as_bytes().as_slice()],
        )
        .await
        .unwrap();
        let since = Instant::now();
        // The listener is pinged every 500 ms; a ping gets a few seconds.
        let limit = Duration::from_secs(5);
        let took = inactive_within(&channel, &client, &token, since, limit).await;
        assert!(
            took.is_some(),
            "a revoked token is still active after {limit:?}: the cache outlived its deaf listener"
        );
        eprintln!("deaf listener noticed; revoked token inactive after {took:?}");
        drop(_thaw);
        let status = authd.terminate(Duration::from_secs(30)).await;
        assert!(status.success());
    })
    .await;
}

/// Finding 10 of issue 14: with `--serve-cached-during-outage`, a token
/// cached before PostgreSQL went away still introspects active during the
/// outage, for at most the bound; without the flag, UNAVAILABLE at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tokens_introspect_during_an_outage_only_with_the_flag_and_only_for_its_bound() {
    bounded(async {
        for grace in [Some("4s"), None] {
            let mut cluster = Cluster::start("outage-cache").await;
            let extra: Vec<&str> = match grace {
                Some(g) => vec!["--serve-cached-during-outage", g],
                None => vec![],
            };
            let authd = Authd::spawn("outage-cache", &cluster.url, &extra).await;
            authd
                .wait_logged("invalidation listener connected", Duration::from_secs(20))
                .await;
            let channel = authd.channel().await;
            let client = register_app(&channel, &[OOB], "read").await;
            let token = client_credentials(&channel, &client, "read")
                .await
                .expect("token")
                .access_token;
            // The first introspection caches the client and the token.
            for _ in 0..2 {
                assert!(is_active(&channel, &client, &token).await.unwrap());
            }
            // Taken before the stop: the listener hears the shutdown begin.
            let down = Instant::now();
            cluster.stop().await;
            // Give the listener time to notice.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            match grace {
                Some(_) => {
                    let answer = is_active(&channel, &client, &token).await;
                    assert_eq!(answer.ok(), Some(true), "cached token during the outage");
                    let metrics = http()
                        .get(authd.url("/metrics"))
                        .send()
                        .await
                        .expect("metrics")
                        .text()
                        .await
                        .expect("text");
                    assert!(
                        metrics.contains("authd_cache_serving_during_outage 1"),
                        "the metrics do not say the cache serves during the outage"
                    );
                    let deadline = down + Duration::from_secs(12);
                    loop {
                        assert!(
                            Instant::now() < deadline,
                            "cache still served past its bound"
                        );
                        match is_active(&channel, &client, &token).await {
                            Ok(true) => tokio::time::sleep(Duration::from_millis(200)).await,
                            Err(status) => {
                                assert_eq!(status.code(), tonic::Code::Unavailable);
                                assert!(
                                    down.elapsed() >= Duration::from_secs(4),
                                    "stopped after {:?}: {status:?}",
                                    down.elapsed()
                                );
                                break;
                            }
                            Ok(false) => panic!("inactive during the outage"),
                        }
                    }
                }
                None => {
                    let status = is_active(&channel, &client, &token)
                        .await
                        .expect_err("no answer without the database");
                    assert_eq!(status.code(), tonic::Code::Unavailable);
                }
            }
            let status = authd.terminate(Duration::from_secs(30)).await;
            assert!(status.success());
        }
    })
    .await;
}
