//! Turns for the database lookups of cache misses: unknown, forged or cold
//! tokens, and clients not yet cached. They are bounded so that a flood of
//! them cannot take the whole pool from everything else, and shared out so
//! that no one caller can take every turn:
//!
//! - clients and tokens queue apart, so authenticating a new client never
//!   waits behind a flood of unknown tokens;
//! - of the token turns, one authenticated client may hold at most half at
//!   once (an `IntrospectBatch` takes one turn for all its misses, which it
//!   looks up in one query), so the rest are left for everyone else.
//!
//! A wait is bounded too ([`MAX_WAIT`]); past it the call is UNAVAILABLE,
//! counted in /metrics, and logged at most once a second.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::domain::error::AuthError;

/// How long a cache miss may wait for its turn before it is answered
/// UNAVAILABLE: long enough to ride out a burst, short enough that a flood
/// fails fast instead of piling up.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

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

pub struct ColdLookups {
    tokens: Semaphore,
    clients: Semaphore,
    /// Most token turns one client may hold at once.
    share: usize,
    /// Each client's share, while it holds or waits for a turn; an entry
    /// goes when its last turn does.
    shares: Mutex<HashMap<i64, Arc<Semaphore>>>,
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
    client: i64,
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
}

impl ColdLookups {
    /// `concurrency` turns for tokens and as many for clients.
    pub fn new(concurrency: usize) -> ColdLookups {
        let concurrency = concurrency.max(1);
        ColdLookups {
            tokens: Semaphore::new(concurrency),
            clients: Semaphore::new(concurrency),
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

    /// A turn to look up tokens; `for_client` is the authenticated caller
    /// (its app id), which then waits for its own share first.
    pub async fn token(&self, for_client: Option<i64>) -> Result<Turn<'_>, AuthError> {
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

    #[tokio::test]
    async fn one_client_takes_at_most_half_of_the_token_turns() {
        let turns = ColdLookups::new(4);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(turns.token(Some(1)).await.unwrap());
        }
        // Client 1's share is spent: its next turn waits...
        let waiting = tokio::time::timeout(Duration::from_millis(50), turns.token(Some(1))).await;
        assert!(waiting.is_err(), "a third turn for one client");
        // ...while another client, and an unauthenticated lookup, still get one.
        held.push(turns.token(Some(2)).await.unwrap());
        held.push(turns.token(None).await.unwrap());
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
        let turns = ColdLookups::new(1).with_max_wait(Duration::from_millis(50));
        let _held = turns.token(None).await.unwrap();
        let refused = turns.token(Some(1)).await.err().unwrap();
        assert_eq!(refused.kind, crate::domain::error::ErrorKind::Unavailable);
        assert_eq!(turns.stats().timed_out, [1, 0]);
        assert!(turns.shares.lock().unwrap().is_empty());
    }
}
