//! The accept loop of both listeners (HTTP and gRPC), with every
//! connection bounded: how many are open at once, how long a new one may
//! take to send its first request (TLS handshake, HTTP/2 preface and
//! headers included), and how long one may sit idle between requests.
//! Without these a client that opens connections and sends nothing holds a
//! socket and a task each for as long as it likes.
//!
//! Closing is lingering: after the last response the write side is shut
//! and whatever the client still sends is read and thrown away for a
//! while, so that a client still uploading a refused body (413) reads the
//! answer instead of a reset (the kernel resets a socket closed with
//! unread data in it, and the reset overtakes the response).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::either::Either;

use crate::metrics::{ConnectionDeadline, Listener, Metrics};

/// Most streams (requests) one HTTP/2 connection to the HTTP listener may
/// have open at once: the least RFC 9113 (section 6.5.2) recommends, and
/// far more than a browser or a Mastodon client needs.
pub const HTTP_MAX_CONCURRENT_STREAMS: u32 = 100;
/// The same for the gRPC listener, where one connection of a remote shim
/// carries every request the shim serves (and tonic's server set no limit
/// at all): the core's own queues (database pool, password hashing, cold
/// lookups) bound the work, this bounds a connection's memory.
pub const GRPC_MAX_CONCURRENT_STREAMS: u32 = 1000;
/// Largest header block an HTTP/2 request may carry (decoded), as
/// SETTINGS_MAX_HEADER_LIST_SIZE: a cookie, a bearer token and the usual
/// headers fit many times over.
pub const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// Streams a client may open and reset before the server has even looked
/// at them; past this the connection is closed with GOAWAY
/// (ENHANCE_YOUR_CALM). This is the defence against rapid reset
/// (CVE-2023-44487): h2's default, set here so that it stays.
pub const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset for a client's protocol errors before it
/// closes the connection: a client that provokes resets in a loop makes
/// the server work for each.
pub const HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// After a deadline passes, how long a connection gets to close gracefully
/// (an HTTP/2 GOAWAY, a request that began at that very moment) before it
/// is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a closed connection keeps reading (and discarding) what the
/// client still sends, and how much of it at most: enough for a client
/// that sends a whole refused upload of several MB before it reads the
/// answer (as Python's requests does), and no more. The connection keeps
/// its slot under --max-connections meanwhile.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// The bounds on one listener's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// From accept to the first request's headers (TLS handshake and
    /// HTTP/2 preface included).
    pub first_request_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// The executor of both listeners' connection builders: where hyper runs
/// each HTTP/2 stream (request) of a connection. Always the shared
/// runtime, whichever thread serves the connection itself: an HTTP/2
/// connection multiplexes many requests (a gateway's, a browser's), and on
/// a connection's own thread (see [`pinned_runtimes`]) they would all
/// share one core. HTTP/1 requests run in their connection's task.
#[derive(Clone)]
pub struct SharedRuntime(tokio::runtime::Handle);

impl SharedRuntime {
    /// The runtime this is called on. Panics outside one, as
    /// `tokio::spawn` does.
    pub fn current() -> SharedRuntime {
        SharedRuntime(tokio::runtime::Handle::current())
    }
}

impl<F> hyper::rt::Executor<F> for SharedRuntime
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// Sets the HTTP/2 limits on `builder`: `max_concurrent_streams`, and the
/// header and reset limits both listeners share.
pub fn limit_http2(builder: &mut Builder<SharedRuntime>, max_concurrent_streams: u32) {
    builder
        .http2()
        .max_concurrent_streams(max_concurrent_streams)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS);
}

/// A connection as the services see it: plaintext or TLS, over a socket
/// that lingers when closed.
pub type ServerIo = Either<LingeringStream, tokio_rustls::server::TlsStream<LingeringStream>>;

/// The peer of a connection.
pub fn peer(io: &ServerIo) -> SocketAddr {
    match io {
        Either::Left(plain) => plain.peer,
        Either::Right(tls) => tls.get_ref().0.peer,
    }
}

/// One listener: its socket, its bounds and its TLS.
pub struct Served {
    pub listener: TcpListener,
    pub kind: Listener,
    pub limits: ConnectionLimits,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub metrics: Metrics,
    /// Whether each connection is served on one thread of its own (see
    /// [`pinned_runtimes`]) rather than on the shared runtime's workers.
    pub pinned: bool,
}

