//! Prometheus metrics, served at `/metrics` (OpenMetrics text).
//!
//! The hot path (every RPC and HTTP request, every introspection) only adds
//! to relaxed atomics in tables laid out once: an RPC or a route is an index
//! into a static table, a status an index into a fixed array, so there is no
//! allocation, lock or label hashing per request. Labels are written only at
//! scrape time, by a `prometheus_client` collector, which also reads what
//! other parts keep anyway (cache counters, the pool's status, rate-limit
//! refusals) rather than copying it on every request.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::registry::Registry;

use crate::service::cache::IntrospectionCache;
use crate::service::throttle::Throttles;
use crate::store::Store;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: from 50µs (a warm
/// introspection) to 10s (the longest request timeout by default).
const BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// The same bounds in nanoseconds, for the comparison on the hot path.
const BUCKET_NANOS: [u64; 17] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A latency histogram of relaxed atomics; the last bucket is +Inf.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_NANOS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// What the exposition shows, or None if nothing was observed.
    fn snapshot(&self) -> Option<Snapshot> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return None;
        }
        let buckets = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts)
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        Some(Snapshot {
            sum,
            count,
            buckets,
        })
    }
}

/// A histogram at scrape time: the sum in seconds, the count, and each
/// bucket's upper bound with its own (not cumulative) count.
struct Snapshot {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

// ---- gRPC ----

/// authd's RPCs, and the standard services next to them, as the compiled
/// descriptor set declares them ([`crate::proto::surface`]): each has its
/// own row. Anything else (an unknown path a client made up) counts as
/// "other", so a client cannot grow the label set.
fn rpc_methods() -> &'static [&'static str] {
    &crate::proto::surface().rpcs
}

/// The row of "other": after every known RPC.
fn other_rpc() -> usize {
    rpc_methods().len()
}

/// gRPC status codes by number, named as tonic names them.
pub const GRPC_CODES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The index of an RPC path in `rpc_methods()` (or "other"): resolved once
/// per request, then used for every counter of that request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rpc(usize);

impl Rpc {
    pub fn from_path(path: &str) -> Rpc {
        let methods = rpc_methods();
        Rpc(methods
            .iter()
            .position(|m| *m == path)
            .unwrap_or(methods.len()))
    }

    /// The method's path, or "other".
    pub fn name(self) -> &'static str {
        rpc_methods().get(self.0).copied().unwrap_or("other")
    }
}

struct RpcStats {
    codes: [AtomicU64; GRPC_CODES.len()],
    latency: Histogram,
}

// ---- HTTP ----

/// The shim's routes, as the router declares them
/// ([`crate::http::route_paths`]). Requests that match none (404s of the
/// fallback) count as "unmatched": the raw path never becomes a label.
pub fn http_routes() -> &'static [&'static str] {
    crate::http::route_paths()
}

/// The row of "unmatched": after every route.
fn unmatched_route() -> usize {
    http_routes().len()
}
const HTTP_METHODS: [&str; 5] = ["GET", "POST", "DELETE", "HEAD", "other"];
/// Distinct statuses tracked per route and method; one route answers a
/// handful. Past this, a status counts as "other".
const STATUS_SLOTS: usize = 16;

/// A route and method, resolved once per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    route: usize,
    method: usize,
}

impl Route {
    /// `matched` is the route template axum matched, if any.
    pub fn new(matched: Option<&str>, method: &http::Method) -> Route {
        let route = matched
            .and_then(|m| http_routes().iter().position(|r| *r == m))
            .unwrap_or(unmatched_route());
        let method = match *method {
            http::Method::GET => 0,
            http::Method::POST => 1,
            http::Method::DELETE => 2,
            http::Method::HEAD => 3,
            _ => 4,
        };
        Route { route, method }
    }

    fn index(self) -> usize {
        self.route * HTTP_METHODS.len() + self.method
    }

    /// The route template, or "unmatched".
    pub fn template(self) -> &'static str {
        http_routes()
            .get(self.route)
            .copied()
            .unwrap_or("unmatched")
    }
}

struct RouteStats {
    /// Each slot is a status (0: free) and its count; a status claims a
    /// free slot once, with a compare-and-swap.
    statuses: [(AtomicU16, AtomicU64); STATUS_SLOTS],
    other_statuses: AtomicU64,
    latency: Histogram,
}

