//! Turns for the database lookups of cache misses: unknown, forged or cold
//! tokens, and clients not yet cached. They are bounded so that a flood of
//! them cannot take the whole pool from everything else, and shared out so
//! that no one caller can take every turn. The token lookups that hold a
//! turn share the store's batched reader (`store::lookup_batch`: at most
//! two statements at once, whatever the number of turns), so there can be
//! many turns; client lookups take a connection each, so there are few.
//!
//! - clients and tokens queue apart, so authenticating a new client never
//!   waits behind a flood of unknown tokens;
//! - of the token turns, one authenticated client may hold at most half at
//!   once (an `IntrospectBatch` takes one turn for all its misses, which it
//!   looks up in one query), so the rest are left for everyone else;
//! - a client that is not a resource server may miss at most
//!   `--cold-lookup-limit-per-client` tokens a second: past its burst, its
//!   calls wait for their turn, so that more calls in flight do not buy it
//!   more of the machine, and past the bound of a wait they are refused.
//!
//! A wait is bounded too ([`MAX_WAIT`]); past it the call is UNAVAILABLE,
//! counted in /metrics, and logged at most once a second.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use super::throttle::{Limiter, Rate};
use crate::domain::error::AuthError;
use crate::domain::id::AppId;

/// How long a cache miss may wait for its turn before it is answered
/// UNAVAILABLE: long enough to ride out a burst, short enough that a flood
/// fails fast instead of piling up.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Lookups of clients not yet cached at once. Each takes a connection of
/// its own (token lookups share a batched reader's two, see
/// `store::lookup_batch`), so they are few: half the default pool.
pub const CLIENT_LOOKUPS: usize = 8;

/// What a turn is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Token,
    Client,
}

impl Lookup {
    pub const ALL: [Lookup; 2] = [Lookup::Token, Lookup::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Token => "token",
            Lookup::Client => "client",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The authenticated client a token lookup is for.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub app_id: AppId,
    /// Resource servers, which an admin trusted to introspect every token,
    /// are not held to the per-client rate.
    pub is_resource_server: bool,
}

pub struct ColdLookups {
    tokens: Semaphore,
    /// Misses per client, over time.
    per_client: Limiter,
    /// Calls that waited for the per-client rate.
    slowed: AtomicU64,
    /// Per client, refused calls held before their answer.
    tarpitted: Mutex<HashMap<AppId, usize>>,
    clients: Semaphore,
    /// Most token turns one client may hold at once.
    share: usize,
    /// Each client's share, while it holds or waits for a turn; an entry
    /// goes when its last turn does.
    shares: Mutex<HashMap<AppId, Arc<Semaphore>>>,
    waiting: [AtomicU64; 2],
    timed_out: [AtomicU64; 2],
    /// When the queueing warning was last written (seconds since start).
    warned_at: AtomicU64,
    started: Instant,
    max_wait: Duration,
}

/// A turn: the database may be asked while it is held.
pub struct Turn<'a> {
    _global: SemaphorePermit<'a>,
    _share: Option<ShareTurn<'a>>,
}

struct ShareTurn<'a> {
    permit: Option<OwnedSemaphorePermit>,
    client: AppId,
    owner: &'a ColdLookups,
}

impl Drop for ShareTurn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut shares = self.owner.shares.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it now: nobody holds or waits for a turn.
        if shares
            .get(&self.client)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            shares.remove(&self.client);
        }
    }
}

/// Most refused calls of one client held before their answer at once.
const MAX_TARPITTED_PER_CLIENT: usize = 64;

/// A refused call held before its answer, counted for its client.
struct Tarpit<'a> {
    held: &'a Mutex<HashMap<AppId, usize>>,
    client: AppId,
}

