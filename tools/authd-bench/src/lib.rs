//! `authd-bench`: a load generator against a running authd. A tool of its
//! own, beside the service, so that no production build carries it. It drives gRPC
//! Introspect, POST /oauth/introspect, client_credentials issuance and the
//! door's decision (Policy/Check, Envoy's ext_authz) at a
//! fixed concurrency for a fixed time, and measures, in the same run, a bare
//! tonic echo call served by a child process (`authd-bench echo`) on the
//! same machine: the ceiling every other figure is divided by.
//!
//! It measures; it asserts nothing about speed. Errors are counted and
//! printed, and the command fails when there are any.
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::transport::{Channel, Endpoint};

pub mod cache_memory;
mod hostile;

use authd::proto::v1;
use authd::proto::v1::apps_client::AppsClient;
use authd::proto::v1::o_auth_client::OAuthClient;
use authd::proto::v1::policy_client::PolicyClient;
use envoy_types::pb::envoy::service::auth::v3 as envoy;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use proto::EchoMessage;
use proto::echo_client::EchoClient;
use proto::echo_server::{Echo, EchoServer};

/// The echo service: the benchmark's ceiling, never served by authd.
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("authd.bench.v1");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The ceiling: a bare tonic call to `authd-bench echo`.
    Echo,
    /// gRPC OAuth/Introspect of one active token (a cache hit once warm).
    IntrospectGrpc,
    /// Several tokens per gRPC OAuth/IntrospectBatch call; counts tokens.
    IntrospectBatch,
    /// POST /oauth/introspect over HTTP/1.1 keep-alive.
    IntrospectHttp,
    /// gRPC OAuth/ExchangeToken, client_credentials: a durable insert each.
    ClientCredentials,
    /// authd.v1.Policy/Check of GET /api/v1/timelines/home with a cached
    /// `read` token: the door's decision, as a reverse proxy asks it.
    PolicyCheck,
    /// Envoy's ext_authz (envoy.service.auth.v3.Authorization/Check) of
    /// the same request, in the shape Envoy sends it.
    ExtAuthz,
}

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// The authd gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub grpc: String,
    /// The authd HTTP endpoint (for introspect-http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// gRPC (HTTP/2) connections the requests share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How long each scenario is measured.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load before measuring starts, not counted.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Scenarios to run, in order (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "echo,introspect-grpc,introspect-http,client-credentials"
    )]
    pub scenarios: Vec<Scenario>,
    /// Tokens per call in introspect-batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Distinct tokens the introspection scenarios cycle through.
    #[arg(long, default_value_t = 100)]
    pub tokens: usize,
    /// Logins kept in flight during every scenario (unknown emails, so
    /// each costs a full argon2 verification and no account is needed):
    /// shows what a login storm does to the other figures.
    #[arg(long, default_value_t = 0)]
    pub login_storm: usize,
    /// Keeps the attacks of issue 14 going during every scenario: idle
    /// connections to both listeners, oversized RegisterApp calls, and
    /// IntrospectBatch calls of 1000 unknown tokens from an app of their
    /// own (see src/bench/hostile.rs).
    #[arg(long)]
    pub hostile: bool,
    /// With --hostile: connections kept open that send nothing, or half an
    /// HTTP/2 preface (half to each listener).
    #[arg(long, default_value_t = 1000)]
    pub hostile_idle_connections: usize,
    /// With --hostile: unknown-token batches in flight.
    #[arg(long, default_value_t = 64)]
    pub hostile_batches: usize,
    /// Runs the scenarios this many times; with --hostile, each round runs
    /// every scenario quiet and then under attack, and the ratios are
    /// printed at the end.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Serves the echo in this process instead of a child of its own (for
    /// the smoke test, which runs the tool as a library).
    #[arg(long, hide = true)]
    pub echo_in_process: bool,
    /// Marks the bench app a resource server once registered, by running
    /// `authd app resource-server CLIENT_ID` against --database-url: what
    /// an internal service that introspects every request is. Its cache
    /// misses are then not held to `--cold-lookup-limit-per-client`
    /// (2000/s by default), which would otherwise cap a cold run.
    #[arg(long)]
    pub resource_server: bool,
    /// With --resource-server: the database of the authd under test.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With --resource-server: the authd binary to run (default: the
    /// `authd` beside this binary, as cargo builds them).
    #[arg(long)]
    pub authd_bin: Option<PathBuf>,
}