impl RouteStats {
    fn new() -> RouteStats {
        RouteStats {
            statuses: std::array::from_fn(|_| (AtomicU16::new(0), AtomicU64::new(0))),
            other_statuses: AtomicU64::new(0),
            latency: Histogram::new(),
        }
    }

    fn count(&self, status: u16) {
        for (slot, count) in &self.statuses {
            let current = slot.load(Ordering::Relaxed);
            let claimed = current == status
                || (current == 0
                    && match slot.compare_exchange(0, status, Ordering::Relaxed, Ordering::Relaxed)
                    {
                        Ok(_) => true,
                        Err(other) => other == status,
                    });
            if claimed {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.other_statuses.fetch_add(1, Ordering::Relaxed);
    }
}

// ---- what the service counts ----

/// How a token was obtained (RFC 6749 grant types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode = 0,
    ClientCredentials = 1,
    RefreshToken = 2,
}
const GRANTS: [&str; 3] = ["authorization_code", "client_credentials", "refresh_token"];

/// Why a login failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    InvalidCredentials = 0,
    RateLimited = 1,
    AccountDisabled = 2,
    /// Anything else: the database down, an internal error.
    Other = 3,
}
const LOGIN_FAILURES: [&str; 4] = [
    "invalid_credentials",
    "rate_limited",
    "account_disabled",
    "other",
];

/// A listener whose connections are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Http = 0,
    Grpc = 1,
}
const LISTENERS: [&str; 2] = ["http", "grpc"];

impl Listener {
    pub fn as_str(self) -> &'static str {
        LISTENERS[self as usize]
    }
}

/// Which deadline a connection missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionDeadline {
    /// No first request (TLS handshake, HTTP/2 preface, headers) in time.
    FirstRequest = 0,
    /// No request in flight for the idle timeout.
    Idle = 1,
}
const CONNECTION_DEADLINES: [&str; 2] = ["first_request", "idle"];

impl ConnectionDeadline {
    pub fn as_str(self) -> &'static str {
        CONNECTION_DEADLINES[self as usize]
    }
}

/// One listener's connections.
#[derive(Default)]
struct ConnectionStats {
    open: AtomicI64,
    refused: AtomicU64,
    timed_out: [AtomicU64; CONNECTION_DEADLINES.len()],
}

/// What the core reads at scrape time.
/// What the core's metrics are read from at scrape time.
pub struct CoreSources {
    pub store: Store,
    pub cache: Arc<IntrospectionCache>,
    pub throttles: Arc<Throttles>,
    pub cold_lookups: Arc<crate::service::cold_lookups::ColdLookups>,
}

/// The metrics of one authd process (or of one `Application` in tests):
/// cheap to clone, shared by the core and the in-process shim.
#[derive(Clone)]
pub struct Metrics(Arc<Stats>);

struct Stats {
    rpcs: Vec<RpcStats>,
    routes: Vec<RouteStats>,
    tokens_issued: [AtomicU64; GRANTS.len()],
    tokens_revoked: AtomicU64,
    password_hashes: AtomicU64,
    login_failures: [AtomicU64; LOGIN_FAILURES.len()],
    connections: [ConnectionStats; LISTENERS.len()],
    core: std::sync::OnceLock<CoreSources>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics of the HTTP shim only, until `attach_core` adds the core's.
    pub fn new() -> Metrics {
        Metrics(Arc::new(Stats {
            rpcs: (0..=other_rpc())
                .map(|_| RpcStats {
                    codes: std::array::from_fn(|_| AtomicU64::new(0)),
                    latency: Histogram::new(),
                })
                .collect(),
            routes: (0..(unmatched_route() + 1) * HTTP_METHODS.len())
                .map(|_| RouteStats::new())
                .collect(),
            tokens_issued: std::array::from_fn(|_| AtomicU64::new(0)),
            tokens_revoked: AtomicU64::new(0),
            password_hashes: AtomicU64::new(0),
            login_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            connections: Default::default(),
            core: std::sync::OnceLock::new(),
        }))
    }

    /// Adds the core's metrics: the gRPC ones, and what is read from the
    /// store, the cache and the rate limiters at scrape time.
    pub fn attach_core(&self, sources: CoreSources) {
        let _ = self.0.core.set(sources);
    }

