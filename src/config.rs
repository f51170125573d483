//! Configuration, from flags and environment variables (clap reads both;
//! a flag wins over its variable). Every setting has a default that works
//! on a developer's machine: `authd` alone serves gRPC on 127.0.0.1:50051
//! over a private PostgreSQL it starts itself.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::domain::client_ip::TrustedProxies;
use crate::service::key_encryption::KeyEncryptionKey;
use crate::service::throttle::{RateLimits, RateSetting};
use crate::service::{Lifetimes, ServiceConfig};

/// Where the database is and how to talk to it.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// PostgreSQL to use, e.g. postgres://authd@db/authd. Without it, authd
    /// starts a private PostgreSQL from the machine's server binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Data directory of the private PostgreSQL (used without DATABASE_URL).
    /// Default: $XDG_DATA_HOME/authd/postgres, or /var/lib/authd/postgres as root.
    #[arg(long, env = "AUTHD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// OS user that runs the private PostgreSQL when authd runs as root
    /// (PostgreSQL refuses to run as root).
    #[arg(long, env = "AUTHD_PG_USER", default_value = "postgres")]
    pub pg_user: String,

    /// Largest number of pooled PostgreSQL connections.
    #[arg(long, env = "AUTHD_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// How long a request waits for a database connection, and the longest
    /// any statement may run, before failing as unavailable.
    #[arg(long, env = "AUTHD_DB_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_timeout: Duration,

    /// File holding the key (32 bytes, base64 or raw) that seals the JWT
    /// signing keys in the database; every replica needs the same one.
    /// AUTHD_KEY_ENCRYPTION_KEY may hold the key itself instead. Without
    /// either: key-encryption.key beside the data directory. A file that
    /// does not exist is created (mode 0600) with a new key.
    #[arg(long, env = "AUTHD_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,
}

/// The environment variable that may hold the key-encryption key itself
/// (base64): read from the environment only, never a flag, so that it
/// shows in no process list.
pub const KEY_ENCRYPTION_KEY_ENV: &str = "AUTHD_KEY_ENCRYPTION_KEY";

/// The key-encryption key file's name, beside the data directory.
const KEY_ENCRYPTION_KEY_FILE: &str = "key-encryption.key";

