//! `authd-bench cache-memory`: what one cached token costs a running authd,
//! measured from outside, as the RSS difference over N cached tokens.
//!
//! 1. Registers an app over gRPC and makes it a resource server (see
//!    `make_resource_server`), so that its N cache misses are not held to
//!    the per-client cold-lookup rate.
//! 2. Seeds N user tokens straight into PostgreSQL, each in a grant of its
//!    own for an account of its own (username `u{i}`), in batches of at
//!    most 100,000 rows. Token i is the URL-safe base64 (no padding) of
//!    sha256("authd-bench-token-{i}"), 43 characters, so that this tool
//!    can compute it again; its selector is the first 16 of those 32
//!    bytes, its digest the sha256 of the 43-character string, as authd
//!    stores its own tokens. Tokens 0 and N-1, computed here, must then
//!    introspect as active. VACUUM (ANALYZE) and CHECKPOINT follow.
//! 3. Reads VmRSS of --pid, introspects every token once (IntrospectBatch,
//!    1000 a call, a few calls in flight; all must be active), waits 2 s,
//!    reads VmRSS again.
//! 4. With --http, introspects a sample of 10,000 again and reads the
//!    cache counters of authd's /metrics before and after, to confirm they
//!    were hits.
//!
//! It prints one line:
//!   cache-memory RESULT tokens=N rss_before_mib=... rss_after_mib=... bytes_per_token=... ...
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use authd::proto::v1;
use authd::proto::v1::o_auth_client::OAuthClient;

/// Rows per seeding statement, at most.
const MAX_SEED_BATCH: u64 = 100_000;
/// Tokens per IntrospectBatch call: authd's limit.
const INTROSPECT_BATCH: u64 = 1000;
/// Tokens introspected a second time to confirm they are cache hits.
const SAMPLE: u64 = 10_000;

#[derive(Args, Clone, Debug)]
pub struct CacheMemoryArgs {
    /// The gRPC endpoint of the authd under test.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub grpc: String,
    /// Its HTTP endpoint, for /metrics: confirms that the sample's second
    /// introspections are cache hits. Without it, that is not checked.
    #[arg(long)]
    pub http: Option<String>,
    /// Its database (the tokens are seeded there).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The process id of that `authd serve`, whose VmRSS is read.
    #[arg(long)]
    pub pid: u32,
    /// Tokens to seed and cache.
    #[arg(long, default_value_t = 1_000_000)]
    pub tokens: u64,
    /// Rows per seeding statement (at most 100,000).
    #[arg(long, default_value_t = MAX_SEED_BATCH)]
    pub seed_batch: u64,
    /// IntrospectBatch calls in flight.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// The authd binary that makes the app a resource server (default:
    /// the `authd` beside this binary).
    #[arg(long)]
    pub authd_bin: Option<PathBuf>,
}

/// Token i's plaintext, as the seeding SQL computes it.
pub fn token(i: u64) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("authd-bench-token-{i}").as_bytes()))
}

/// Accounts, grants and access tokens for i in $1..=$2, for the app $3.
/// Each statement's CTEs see the rows the previous ones inserted only
/// through their RETURNING lists, hence the joins on them.
const SEED_SQL: &str = "
WITH acc AS (
    INSERT INTO accounts (username, email, password_hash)
    SELECT 'u' || i, 'u' || i || '@bench.invalid', 'not-a-password-digest'
    FROM generate_series($1::bigint, $2::bigint) AS i
    RETURNING id, substring(username FROM 2)::bigint AS i
), g AS (
    INSERT INTO grants (app_id, account_id, scopes)
    SELECT $3::bigint, acc.id, ARRAY['read'] FROM acc
    RETURNING id, account_id
), raw AS (
    SELECT g.id AS grant_id,
           sha256(convert_to('authd-bench-token-' || acc.i, 'UTF8')) AS bytes
    FROM g JOIN acc ON acc.id = g.account_id
)
INSERT INTO access_tokens (selector, digest, grant_id, format, scopes)
SELECT substring(bytes FROM 1 FOR 16),
       sha256(convert_to(translate(rtrim(encode(bytes, 'base64'), '='), '+/', '-_'), 'UTF8')),
       grant_id, 'opaque', ARRAY['read']
FROM raw";

