//! Batched lookups for tokens that missed the cache. A lookup's own work
//! in PostgreSQL is a few index probes; most of what it costs is fixed per
//! statement (the round trip, the executor's start over a four-table join,
//! the protocol's framing on both sides). So misses that arrive together
//! (a cold start, a cache turned off, a flood of unknown tokens) share one
//! statement for each kind of token: while the readers are busy, the next
//! lookups queue, and the next statement takes them all.
//!
//! The bounds on who may look up how much stay where they were, in the
//! service's cold-lookup turns (each lookup queued here holds one); this
//! only decides how the lookups that hold a turn reach the database, on at
//! most [`READERS`] connections (see batch.rs).
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};
use crate::domain::grant::{Token, TokenKind};
use crate::domain::secret::TokenKey;

/// Most keys in one statement (a single `IntrospectBatch` of more goes in
/// one of its own).
const MAX_KEYS: usize = 256;
/// Statements run at once; a second one overlaps the first's round trip.
const READERS: usize = 2;

pub(super) struct Pending {
    kind: TokenKind,
    keys: Vec<TokenKey>,
    done: oneshot::Sender<Result<Vec<Option<Token>>, StoreError>>,
}

pub(super) type Queue = mpsc::UnboundedSender<Pending>;

/// What /metrics shows of the reader.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenLookupStats {
    /// Statements run, one per kind of token in a batch.
    pub statements: u64,
    /// Keys those statements looked up.
    pub keys: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    statements: AtomicU64,
    keys: AtomicU64,
}

impl Store {
    /// [`tokens_by_keys`](Store::tokens_by_keys), in one statement with
    /// whatever other lookups are waiting at the same moment: the record
    /// found for each key, in the keys' order.
    pub async fn tokens_by_keys_batched(
        &self,
        kind: TokenKind,
        keys: Vec<TokenKey>,
    ) -> Result<Vec<Option<Token>>, StoreError> {
        let stopped =
            || StoreError::Unavailable(super::message("the token lookup reader has stopped"));
        let (done, result) = oneshot::channel();
        let queue = self.lookup_queue.get_or_init(|| start(self.clone()));
        queue
            .send(Pending { kind, keys, done })
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    pub fn token_lookup_stats(&self) -> TokenLookupStats {
        TokenLookupStats {
            statements: self.lookup_counters.statements.load(Ordering::Relaxed),
            keys: self.lookup_counters.keys.load(Ordering::Relaxed),
        }
    }
}

fn start(store: Store) -> Queue {
    let runtime = store.runtime.clone();
    super::batch::spawn(
        runtime.as_ref(),
        super::batch::Shape {
            workers: READERS,
            max_weight: MAX_KEYS,
            weight: |p: &Pending| p.keys.len(),
            even: false,
        },
        move |batch| {
            let store = store.clone();
            async move { read(&store, batch).await }
        },
    )
}

/// One statement for each kind of token in `batch`; each lookup hears its
/// own keys' records, or the statement's error.
async fn read(store: &Store, batch: Vec<Pending>) {
    let (access, refresh): (Vec<Pending>, Vec<Pending>) =
        batch.into_iter().partition(|p| p.kind == TokenKind::Access);
    for (kind, lookups) in [(TokenKind::Access, access), (TokenKind::Refresh, refresh)] {
        if lookups.is_empty() {
            continue;
        }
        let keys: Vec<&TokenKey> = lookups.iter().flat_map(|p| &p.keys).collect();
        let counters = &store.lookup_counters;
        counters.statements.fetch_add(1, Ordering::Relaxed);
        counters
            .keys
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        match store.tokens_by_keys(kind, &keys).await {
            Ok(records) => {
                let mut records = records.into_iter();
                for p in lookups {
                    let mine = records.by_ref().take(p.keys.len()).collect();
                    let _ = p.done.send(Ok(mine));
                }
            }
            Err(e) => {
                for p in lookups {
                    let _ = p.done.send(Err(e.clone()));
                }
            }
        }
    }
}