/// Settings of `authd serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address of the gRPC listener.
    #[arg(long, env = "AUTHD_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    #[command(flatten)]
    pub grpc_tls: crate::tls::GrpcTlsArgs,

    /// Issuer identifier: `iss` of introspection responses and JWTs, and the
    /// public base URL of the HTTP API (metadata, account URLs). Cookies
    /// are Secure when it is https. Default: http://<--http-addr>, with
    /// 127.0.0.1 (or [::1]) for an unspecified address such as 0.0.0.0;
    /// http://127.0.0.1:8080 when --http-addr is off. Port 0 is named as
    /// given (the issuer is fixed before binding): give --issuer with it.
    #[arg(long, env = "AUTHD_ISSUER")]
    pub issuer: Option<String>,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Lifetime of authorization codes.
    #[arg(long, env = "AUTHD_CODE_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub code_ttl: Duration,

    /// Lifetime of opaque access tokens; "never" (the default, as Mastodon)
    /// or a duration such as 1h. With a lifetime, refresh tokens are issued.
    #[arg(long, env = "AUTHD_ACCESS_TOKEN_TTL", default_value = "never", value_parser = parse_optional_duration)]
    pub access_token_ttl: OptionalDuration,

    /// Lifetime of JWT access tokens (they always expire).
    #[arg(long, env = "AUTHD_JWT_ACCESS_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub jwt_access_token_ttl: Duration,

    /// Lifetime of refresh tokens; "never" or a duration.
    #[arg(long, env = "AUTHD_REFRESH_TOKEN_TTL", default_value = "30days", value_parser = parse_optional_duration)]
    pub refresh_token_ttl: OptionalDuration,

    /// Lifetime of login sessions.
    #[arg(long, env = "AUTHD_SESSION_TTL", default_value = "14days", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Most tokens the in-memory introspection cache holds (about 190
    /// bytes each at a million: `bench/all.sh --only memory`); 0 turns the
    /// cache off, so every introspection reads PostgreSQL.
    #[arg(long, env = "AUTHD_CACHE_CAPACITY", default_value_t = 1_000_000)]
    pub cache_capacity: usize,

    /// When set, introspection may answer from the cache for at most this
    /// long after PostgreSQL became unreachable; off by default.
    #[arg(long, env = "AUTHD_SERVE_CACHED_DURING_OUTAGE", value_parser = humantime::parse_duration)]
    pub serve_cached_during_outage: Option<Duration>,

    /// Most tokens that missed the cache (unknown, forged or cold) looked
    /// up at once, one client at most half of them. They share at most two
    /// statements at a time (misses that arrive together are looked up
    /// together), so the rest of the pool stays free for everything else.
    #[arg(long, env = "AUTHD_COLD_LOOKUP_CONCURRENCY", default_value_t = 64)]
    pub cold_lookup_concurrency: usize,

    /// Most password hashes (argon2id, about 19 MiB and tens of ms each)
    /// computed at once. Default: one fewer than the cores, at least one, so
    /// that a login storm leaves a core for introspection.
    #[arg(long, env = "AUTHD_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// Login attempts allowed per client address, as COUNT/PERIOD (a burst
    /// of COUNT, then one more every PERIOD/COUNT), or "off". Successful
    /// logins do not count. Counted by each replica on its own.
    #[arg(long, env = "AUTHD_LOGIN_LIMIT_PER_IP", default_value = "25/5m")]
    pub login_limit_per_ip: RateSetting,

    /// Login attempts allowed per email address (known or not), or "off".
    #[arg(long, env = "AUTHD_LOGIN_LIMIT_PER_ACCOUNT", default_value = "25/1h")]
    pub login_limit_per_account: RateSetting,

    /// App registrations allowed per client address, or "off".
    #[arg(
        long,
        env = "AUTHD_APP_REGISTRATION_LIMIT_PER_IP",
        default_value = "5/10m"
    )]
    pub app_registration_limit_per_ip: RateSetting,

    /// Cache misses (tokens looked up in the database) allowed per client
    /// that is not a resource server, as COUNT/PERIOD, or "off". A call
    /// over it waits for its turn (up to 5 s, then RESOURCE_EXHAUSTED), so
    /// a client flooding unknown tokens slows only itself. Cache hits do
    /// not count, nor do resource servers.
    #[arg(
        long,
        env = "AUTHD_COLD_LOOKUP_LIMIT_PER_CLIENT",
        default_value = "2000/1s"
    )]
    pub cold_lookup_limit_per_client: RateSetting,

    /// The longest any gRPC call may take before it is answered
    /// UNAVAILABLE (and so any HTTP call, which the shim answers 503).
    /// Default: twice --db-timeout. It bounds requests even when
    /// PostgreSQL hangs instead of going away.
    #[arg(long, env = "AUTHD_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,

    /// How often expired codes, sessions and tokens (and revoked ones a
    /// day old) are deleted; "never" turns purging off.
    #[arg(long, env = "AUTHD_PURGE_INTERVAL", default_value = "10m", value_parser = parse_optional_duration)]
    pub purge_interval: OptionalDuration,

    /// How often the health service checks PostgreSQL.
    #[arg(long, env = "AUTHD_HEALTH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,

    /// On SIGINT/SIGTERM, how long in-flight requests get to finish before
    /// connections are closed.
    #[arg(long, env = "AUTHD_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// The door's policy: a TOML file of the scopes each backend route
    /// needs (see "Putting authd in front of a backend" in the README).
    /// Default: Mastodon's REST API, built in. `authd policy check FILE`
    /// validates one and prints its table.
    #[arg(long, env = "AUTHD_POLICY")]
    pub policy: Option<PathBuf>,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Reads and validates a policy file, naming it in any error.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<crate::domain::policy::Policy> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(crate::domain::policy::MAX_POLICY_BYTES as u64 + 1)
                .read_to_string(&mut text)
        })
        .map_err(|e| anyhow::anyhow!("reading the policy {}: {e} (--policy)", path.display()))?;
    crate::domain::policy::Policy::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("the policy {} is not valid: {e}", path.display()))
}

/// Settings of the HTTP shim.
#[derive(Args, Clone, Debug)]
pub struct HttpArgs {
    /// Address of the HTTP listener (the Mastodon-compatible REST/OAuth
    /// API); "off" serves gRPC only.
    #[arg(long, env = "AUTHD_HTTP_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_optional_addr)]
    pub http_addr: OptionalAddr,

    /// Largest HTTP request body, in bytes; larger ones get 413.
    #[arg(long, env = "AUTHD_HTTP_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub http_body_limit: usize,

