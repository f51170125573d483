//! Threads of their own for argon2, at a lower CPU priority. A login costs
//! tens of milliseconds of CPU by design; on a small machine a storm of
//! them would otherwise compete on equal terms with introspection, which
//! costs microseconds and is what every other service waits on. Here they
//! get what the rest leaves, within `password_hash_concurrency` threads.
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::error::AuthError;

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of the hashing threads (0 is normal, 19 the lowest).
const NICENESS: i32 = 10;

pub struct PasswordPool {
    jobs: mpsc::Sender<Job>,
}

impl PasswordPool {
    pub fn new(threads: usize) -> PasswordPool {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let incoming = Arc::new(Mutex::new(incoming));
        for i in 0..threads.max(1) {
            let incoming = incoming.clone();
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
        PasswordPool { jobs }
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
            let _entered = span.enter();
            let _ = done.send(work());
        });
        self.jobs.send(job).map_err(|_| AuthError::internal())?;
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
