//! Threads of their own for argon2, at a lower CPU priority. A login costs
//! tens of milliseconds of CPU by design; on a small machine a storm of
//! them would otherwise compete on equal terms with introspection, which
//! costs microseconds and is what every other service waits on. Here they
//! get what the rest leaves, within `password_hash_concurrency` threads.
//!
//! The queue in front of them is bounded ([`QUEUED_PER_THREAD`] jobs a
//! thread): past it a login is UNAVAILABLE at once instead of waiting
//! behind seconds of others' hashes, and a job whose caller has gone (its
//! request cancelled while it queued) is dropped without hashing.
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::error::AuthError;

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of the hashing threads (0 is normal, 19 the lowest).
const NICENESS: i32 = 10;

/// Jobs that may wait, per hashing thread: at some 50 ms a hash, the last
/// of them starts within about 1.6 s.
pub const QUEUED_PER_THREAD: usize = 32;

pub struct PasswordPool {
    jobs: mpsc::SyncSender<Job>,
    /// The threads start with the first job, so that a service that never
    /// hashes a password (an operator's command, say) starts none.
    threads: usize,
    incoming: Arc<Mutex<mpsc::Receiver<Job>>>,
    started: std::sync::Once,
}

impl PasswordPool {
    pub fn new(threads: usize) -> PasswordPool {
        Self::with_queue(threads, threads.max(1) * QUEUED_PER_THREAD)
    }

    fn with_queue(threads: usize, queued: usize) -> PasswordPool {
        let (jobs, incoming) = mpsc::sync_channel::<Job>(queued);
        PasswordPool {
            jobs,
            threads: threads.max(1),
            incoming: Arc::new(Mutex::new(incoming)),
            started: std::sync::Once::new(),
        }
    }

    fn start_threads(&self) {
        for i in 0..self.threads {
            let incoming = self.incoming.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("authd-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match incoming.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The service is gone.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
    }

    /// Runs `work` on a hashing thread; the caller's task waits without
    /// blocking the runtime.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        // The hashing thread works in the request's span, so that anything
        // logged there carries the request id.
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            // Nobody waits for it any more: the hash would be wasted.
            if done.is_closed() {
                return;
            }
            let _entered = span.enter();
            let _ = done.send(work());
        });
        self.started.call_once(|| self.start_threads());
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => {
                tracing::warn!("password hashing queue full: login refused as unavailable");
                AuthError::new(
                    crate::domain::error::ErrorKind::Unavailable,
                    "Too many sign-ins are in progress; try again shortly.",
                )
            }
            mpsc::TrySendError::Disconnected(_) => AuthError::internal(),
        })?;
        result.await.map_err(|_| {
            tracing::error!("a password hashing job was lost");
            AuthError::internal()
        })
    }
}

fn lower_priority() {
    // setpriority(PRIO_PROCESS, tid) sets one thread's nice value on Linux.
    // Raising it needs no privilege; failing to is harmless.
    #[cfg(target_os = "linux")]
    unsafe {
        let tid = nix::libc::gettid();
        let _ = nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, NICENESS);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::domain::error::ErrorKind;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_gone_caller_costs_no_hash() {
        let pool = Arc::new(PasswordPool::with_queue(1, 1));
        // The thread is busy until the gate opens.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = gate.recv();
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One job queues; its caller gives up while it waits.
        let hashed = Arc::new(AtomicBool::new(false));
        let queued = {
            let hashed = hashed.clone();
            let pool = pool.clone();
            tokio::spawn(
                async move { pool.run(move || hashed.store(true, Ordering::SeqCst)).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The queue is full: the next is refused at once.
        let refused = pool.run(|| ()).await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Unavailable);
        queued.abort();
        let _ = queued.await;
        open.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // The thread is free again and takes new work, once it has dropped
        // the abandoned job from the queue...
        let mut again = pool.run(|| ()).await;
        for _ in 0..100 {
            if again.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            again = pool.run(|| ()).await;
        }
        again.unwrap();
        // ...but never ran the job nobody waited for.
        assert!(!hashed.load(Ordering::SeqCst));
    }
}