    /// How long the shim waits for the core before answering 503.
    #[arg(long, env = "AUTHD_UPSTREAM_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,

    /// How long a client may take to send a request's headers, and then
    /// its body, before the connection is closed (headers) or answered
    /// 408 (body): slow clients cannot hold connections open.
    #[arg(long, env = "AUTHD_HTTP_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_request_timeout: Duration,

    /// Proxies whose X-Forwarded-For (HTTP) or x-forwarded-for metadata
    /// (gRPC) names the client, for per-address rate limits: addresses and
    /// CIDR ranges, comma-separated, or "none".
    #[arg(long, env = "AUTHD_TRUSTED_PROXIES", default_value = "127.0.0.0/8,::1")]
    pub trusted_proxies: TrustedProxies,

    /// The backend authd is the door of: every HTTP request that is not
    /// authd's own (OAuth, apps, verify_credentials, ...) is checked
    /// against the policy and forwarded here (an http:// URL, no path),
    /// with the caller's identity in X-Authd-* headers. Default: none.
    #[arg(long, env = "AUTHD_UPSTREAM_API", value_parser = crate::http::door::UpstreamApi::parse)]
    pub upstream_api: Option<axum::http::Uri>,

    /// Pass the client's token (Authorization, the access_token parameter)
    /// on to --upstream-api; by default the backend never sees it.
    #[arg(long, env = "AUTHD_UPSTREAM_API_PASS_TOKEN")]
    pub upstream_api_pass_token: bool,

    /// Largest request body forwarded to --upstream-api, in bytes (streamed,
    /// not buffered); larger ones get 413. Mastodon's own nginx allows 99 MB.
    #[arg(long, env = "AUTHD_UPSTREAM_API_BODY_LIMIT", default_value_t = 100 * 1024 * 1024)]
    pub upstream_api_body_limit: usize,

    /// How long --upstream-api may take to start its answer before the
    /// client gets 504 (its body may then take as long as it likes:
    /// streaming answers).
    #[arg(long, env = "AUTHD_UPSTREAM_API_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_api_timeout: Duration,

    /// Address of a listener of its own for GET /metrics (Prometheus), to
    /// keep it off a public port. Default: none, and /metrics is served on
    /// the HTTP listener (with --http-addr off, only here).
    #[arg(long, env = "AUTHD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub tls: crate::tls::HttpTlsArgs,
}

/// Bounds on the connections of each listener (HTTP and gRPC alike).
#[derive(Args, Clone, Debug)]
pub struct ConnectionArgs {
    /// Most connections each listener keeps open at once; more are
    /// accepted and closed at once (and counted in
    /// authd_connections_refused_total).
    #[arg(long, env = "AUTHD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// How long a new connection may take to finish its TLS handshake and
    /// HTTP/2 preface and send its first request's headers before it is
    /// closed: a client that connects and sends nothing holds nothing.
    #[arg(long, env = "AUTHD_CONNECTION_FIRST_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connection_first_request_timeout: Duration,

    /// How long a connection with no request in flight stays open (an
    /// HTTP/2 one is closed with GOAWAY). Default: 75s, as nginx, longer
    /// than the minute after which most clients stop reusing a connection.
    #[arg(long, env = "AUTHD_CONNECTION_IDLE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub connection_idle_timeout: Duration,
}

impl ConnectionArgs {
    pub fn limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            max_connections: self.max_connections.max(1),
            first_request_timeout: self.connection_first_request_timeout,
            idle_timeout: self.connection_idle_timeout,
        }
    }
}

/// A socket address, or none ("off").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalAddr(pub Option<SocketAddr>);

fn parse_optional_addr(s: &str) -> Result<OptionalAddr, String> {
    match s.trim() {
        "off" | "none" | "" => Ok(OptionalAddr(None)),
        other => other
            .parse()
            .map(|a| OptionalAddr(Some(a)))
            .map_err(|e| format!("{e} (or \"off\")")),
    }
}

/// Settings of `authd shim`: the HTTP shim alone, in front of a remote core.
#[derive(Args, Clone, Debug)]
pub struct ShimArgs {
    /// The core's gRPC URL.
    #[arg(long, env = "AUTHD_UPSTREAM", default_value = "http://127.0.0.1:50051")]
    pub upstream: String,

    #[command(flatten)]
    pub upstream_tls: crate::tls::UpstreamTlsArgs,

