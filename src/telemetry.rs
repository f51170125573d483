//! Logging, set up once: human-readable lines by default, JSON on request;
//! the level comes from RUST_LOG (default: info). With an OTLP endpoint,
//! spans are also exported as OpenTelemetry traces (`otel`).
//!
//! Lines are written off the request path: a request formats its line and
//! queues it, and a thread of its own writes the queue to stderr, what has
//! gathered at once (`writer`), so a slow terminal, pipe or log collector
//! never holds a request up. The queue is bounded; when it is full,
//! requests wait for room rather than lines being dropped (an operator's
//! log is not lossy).
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod line;
pub mod otel;
pub mod writer;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Lines queued for the writer thread before a request waits for room.
const LOG_QUEUE_LINES: usize = 64 * 1024;

/// What must outlive the process's work: the trace exporter, and the
/// writer thread, whose queue is written out when this is shut down.
pub struct Telemetry {
    otel: otel::Guard,
    log_writer: Option<writer::LogWriterGuard>,
}

impl Telemetry {
    /// Exports the spans not yet exported, then writes out the queued lines.
    pub async fn shutdown(self) {
        self.otel.shutdown().await;
        drop(self.log_writer);
    }
}

/// Installs the logger (and the trace exporter, if `otel` says where).
/// Keep the guard: its `shutdown` flushes the spans not yet exported and
/// the lines not yet written.
pub fn init(format: LogFormat, otel: Option<&otel::OtelConfig>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower=warn,h2=warn,hyper=warn"));
    let (exporter, guard) = match otel.map(otel::layer).transpose() {
        Ok(Some((layer, guard))) => (Some(layer), guard),
        Ok(None) => (None, otel::Guard::none()),
        Err(e) => {
            // Logging is not up yet: this is the one place to say so.
            eprintln!("authd: OpenTelemetry export is off: {e:#}");
            (None, otel::Guard::none())
        }
    };
    let (writer, log_writer) =
        writer::spawn(std::io::stderr(), LOG_QUEUE_LINES, "authd-log-writer");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = match format {
        LogFormat::Text => fmt
            .fmt_fields(line::TextFields)
            .event_format(line::TextLine { ansi })
            .boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // try_init: tests and embedders may have installed a subscriber already.
    SPANS_PER_REQUEST.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    let installed = tracing_subscriber::registry()
        .with(exporter)
        .with(fmt)
        .with(filter)
        .try_init()
        .is_ok();
    if installed {
        guard.activate();
        Telemetry {
            otel: guard,
            log_writer,
        }
    } else {
        Telemetry {
            otel: otel::Guard::none(),
            log_writer: None,
        }
    }
}

/// JSON lines carry the request as a span (tracing-subscriber's JSON
/// format reads it from there); text lines read it from a task-local.
static SPANS_PER_REQUEST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether each HTTP request needs a span of its own: for JSON lines, and
/// when spans are exported. Otherwise the request's context is a
/// task-local ([`line::REQUEST`]) that text lines write as the span's
/// fields, at a fraction of a span's cost.
pub fn spans_per_request() -> bool {
    SPANS_PER_REQUEST.load(std::sync::atomic::Ordering::Relaxed) || otel::enabled()
}

static X_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static(crate::domain::request_id::HEADER);

/// The request id of a request arriving at either listener: the caller's
/// `x-request-id` if it is acceptable, or a new one, which then replaces
/// the caller's in `headers` (so that what is passed on carries it).
/// Returns the id, and whether it was made here.
pub fn request_id(headers: &mut http::HeaderMap) -> (http::HeaderValue, bool) {
    use crate::domain::request_id;
    if let Some(id) = headers
        .get(&X_REQUEST_ID)
        .filter(|v| request_id::is_acceptable(v.as_bytes()))
    {
        return (id.clone(), false);
    }
    let id = http::HeaderValue::try_from(request_id::generate())
        .unwrap_or_else(|_| http::HeaderValue::from_static("invalid"));
    headers.insert(X_REQUEST_ID.clone(), id.clone());
    (id, true)
}
