//! Bytes per cached token: the process's resident memory before the
//! introspection cache is made and after it holds N active tokens, with
//! authd's allocator and records shaped as authd's are (a 43-character
//! client_id and a username of their own, two scopes, an expiry).
//!
//!   cargo bench --bench cache_memory                 (1,000,000 tokens)
//!   cargo bench --bench cache_memory -- --tokens N
//!
//! Under `cargo bench -- --test` (as CI runs it) it caches 10,000 and only
//! checks that each is found.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authd::domain::grant::{IssuedTo, Token, TokenKind};
use authd::domain::id::{AccountId, AppId, GrantId};
use authd::domain::scope::ScopeSet;
use authd::domain::secret::Digest;
use authd::service::cache::IntrospectionCache;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn record(i: usize) -> Token {
    Token {
        kind: TokenKind::Access,
        grant_id: GrantId::new(i as i64),
        issued_to: Arc::new(IssuedTo {
            app_id: AppId::new(1 + (i % 1000) as i64),
            client_id: format!("{:043}", i % 1000).into(),
        }),
        account_id: AccountId::new(1 + i as i64),
        username: Some(format!("user{i}").into()),
        account_disabled: false,
        holder_may_use_admin_scopes: false,
        scopes: ScopeSet::parse("read write:statuses").unwrap(),
        created_at: SystemTime::now().into(),
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        revoked: false,
    }
}

/// Resident set size, bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let test = args.iter().any(|a| a == "--test");
    let n = args
        .iter()
        .position(|a| a == "--tokens")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if test { 10_000 } else { 1_000_000 });
    // The keys exist before, as the tokens' digests do in a real process
    // (they arrive with the requests); only what the cache keeps counts.
    let digests: Vec<Digest> = (0..n).map(|i| Digest::of(&format!("token-{i}"))).collect();
    let before = rss();
    let cache = IntrospectionCache::new(n);
    cache.set_synced(true);
    for (i, digest) in digests.iter().enumerate() {
        cache.insert_token(cache.ticket(), *digest, cache.shareable(record(i)));
    }
    let after = rss();
    let now = SystemTime::now();
    let found = digests
        .iter()
        .filter(|d| cache.token(d, now).is_some())
        .count();
    assert!(
        found * 100 >= n * 95,
        "only {found} of {n} tokens are cached"
    );
    println!(
        "{n} tokens cached ({found} found): RSS {} MiB → {} MiB, {} bytes per cached token",
        before / (1 << 20),
        after / (1 << 20),
        (after.saturating_sub(before)) / found.max(1) as u64
    );
}
