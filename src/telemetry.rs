//! Logging, set up once: human-readable lines by default, JSON on request;
//! the level comes from RUST_LOG (default: info). With an OTLP endpoint,
//! spans are also exported as OpenTelemetry traces (`otel`).
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod otel;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the logger (and the trace exporter, if `otel` says where).
/// Keep the guard: its `shutdown` flushes the spans not yet exported.
pub fn init(format: LogFormat, otel: Option<&otel::OtelConfig>) -> otel::Guard {
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
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // try_init: tests and embedders may have installed a subscriber already.
    let installed = tracing_subscriber::registry()
        .with(exporter)
        .with(fmt)
        .with(filter)
        .try_init()
        .is_ok();
    if installed {
        guard.activate();
        guard
    } else {
        otel::Guard::none()
    }
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