    /// One RPC answered with `code` (a gRPC status number) after `elapsed`.
    pub fn rpc(&self, rpc: Rpc, code: i32, elapsed: Duration) {
        let stats = &self.0.rpcs[rpc.0];
        let code = usize::try_from(code)
            .ok()
            .filter(|c| *c < GRPC_CODES.len())
            .unwrap_or(2); // Unknown
        stats.codes[code].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(elapsed);
    }

    /// One HTTP request answered with `status` after `elapsed`.
    pub fn http(&self, route: Route, status: u16, elapsed: Duration) {
        let stats = &self.0.routes[route.index()];
        stats.count(status);
        stats.latency.observe(elapsed);
    }

    pub fn token_issued(&self, grant: Grant) {
        self.0.tokens_issued[grant as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_revoked(&self) {
        self.0.tokens_revoked.fetch_add(1, Ordering::Relaxed);
    }

    /// One argon2 hash or verification run (a login, known email or not; an
    /// account created; a password reset).
    pub fn password_hashed(&self) {
        self.0.password_hashes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn login_failed(&self, why: LoginFailure) {
        self.0.login_failures[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self, listener: Listener) {
        self.0.connections[listener as usize]
            .open
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, listener: Listener) {
        self.0.connections[listener as usize]
            .open
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection closed at once because --max-connections were open.
    pub fn connection_refused(&self, listener: Listener) {
        self.0.connections[listener as usize]
            .refused
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_timed_out(&self, listener: Listener, deadline: ConnectionDeadline) {
        self.0.connections[listener as usize].timed_out[deadline as usize]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("authd");
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

type NoExemplar = Option<&'static Exemplar<NoLabelSet, u64>>;

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            metric.encode_counter(&value, NoExemplar::None)?;
        } else {
            metric
                .encode_family(&labels)?
                .encode_counter(&value, NoExemplar::None)?;
        }
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn histograms<'h>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, &'h Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in samples {
        if let Some(h) = histogram.snapshot() {
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        }
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &*self.0;
        let routes = || {
            stats.routes.iter().enumerate().map(|(i, s)| {
                let route = http_routes()
                    .get(i / HTTP_METHODS.len())
                    .copied()
                    .unwrap_or("unmatched");
                let method = HTTP_METHODS[i % HTTP_METHODS.len()];
                (route, method, s)
            })
        };
        let mut http_samples = Vec::new();
        for (route, method, s) in routes() {
            let labels = |status: String| {
                vec![
                    ("route", route.to_owned()),
                    ("method", method.to_owned()),
                    ("status", status),
                ]
            };
            for (slot, count) in &s.statuses {
                let status = slot.load(Ordering::Relaxed);
                let count = count.load(Ordering::Relaxed);
                if status != 0 && count > 0 {
                    http_samples.push((labels(status.to_string()), count));
                }
            }
            let other = s.other_statuses.load(Ordering::Relaxed);
            if other > 0 {
                http_samples.push((labels("other".into()), other));
            }
        }
        counter(
            &mut encoder,
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            http_samples,
        )?;
        histograms(
            &mut encoder,
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head), by route and method.",
            routes().map(|(route, method, s)| {
                (
                    vec![("route", route.to_owned()), ("method", method.to_owned())],
                    &s.latency,
                )
            }),
        )?;
        let listener_label = |i: usize| vec![("listener", LISTENERS[i].to_owned())];
        {
            let mut open = encoder.encode_descriptor(
                "connections_open",
                "Connections open (lingering ones included), by listener.",
                None,
                MetricType::Gauge,
            )?;
            for (i, c) in stats.connections.iter().enumerate() {
                open.encode_family(&listener_label(i))?
                    .encode_gauge(&c.open.load(Ordering::Relaxed))?;
            }
        }
        counter(
            &mut encoder,
            "connections_refused",
            "Connections closed as soon as accepted because --max-connections were open, by listener.",
            stats
                .connections
                .iter()
                .enumerate()
                .map(|(i, c)| (listener_label(i), c.refused.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut encoder,
            "connections_timed_out",
            "Connections closed for missing a deadline (first_request or idle), by listener.",
            stats.connections.iter().enumerate().flat_map(|(i, c)| {
                CONNECTION_DEADLINES
                    .iter()
                    .zip(&c.timed_out)
                    .map(move |(deadline, n)| {
                        let mut labels = listener_label(i);
                        labels.push(("deadline", (*deadline).to_owned()));
                        (labels, n.load(Ordering::Relaxed))
                    })
            }),
        )?;

        let Some(core) = stats.core.get() else {
            return Ok(());
        };
        let rpc_name = |i: usize| Rpc(i).name().trim_start_matches('/').to_owned();
        let mut rpc_samples = Vec::new();
        for (i, s) in stats.rpcs.iter().enumerate() {
            for (code, count) in GRPC_CODES.iter().zip(&s.codes) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    rpc_samples.push((
                        vec![("method", rpc_name(i)), ("code", (*code).to_owned())],
                        count,
                    ));
                }
            }
        }
        counter(
            &mut encoder,
            "grpc_requests",
            "RPCs answered, by method and gRPC status code.",
            rpc_samples,
        )?;
        histograms(
            &mut encoder,
            "grpc_request_duration_seconds",
            "Time to answer an RPC (to the response head), by method.",
            stats
                .rpcs
                .iter()
                .enumerate()
                .map(|(i, s)| (vec![("method", rpc_name(i))], &s.latency)),
        )?;

        let cache = core.cache.stats();
        counter(
            &mut encoder,
            "cache_hits",
            "Lookups answered from the introspection cache (token: by token digest; client: client authentication).",
            [
                (vec![("cache", "token".to_owned())], cache.hits),
                (vec![("cache", "client".to_owned())], cache.client_hits),
            ],
        )?;
        counter(
            &mut encoder,
            "cache_misses",
            "Lookups the introspection cache could not answer (while it is in use).",
            [
                (vec![("cache", "token".to_owned())], cache.misses),
                (vec![("cache", "client".to_owned())], cache.client_misses),
            ],
        )?;
        let mut entries = encoder.encode_descriptor(
            "cache_entries",
            "Entries in the caches.",
            None,
            MetricType::Gauge,
        )?;
        for (name, n) in [("token", cache.tokens), ("client", cache.clients)] {
            entries
                .encode_family(&[("cache", name)])?
                .encode_gauge(&i64::try_from(n).unwrap_or(i64::MAX))?;
        }

        gauge(
            &mut encoder,
            "cache_serving_during_outage",
            "1 while introspection answers from the cache because PostgreSQL is unreachable (--serve-cached-during-outage).",
            i64::from(core.cache.is_serving_during_outage()),
        )?;

        use crate::service::cold_lookups::Lookup;
        let cold = core.cold_lookups.stats();
        let mut waiting = encoder.encode_descriptor(
            "cold_lookups_waiting",
            "Cache misses waiting for a turn at the database now (token: token lookups; client: authenticating an uncached client).",
            None,
            MetricType::Gauge,
        )?;
        for (lookup, n) in Lookup::ALL.iter().zip(cold.waiting) {
            waiting
                .encode_family(&[("lookup", lookup.as_str())])?
                .encode_gauge(&i64::try_from(n).unwrap_or(i64::MAX))?;
        }
        counter(
            &mut encoder,
            "cold_lookups_timed_out",
            "Cache misses that waited past their bound for a turn at the database and were answered unavailable.",
            Lookup::ALL
                .iter()
                .zip(cold.timed_out)
                .map(|(lookup, n)| (vec![("lookup", lookup.as_str().to_owned())], n)),
        )?;

        counter(
            &mut encoder,
            "cold_lookups_slowed",
            "Token lookups that waited for their client's --cold-lookup-limit-per-client.",
            [(vec![], cold.slowed)],
        )?;
        counter(
            &mut encoder,
            "cold_lookups_rate_limited",
            "Token lookups refused because their client's --cold-lookup-limit-per-client would have kept them waiting too long.",
            [(vec![], cold.rate_limited)],
        )?;

        let lookups = core.store.token_lookup_stats();
        counter(
            &mut encoder,
            "token_lookup_statements",
            "Statements that looked up tokens which missed the cache; misses that arrive together share one.",
            [(vec![], lookups.statements)],
        )?;
        counter(
            &mut encoder,
            "token_lookup_keys",
            "Tokens looked up by those statements (keys per statement: how much they were shared).",
            [(vec![], lookups.keys)],
        )?;

        let pool = core.store.pool_status();
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauge(
            &mut encoder,
            "db_pool_max",
            "Most PostgreSQL connections the pool may open.",
            as_gauge(pool.max_size),
        )?;
        gauge(
            &mut encoder,
            "db_pool_size",
            "PostgreSQL connections the pool holds, in use or idle.",
            as_gauge(pool.size),
        )?;
        gauge(
            &mut encoder,
            "db_pool_available",
            "Idle PostgreSQL connections in the pool.",
            as_gauge(pool.available),
        )?;
        gauge(
            &mut encoder,
            "db_pool_waiting",
            "Requests waiting for a PostgreSQL connection.",
            as_gauge(pool.waiting),
        )?;

        counter(
            &mut encoder,
            "tokens_issued",
            "Access tokens issued, by grant type.",
            GRANTS.iter().zip(&stats.tokens_issued).map(|(g, n)| {
                (
                    vec![("grant_type", (*g).to_owned())],
                    n.load(Ordering::Relaxed),
                )
            }),
        )?;
        counter(
            &mut encoder,
            "tokens_revoked",
            "Tokens revoked by their client (RFC 7009), each with its grant.",
            [(Vec::new(), stats.tokens_revoked.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut encoder,
            "password_hashes",
            "argon2 hashes and verifications run: one per login, whether or not the email exists, and one per account created or password reset.",
            [(Vec::new(), stats.password_hashes.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut encoder,
            "login_failures",
            "Failed logins, by reason.",
            LOGIN_FAILURES
                .iter()
                .zip(&stats.login_failures)
                .map(|(r, n)| (vec![("reason", (*r).to_owned())], n.load(Ordering::Relaxed))),
        )?;
        let throttles = &core.throttles;
        counter(
            &mut encoder,
            "rate_limited",
            "Attempts refused by a rate limit, by limit.",
            [
                ("login_by_ip", &throttles.login_by_ip),
                ("login_by_account", &throttles.login_by_account),
                ("app_registration_by_ip", &throttles.app_registration_by_ip),
            ]
            .into_iter()
            .map(|(name, limiter)| (vec![("limit", name.to_owned())], limiter.refused())),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_and_routes_resolve_to_their_slots_and_unknown_ones_to_one_label() {
        assert_eq!(
            Rpc::from_path("/authd.v1.OAuth/Introspect").name(),
            "/authd.v1.OAuth/Introspect"
        );
        assert_eq!(Rpc::from_path("/made.up/Path").name(), "other");
        // Every RPC of the descriptor set has a row of its own, the
        // operators' ones included (they were once all "other").
        for rpc in &crate::proto::surface().rpcs {
            assert_eq!(Rpc::from_path(rpc).name(), *rpc);
        }
        assert_eq!(
            Rpc::from_path("/authd.v1.Admin/SetAppAdminScopes").name(),
            "/authd.v1.Admin/SetAppAdminScopes"
        );
        let route = Route::new(Some("/oauth/token"), &http::Method::POST);
        assert_eq!(http_routes()[route.route], "/oauth/token");
        assert_eq!(
            Route::new(None, &http::Method::GET).route,
            unmatched_route()
        );
        assert_eq!(
            Route::new(Some("/nope"), &http::Method::GET).route,
            unmatched_route()
        );
    }

    #[test]
    fn the_exposition_has_counters_and_cumulative_buckets() {
        let metrics = Metrics::new();
        let route = Route::new(Some("/oauth/token"), &http::Method::POST);
        metrics.http(route, 200, Duration::from_micros(40));
        metrics.http(route, 200, Duration::from_millis(3));
        metrics.http(route, 401, Duration::from_millis(3));
        let text = metrics.render();
        assert!(text.contains(
            "authd_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "authd_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"401\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "authd_http_request_duration_seconds_count{route=\"/oauth/token\",method=\"POST\"} 3\n"
        ), "{text}");
        assert!(text.ends_with("# EOF\n"));
        // No core attached: no gRPC metrics.
        assert!(!text.contains("authd_grpc_requests"), "{text}");
    }

    #[test]
    fn statuses_past_the_slots_count_as_other() {
        let stats = RouteStats::new();
        for status in 100..100 + STATUS_SLOTS as u16 + 3 {
            stats.count(status);
        }
        stats.count(100);
        assert_eq!(stats.other_statuses.load(Ordering::Relaxed), 3);
        assert_eq!(stats.statuses[0].1.load(Ordering::Relaxed), 2);
    }
}
