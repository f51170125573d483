//! The introspection cache: token digest to what the database said of the
//! token, and client_id to the client's record, so that a warm Introspect
//! costs no database round trip.
//!
//! Correctness rules, each relied on elsewhere:
//! - Only tokens the database knows, and that were active when read, are
//!   cached; forged or unknown tokens never take a slot.
//! - Expiry is checked on every hit (the record carries `expires_at`).
//! - Anything that can make a cached answer wrong invalidates it: locally
//!   at once (the service calls `invalidate` after its own writes), and on
//!   every replica through PostgreSQL NOTIFY (`run_invalidation_listener`).
//! - While the listener is not connected, the cache is bypassed: answers
//!   come from PostgreSQL until it has resynced (and the cache is cleared,
//!   since notifications may have been missed meanwhile).
//! - A database read that raced with an invalidation must not be cached
//!   afterwards: readers take a `Ticket` (the generation) before reading,
//!   and an insert whose generation is stale is undone.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use quick_cache::sync::Cache;
use tokio_util::sync::CancellationToken;

use crate::domain::app::App;
use crate::domain::grant::{IssuedTo, Token};
use crate::domain::id::{AccountId, AppId, GrantId};
use crate::domain::secret::Digest;
use crate::store::Store;

/// What can change under the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    Token(Digest),
    Grant(GrantId),
    Account(AccountId),
    App(AppId),
    /// The JWT signing keys changed: the key ring reloads them (see
    /// `service::keys`), and flushes what it must.
    Keys,
    /// Unknown or unparsable: drop everything, to be safe.
    Everything,
}