    /// Public base URL (see `authd serve --issuer`). Default:
    /// http://<--http-addr>, as for `authd serve`.
    #[arg(long, env = "AUTHD_ISSUER")]
    pub issuer: Option<String>,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// On SIGINT/SIGTERM, how long in-flight requests get to finish.
    #[arg(long, env = "AUTHD_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// What the HTTP listener needs.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub shim: crate::http::ShimConfig,
    /// TLS on the listener; `None`: plaintext.
    pub tls: Option<crate::tls::HttpServerTls>,
    /// The bounds on the listener's connections.
    pub connections: crate::connections::ConnectionLimits,
}

/// The issuer when none is given: what a client on this host reaches the
/// HTTP listener by. An unspecified address (0.0.0.0, [::]) is named by its
/// loopback address, the only one of its addresses known to work here.
/// Without an HTTP listener, the old fixed default.
pub fn default_issuer(http_addr: Option<SocketAddr>) -> String {
    let Some(mut addr) = http_addr else {
        return "http://127.0.0.1:8080".to_owned();
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // SocketAddr's Display brackets IPv6 literals, as a URL needs.
    format!("http://{addr}")
}

/// Why an explicit issuer cannot be the HTTP listener's own address, when
/// nothing between them could explain it: no trusted proxy is configured
/// (a proxy may end TLS or listen on another port). Empty when it can be.
pub fn issuer_mismatches(
    issuer: &str,
    http_addr: SocketAddr,
    http_tls: bool,
    trusted_proxies: &TrustedProxies,
) -> Vec<String> {
    if !trusted_proxies.is_empty() {
        return Vec::new();
    }
    let Ok(url) = url::Url::parse(issuer) else {
        return vec![format!("--issuer {issuer:?} is not a URL")];
    };
    let mut reasons = Vec::new();
    let listener_scheme = if http_tls { "https" } else { "http" };
    if url.scheme() != listener_scheme {
        reasons.push(format!(
            "--issuer {issuer} is {}, but the HTTP listener on {http_addr} speaks {listener_scheme}",
            url.scheme()
        ));
    }
    // Port 0 is chosen at bind time: nothing to compare yet.
    if http_addr.port() != 0
        && let Some(port) = url.port_or_known_default()
        && port != http_addr.port()
    {
        reasons.push(format!(
            "--issuer {issuer} names port {port}, but the HTTP listener is on {http_addr}"
        ));
    }
    reasons
}

impl HttpArgs {
    /// Logs a warning for each reason `issuer` cannot be this listener's
    /// address (see [`issuer_mismatches`]); clients would follow the
    /// metadata and the account URLs to a port nothing serves.
    pub fn warn_about_issuer(&self, issuer: &str) {
        let Some(addr) = self.http_addr.0 else {
            return;
        };
        let tls = self.tls.http_tls_cert.is_some();
        for reason in issuer_mismatches(issuer, addr, tls, &self.trusted_proxies) {
            tracing::warn!(
                issuer,
                http_addr = %addr,
                "{reason}; no --trusted-proxies is configured to stand between them"
            );
        }
    }

    /// The issuer: the one given, or the listener's (see [`default_issuer`]).
    /// An explicit one that cannot be the listener's is warned about.
    pub fn issuer(&self, given: Option<&str>) -> String {
        match given {
            Some(issuer) => {
                self.warn_about_issuer(issuer);
                issuer.to_owned()
            }
            None => default_issuer(self.http_addr.0),
        }
    }

    /// The listener's settings, `None` when it is off. Its TLS files are
    /// read here, so that a bad one stops authd before anything starts.
    pub fn config(
        &self,
        public_url: &str,
        connections: crate::connections::ConnectionLimits,
    ) -> anyhow::Result<Option<HttpConfig>> {
        let Some(addr) = self.http_addr.0 else {
            return Ok(None);
        };
        Ok(Some(HttpConfig {
            addr,
            tls: self.tls.load()?,
            connections,
            shim: crate::http::ShimConfig {
                public_url: public_url.trim_end_matches('/').to_owned(),
                body_limit: self.http_body_limit,
                upstream_timeout: self.upstream_timeout,
                request_timeout: self.http_request_timeout,
                trusted_proxies: self.trusted_proxies.clone(),
                upstream_api: self.upstream_api.clone().map(|base| {
                    crate::http::door::UpstreamApi {
                        base,
                        pass_token: self.upstream_api_pass_token,
                        body_limit: self.upstream_api_body_limit,
                        timeout: self.upstream_api_timeout,
                    }
                }),
            },
        }))
    }
}

/// A duration, or none ("never").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    match s.trim() {
        "never" | "none" | "0" | "" => Ok(OptionalDuration(None)),
        other => humantime::parse_duration(other)
            .map(|d| OptionalDuration(Some(d)))
            .map_err(|e| format!("{e} (or \"never\")")),
    }
}

