//! Attacks on the listeners themselves rather than on OAuth: connections
//! that send nothing, or half of something, or stay open after a request;
//! more connections than the listener allows; an upload refused with 413
//! over TLS; and the HTTP/2 rapid reset (CVE-2023-44487). Every wait is
//! bounded, with generous margins for a loaded machine.
use std::net::SocketAddr;
use std::time::Duration;

use authd::connections::ConnectionLimits;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::*;

/// The most a connection may take to be closed past a deadline of a
/// second or less: the deadline, the close grace and a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(8);
/// Well inside every deadline these tests set.
const STILL_OPEN_AFTER: Duration = Duration::from_millis(300);

fn with_limits(limits: ConnectionLimits) -> TestOptions {
    TestOptions {
        connections: limits,
        ..TestOptions::default()
    }
}

fn first_request_deadline(timeout: Duration) -> TestOptions {
    with_limits(ConnectionLimits {
        first_request_timeout: timeout,
        ..ConnectionLimits::default()
    })
}

/// Whether the server has closed `stream`, reading (and discarding) for
/// at most `wait`: EOF or a reset means closed.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn http_addr(app: &TestApp) -> SocketAddr {
    app.application().http_addr().expect("http listener")
}

fn grpc_addr(app: &TestApp) -> SocketAddr {
    app.application().grpc_addr()
}

/// Connects, sends `bytes`, and asserts the server closes the connection
/// after the deadline (1s), not before.
async fn assert_closed_at_the_deadline(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let started = Instant::now();
    assert!(
        !closed_within(&mut stream, STILL_OPEN_AFTER).await,
        "closed before its deadline"
    );
    assert!(
        closed_within(&mut stream, CLOSED_WITHIN).await,
        "still open {:?} after connecting, past a deadline of 1s",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_silent_connection_to_the_http_port_is_closed_after_the_first_request_deadline() {
    let app = spawn_app_with(first_request_deadline(Duration::from_secs(1))).await;
    assert_closed_at_the_deadline(http_addr(&app), b"").await;
}

#[tokio::test]
async fn a_silent_connection_to_the_grpc_port_is_closed_after_the_first_request_deadline() {
    let app = spawn_app_with(first_request_deadline(Duration::from_secs(1))).await;
    assert_closed_at_the_deadline(grpc_addr(&app), b"").await;
}

/// The first 16 of the 24 bytes of the HTTP/2 connection preface
/// (RFC 9113, section 3.4).
const HALF_A_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

#[tokio::test]
async fn half_an_http2_preface_to_the_http_port_is_closed_after_the_first_request_deadline() {
    let app = spawn_app_with(first_request_deadline(Duration::from_secs(1))).await;
    assert_closed_at_the_deadline(http_addr(&app), HALF_A_PREFACE).await;
}

#[tokio::test]
async fn half_an_http2_preface_to_the_grpc_port_is_closed_after_the_first_request_deadline() {
    let app = spawn_app_with(first_request_deadline(Duration::from_secs(1))).await;
    assert_closed_at_the_deadline(grpc_addr(&app), HALF_A_PREFACE).await;
}

/// Reads one HTTP/1.1 response whose body has a Content-Length, body
/// included; its head (the status line and the headers).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before the response was complete");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if received.len() >= end + 4 + length {
                return text[..end].to_owned();
            }
        }
    }
}