impl Invalidation {
    /// Parses a payload of the authd_invalidations channel.
    pub fn parse(payload: &str) -> Invalidation {
        let Some((kind, value)) = payload.split_once(':') else {
            return Invalidation::Everything;
        };
        let id = || value.parse::<i64>().ok();
        let parsed = match kind {
            "token" => decode_hex(value)
                .and_then(|b| Digest::from_slice(&b))
                .map(Invalidation::Token),
            "grant" => id().map(|id| Invalidation::Grant(GrantId::new(id))),
            "account" => id().and_then(AccountId::new).map(Invalidation::Account),
            "app" => id().map(|id| Invalidation::App(AppId::new(id))),
            "keys" => Some(Invalidation::Keys),
            _ => None,
        };
        parsed.unwrap_or(Invalidation::Everything)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A cached token's key: the first 128 bits of its SHA-256 digest, which
/// are as good a key as all 256 (a token string that shares them with a
/// given cached token takes about 2^128 tries to find, 2^108 against a
/// million of them) and keep 16 bytes less per cached token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey([u8; 16]);

impl CacheKey {
    fn of(digest: &Digest) -> CacheKey {
        let mut key = [0; 16];
        key.copy_from_slice(&digest.as_bytes()[..16]);
        CacheKey(key)
    }
}

/// The generation a reader saw before going to the database.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

pub struct IntrospectionCache {
    tokens: Cache<CacheKey, Arc<Token>>,
    /// Each app as its cached tokens name it, shared by them.
    issued_to: Cache<AppId, Arc<IssuedTo>>,
    clients: Cache<String, Arc<App>>,
    generation: AtomicU64,
    synced: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Woken when the signing keys may have changed (a notification, or a
    /// listener that reconnected and may have missed one).
    key_changes: tokio::sync::Notify,
    client_hits: AtomicU64,
    client_misses: AtomicU64,
    /// `--serve-cached-during-outage`: how long after the listener lost its
    /// connection what is cached may still be served.
    outage_grace: Option<std::time::Duration>,
    /// When the listener last lost its connection, while it is down.
    unsynced_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Answers are being served from the cache during an outage.
    serving_during_outage: AtomicBool,
    /// Grants and accounts revoked since the last sweep (see
    /// [`Revoked`]); `revoked_pending` says whether there are any, so that
    /// a hit checks them only then.
    revoked: std::sync::Mutex<Revoked>,
    revoked_pending: AtomicBool,
    sweeps: AtomicU64,
}

/// Grants and accounts revoked since the cache last dropped their tokens.
/// Dropping them means visiting every cached token (a million by default),
/// and any client can revoke a grant of its own as often as it likes, so a
/// scan per revocation would let it keep every replica scanning. Instead a
/// hit checks its token against these until a sweep, which drops them all
/// in one pass: the listener's, once [`SWEEP_EVERY`], or at once when
/// [`SWEEP_AT`] have gathered.
#[derive(Default)]
struct Revoked {
    grants: std::collections::HashSet<GrantId>,
    accounts: std::collections::HashSet<AccountId>,
    last_sweep: Option<std::time::Instant>,
}

impl Revoked {
    fn len(&self) -> usize {
        self.grants.len() + self.accounts.len()
    }

    fn covers(&self, token: &Token) -> bool {
        self.grants.contains(&token.grant_id)
            || token
                .account_id
                .is_some_and(|id| self.accounts.contains(&id))
    }
}

/// How long revocations wait for the listener's sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Revocations that call a sweep at once, however recent the last one.
const SWEEP_AT: usize = 4096;

impl IntrospectionCache {
    /// A cache of at most `capacity` tokens (and as many clients). It starts
    /// unsynced: nothing is served from it until the listener is up.
    pub fn new(capacity: usize) -> IntrospectionCache {
        let capacity = capacity.max(1);
        // Sized for its capacity at once: grown by doubling instead, each
        // shard's table leaves its outgrown copies with the allocator, about
        // a tenth of what the tokens themselves take (BENCHMARKS.md, memory).
        let tokens = Cache::new(capacity);
        tokens.reserve(capacity);
        IntrospectionCache {
            tokens,
            issued_to: Cache::new(capacity.min(100_000)),
            clients: Cache::new(capacity.min(100_000)),
            generation: AtomicU64::new(0),
            synced: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            key_changes: tokio::sync::Notify::new(),
            client_hits: AtomicU64::new(0),
            client_misses: AtomicU64::new(0),
            outage_grace: None,
            unsynced_since: std::sync::Mutex::new(None),
            serving_during_outage: AtomicBool::new(false),
            revoked: Default::default(),
            revoked_pending: AtomicBool::new(false),
            sweeps: AtomicU64::new(0),
        }
    }

    /// Lets what is cached be served for at most `grace` after the
    /// database became unreachable (`--serve-cached-during-outage`).
    pub fn with_outage_grace(mut self, grace: Option<std::time::Duration>) -> Self {
        self.outage_grace = grace;
        self
    }

    /// Whether answers come from the cache during an outage right now.
    pub fn is_serving_during_outage(&self) -> bool {
        self.serving_during_outage.load(Ordering::SeqCst) && self.readable_in_outage()
    }

    /// Synced, or in an outage that is younger than the grace.
    fn readable(&self) -> bool {
        if self.is_synced() {
            return true;
        }
        if !self.readable_in_outage() {
            return false;
        }
        if !self.serving_during_outage.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                grace = ?self.outage_grace,
                "database unreachable: introspection answers from the cache (--serve-cached-during-outage); a revocation made elsewhere meanwhile is not seen"
            );
        }
        true
    }

    fn readable_in_outage(&self) -> bool {
        let Some(grace) = self.outage_grace else {
            return false;
        };
        let since = *self
            .unsynced_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = since.is_some_and(|t| t.elapsed() < grace);
        if !fresh && since.is_some() && self.serving_during_outage.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                grace = ?grace,
                "database still unreachable after the grace of --serve-cached-during-outage: introspection answers 503"
            );
        }
        fresh
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// A cached record of an active token, unless it has expired since.
    pub fn token(&self, digest: &Digest, now: SystemTime) -> Option<Arc<Token>> {
        if !self.readable() {
            return None;
        }
        let key = CacheKey::of(digest);
        let found = self
            .tokens
            .get(&key)
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .filter(|t| {
                if !self.revoked_pending.load(Ordering::Acquire) || !self.lock_revoked().covers(t) {
                    return true;
                }
                self.tokens.remove(&key);
                false
            });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// `record` made ready to share with the cache: the app it names is
    /// the one every cached token of that app points to.
    pub fn shareable(&self, mut record: Token) -> Arc<Token> {
        match self.issued_to.get(&record.app_id()) {
            Some(shared) if *shared == *record.issued_to => record.issued_to = shared,
            _ => self
                .issued_to
                .insert(record.app_id(), record.issued_to.clone()),
        }
        Arc::new(record)
    }

    /// Caches what the database said of a token, if it is active and no
    /// invalidation happened since `ticket` was taken.
    pub fn insert_token(&self, ticket: Ticket, digest: Digest, record: Arc<Token>) {
        if record.revoked || record.account_disabled {
            return;
        }
        self.insert(&self.tokens, ticket, CacheKey::of(&digest), record);
    }

    pub fn client(&self, client_id: &str) -> Option<Arc<App>> {
        if !self.readable() {
            return None;
        }
        let found = self.clients.get(client_id);
        let counter = if found.is_some() {
            &self.client_hits
        } else {
            &self.client_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn insert_client(&self, ticket: Ticket, app: App) {
        self.insert(&self.clients, ticket, app.client_id.clone(), Arc::new(app));
    }

    fn insert<K, V>(&self, cache: &Cache<K, V>, ticket: Ticket, key: K, value: V)
    where
        K: Eq + std::hash::Hash + Clone,
        V: Clone,
    {
        if !self.is_synced() || self.ticket().0 != ticket.0 {
            return;
        }
        cache.insert(key.clone(), value);
        // An invalidation may have slipped in between the check and the
        // insert; it bumped the generation first, so this sees it.
        if self.ticket().0 != ticket.0 || !self.is_synced() {
            cache.remove(&key);
        }
    }

    pub fn invalidate(&self, what: &Invalidation) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match *what {
            Invalidation::Token(digest) => {
                self.tokens.remove(&CacheKey::of(&digest));
            }
            Invalidation::Grant(id) => self.note_revoked(|r| r.grants.insert(id)),
            Invalidation::Account(id) => self.note_revoked(|r| r.accounts.insert(id)),
            Invalidation::App(id) => {
                self.tokens.retain(|_, t| t.app_id() != id);
                self.issued_to.remove(&id);
                self.clients.retain(|_, a| a.id != id);
            }
            Invalidation::Keys => self.key_changes.notify_one(),
            Invalidation::Everything => {
                self.tokens.clear();
                self.issued_to.clear();
                self.clients.clear();
            }
        }
    }

    fn lock_revoked(&self) -> std::sync::MutexGuard<'_, Revoked> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds to what hits check until the next sweep; flagged under the
    /// lock, so that a sweep that empties the sets cannot clear the flag of
    /// one just added. Past [`SWEEP_AT`] the caller sweeps at once (a pass
    /// per that many revocations), so the sets stay small even when no
    /// listener sweeps them.
    fn note_revoked(&self, add: impl FnOnce(&mut Revoked) -> bool) {
        let mut revoked = self.lock_revoked();
        add(&mut revoked);
        self.revoked_pending.store(true, Ordering::Release);
        let full = revoked.len() >= SWEEP_AT;
        drop(revoked);
        if full {
            self.sweep();
        }
    }

    /// Whether revocations have waited [`SWEEP_EVERY`] for a sweep.
    fn sweep_due(&self) -> bool {
        self.revoked_pending.load(Ordering::Acquire)
            && self
                .lock_revoked()
                .last_sweep
                .is_none_or(|at| at.elapsed() >= SWEEP_EVERY)
    }

    /// One pass over the cached tokens for everything revoked so far. The
    /// sets are emptied only after it, so a hit meanwhile still checks them.
    fn sweep(&self) {
        let revoked = {
            let revoked = self.lock_revoked();
            (revoked.grants.clone(), revoked.accounts.clone())
        };
        let (grants, accounts) = &revoked;
        self.tokens.retain(|_, t| {
            !grants.contains(&t.grant_id) && !t.account_id.is_some_and(|id| accounts.contains(&id))
        });
        let mut pending = self.lock_revoked();
        pending.grants.retain(|id| !grants.contains(id));
        pending.accounts.retain(|id| !accounts.contains(id));
        pending.last_sweep = Some(std::time::Instant::now());
        if pending.len() == 0 {
            self.revoked_pending.store(false, Ordering::Release);
        }
        self.sweeps.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves when the signing keys may have changed since the last call.
    pub async fn key_changed(&self) {
        self.key_changes.notified().await;
    }

    /// The listener connected (true) or lost its connection (false); also
    /// what benchmarks call to use the cache without a database.
    /// Either way what is cached may be stale now, so it is dropped.
    pub fn set_synced(&self, synced: bool) {
        if !synced {
            let was = self.synced.swap(false, Ordering::SeqCst);
            if self.outage_grace.is_some() {
                let mut since = self
                    .unsynced_since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if was || since.is_none() {
                    *since = was.then(std::time::Instant::now);
                }
                // Kept for the outage; no insert lands while unsynced.
                self.generation.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        self.invalidate(&Invalidation::Everything);
        if synced {
            *self
                .unsynced_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            self.serving_during_outage.store(false, Ordering::SeqCst);
            self.synced.store(true, Ordering::SeqCst);
            // A key change may have been missed while deaf.
            self.key_changes.notify_one();
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            client_hits: self.client_hits.load(Ordering::Relaxed),
            client_misses: self.client_misses.load(Ordering::Relaxed),
            tokens: self.tokens.len(),
            clients: self.clients.len(),
            sweeps: self.sweeps.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Client authentications answered from the cache, and not.
    pub client_hits: u64,
    pub client_misses: u64,
    pub tokens: usize,
    pub clients: usize,
    /// Passes over the cached tokens for revoked grants and accounts.
    pub sweeps: u64,
}

/// How often the listening connection is pinged; a connection that died
/// without closing is noticed within this plus `LISTENER_PING_TIMEOUT`.
const LISTENER_PING: Duration = Duration::from_millis(500);
/// How long a ping may take. The statement timeout cannot bound it: that
/// is enforced by the server, and a server that hangs (or a network that
/// drops packets) enforces nothing, while notifications stop arriving. Past
/// this, the listener counts as deaf, and the cache is bypassed.
const LISTENER_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps `cache` in step with the database until `stop`: LISTENs for
/// invalidations, and reconnects (bypassing the cache meanwhile) when the
/// connection is lost.
pub async fn run_invalidation_listener(
    store: Store,
    cache: Arc<IntrospectionCache>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_down = false;
    loop {
        let listener = tokio::select! {
            _ = stop.cancelled() => return,
            l = store.listen() => l,
        };
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                if !was_down {
                    tracing::warn!(error = %e, "invalidation listener cannot connect; introspection answers from PostgreSQL until it does");
                    was_down = true;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        cache.set_synced(true);
        backoff = Duration::from_millis(100);
        if was_down {
            tracing::info!("invalidation listener reconnected; cache resynced");
        } else {
            tracing::debug!("invalidation listener connected");
        }
        let mut ping = tokio::time::interval(LISTENER_PING);
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    cache.set_synced(false);
                    return;
                }
                payload = listener.next() => match payload {
                    Some(p) => cache.invalidate(&Invalidation::parse(&p)),
                    None => break,
                },
                _ = ping.tick() => {
                    // Revoked grants' tokens leave the cache within about
                    // a second; the pass (tens of ms at a million tokens)
                    // runs off the async workers.
                    if cache.sweep_due() {
                        let cache = cache.clone();
                        let _ = tokio::task::spawn_blocking(move || cache.sweep()).await;
                    }
                    match tokio::time::timeout(LISTENER_PING_TIMEOUT, listener.ping()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "invalidation listener ping failed");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(timeout = ?LISTENER_PING_TIMEOUT, "invalidation listener ping timed out");
                            break;
                        }
                    }
                }
            }
        }
        cache.set_synced(false);
        tracing::warn!(
            "invalidation listener lost its connection; introspection answers from PostgreSQL until it reconnects"
        );
        was_down = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grant::{IssuedTo, TokenKind};
    use crate::domain::scope::ScopeSet;

    fn record(grant: i64, account: Option<i64>) -> Token {
        Token {
            kind: TokenKind::Access,
            grant_id: GrantId::new(grant),
            issued_to: Arc::new(IssuedTo {
                app_id: AppId::new(1),
                client_id: "client".into(),
            }),
            account_id: account.and_then(AccountId::new),
            username: None,
            account_disabled: false,
            holder_may_use_admin_scopes: false,
            scopes: ScopeSet::parse("read").unwrap(),
            created_at: SystemTime::now().into(),
            expires_at: None,
            revoked: false,
        }
    }

    #[test]
    fn revoked_grants_and_accounts_stop_hitting_at_once_and_are_swept_together() {
        let cache = IntrospectionCache::new(1000);
        cache.set_synced(true);
        let now = SystemTime::now();
        let digests: Vec<Digest> = (0..100).map(|i| Digest::of(&format!("t{i}"))).collect();
        for (i, digest) in digests.iter().enumerate() {
            let account = (i % 2 == 0).then_some(1000 + i as i64);
            cache.insert_token(cache.ticket(), *digest, Arc::new(record(i as i64, account)));
        }
        assert_eq!(cache.stats().tokens, 100);
        // Revocations make no pass of their own: they wait for one sweep
        // together, but their tokens stop hitting at once.
        for grant in 0..50 {
            cache.invalidate(&Invalidation::Grant(GrantId::new(grant)));
        }
        cache.invalidate(&Invalidation::Account(AccountId::new(1000 + 60).unwrap()));
        assert_eq!(cache.stats().sweeps, 0);
        assert!(cache.sweep_due(), "the listener's next ping sweeps");
        for (i, digest) in digests.iter().enumerate() {
            let revoked = i < 50 || i == 60;
            assert_eq!(cache.token(digest, now).is_none(), revoked, "token {i}");
        }
        // A forced sweep leaves only the live ones, and clears the flag.
        cache.sweep();
        assert_eq!(cache.stats().tokens, 49);
        assert!(!cache.revoked_pending.load(Ordering::Acquire));
        assert!(!cache.sweep_due());
        assert!(cache.token(&digests[99], now).is_some());
        // Without a listener to sweep, the sets never outgrow SWEEP_AT.
        for grant in 0..SWEEP_AT as i64 {
            cache.invalidate(&Invalidation::Grant(GrantId::new(1_000_000 + grant)));
        }
        assert_eq!(cache.stats().sweeps, 2);
        assert_eq!(cache.lock_revoked().len(), 0);
    }

    #[test]
    fn payloads_parse_and_garbage_drops_everything() {
        let digest = Digest::of("t");
        let hex: String = digest
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            Invalidation::parse(&format!("token:{hex}")),
            Invalidation::Token(digest)
        );
        assert_eq!(
            Invalidation::parse("grant:42"),
            Invalidation::Grant(GrantId::new(42))
        );
        assert_eq!(
            Invalidation::parse("account:7"),
            Invalidation::Account(AccountId::new(7).unwrap())
        );
        assert_eq!(
            Invalidation::parse("app:3"),
            Invalidation::App(AppId::new(3))
        );
        assert_eq!(Invalidation::parse("keys:changed"), Invalidation::Keys);
        for garbage in ["", "grant", "grant:x", "token:zz", "token:abc", "what:1"] {
            assert_eq!(
                Invalidation::parse(garbage),
                Invalidation::Everything,
                "{garbage}"
            );
        }
    }
}
