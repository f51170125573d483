//! OpenTelemetry trace export, off by default: with `--otlp-endpoint` (or
//! OTEL_EXPORTER_OTLP_ENDPOINT), the spans of requests (the shim's `http`,
//! the core's `rpc`, and everything inside them) are exported over OTLP
//! HTTP/protobuf, in batches from a thread of the SDK. The W3C
//! `traceparent` travels from an HTTP request to the core's RPCs, so the
//! shim's and the core's spans are one trace.
//!
//! Off, nothing is built, and the two hooks on the request path
//! (`set_parent_from`, `inject_into`) return after one relaxed load.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether spans are exported: the request path checks this first.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Where traces go, and under which service name.
#[derive(Clone, Debug)]
pub struct OtelConfig {
    /// The collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans are
    /// posted to its `/v1/traces`.
    pub endpoint: String,
    pub service_name: String,
}

/// The tracer provider, while export is on; `shutdown` flushes it.
pub struct Guard(Option<SdkTracerProvider>);

impl Guard {
    pub fn none() -> Guard {
        Guard(None)
    }

    pub(super) fn activate(&self) {
        if self.0.is_some() {
            ENABLED.store(true, Ordering::Relaxed);
        }
    }

    /// Exports what is still buffered and stops the exporter. The SDK
    /// blocks while it flushes, and the export itself runs on the async
    /// runtime, so this waits on a blocking thread.
    pub async fn shutdown(self) {
        let Some(provider) = self.0 else {
            return;
        };
        ENABLED.store(false, Ordering::Relaxed);
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing OpenTelemetry spans failed"),
            Err(e) => tracing::warn!(error = %e, "flushing OpenTelemetry spans failed"),
        }
    }
}

/// The tracing layer that exports spans, and the provider behind it.
pub(super) fn layer<S>(
    config: &OtelConfig,
) -> anyhow::Result<(
    tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>,
    Guard,
)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let runtime = tokio::runtime::Handle::try_current()
        .context("OpenTelemetry export needs the Tokio runtime")?;
    let url = format!("{}/v1/traces", config.endpoint.trim_end_matches('/'));
    let _: http::Uri = url
        .parse()
        .with_context(|| format!("{:?} is not a valid OTLP endpoint", config.endpoint))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(OnRuntime {
            client: opentelemetry_http::hyper::HyperClient::with_default_connector(
                EXPORT_TIMEOUT,
                None,
            ),
            runtime,
        })
        .build()
        .context("building the OTLP exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("authd");
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Guard(Some(provider)),
    ))
}

const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks an OTLP endpoint when it is given, so that a typo stops
/// start-up with a clear message rather than losing every span: an http
/// URL with a host (authd has no TLS client for it). Empty means off.
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err(format!(
            "{s:?}: the OTLP endpoint must be an http:// URL with a host, e.g. http://127.0.0.1:4318"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?}: the OTLP endpoint takes no query or fragment"
        ));
    }
    Ok(s.to_owned())
}

/// The SDK exports from a thread of its own, with no Tokio runtime; hyper
/// needs one. This client runs each export on the service's runtime.
#[derive(Debug)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

/// Whether spans are being exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes `span` a child of the trace context in `headers` (W3C
/// `traceparent`), if there is one; and names it for OpenTelemetry.
pub fn set_parent_from(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Writes the current span's trace context into `headers` (a call to the
/// core).
pub fn inject_into(headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Names `span` for OpenTelemetry (`otel.name`, which the span must
/// declare as an empty field) as a server span, when spans are exported.
pub fn name_server_span(span: &tracing::Span, name: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    span.record("otel.name", name().as_str());
    span.record("otel.kind", "server");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_with_a_host() {
        assert_eq!(
            parse_endpoint(" http://127.0.0.1:4318 ").unwrap(),
            "http://127.0.0.1:4318"
        );
        assert_eq!(
            parse_endpoint("http://collector/otlp").unwrap(),
            "http://collector/otlp"
        );
        assert_eq!(parse_endpoint("").unwrap(), "");
        for bad in [
            "127.0.0.1:4318",
            "collector",
            "https://collector:4318",
            "grpc://collector",
            "http://collector/?x=1",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
