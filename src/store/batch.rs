//! The queue that the batched paths share (group commit in issue_batch.rs,
//! cold lookups in lookup_batch.rs): requests queue while every worker is
//! busy, and the next free worker takes all that queued, up to a bound, as
//! one batch. Nothing waits on a timer: a request that finds a worker free,
//! and no other batch running, goes alone, at once.
//!
//! The queue itself is unbounded; what bounds it is upstream, where every
//! request holds something of its own while it waits (a request in flight
//! for issuance, a cold-lookup turn for lookups).
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

/// How the queue cuts batches.
pub(super) struct Shape<P> {
    /// At most this many batches run at once.
    pub workers: usize,
    /// A batch's bound, by `weight`; a single request heavier than that
    /// goes in a batch of its own.
    pub max_weight: usize,
    pub weight: fn(&P) -> usize,
    /// Whether a batch that would start while another runs first waits
    /// until as much has queued as the running one took (or until that one
    /// ends). Without it, a worker that comes free takes the one or two
    /// requests that queued in the meantime, and under load the batches
    /// alternate between large and tiny; with it they come out even, which
    /// matters where a batch's cost is mostly per batch (a commit). It
    /// never waits when no batch is running, so a lone request still goes
    /// at once.
    pub even: bool,
}

/// Starts the queue on `runtime` (or, if None, on the current one); each
/// batch is handed to `run`, and runs there too.
pub(super) fn spawn<P, F, Fut>(
    runtime: Option<&tokio::runtime::Handle>,
    shape: Shape<P>,
    run: F,
) -> mpsc::UnboundedSender<P>
where
    P: Send + 'static,
    F: Fn(Vec<P>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (queue, incoming) = mpsc::unbounded_channel::<P>();
    let dispatcher = dispatch(shape, incoming, run);
    match runtime {
        Some(runtime) => drop(runtime.spawn(dispatcher)),
        None => drop(tokio::spawn(dispatcher)),
    }
    queue
}

async fn dispatch<P, F, Fut>(shape: Shape<P>, mut incoming: mpsc::UnboundedReceiver<P>, run: F)
where
    P: Send + 'static,
    F: Fn(Vec<P>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // A turn per batch running: the permits say how many run, and a
    // permit coming free says that one ended.
    let workers = Arc::new(Semaphore::new(shape.workers));
    // The weight of the batch started last.
    let mut last_weight = 0;
    // A request taken from the queue that did not fit the last batch.
    let mut carried: Option<P> = None;
    let mut open = true;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None if open => match incoming.recv().await {
                Some(p) => p,
                None => break,
            },
            None => break,
        };
        // The turn first, then the batch: what queued while every worker
        // was busy goes into this one. Requests go straight from the queue
        // into the batch (they are moved once; a request is a few hundred
        // bytes).
        let Ok(turn) = workers.clone().acquire_owned().await else {
            break;
        };
        let mut total = (shape.weight)(&first);
        let mut batch = Vec::with_capacity(last_weight.clamp(1, shape.max_weight));
        batch.push(first);
        while total < shape.max_weight {
            match incoming.try_recv() {
                Ok(p) => {
                    if !add(&shape, p, &mut batch, &mut total, &mut carried) {
                        break;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // Another batch runs while fewer turns are free than those this
        // one does not hold. The wait is as long as that batch at most (its
        // statement is bounded by the database timeouts).
        if shape.even {
            while open
                && carried.is_none()
                && total < last_weight.min(shape.max_weight)
                && workers.available_permits() + 1 < shape.workers
            {
                tokio::select! {
                    next = incoming.recv() => match next {
                        Some(p) => {
                            add(&shape, p, &mut batch, &mut total, &mut carried);
                        }
                        None => open = false,
                    },
                    // A batch ended: its turn, given back at once, only
                    // makes the loop check again.
                    ended = workers.acquire() => drop(ended),
                }
            }
        }
        last_weight = total;
        let done = run(batch);
        tokio::spawn(async move {
            done.await;
            drop(turn);
        });
    }
}

/// Puts `p` in the batch if it fits; otherwise keeps it for the next one.
/// Whether it went in.
fn add<P>(
    shape: &Shape<P>,
    p: P,
    batch: &mut Vec<P>,
    total: &mut usize,
    carried: &mut Option<P>,
) -> bool {
    let w = (shape.weight)(&p);
    if *total + w <= shape.max_weight {
        *total += w;
        batch.push(p);
        true
    } else {
        *carried = Some(p);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lets the dispatcher and the batches run until they wait (the test
    /// runtime has one thread, so this is deterministic).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// A queue whose batches report their sizes and run until released,
    /// one release per batch, in order.
    fn queue(
        even: bool,
    ) -> (
        mpsc::UnboundedSender<u32>,
        mpsc::UnboundedReceiver<usize>,
        Arc<Semaphore>,
    ) {
        let (sizes, started) = mpsc::unbounded_channel();
        let release = Arc::new(Semaphore::new(0));
        let gate = release.clone();
        let queue = spawn(
            None,
            Shape {
                workers: 2,
                max_weight: 8,
                weight: |_: &u32| 1,
                even,
            },
            move |batch: Vec<u32>| {
                let (sizes, gate) = (sizes.clone(), gate.clone());
                async move {
                    let _ = sizes.send(batch.len());
                    gate.acquire().await.expect("open").forget();
                }
            },
        );
        (queue, started, release)
    }

    /// Queues `count` requests, then lets the queue act on them.
    async fn send(queue: &mpsc::UnboundedSender<u32>, count: u32) {
        for i in 0..count {
            queue.send(i).unwrap();
        }
        settle().await;
    }

    fn sizes(started: &mut mpsc::UnboundedReceiver<usize>) -> Vec<usize> {
        std::iter::from_fn(|| started.try_recv().ok()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn even_batches_wait_for_as_many_as_the_running_one_took() {
        let (queue, mut started, release) = queue(true);
        let release_one = || async {
            release.add_permits(1);
            settle().await;
        };
        send(&queue, 4).await;
        assert_eq!(sizes(&mut started), [4], "what queued goes at once");
        for queued in 1..4 {
            send(&queue, 1).await;
            assert_eq!(sizes(&mut started), [0usize; 0], "{queued} of 4 queued");
        }
        send(&queue, 1).await;
        assert_eq!(sizes(&mut started), [4], "as many as the running batch");

        // Both workers busy: the next request waits for a turn, then for
        // the running batch to end (one request is less than its 4).
        send(&queue, 1).await;
        release_one().await;
        assert_eq!(sizes(&mut started), [0usize; 0]);
        release_one().await;
        assert_eq!(sizes(&mut started), [1], "no batch running: it goes");

        // A lone request with nothing running goes at once, and the bound
        // holds: 11 queued make a batch of 8, then (once it ends, as 3 are
        // fewer than 8) one of 3.
        release_one().await;
        send(&queue, 1).await;
        assert_eq!(sizes(&mut started), [1]);
        release_one().await;
        send(&queue, 11).await;
        assert_eq!(sizes(&mut started), [8]);
        release_one().await;
        assert_eq!(sizes(&mut started), [3]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn uneven_batches_take_whatever_queued() {
        let (queue, mut started, _release) = queue(false);
        send(&queue, 4).await;
        send(&queue, 1).await;
        assert_eq!(sizes(&mut started), [4, 1]);
    }
}