pub async fn run(args: CacheMemoryArgs) -> anyhow::Result<()> {
    ensure!(args.tokens > 0, "--tokens must be at least 1");
    ensure!(
        (1..=MAX_SEED_BATCH).contains(&args.seed_batch),
        "--seed-batch must be 1 to {MAX_SEED_BATCH}"
    );
    let n = args.tokens;
    let channel = crate::channels(&args.grpc, 1)
        .await
        .with_context(|| format!("connect to authd at {}", args.grpc))?
        .remove(0);
    let app = crate::register_bench_app(channel.clone(), "authd bench cache-memory").await?;
    crate::make_resource_server(
        args.authd_bin.as_deref(),
        &args.database_url,
        &app.client_id,
    )
    .await?;
    let caller = Arc::new((app.client_id.clone(), app.client_secret.clone()));

    seed(&args.database_url, &app.client_id, n, args.seed_batch).await?;
    for i in [0, n - 1] {
        let r = OAuthClient::new(channel.clone())
            .introspect(v1::IntrospectRequest {
                token: token(i),
                client_id: caller.0.clone(),
                client_secret: caller.1.clone(),
                token_type_hint: String::new(),
            })
            .await
            .with_context(|| format!("introspect token {i}"))?
            .into_inner();
        ensure!(
            r.active == Some(true),
            "token {i}, computed here, does not introspect as active: {r:?}"
        );
        let expected = format!("u{i}");
        ensure!(
            r.username.as_deref() == Some(expected.as_str()),
            "token {i} belongs to {:?}, not {expected}",
            r.username
        );
    }
    println!("cache-memory: tokens 0 and {} introspect as active", n - 1);

    let before = vm_rss_kib(args.pid)?;
    let started = Instant::now();
    introspect_all(&channel, &caller, (0..n).collect(), args.in_flight).await?;
    println!(
        "cache-memory: {n} tokens introspected in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = vm_rss_kib(args.pid)?;

    // Every token introspected a second time, or a sample spread over them.
    let sample: Vec<u64> = (0..SAMPLE.min(n)).map(|k| k * n / SAMPLE.min(n)).collect();
    let confirmation = match &args.http {
        Some(http) => {
            let url = format!("{}/metrics", http.trim_end_matches('/'));
            let (hits0, misses0) = cache_counters(&url).await?;
            introspect_all(&channel, &caller, sample.clone(), args.in_flight).await?;
            let (hits1, misses1) = cache_counters(&url).await?;
            let (hits, misses) = (hits1.saturating_sub(hits0), misses1.saturating_sub(misses0));
            println!(
                "cache-memory: a sample of {} introspected again: {hits} cache hits, {misses} misses (authd_cache_*{{cache=\"token\"}} in /metrics)",
                sample.len()
            );
            format!(
                " sample={} sample_hits={hits} sample_misses={misses}",
                sample.len()
            )
        }
        None => {
            println!("cache-memory: no --http, so the sample's cache hits are not confirmed");
            String::new()
        }
    };
    let bytes_per_token = (after as f64 - before as f64) * 1024.0 / n as f64;
    println!(
        "cache-memory RESULT tokens={n} rss_before_mib={:.1} rss_after_mib={:.1} bytes_per_token={bytes_per_token:.1}{confirmation}",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    );
    Ok(())
}

/// Seeds tokens 0..n for the app `client_id`, then vacuums and checkpoints.
async fn seed(database_url: &str, client_id: &str, n: u64, batch: u64) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    let connection = tokio::spawn(connection);
    let app_id: i64 = client
        .query_one("SELECT id FROM apps WHERE client_id = $1", &[&client_id])
        .await
        .context("find the bench app")?
        .get(0);
    let started = Instant::now();
    let mut lo = 0;
    while lo < n {
        let hi = (lo + batch).min(n);
        let (first, last) = (lo as i64, hi as i64 - 1);
        let inserted = client
            .execute(SEED_SQL, &[&first, &last, &app_id])
            .await
            .with_context(|| format!("seed tokens {first} to {last}"))?;
        ensure!(
            inserted == hi - lo,
            "seeded {inserted} tokens, not {}",
            hi - lo
        );
        eprintln!(
            "cache-memory: seeded {hi} of {n} tokens ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        lo = hi;
    }
    // As a table that has held its tokens for a while: vacuumed, its
    // statistics fresh, and nothing left for the checkpointer to write.
    // One statement a call: several in one string would be one implicit
    // transaction, which VACUUM refuses.
    for statement in [
        "VACUUM (ANALYZE) accounts",
        "VACUUM (ANALYZE) grants",
        "VACUUM (ANALYZE) access_tokens",
        "CHECKPOINT",
    ] {
        client
            .batch_execute(statement)
            .await
            .with_context(|| statement.to_owned())?;
    }
    println!(
        "cache-memory: {n} user tokens seeded, vacuumed and checkpointed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// Introspects the tokens numbered `ids`, INTROSPECT_BATCH a call,
/// `in_flight` calls at once; fails unless every one is active.
async fn introspect_all(
    channel: &Channel,
    caller: &Arc<(String, String)>,
    ids: Vec<u64>,
    in_flight: usize,
) -> anyhow::Result<()> {
    let mut calls = JoinSet::new();
    let mut chunks = ids.chunks(INTROSPECT_BATCH as usize);
    loop {
        while calls.len() < in_flight.max(1) {
            let Some(chunk) = chunks.next() else { break };
            let request = v1::IntrospectBatchRequest {
                tokens: chunk.iter().map(|&i| token(i)).collect(),
                client_id: caller.0.clone(),
                client_secret: caller.1.clone(),
                token_type_hint: String::new(),
            };
            let (first, size) = (chunk[0], chunk.len());
            let mut client = OAuthClient::new(channel.clone());
            calls.spawn(async move {
                let results = client
                    .introspect_batch(request)
                    .await
                    .with_context(|| format!("IntrospectBatch from token {first}"))?
                    .into_inner()
                    .results;
                let active = results.iter().filter(|r| r.active == Some(true)).count();
                if active != size {
                    bail!("IntrospectBatch from token {first}: {active} of {size} active");
                }
                Ok(())
            });
        }
        match calls.join_next().await {
            Some(done) => done.context("introspection task")??,
            None => return Ok(()),
        }
    }
}

/// VmRSS of a process, in KiB.
fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// The token cache's hit and miss counters in authd's /metrics.
async fn cache_counters(url: &str) -> anyhow::Result<(u64, u64)> {
    let text = reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .text()
        .await?;
    let counter = |name: &str| {
        text.lines()
            .filter(|line| line.starts_with(name) && line.contains("cache=\"token\""))
            .find_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .with_context(|| format!("no {name}{{cache=\"token\"}} in {url}"))
    };
    Ok((
        counter("authd_cache_hits_total")?,
        counter("authd_cache_misses_total")?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_is_43_characters_of_url_safe_base64() {
        let t = super::token(0);
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, super::token(1));
    }
}