#[tokio::test]
async fn a_connection_idle_after_a_request_is_closed_after_the_idle_timeout() {
    // Idle from the moment the response was sent, which may be a while
    // before this test has read it on a loaded machine: hence 2s.
    let app = spawn_app_with(with_limits(ConnectionLimits {
        idle_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut stream = TcpStream::connect(http_addr(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: authd.test\r\n\r\n")
        .await
        .unwrap();
    let head = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_closed_at_the_deadline_of(&mut stream).await;
}

async fn assert_closed_at_the_deadline_of(stream: &mut TcpStream) {
    assert!(
        !closed_within(stream, STILL_OPEN_AFTER).await,
        "closed before the idle timeout"
    );
    assert!(
        closed_within(stream, CLOSED_WITHIN).await,
        "an idle connection stayed open past the idle timeout of 2s"
    );
}

/// A sample of the app's metrics, by its full name and labels.
fn sample(app: &TestApp, series: &str) -> Option<f64> {
    let text = app.application().service().metrics().render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn an_idle_grpc_connection_is_closed_with_goaway_and_the_channel_reconnects() {
    let app = spawn_app_with(with_limits(ConnectionLimits {
        idle_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    }))
    .await;
    let idle_closes = "authd_connections_timed_out_total{listener=\"grpc\",deadline=\"idle\"}";
    app.register_app(&["https://app.test/callback"], "read")
        .await;
    let deadline = Instant::now() + CLOSED_WITHIN;
    while sample(&app, idle_closes) < Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "no idle gRPC connection was closed within {CLOSED_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closed gracefully: the same channel connects again for the next call.
    app.register_app(&["https://app.test/callback"], "read")
        .await;
}

#[tokio::test]
async fn past_max_connections_a_new_connection_is_closed_until_one_is_released() {
    let app = spawn_app_with(with_limits(ConnectionLimits {
        max_connections: 3,
        ..ConnectionLimits::default()
    }))
    .await;
    let addr = http_addr(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A request each, so that each is surely accepted (and holds its
        // slot) before the next connects.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: authd.test\r\n\r\n")
            .await
            .unwrap();
        let head = read_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        held.push(stream);
    }
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut refused, CLOSED_WITHIN).await,
        "a fourth connection was served with --max-connections 3"
    );
    assert_eq!(
        sample(&app, "authd_connections_refused_total{listener=\"http\"}"),
        Some(1.0)
    );
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(100)).await,
            "a held connection was closed"
        );
    }

    // One released, a new connection is served (once the server has seen
    // the close, which is not instant).
    drop(held.pop());
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: authd.test\r\nConnection: close\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection was served after one was released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The 413 test's upload: far over the 64 KiB limit, so that most of it
/// is still to come when the answer goes out.
const UPLOAD: usize = 8 * 1024 * 1024;

/// Sends an 8 MB registration whole, as a client that reads only once it
/// has sent its request does (Python's requests), then reads the answer;
/// its status line, or what went wrong.
async fn upload_then_read(mut stream: impl AsyncRead + AsyncWrite + Unpin) -> String {
    let head = format!(
        "POST /api/v1/apps HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {UPLOAD}\r\n\r\n"
    );
    let body = vec![b'a'; UPLOAD];
    let sent = tokio::time::timeout(Duration::from_secs(20), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.flush().await
    })
    .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    match (sent, answer.lines().next()) {
        // A reset while sending is what such a client reports, whatever
        // the kernel may still have kept of the answer.
        (Ok(Ok(())), Some(status)) if !status.is_empty() => status.to_owned(),
        (sent, _) => format!("no answer (sending: {sent:?}; reading: {read:?}; read: {answer:?})"),
    }
}

/// A TLS client of the test CA, speaking HTTP/1.1.
async fn tls_connect(
    pki: &crate::tls::Pki,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.path("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_refused_with_413_over_tls_gets_its_413() {
    let pki = crate::tls::Pki::new();
    let app = spawn_app_with(TestOptions {
        http_tls: pki.http_server().load().unwrap(),
        ..TestOptions::default()
    })
    .await;
    let status = upload_then_read(tls_connect(&pki, http_addr(&app)).await).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // And from clients that read while they send, over HTTP/1.1 and HTTP/2.
    let body = vec![b'a'; UPLOAD];
    for client in [
        pki.https_client().http1_only().build().unwrap(),
        pki.https_client().build().unwrap(),
    ] {
        let response = client
            .post(app.url("/api/v1/apps"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("an answer, not a reset");
        assert_eq!(response.status(), 413);
    }
}

#[tokio::test]
async fn a_body_refused_with_413_over_plain_http_gets_its_413() {
    let app = spawn_app().await;
    let stream = TcpStream::connect(http_addr(&app)).await.unwrap();
    let status = upload_then_read(stream).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}

/// An answer given before the request's body was read says that the
/// connection ends with it: the body's unread rest cannot be told from the
/// next request, and a client that reused the connection at once would
/// see that request cut off. An answer to a body read whole keeps the
/// connection for the next request.
#[tokio::test]
async fn an_answer_before_the_body_is_read_closes_the_connection_and_says_so() {
    let app = spawn_app().await;
    // Refused once over the 64 KiB limit, with most of it never sent.
    let mut stream = TcpStream::connect(http_addr(&app)).await.unwrap();
    let head = format!(
        "POST /api/v1/apps HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {UPLOAD}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 128 * 1024]).await.unwrap();
    let head = read_response(&mut stream).await.to_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");

    // Read whole: the same connection serves the next request.
    let mut stream = TcpStream::connect(http_addr(&app)).await.unwrap();
    let body = "client_name=keep&redirect_uris=urn:ietf:wg:oauth:2.0:oob";
    let request = format!(
        "POST /api/v1/apps HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_response(&mut stream).await.to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    stream
        .write_all(b"GET /api/v1/instance HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let head = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

// ---- HTTP/2 rapid reset ----

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap();
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.push(kind);
    frame.push(flags);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Opens 500 streams and resets each at once, in one burst; the error
/// code of the GOAWAY the server answers with, if any, once it closes.
async fn rapid_reset(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut burst = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    burst.extend(h2_frame(SETTINGS, 0, 0, &[]));
    // GET / over http, as HPACK static-table indexes (RFC 7541, appendix A):
    // :method GET, :scheme http, :path /.
    let request = [0x82, 0x86, 0x84];
    for i in 0..500u32 {
        let id = 2 * i + 1;
        burst.extend(h2_frame(HEADERS, END_STREAM | END_HEADERS, id, &request));
        burst.extend(h2_frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
    }
    // The server may close before it has read it all.
    let _ = stream.write_all(&burst).await;

    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("the connection was neither closed nor sent GOAWAY"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    let mut frames = &received[..];
    let mut goaway = None;
    while frames.len() >= 9 {
        let length =
            usize::from(frames[0]) << 16 | usize::from(frames[1]) << 8 | usize::from(frames[2]);
        let Some(payload) = frames.get(9..9 + length) else {
            break;
        };
        if frames[3] == GOAWAY && payload.len() >= 8 {
            goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        frames = &frames[9 + length..];
    }
    goaway
}

#[tokio::test]
async fn an_http2_rapid_reset_burst_is_answered_with_goaway() {
    let app = spawn_app().await;
    for addr in [http_addr(&app), grpc_addr(&app)] {
        assert_eq!(
            rapid_reset(addr).await,
            Some(ENHANCE_YOUR_CALM),
            "GOAWAY's error code at {addr}"
        );
    }
    // The listeners still serve others.
    app.register_app(&["https://app.test/callback"], "read")
        .await;
    let ok = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}