/// Serves `served` until `shutdown` resolves; then stops accepting and
/// lets every connection finish its requests. `service_for` makes each
/// connection's service (so that it can carry the peer's address).
pub async fn serve<F, S, B>(
    served: Served,
    builder: Builder<SharedRuntime>,
    service_for: F,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Fn(&ServerIo) -> S + Send + Sync + 'static,
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Served {
        listener,
        kind,
        limits,
        tls,
        metrics,
        pinned,
    } = served;
    let runtimes = if pinned { pinned_runtimes() } else { &[] };
    let mut next_runtime = 0usize;
    let builder = Arc::new(builder);
    let service_for = Arc::new(service_for);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_connections, stopping) = watch::channel(());
    let mut last_refusal_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, listener = kind.as_str(), "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let accepted_at = Instant::now();
        // Accepted and closed at once rather than left in the backlog: the
        // client learns at once, and the backlog keeps room for the
        // connections that will get a slot.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connection_refused(kind);
            if last_refusal_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_refusal_warning = Some(accepted_at);
                tracing::warn!(
                    listener = kind.as_str(),
                    max_connections = limits.max_connections,
                    %peer,
                    "connection refused: the listener has as many open as --max-connections allows"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let held = Held {
            _slot: slot,
            _open: OpenConnection::new(metrics.clone(), kind),
        };
        let connection = Connection {
            kind,
            limits,
            accepted_at,
            metrics: metrics.clone(),
            stopping: stopping.clone(),
        };
        let (tls, builder, service_for) = (tls.clone(), builder.clone(), service_for.clone());
        // The service is made once the TLS handshake is done: it may read
        // the client's certificate.
        let run = move |stream: TcpStream| {
            let stream = LingeringStream {
                stream: Some(stream),
                peer,
                held: Some(held),
            };
            connection.run(stream, tls, builder, service_for)
        };
        let pinned_to = runtimes.get(next_runtime % runtimes.len().max(1));
        next_runtime = next_runtime.wrapping_add(1);
        let Some(runtime) = pinned_to else {
            tokio::spawn(run(stream));
            continue;
        };
        // The socket moves to the pinned runtime's reactor.
        match stream.into_std() {
            Ok(socket) => {
                runtime.spawn(async move {
                    match TcpStream::from_std(socket) {
                        Ok(stream) => run(stream).await,
                        Err(e) => {
                            tracing::debug!(error = %e, %peer, "a connection could not join its thread");
                        }
                    }
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, %peer, "a connection could not leave the acceptor");
            }
        }
    }
    drop(listener);
    let _ = stop_connections.send(());
    drop(stopping);
    stop_connections.closed().await;
}

/// Runtimes of one thread each, as many as the machine has cores, that
/// serve the HTTP listener's connections: each connection stays on one
/// thread, from accept to close, as an nginx worker's do. On the shared
/// runtime's workers the same load cost about a seventh more CPU per
/// request (work stealing, workers parking and waking each other; see
/// BENCHMARKS.md). Each has its own reactor and timers; what a request
/// spawns (an HTTP/2 stream, a blocking password hash) stays with it.
/// HTTP/2 connections that multiplex many clients' calls (the gRPC
/// listener) are not pinned: one connection would be held to one core.
/// Empty if no thread could be started; connections then go to the shared
/// runtime.
fn pinned_runtimes() -> &'static [tokio::runtime::Handle] {
    static RUNTIMES: std::sync::OnceLock<Vec<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..cores)
            .filter_map(|i| {
                let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
                let started = std::thread::Builder::new()
                    .name(format!("authd-conn-{i}"))
                    .spawn(move || {
                        let runtime = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(runtime) => runtime,
                            Err(e) => {
                                tracing::warn!(error = %e, "no connection runtime; connections use the shared one");
                                return;
                            }
                        };
                        let _ = handle_tx.send(runtime.handle().clone());
                        runtime.block_on(std::future::pending::<()>());
                    });
                match started {
                    Ok(_) => handle_rx.recv().ok(),
                    Err(e) => {
                        tracing::warn!(error = %e, "no connection thread; connections use the shared runtime");
                        None
                    }
                }
            })
            .collect()
    })
}