/// One scenario's figures.
#[derive(Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Report {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.quantile_ms(0.99)
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Vec<Report>> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let connections = args.connections.clamp(1, args.concurrency);
    let fixture = Fixture::set_up(&args, connections).await?;
    let mut echo_server = None;
    let mut reports = Vec::new();
    println!(
        "authd-bench: concurrency {}, {} gRPC connections, {:?} measured after {:?} warm-up",
        args.concurrency, connections, args.duration, args.warmup
    );
    if args.login_storm > 0 {
        println!(
            "with a login storm of {} logins in flight",
            args.login_storm
        );
    }
    // With --hostile and several rounds, each scenario runs quiet and then
    // under attack in every round, so that the two are compared in the same
    // run, alternating, whatever the machine does meanwhile.
    let alternate = args.hostile && args.rounds > 1;
    let mut runs = Vec::new();
    for _ in 0..args.rounds.max(1) {
        for &scenario in &args.scenarios {
            if alternate {
                runs.push((scenario, false));
                runs.push((scenario, true));
            } else {
                runs.push((scenario, args.hostile));
            }
        }
    }
    let mut flooder = None;
    let mut compared: Vec<(Scenario, bool, f64, f64)> = Vec::new();
    for (scenario, under_attack) in runs {
        let storm = LoginStorm::start(&fixture, args.login_storm);
        let hostile = if under_attack {
            // A connection of its own, so that its calls do not share the
            // measured scenario's streams.
            let channel = channels(&args.grpc, 1).await?.remove(0);
            if flooder.is_none() {
                flooder = Some(hostile::register_flooder(channel.clone()).await?);
            }
            let load = hostile::HostileLoad {
                idle_connections: args.hostile_idle_connections,
                batches_in_flight: args.hostile_batches,
            };
            Some(
                load.start(
                    channel,
                    flooder.clone().expect("registered"),
                    socket_addr(&args.grpc).await?,
                    socket_addr(&args.http).await?,
                )
                .await?,
            )
        } else {
            None
        };
        let report = match scenario {
            Scenario::Echo => {
                if echo_server.is_none() {
                    echo_server = Some(if args.echo_in_process {
                        EchoChild::in_process().await?
                    } else {
                        EchoChild::spawn().await?
                    });
                }
                let addr = echo_server.as_ref().map(|e| e.addr).expect("spawned");
                let channels = channels(&format!("http://{addr}"), connections).await?;
                let payload = vec![b'x'; 64];
                drive(scenario, &args, move |i| {
                    let mut client = EchoClient::new(channels[i % channels.len()].clone());
                    let payload = payload.clone();
                    async move {
                        client
                            .echo(EchoMessage { payload })
                            .await
                            .map(|_| 1)
                            .map_err(|e| e.to_string())
                    }
                })
                .await
            }
            Scenario::IntrospectGrpc => {
                let f = fixture.clone();
                let n = Arc::new(AtomicUsize::new(0));
                drive(scenario, &args, move |i| {
                    let mut client = OAuthClient::new(f.channels[i % f.channels.len()].clone());
                    let request = f.introspect_request(n.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let r = client
                            .introspect(request)
                            .await
                            .map_err(|e| e.to_string())?;
                        if r.get_ref().active == Some(true) {
                            Ok(1)
                        } else {
                            Err("token not active".into())
                        }
                    }
                })
                .await
            }
            Scenario::IntrospectBatch => {
                let f = fixture.clone();
                let size = args.batch_size.max(1);
                let n = Arc::new(AtomicUsize::new(0));
                drive(scenario, &args, move |i| {
                    let mut client = OAuthClient::new(f.channels[i % f.channels.len()].clone());
                    let first = n.fetch_add(size, Ordering::Relaxed);
                    let request = v1::IntrospectBatchRequest {
                        tokens: (first..first + size)
                            .map(|k| f.token(k).to_owned())
                            .collect(),
                        client_id: f.client_id.clone(),
                        client_secret: f.client_secret.clone(),
                        token_type_hint: String::new(),
                    };
                    async move {
                        let r = client
                            .introspect_batch(request)
                            .await
                            .map_err(|e| e.to_string())?;
                        let active = r
                            .get_ref()
                            .results
                            .iter()
                            .filter(|t| t.active == Some(true))
                            .count();
                        if active == size {
                            Ok(size as u64)
                        } else {
                            Err(format!("{active} of {size} active"))
                        }
                    }
                })
                .await
            }
            Scenario::IntrospectHttp => {
                let f = fixture.clone();
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(args.concurrency)
                    .build()?;
                let url = format!("{}/oauth/introspect", args.http.trim_end_matches('/'));
                let n = Arc::new(AtomicUsize::new(0));
                drive(scenario, &args, move |_| {
                    let body = format!("token={}", f.token(n.fetch_add(1, Ordering::Relaxed)));
                    let request = http
                        .post(&url)
                        .basic_auth(&f.client_id, Some(&f.client_secret))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body);
                    async move {
                        let r = request.send().await.map_err(|e| e.to_string())?;
                        let status = r.status();
                        let text = r.text().await.map_err(|e| e.to_string())?;
                        if status.is_success() && text.starts_with("{\"active\":true") {
                            Ok(1)
                        } else {
                            Err(format!("{status}: {text}"))
                        }
                    }
                })
                .await
            }
            Scenario::ClientCredentials => {
                let f = fixture.clone();
                drive(scenario, &args, move |i| {
                    let mut client = OAuthClient::new(f.channels[i % f.channels.len()].clone());
                    let request = f.client_credentials_request();
                    async move {
                        client
                            .exchange_token(request)
                            .await
                            .map(|_| 1)
                            .map_err(|e| e.to_string())
                    }
                })
                .await
            }
            Scenario::PolicyCheck => {
                let f = fixture.clone();
                let n = Arc::new(AtomicUsize::new(0));
                drive(scenario, &args, move |i| {
                    let mut client = PolicyClient::new(f.channels[i % f.channels.len()].clone());
                    let request = f.policy_request(n.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let r = client.check(request).await.map_err(|e| e.to_string())?;
                        if r.get_ref().decision == v1::check_response::Decision::Allow as i32 {
                            Ok(1)
                        } else {
                            Err(format!("not allowed: {:?}", r.get_ref()))
                        }
                    }
                })
                .await
            }
            Scenario::ExtAuthz => {
                let f = fixture.clone();
                let n = Arc::new(AtomicUsize::new(0));
                drive(scenario, &args, move |i| {
                    let mut client =
                        AuthorizationClient::new(f.channels[i % f.channels.len()].clone());
                    let request = f.envoy_request(n.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let r = client.check(request).await.map_err(|e| e.to_string())?;
                        if r.get_ref().status.as_ref().is_some_and(|s| s.code == 0) {
                            Ok(1)
                        } else {
                            Err(format!("not allowed: {:?}", r.get_ref()))
                        }
                    }
                })
                .await
            }
        };
        let hostile_counts = match hostile {
            Some(hostile) => Some(hostile.stop().await),
            None => None,
        };
        if let Some(storm) = storm {
            let logins = storm.stop().await;
            println!(
                "  (login storm during it: {:.0} logins/s)",
                logins as f64 / (args.warmup + args.duration).as_secs_f64()
            );
        }
        if under_attack {
            print!("under attack: ");
        }
        print_report(
            &report,
            reports
                .first()
                .filter(|r: &&Report| r.scenario == Scenario::Echo),
        );
        if let Some(counts) = hostile_counts {
            println!("  (hostile load during it: {counts})");
        }
        compared.push((scenario, under_attack, report.p99_ms(), report.rps()));
        reports.push(report);
    }
    if alternate {
        print_comparison(&args.scenarios, &compared);
    }
    if let Some(echo) = echo_server {
        echo.stop().await;
    }
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(reports)
}