/// What the database connection is.
#[derive(Clone, Debug)]
pub enum DatabaseConfig {
    /// An existing PostgreSQL.
    Connect(Box<tokio_postgres::Config>),
    /// A private PostgreSQL that authd starts and stops.
    Embedded(crate::embedded_postgres::EmbeddedPostgresOptions),
}

/// Everything `Application::build` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    /// TLS on the gRPC listener; `None`: plaintext.
    pub grpc_tls: Option<crate::tls::GrpcServerTls>,
    /// The bounds on the gRPC listener's connections.
    pub grpc_connections: crate::connections::ConnectionLimits,
    /// The HTTP shim, when served alongside.
    pub http: Option<HttpConfig>,
    pub database: DatabaseConfig,
    pub db_pool_size: usize,
    pub db_timeout: Duration,
    /// Proxies whose forwarded client address the gRPC listener believes.
    pub trusted_proxies: TrustedProxies,
    /// The longest any RPC may take.
    pub request_timeout: Duration,
    /// How often expired rows are purged; `None`: never.
    pub purge_interval: Option<Duration>,
    pub service: ServiceConfig,
    pub health_interval: Duration,
    pub shutdown_grace: Duration,
    /// A listener of its own for /metrics; `None`: on the HTTP listener.
    pub metrics_addr: Option<SocketAddr>,
}

impl DatabaseArgs {
    /// The key-encryption key: AUTHD_KEY_ENCRYPTION_KEY, else the file of
    /// --key-encryption-key-file, else the default file beside the data
    /// directory, created with a new random key on first start.
    pub fn key_encryption_key(&self) -> anyhow::Result<KeyEncryptionKey> {
        if let Some(value) = std::env::var_os(KEY_ENCRYPTION_KEY_ENV) {
            return KeyEncryptionKey::parse(value.as_encoded_bytes()).ok_or_else(|| {
                anyhow::anyhow!("{KEY_ENCRYPTION_KEY_ENV} must hold 32 bytes in base64")
            });
        }
        // A file that does not exist yet is made: the first start of a
        // new installation (a key that then does not open the database's
        // signing keys stops start-up, naming the flag).
        let path = match &self.key_encryption_key_file {
            Some(path) => path.clone(),
            None => {
                let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
                data_dir.parent().map_or_else(
                    || PathBuf::from(KEY_ENCRYPTION_KEY_FILE),
                    |p| p.join(KEY_ENCRYPTION_KEY_FILE),
                )
            }
        };
        match read_key_file(&path) {
            Ok(key) => Ok(key),
            Err(_) if !path.exists() => create_key_file(&path),
            Err(e) => Err(e),
        }
    }

