//! The queue that the batched paths share (group commit in issue_batch.rs,
//! cold lookups in lookup_batch.rs): requests queue while every worker is
//! busy, and the next free worker takes all that queued, up to a bound, as
//! one batch. Nothing waits on a timer: a request that finds a worker free
//! goes alone, at once.
//!
//! The queue itself is unbounded; what bounds it is upstream, where every
//! request holds something of its own while it waits (a request in flight
//! for issuance, a cold-lookup turn for lookups).
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

/// Starts the queue: at most `workers` batches run at once, each of at most
/// `max_weight` (by `weight`; a single request heavier than that goes in a
/// batch of its own), each handed to `run`.
pub(super) fn spawn<P, F, Fut>(
    workers: usize,
    max_weight: usize,
    weight: fn(&P) -> usize,
    run: F,
) -> mpsc::UnboundedSender<P>
where
    P: Send + 'static,
    F: Fn(Vec<P>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (queue, mut incoming) = mpsc::unbounded_channel::<P>();
    tokio::spawn(async move {
        let workers = Arc::new(Semaphore::new(workers));
        // A request taken from the queue that did not fit the last batch.
        let mut carried: Option<P> = None;
        loop {
            let first = match carried.take() {
                Some(p) => p,
                None => match incoming.recv().await {
                    Some(p) => p,
                    None => break,
                },
            };
            // The turn first, then the batch: what queued while every
            // worker was busy goes into this one.
            let Ok(turn) = workers.clone().acquire_owned().await else {
                break;
            };
            let mut total = weight(&first);
            let mut batch = vec![first];
            while total < max_weight {
                match incoming.try_recv() {
                    Ok(p) if total + weight(&p) <= max_weight => {
                        total += weight(&p);
                        batch.push(p);
                    }
                    Ok(p) => {
                        carried = Some(p);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let done = run(batch);
            tokio::spawn(async move {
                done.await;
                drop(turn);
            });
        }
    });
    queue
}