/// One accepted connection, before and while it is served.
struct Connection {
    kind: Listener,
    limits: ConnectionLimits,
    accepted_at: Instant,
    metrics: Metrics,
    /// Changes when the listener shuts down.
    stopping: watch::Receiver<()>,
}

impl Connection {
    async fn run<F, S, B>(
        mut self,
        stream: LingeringStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
        builder: Arc<Builder<SharedRuntime>>,
        service_for: Arc<F>,
    ) where
        F: Fn(&ServerIo) -> S + Send + Sync + 'static,
        S: tower::Service<
                http::Request<Incoming>,
                Response = http::Response<B>,
                Error = Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let peer = stream.peer;
        let first_request_by = self.accepted_at + self.limits.first_request_timeout;
        let io = match tls {
            None => Either::Left(stream),
            Some(acceptor) => {
                let handshake = tokio::time::timeout_at(first_request_by, acceptor.accept(stream));
                tokio::select! {
                    finished = handshake => match finished {
                        Ok(Ok(stream)) => Either::Right(stream),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            self.metrics.connection_timed_out(self.kind, ConnectionDeadline::FirstRequest);
                            tracing::debug!(%peer, "TLS handshake not finished by the first-request deadline");
                            return;
                        }
                    },
                    // Handshakes under way carry no request yet.
                    _ = self.stopping.changed() => return,
                }
            }
        };
        let service = service_for(&io);
        let activity = Activity::new(self.accepted_at);
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let in_flight = tracked.begin();
            let call = tower::ServiceExt::oneshot(service.clone(), request);
            async move {
                let response = call.await?;
                // The request stays in flight until its body is sent.
                Ok::<_, Infallible>(response.map(|body| TrackedBody {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        });
        // With upgrades: a WebSocket the reverse proxy passes to the backend
        // (Mastodon's streaming API) leaves this connection when upgraded.
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let expired = activity.expired(first_request_by, self.limits.idle_timeout);
        let deadline = tokio::select! {
            served = &mut connection => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            deadline = expired => Some(deadline),
            _ = self.stopping.changed() => None,
        };
        connection.as_mut().graceful_shutdown();
        match deadline {
            Some(deadline) => {
                self.metrics.connection_timed_out(self.kind, deadline);
                tracing::debug!(%peer, deadline = deadline.as_str(), "closing a connection past its deadline");
                let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
            }
            // Shutting down: in-flight requests finish, within the grace
            // period of the shutdown.
            None => {
                let _ = connection.await;
            }
        }
    }
}

/// The requests of one connection: how many began, how many are in flight,
/// and since when none has been. Requests only count (atomics, no wake-up,
/// no timer): the deadline watcher ([`Activity::expired`]) reads the counts
/// when its own timer fires. A watch channel used to wake the watcher twice
/// per request and arm an idle timer after each, which cost every request a
/// re-poll of its connection and a timer's registration.
#[derive(Clone)]
struct Activity(Arc<Counts>);

struct Counts {
    /// What `idle_since` counts from.
    origin: Instant,
    begun: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last request in flight finished, in nanoseconds since
    /// `origin`.
    idle_since: AtomicU64,
    /// Woken once, by the first request.
    first: tokio::sync::Notify,
}

impl Activity {
    fn new(origin: Instant) -> Activity {
        Activity(Arc::new(Counts {
            origin,
            begun: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first: tokio::sync::Notify::new(),
        }))
    }

    fn begin(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.0.begun.fetch_add(1, Ordering::SeqCst) == 0 {
            self.0.first.notify_one();
        }
        InFlight(self.clone())
    }