impl<'a> Tarpit<'a> {
    fn enter(held: &'a Mutex<HashMap<AppId, usize>>, client: AppId) -> Option<Tarpit<'a>> {
        let mut counts = held.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(client).or_default();
        if *count >= MAX_TARPITTED_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(Tarpit { held, client })
    }
}

impl Drop for Tarpit<'_> {
    fn drop(&mut self) {
        let mut counts = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// One call counted as waiting while this lives.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicU64) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What /metrics shows of the queues.
#[derive(Clone, Copy, Debug, Default)]
pub struct ColdLookupStats {
    /// Calls waiting for a turn now, by [`Lookup`].
    pub waiting: [u64; 2],
    /// Calls that gave up waiting, by [`Lookup`].
    pub timed_out: [u64; 2],
    /// Token lookups that waited for their client's rate, and that were
    /// refused because the wait would have been too long.
    pub slowed: u64,
    pub rate_limited: u64,
}

impl ColdLookups {
    /// `concurrency` turns for tokens, [`CLIENT_LOOKUPS`] for clients; at
    /// most `per_client` token misses for each client (None: no limit).
    pub fn new(concurrency: usize, per_client: Option<Rate>) -> ColdLookups {
        let concurrency = concurrency.max(1);
        ColdLookups {
            tokens: Semaphore::new(concurrency),
            per_client: Limiter::new("cold lookups by client", per_client),
            slowed: AtomicU64::new(0),
            tarpitted: Mutex::new(HashMap::new()),
            clients: Semaphore::new(CLIENT_LOOKUPS),
            share: concurrency.div_ceil(2),
            shares: Mutex::new(HashMap::new()),
            waiting: Default::default(),
            timed_out: Default::default(),
            warned_at: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            max_wait: MAX_WAIT,
        }
    }

    #[cfg(test)]
    fn with_max_wait(mut self, max_wait: Duration) -> ColdLookups {
        self.max_wait = max_wait;
        self
    }

    /// A turn to look up `misses` tokens; `caller` is the authenticated
    /// client, which then keeps to its rate and waits for its own share.
    pub async fn token(
        &self,
        caller: Option<Caller>,
        misses: usize,
    ) -> Result<Turn<'_>, AuthError> {
        if let Some(caller) = caller.filter(|c| !c.is_resource_server) {
            let cost = u32::try_from(misses).unwrap_or(u32::MAX);
            match self
                .per_client
                .reserve(&caller.app_id.to_string(), cost, self.max_wait)
            {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => {
                    self.slowed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                Err(refused) => {
                    // Answered only after the longest wait: refused at once,
                    // a flooding client would just ask again, as fast as
                    // the machine answers, and take every core from the
                    // others. Held here, each call in flight costs it the
                    // wait, and nothing but its memory. How many may be
                    // held is bounded per client; past that, at once.
                    if let Some(_held) = Tarpit::enter(&self.tarpitted, caller.app_id) {
                        tokio::time::sleep(self.max_wait).await;
                    }
                    return Err(refused);
                }
            }
        }
        let for_client = caller.map(|c| c.app_id);
        self.wait(Lookup::Token, async {
            let share = match for_client {
                Some(client) => {
                    let semaphore = self
                        .shares
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(client)
                        .or_insert_with(|| Arc::new(Semaphore::new(self.share)))
                        .clone();
                    // Made before the wait, so that a cancelled wait still
                    // removes the entry it may have created.
                    let mut turn = ShareTurn {
                        permit: None,
                        client,
                        owner: self,
                    };
                    turn.permit = semaphore.acquire_owned().await.ok();
                    Some(turn)
                }
                None => None,
            };
            let global = self.tokens.acquire().await.ok()?;
            Some(Turn {
                _global: global,
                _share: share,
            })
        })
        .await
    }

    /// A turn to look up a client that is not cached.
    pub async fn client(&self) -> Result<Turn<'_>, AuthError> {
        self.wait(Lookup::Client, async {
            let global = self.clients.acquire().await.ok()?;
            Some(Turn {
                _global: global,
                _share: None,
            })
        })
        .await
    }

    pub fn stats(&self) -> ColdLookupStats {
        ColdLookupStats {
            waiting: std::array::from_fn(|i| self.waiting[i].load(Ordering::Relaxed)),
            timed_out: std::array::from_fn(|i| self.timed_out[i].load(Ordering::Relaxed)),
            slowed: self.slowed.load(Ordering::Relaxed),
            rate_limited: self.per_client.refused(),
        }
    }

    async fn wait<'a>(
        &'a self,
        lookup: Lookup,
        turn: impl Future<Output = Option<Turn<'a>>>,
    ) -> Result<Turn<'a>, AuthError> {
        let i = lookup.index();
        let outcome = {
            // Counted down on drop too: a caller that goes away while it
            // waits (its request cancelled) waits no more.
            let _waiting = Waiting::new(&self.waiting[i]);
            tokio::time::timeout(self.max_wait, turn).await
        };
        match outcome {
            Ok(Some(turn)) => Ok(turn),
            // The semaphores are never closed.
            Ok(None) => Err(AuthError::internal()),
            Err(_) => {
                self.timed_out[i].fetch_add(1, Ordering::Relaxed);
                self.warn_at_most_once_a_second(lookup);
                Err(AuthError::unavailable())
            }
        }
    }

    /// Under a flood this fires for every waiting call, thousands of times
    /// a second; one line a second says as much.
    fn warn_at_most_once_a_second(&self, lookup: Lookup) {
        let now = self.started.elapsed().as_secs();
        let last = self.warned_at.load(Ordering::Relaxed);
        if (last == u64::MAX || now > last)
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                lookup = lookup.as_str(),
                "cache-miss lookups are queueing past their limit; see authd_cold_lookups_timed_out_total (logged at most once a second)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(app_id: i64) -> Caller {
        Caller {
            app_id: AppId::new(app_id),
            is_resource_server: false,
        }
    }

    #[tokio::test]
    async fn a_client_past_its_rate_waits_and_a_resource_server_does_not() {
        let rate = Rate {
            limit: 100,
            period: Duration::from_millis(100),
        };
        let turns = ColdLookups::new(4, Some(rate)).with_max_wait(Duration::from_secs(1));
        drop(turns.token(Some(client(1)), 100).await.unwrap());
        let started = std::time::Instant::now();
        drop(turns.token(Some(client(1)), 100).await.unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(turns.stats().slowed, 1);
        // Too far ahead: refused at once.
        let refused = turns.token(Some(client(1)), 100_000).await.err().unwrap();
        assert_eq!(refused.kind, crate::domain::error::ErrorKind::RateLimited);
        assert_eq!(turns.stats().rate_limited, 1);
        // A resource server is not held to it.
        let gateway = Caller {
            app_id: AppId::new(1),
            is_resource_server: true,
        };
        drop(turns.token(Some(gateway), 100_000).await.unwrap());
        assert_eq!(turns.stats().slowed, 1);
    }

    #[tokio::test]
    async fn one_client_takes_at_most_half_of_the_token_turns() {
        let turns = ColdLookups::new(4, None);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(turns.token(Some(client(1)), 1).await.unwrap());
        }
        // Client 1's share is spent: its next turn waits...
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), turns.token(Some(client(1)), 1)).await;
        assert!(waiting.is_err(), "a third turn for one client");
        // ...while another client, and an unauthenticated lookup, still get one.
        held.push(turns.token(Some(client(2)), 1).await.unwrap());
        held.push(turns.token(None, 1).await.unwrap());
        assert_eq!(turns.stats().waiting, [0, 0]);
        // Clients queue apart from tokens.
        let _client = turns.client().await.unwrap();
        drop(held);
        assert!(
            turns.shares.lock().unwrap().is_empty(),
            "shares are forgotten"
        );
    }

    #[tokio::test]
    async fn a_wait_past_the_bound_is_unavailable_and_counted() {
        let turns = ColdLookups::new(1, None).with_max_wait(Duration::from_millis(50));
        let _held = turns.token(None, 1).await.unwrap();
        let refused = turns.token(Some(client(1)), 1).await.err().unwrap();
        assert_eq!(refused.kind, crate::domain::error::ErrorKind::Unavailable);
        assert_eq!(turns.stats().timed_out, [1, 0]);
        assert!(turns.shares.lock().unwrap().is_empty());
    }
}