/// The request the policy scenarios decide: a route of Mastodon's table
/// that a `read` token opens.
const DOOR_TARGET: &str = "/api/v1/timelines/home?limit=20";

/// What the scenarios share: connections, an app and a token of its own.
#[derive(Clone)]
struct Fixture {
    channels: Arc<Vec<Channel>>,
    client_id: String,
    client_secret: String,
    tokens: Arc<Vec<String>>,
}

impl Fixture {
    async fn set_up(args: &BenchArgs, connections: usize) -> anyhow::Result<Fixture> {
        let channels = channels(&args.grpc, connections)
            .await
            .with_context(|| format!("connect to authd at {}", args.grpc))?;
        let registered = register_bench_app(channels[0].clone(), "authd bench").await?;
        if args.resource_server {
            let database_url = args
                .database_url
                .as_deref()
                .context("--resource-server needs --database-url (or DATABASE_URL)")?;
            make_resource_server(
                args.authd_bin.as_deref(),
                database_url,
                &registered.client_id,
            )
            .await?;
        }
        let mut fixture = Fixture {
            channels: Arc::new(channels),
            client_id: registered.client_id,
            client_secret: registered.client_secret,
            tokens: Arc::new(Vec::new()),
        };
        // Issued ISSUERS at a time, so that the tens of thousands a cold
        // run cycles through take seconds, not a minute.
        const ISSUERS: usize = 32;
        let wanted = args.tokens.max(1);
        let mut issuers = tokio::task::JoinSet::new();
        for issuer in 0..ISSUERS.min(wanted) {
            let mut oauth =
                OAuthClient::new(fixture.channels[issuer % fixture.channels.len()].clone());
            let request = fixture.client_credentials_request();
            let count = wanted / ISSUERS + usize::from(issuer < wanted % ISSUERS);
            issuers.spawn(async move {
                let mut tokens = Vec::with_capacity(count);
                for _ in 0..count {
                    tokens.push(
                        oauth
                            .exchange_token(request.clone())
                            .await
                            .context("issue the bench tokens")?
                            .into_inner()
                            .access_token,
                    );
                }
                anyhow::Ok(tokens)
            });
        }
        let mut tokens = Vec::with_capacity(wanted);
        while let Some(issued) = issuers.join_next().await {
            tokens.extend(issued.context("a token issuer panicked")??);
        }
        fixture.tokens = Arc::new(tokens);
        Ok(fixture)
    }