    fn end(&self) {
        let since = u64::try_from(self.0.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Before the count drops: the watcher reads the count first.
        self.0.idle_since.store(since, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Resolves with the deadline a connection has missed: no request by
    /// `first_request_by`, or none in flight for `idle_timeout`.
    async fn expired(
        &self,
        first_request_by: Instant,
        idle_timeout: Duration,
    ) -> ConnectionDeadline {
        let counts = &self.0;
        if counts.begun.load(Ordering::SeqCst) == 0 {
            let first = counts.first.notified();
            if tokio::time::timeout_at(first_request_by, first)
                .await
                .is_err()
                && counts.begun.load(Ordering::SeqCst) == 0
            {
                return ConnectionDeadline::FirstRequest;
            }
        }
        loop {
            let begun = counts.begun.load(Ordering::SeqCst);
            let deadline = if counts.in_flight.load(Ordering::SeqCst) > 0 {
                // Busy: look again no sooner than a whole idle period on.
                Instant::now() + idle_timeout
            } else {
                let since = Duration::from_nanos(counts.idle_since.load(Ordering::SeqCst));
                counts.origin + since + idle_timeout
            };
            if deadline <= Instant::now()
                && counts.in_flight.load(Ordering::SeqCst) == 0
                && counts.begun.load(Ordering::SeqCst) == begun
            {
                return ConnectionDeadline::Idle;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A request in flight, until dropped.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that keeps its request in flight until it is sent
/// (or dropped): a streaming response (health's Watch) is not idle.
struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request's body was read to its end, for [`BodyRead::close_unless_read`].
/// Empty when the body was empty from the start (a GET): nothing to watch.
#[derive(Clone)]
pub struct BodyRead(Option<Arc<AtomicBool>>);

/// Wraps `request`'s body so that reading it to its end is recorded in
/// the [`BodyRead`] returned beside it.
pub fn watch_body<B: Body>(request: http::Request<B>) -> (http::Request<WatchedBody<B>>, BodyRead) {
    let read = (!request.body().is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
    let body_read = BodyRead(read.clone());
    (request.map(|inner| WatchedBody { inner, read }), body_read)
}

impl BodyRead {
    /// Marks `response` as the connection's last (`Connection: close`)
    /// if the request's body was not read to its end and the connection
    /// is HTTP/1. Its unread rest would otherwise be the start of the next
    /// request: hyper then drains what has already arrived and, if the
    /// body is not all there (the client still uploading what a 401 or a
    /// 413 refused), closes the connection without saying so, and a client
    /// that reuses it at once sees its next request cut off (reqwest's
    /// IncompleteMessage; POSTs are not retried). Go's net/http says
    /// `Connection: close` in the same case; the close itself lingers (see
    /// the module's comment), so the client reads this answer whole.
    pub fn close_unless_read(&self, version: http::Version, headers: &mut http::HeaderMap) {
        let Some(read) = &self.0 else { return };
        if version < http::Version::HTTP_2 && !read.load(Ordering::Acquire) {
            headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
    }
}

/// A request body that records, in its [`BodyRead`], being read to its end.
pub struct WatchedBody<B> {
    inner: B,
    read: Option<Arc<AtomicBool>>,
}

impl<B: Body + Unpin> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(read) = &this.read
            && (matches!(frame, Poll::Ready(None)) || this.inner.is_end_stream())
        {
            read.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What an open connection holds until its socket is closed, lingering
/// included: its slot under --max-connections, and its count in the
/// open-connections gauge.
struct Held {
    _slot: OwnedSemaphorePermit,
    _open: OpenConnection,
}

struct OpenConnection {
    metrics: Metrics,
    kind: Listener,
}

impl OpenConnection {
    fn new(metrics: Metrics, kind: Listener) -> OpenConnection {
        metrics.connection_opened(kind);
        OpenConnection { metrics, kind }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.kind);
    }
}

/// A TCP connection that, when dropped, shuts its write side and then
/// reads and discards what the client still sends (at most
/// [`LINGER_BYTES`] for at most [`LINGER_TIME`]) before it closes, on a
/// task of its own.
pub struct LingeringStream {
    /// Always there until dropped.
    stream: Option<TcpStream>,
    peer: SocketAddr,
    held: Option<Held>,
}

impl LingeringStream {
    fn stream(&mut self) -> std::io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl tonic::transport::server::Connected for LingeringStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.stream.as_ref().and_then(|s| s.local_addr().ok()),
            remote_addr: Some(self.peer),
        }
    }
}

impl Drop for LingeringStream {
    fn drop(&mut self) {
        let (Some(stream), held) = (self.stream.take(), self.held.take()) else {
            return;
        };
        // Outside a runtime (never, in authd) the socket just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, held));
        }
    }
}

async fn linger(mut stream: TcpStream, held: Option<Held>) {
    // Shut already, as a rule (hyper shuts down what it closes); again is
    // harmless.
    let _ = stream.shutdown().await;
    let mut discarded = 0;
    let mut buf = [0u8; 8 * 1024];
    let drain = async {
        while discarded < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    drop(stream);
    drop(held);
}
