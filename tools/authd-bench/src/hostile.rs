//! `authd-bench run --hostile`: the attacks of issue 14 kept going while a
//! scenario is measured, so that the figures show what they cost everyone
//! else. Three at once:
//!
//! - idle connections to both listeners that send nothing (or, for half of
//!   them, half of the HTTP/2 preface), reopened as soon as authd closes
//!   them;
//! - oversized `RegisterApp` calls (46,000 redirect URIs, 2.6 MB), one at a
//!   time;
//! - `IntrospectBatch` calls of 1000 unknown tokens each, from an app of
//!   their own, 64 in flight.
//!
//! Each is counted: how often authd closed an idle connection, how many
//! oversized calls it refused, how many batches it answered or failed.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use authd::proto::v1;
use authd::proto::v1::apps_client::AppsClient;
use authd::proto::v1::o_auth_client::OAuthClient;

/// How much of each attack.
#[derive(Clone, Copy, Debug)]
pub struct HostileLoad {
    pub idle_connections: usize,
    pub batches_in_flight: usize,
}

#[derive(Default)]
struct Counts {
    idle_closed: AtomicU64,
    idle_refused: AtomicU64,
    oversized_refused: AtomicU64,
    oversized_accepted: AtomicU64,
    batches_answered: AtomicU64,
    batches_failed: AtomicU64,
}

pub struct Running {
    stop: CancellationToken,
    counts: Arc<Counts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The app the unknown-token batches authenticate as.
#[derive(Clone, Debug)]
pub struct Flooder {
    client_id: String,
    client_secret: String,
}

/// Registers the batches' app, once per run (registrations are limited per
/// address).
pub async fn register_flooder(channel: Channel) -> anyhow::Result<Flooder> {
    let registered = AppsClient::new(channel)
        .register_app(v1::RegisterAppRequest {
            client_name: "authd bench hostile batches".into(),
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".into()],
            scopes: "read".into(),
            ..Default::default()
        })
        .await
        .context("register the hostile batch app")?
        .into_inner();
    Ok(Flooder {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
    })
}

impl HostileLoad {
    /// Starts every attack; `grpc` and `http` are the listeners' addresses.
    pub async fn start(
        self,
        channel: Channel,
        flooder: Flooder,
        grpc: SocketAddr,
        http: SocketAddr,
    ) -> anyhow::Result<Running> {
        let stop = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let mut tasks = Vec::new();

        for i in 0..self.idle_connections {
            let addr = if i % 2 == 0 { grpc } else { http };
            let half_preface = i % 4 >= 2;
            let (stop, counts) = (stop.clone(), counts.clone());
            tasks.push(tokio::spawn(async move {
                idle_connection(addr, half_preface, stop, counts).await;
            }));
        }

        let uris: Vec<String> = (0..46_000)
            .map(|i| format!("https://hostile.example/cb/{i}"))
            .collect();
        {
            let mut apps =
                AppsClient::new(channel.clone()).max_encoding_message_size(64 * 1024 * 1024);
            let (stop, counts) = (stop.clone(), counts.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let call = apps.register_app(v1::RegisterAppRequest {
                        client_name: "hostile".into(),
                        redirect_uris: uris.clone(),
                        ..Default::default()
                    });
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        answer = call => {
                            let counter = if answer.is_ok() {
                                &counts.oversized_accepted
                            } else {
                                &counts.oversized_refused
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }

        for b in 0..self.batches_in_flight {
            let mut oauth = OAuthClient::new(channel.clone());
            let (stop, counts) = (stop.clone(), counts.clone());
            let (client_id, client_secret) =
                (flooder.client_id.clone(), flooder.client_secret.clone());
            tasks.push(tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.is_cancelled() {
                    round += 1;
                    // Unknown but plausible: 43 base64url characters, new
                    // each time, so that none is ever a cache hit.
                    let tokens = (0..1000)
                        .map(|i| format!("{b:03}x{round:019}x{i:019}"))
                        .collect();
                    let call = oauth.introspect_batch(v1::IntrospectBatchRequest {
                        tokens,
                        client_id: client_id.clone(),
                        client_secret: client_secret.clone(),
                        ..Default::default()
                    });
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        answer = call => {
                            let counter = if answer.is_ok() {
                                &counts.batches_answered
                            } else {
                                &counts.batches_failed
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Ok(Running {
            stop,
            counts,
            tasks,
        })
    }
}

/// One connection that sends nothing (or half a preface) and waits for
/// authd to close it, then opens another; bounded by `stop`.
async fn idle_connection(
    addr: SocketAddr,
    half_preface: bool,
    stop: CancellationToken,
    counts: Arc<Counts>,
) {
    while !stop.is_cancelled() {
        let connect =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr));
        let mut stream = match connect.await {
            Ok(Ok(stream)) => stream,
            _ => {
                counts.idle_refused.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if half_preface {
            let _ = stream.write_all(b"PRI * HTTP/2.0\r\n").await;
        }
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        counts.idle_closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    // An error page or a GOAWAY: keep reading to the close.
                    Ok(_) => {}
                },
            }
        }
    }
}

impl Running {
    /// Stops every attack, and says what each did.
    pub async fn stop(self) -> String {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let c = &self.counts;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "idle connections closed by authd {}, refused {}; oversized RegisterApp refused {}, accepted {}; unknown-token batches answered {}, failed {}",
            n(&c.idle_closed),
            n(&c.idle_refused),
            n(&c.oversized_refused),
            n(&c.oversized_accepted),
            n(&c.batches_answered),
            n(&c.batches_failed),
        )
    }
}