    pub fn database_config(&self) -> anyhow::Result<DatabaseConfig> {
        match &self.database_url {
            Some(url) => Ok(DatabaseConfig::Connect(Box::new(url.parse().map_err(
                |e| {
                    anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL connection string: {e}")
                },
            )?))),
            None => Ok(DatabaseConfig::Embedded(
                crate::embedded_postgres::EmbeddedPostgresOptions {
                    data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
                    durable: true,
                    run_as: Some(self.pg_user.clone()),
                    port: 5432,
                    max_connections: u32::try_from(self.db_pool_size * 2 + 10).unwrap_or(100),
                },
            )),
        }
    }
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let issuer = self.http.issuer(self.issuer.as_deref());
        let mut service = ServiceConfig::new(issuer.clone());
        service.key_encryption_key = self.database.key_encryption_key()?;
        service.lifetimes = Lifetimes {
            authorization_code: self.code_ttl,
            access_token: self.access_token_ttl.0,
            jwt_access_token: self.jwt_access_token_ttl,
            refresh_token: self.refresh_token_ttl.0,
            session: self.session_ttl,
        };
        service.cache_capacity = self.cache_capacity;
        service.serve_cached_during_outage = self.serve_cached_during_outage;
        service.cold_lookup_concurrency = self.cold_lookup_concurrency.max(1);
        service.rate_limits = RateLimits {
            login_per_ip: self.login_limit_per_ip.0,
            login_per_account: self.login_limit_per_account.0,
            app_registration_per_ip: self.app_registration_limit_per_ip.0,
            cold_lookups_per_client: self.cold_lookup_limit_per_client.0,
        };
        if let Some(n) = self.password_hash_concurrency {
            service.password_hash_concurrency = n.max(1);
        }
        if let Some(path) = &self.policy {
            service.policy = std::sync::Arc::new(load_policy(path)?);
        }
        let request_timeout = self.request_timeout.unwrap_or(self.database.db_timeout * 2);
        Ok(Config {
            grpc_addr: self.grpc_addr,
            // Read first: a bad file stops authd before PostgreSQL starts.
            grpc_tls: self.grpc_tls.load()?,
            grpc_connections: self.connections.limits(),
            http: self.http.config(&issuer, self.connections.limits())?,
            database: self.database.database_config()?,
            db_pool_size: self.database.db_pool_size,
            db_timeout: self.database.db_timeout,
            trusted_proxies: self.http.trusted_proxies.clone(),
            request_timeout,
            purge_interval: self.purge_interval.0,
            service,
            health_interval: self.health_interval,
            shutdown_grace: self.shutdown_grace,
            metrics_addr: self.http.metrics_addr,
        })
    }
}

fn read_key_file(path: &std::path::Path) -> anyhow::Result<KeyEncryptionKey> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "reading the key-encryption key {}: {e} (--key-encryption-key-file)",
            path.display()
        )
    })?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the key-encryption key file is readable by other users; chmod 600 it");
    }
    KeyEncryptionKey::parse(&bytes).ok_or_else(|| {
        anyhow::anyhow!(
            "the key-encryption key {} must hold 32 bytes, in base64 or raw",
            path.display()
        )
    })
}

/// A new key in a new file, mode 0600. Two processes starting at once:
/// the second finds the file the first made (create_new) and reads it.
fn create_key_file(path: &std::path::Path) -> anyhow::Result<KeyEncryptionKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = KeyEncryptionKey::generate();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            writeln!(file, "{}", key.to_base64())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created the key-encryption key that seals the JWT signing keys: back it up, and give every replica the same one (--key-encryption-key-file)");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(anyhow::anyhow!(
            "creating the key-encryption key {}: {e}",
            path.display()
        )),
    }
}

/// Root's home is usually closed to other users, and PostgreSQL runs as
/// another user when authd runs as root, so root gets a system directory.
pub fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/authd/postgres");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("authd/postgres")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_issuer_is_the_http_listeners_address() {
        assert_eq!(
            default_issuer(Some(addr("127.0.0.1:9000"))),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            default_issuer(Some(addr("0.0.0.0:9000"))),
            "http://127.0.0.1:9000"
        );
        assert_eq!(default_issuer(Some(addr("[::]:9000"))), "http://[::1]:9000");
        assert_eq!(
            default_issuer(Some(addr("[2001:db8::1]:80"))),
            "http://[2001:db8::1]:80"
        );
        assert_eq!(default_issuer(None), "http://127.0.0.1:8080");
    }

    #[test]
    fn an_issuer_that_cannot_be_the_listener_is_found_only_without_proxies() {
        let none = TrustedProxies::none();
        let listener = addr("127.0.0.1:9000");
        assert!(issuer_mismatches("http://127.0.0.1:9000", listener, false, &none).is_empty());
        assert!(issuer_mismatches("http://localhost:9000/", listener, false, &none).is_empty());
        assert!(issuer_mismatches("https://a.example:9000", listener, true, &none).is_empty());
        // Scheme, port, or both.
        assert_eq!(
            issuer_mismatches("https://a.example:9000", listener, false, &none).len(),
            1
        );
        assert_eq!(
            issuer_mismatches("http://a.example:8080", listener, false, &none).len(),
            1
        );
        assert_eq!(
            issuer_mismatches("https://a.example", listener, false, &none).len(),
            2
        );
        // Port 0 is not known before binding.
        assert!(
            issuer_mismatches("http://a.example", addr("127.0.0.1:0"), false, &none).is_empty()
        );
        // A proxy may end TLS and listen elsewhere.
        assert!(
            issuer_mismatches(
                "https://a.example",
                listener,
                false,
                &TrustedProxies::loopback()
            )
            .is_empty()
        );
    }
}