    /// The n-th token, cycling.
    fn token(&self, n: usize) -> &str {
        &self.tokens[n % self.tokens.len()]
    }

    fn introspect_request(&self, n: usize) -> v1::IntrospectRequest {
        v1::IntrospectRequest {
            token: self.token(n).to_owned(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            token_type_hint: String::new(),
        }
    }

    /// The door's request of the policy scenarios: a Mastodon client's
    /// GET of the home timeline, with the n-th token.
    fn door_headers(&self, n: usize) -> Vec<(String, String)> {
        [
            (":authority", "social.example".to_owned()),
            (":method", "GET".to_owned()),
            (":path", DOOR_TARGET.to_owned()),
            (":scheme", "https".to_owned()),
            ("accept", "application/json".to_owned()),
            ("user-agent", "authd-bench".to_owned()),
            ("authorization", format!("Bearer {}", self.token(n))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// authd's own doors (forward auth, the reverse proxy) pass the
    /// headers that can carry a token, here the Authorization alone; Envoy
    /// passes them all (see `envoy_request`).
    fn policy_request(&self, n: usize) -> v1::CheckRequest {
        v1::CheckRequest {
            method: "GET".into(),
            path: DOOR_TARGET.into(),
            headers: [(
                "authorization".to_owned(),
                format!("Bearer {}", self.token(n)),
            )]
            .into_iter()
            .collect(),
        }
    }

    /// What Envoy's ext_authz filter sends for that request.
    fn envoy_request(&self, n: usize) -> envoy::CheckRequest {
        use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
        let peer = |ip: &str| {
            Some(envoy::attribute_context::Peer {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: ip.into(),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })
        };
        envoy::CheckRequest {
            attributes: Some(envoy::AttributeContext {
                source: peer("203.0.113.7"),
                destination: peer("10.0.0.2"),
                request: Some(envoy::attribute_context::Request {
                    http: Some(envoy::attribute_context::HttpRequest {
                        id: n.to_string(),
                        method: "GET".into(),
                        headers: self.door_headers(n).into_iter().collect(),
                        path: DOOR_TARGET.into(),
                        host: "social.example".into(),
                        scheme: "https".into(),
                        protocol: "HTTP/1.1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn client_credentials_request(&self) -> v1::ExchangeTokenRequest {
        v1::ExchangeTokenRequest {
            grant_type: "client_credentials".into(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scope: "read".into(),
            ..Default::default()
        }
    }
}

/// Logins in flight for as long as it runs, each for an unknown email: the
/// core spends a full argon2 verification on each, as for a real account.
/// Each comes from its own address (named in x-forwarded-for, which authd
/// believes from loopback), as a botnet's storm would: the per-address and
/// per-account rate limits let every attempt through to argon2.
struct LoginStorm {
    stop: tokio_util::sync::CancellationToken,
    done: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LoginStorm {
    fn start(fixture: &Fixture, in_flight: usize) -> Option<LoginStorm> {
        if in_flight == 0 {
            return None;
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let done = Arc::new(AtomicU64::new(0));
        let tasks = (0..in_flight)
            .map(|i| {
                let mut sessions = authd::proto::v1::sessions_client::SessionsClient::new(
                    fixture.channels[i % fixture.channels.len()].clone(),
                );
                let (stop, done) = (stop.clone(), done.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.is_cancelled() {
                        n += 1;
                        let mut request = tonic::Request::new(v1::LoginRequest {
                            email: format!("storm-{i}-{n}@bench.invalid"),
                            password: "not the password".into(),
                        });
                        let address = format!("10.{}.{}.{}", i % 256, (n >> 8) % 256, n % 256);
                        if let Ok(value) = address.parse() {
                            request.metadata_mut().insert("x-forwarded-for", value);
                        }
                        let login = sessions.login(request);
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = login => { done.fetch_add(1, Ordering::Relaxed); }
                        }
                    }
                })
            })
            .collect();
        Some(LoginStorm { stop, done, tasks })
    }

    async fn stop(self) -> u64 {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.done.load(Ordering::Relaxed)
    }
}

/// Makes `client_id` a resource server: runs `authd app resource-server
/// CLIENT_ID` with `DATABASE_URL=database_url` (the operator's command; it
/// writes the flag in PostgreSQL, whose trigger tells the running authd to
/// drop what it cached of the app). `authd_bin` defaults to the `authd`
/// beside this binary.
/// Registers an app with the `read` scope for a benchmark.
pub async fn register_bench_app(
    channel: Channel,
    name: &str,
) -> anyhow::Result<v1::RegisterAppResponse> {
    Ok(AppsClient::new(channel)
        .register_app(v1::RegisterAppRequest {
            client_name: name.into(),
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".into()],
            scopes: "read".into(),
            ..Default::default()
        })
        .await
        .context("register the bench app")?
        .into_inner())
}

pub async fn make_resource_server(
    authd_bin: Option<&Path>,
    database_url: &str,
    client_id: &str,
) -> anyhow::Result<()> {
    let bin = match authd_bin {
        Some(bin) => bin.to_owned(),
        None => std::env::current_exe()
            .context("find the authd-bench binary")?
            .with_file_name("authd"),
    };
    let run = tokio::process::Command::new(&bin)
        .args(["app", "resource-server", "--", client_id])
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .with_context(|| format!("{} app resource-server took over 60 s", bin.display()))?
        .with_context(|| format!("run {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "{} app resource-server {client_id}: {}: {}",
            bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    println!(
        "resource server: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
    Ok(())
}

/// The address an `http://host:port` endpoint names.
async fn socket_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/');
    tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("resolve {authority}"))?
        .next()
        .with_context(|| format!("no address for {authority}"))
}

async fn channels(url: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(
            Endpoint::from_shared(url.to_owned())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

/// Runs `args.concurrency` loops of `call` for the warm-up and then the
/// measured time. A call returns how many operations it did (a batch does
/// several), or an error.
async fn drive<F, Fut>(scenario: Scenario, args: &BenchArgs, call: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let mut workers = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut done, mut errors, mut first_error) = (0u64, 0u64, None);
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let result = call(i).await;
                let received = Instant::now();
                if sent < measure_from {
                    continue;
                }
                match result {
                    Ok(n) => {
                        done += n;
                        let micros = (received - sent).as_micros().max(1) as u64;
                        let _ = latency.record(micros.min(60_000_000));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latency, done, errors, first_error)
        }));
    }
    let mut report = Report {
        scenario,
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    };
    let mut first_error = None;
    for worker in workers {
        let (latency, done, errors, error) = worker.await.expect("bench worker");
        report.latency.add(latency).expect("same bounds");
        report.requests += done;
        report.errors += errors;
        if first_error.is_none() {
            first_error = error;
        }
    }
    report.elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .max(Duration::from_millis(1));
    if let Some(e) = first_error {
        eprintln!("{scenario:?}: first error: {e}");
    }
    report
}

/// Each scenario's p99 and throughput under attack over the quiet run just
/// before it, round by round: the median and the spread.
fn print_comparison(scenarios: &[Scenario], runs: &[(Scenario, bool, f64, f64)]) {
    println!("\nunder attack / quiet, by round (p99; throughput):");
    for &scenario in scenarios {
        let mine: Vec<_> = runs.iter().filter(|r| r.0 == scenario).collect();
        let (mut p99, mut rps) = (Vec::new(), Vec::new());
        for pair in mine.chunks(2) {
            if let [quiet, attacked] = pair {
                p99.push(attacked.2 / quiet.2);
                rps.push(attacked.3 / quiet.3);
            }
        }
        let summary = |ratios: &mut Vec<f64>| {
            ratios.sort_by(f64::total_cmp);
            let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            format!(
                "median {:.2}x (min {:.2}, max {:.2}; rounds {})",
                ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
                ratios.first().copied().unwrap_or(f64::NAN),
                ratios.last().copied().unwrap_or(f64::NAN),
                listed.join(" ")
            )
        };
        println!("{scenario:?}: p99 {}", summary(&mut p99));
        println!("{scenario:?}: throughput {}", summary(&mut rps));
    }
}

fn print_report(report: &Report, echo: Option<&Report>) {
    let name = format!("{:?}", report.scenario);
    let mut line = format!(
        "{name:<18} {:>10.0} req/s  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  errors {}",
        report.rps(),
        report.quantile_ms(0.5),
        report.quantile_ms(0.9),
        report.p99_ms(),
        report.latency.max() as f64 / 1000.0,
        report.errors,
    );
    if let Some(echo) = echo.filter(|_| report.scenario != Scenario::Echo) {
        line.push_str(&format!(
            "  | {:.2}x echo req/s, {:.2}x echo p99",
            report.rps() / echo.rps(),
            report.p99_ms() / echo.p99_ms()
        ));
    }
    println!("{line}");
}

/// The echo server, a child process running `authd-bench echo`, so that
/// it has a process and runtime of its own, as authd has.
struct EchoChild {
    child: Option<tokio::process::Child>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    addr: SocketAddr,
}

impl EchoChild {
    async fn in_process() -> anyhow::Result<EchoChild> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve_echo_on(listener));
        Ok(EchoChild {
            child: None,
            task: Some(task),
            addr,
        })
    }

    async fn spawn() -> anyhow::Result<EchoChild> {
        let exe = std::env::current_exe().context("find the authd-bench binary")?;
        let mut child = tokio::process::Command::new(exe)
            .args(["echo", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start authd-bench echo")?;
        let stdout = child.stdout.take().context("echo stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the echo server did not start")??
            .context("the echo server exited")?;
        let addr = line
            .trim()
            .strip_prefix("echo listening on ")
            .context("unexpected echo output")?
            .parse()?;
        Ok(EchoChild {
            child: Some(child),
            task: None,
            addr,
        })
    }

    async fn stop(mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill().await;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(
        &self,
        request: tonic::Request<EchoMessage>,
    ) -> Result<tonic::Response<EchoMessage>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

/// `authd-bench echo`: serves the echo service until killed.
pub async fn serve_echo(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("echo listening on {}", listener.local_addr()?);
    serve_echo_on(listener).await
}

async fn serve_echo_on(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await?;
    Ok(())
}
