//! One tracing span per RPC, with its method, request id, gRPC status and
//! latency, its metrics, and one deadline for every RPC. A tower layer
//! rather than per-handler code, so that every service (including health
//! and reflection) is covered the same way.
//!
//! The request id is the caller's `x-request-id` (the shim forwards its
//! own) when it is acceptable, or a new one, which is then returned in the
//! response's `x-request-id` metadata.
//!
//! The deadline is what bounds a request when PostgreSQL hangs rather than
//! goes away: its statement_timeout is enforced by the server, which then
//! enforces nothing, and a query already sent waits as long as the hang.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};
use tracing::Instrument;

use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::request_id;
use crate::metrics::{Metrics, Rpc};

static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static(request_id::HEADER);

#[derive(Clone, Debug)]
pub struct RpcTraceLayer {
    deadline: Duration,
    metrics: Metrics,
    in_process: bool,
}

impl RpcTraceLayer {
    pub fn new(deadline: Duration, metrics: Metrics) -> RpcTraceLayer {
        RpcTraceLayer {
            deadline,
            metrics,
            in_process: false,
        }
    }

    /// For the in-process shim's calls: an HTTP request logs one line,
    /// its own, so a successful RPC made for it logs at debug (its span,
    /// request id and failures stay as they are).
    pub fn in_process(deadline: Duration, metrics: Metrics) -> RpcTraceLayer {
        RpcTraceLayer {
            in_process: true,
            ..RpcTraceLayer::new(deadline, metrics)
        }
    }
}

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace {
            inner,
            deadline: self.deadline,
            metrics: self.metrics.clone(),
            in_process: self.in_process,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcTrace<S> {
    inner: S,
    deadline: Duration,
    metrics: Metrics,
    in_process: bool,
}

impl<S, B> Service<http::Request<B>> for RpcTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let rpc = Rpc::from_path(request.uri().path());
        // A caller's acceptable id is kept (the shim always sends one); a
        // new one is made otherwise, and only then returned to the caller,
        // which does not know it (the shim's calls pay nothing for this).
        let (id, generated) = crate::telemetry::request_id(request.headers_mut());
        // The in-process shim's calls: at debug, unless spans are exported
        // (the trace then shows the core's work under the shim's span). At
        // the default level the HTTP request's span carries the request id
        // of every line, and a span more per request was a tenth of what
        // an HTTP introspection cost in instructions.
        // A call from outside, logged as text without span export: its
        // context is a task-local, as an HTTP request's is (see
        // `telemetry::spans_per_request`), instead of a span per call.
        let context = (!self.in_process && !crate::telemetry::spans_per_request()).then(|| {
            crate::telemetry::line::RequestContext {
                request: crate::telemetry::line::Served::Rpc {
                    uri: request.uri().clone(),
                },
                request_id: id.clone(),
            }
        });
        let span = if context.is_some() {
            tracing::Span::none()
        } else if self.in_process && !crate::telemetry::otel::enabled() {
            tracing::debug_span!(
                "rpc",
                method = %request.uri().path(),
                request_id = id.to_str().unwrap_or_default(),
                otel.name = tracing::field::Empty,
                otel.kind = tracing::field::Empty,
            )
        } else {
            tracing::info_span!(
                "rpc",
                method = %request.uri().path(),
                request_id = id.to_str().unwrap_or_default(),
                otel.name = tracing::field::Empty,
                otel.kind = tracing::field::Empty,
            )
        };
        if context.is_none() {
            crate::telemetry::otel::set_parent_from(&span, request.headers());
            // Named from the table, so that made-up paths share one name.
            crate::telemetry::otel::name_server_span(&span, || {
                rpc.name().trim_start_matches('/').to_owned()
            });
        }
        let start = Instant::now();
        let deadline = self.deadline;
        // The caller's own deadline, when shorter (tonic's server honoured
        // it; the accept loop is ours now, so this layer does).
        let caller_deadline = caller_deadline(request.headers()).filter(|d| *d < deadline);
        let metrics = self.metrics.clone();
        let in_process = self.in_process;
        let future = self.inner.call(request);
        let served = async move {
            let wait = caller_deadline.unwrap_or(deadline);
            let mut result = match crate::deadline::within(wait, future).await {
                Ok(result) => result,
                Err(_) if caller_deadline.is_some() => Ok(tonic::Status::deadline_exceeded(
                    "The caller's deadline (grpc-timeout) passed",
                )
                .into_http()),
                Err(_) => {
                    tracing::warn!(?deadline, "rpc deadline passed: answering UNAVAILABLE");
                    let error = AuthError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "The request did not finish within {}; try again shortly",
                            humantime::format_duration(deadline)
                        ),
                    );
                    Ok(tonic::Status::from(error).into_http())
                }
            };
            let elapsed = start.elapsed();
            // Whole microseconds: an integer formats in a fraction of a float's
            // cost, on every request's line.
            let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            match &mut result {
                Ok(response) => {
                    // A failed unary call is a trailers-only response,
                    // whose grpc-status is a header; success puts 0 in
                    // the trailers.
                    let status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    metrics.rpc(rpc, status, elapsed);
                    if generated {
                        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
                    }
                    let code = tonic::Code::from_i32(status);
                    if matches!(
                        code,
                        tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
                    ) {
                        tracing::warn!(status = ?code, latency_us, "rpc failed");
                    } else if in_process {
                        tracing::debug!(status = ?code, latency_us, "rpc");
                    } else {
                        tracing::info!(status = ?code, latency_us, "rpc");
                    }
                }
                Err(e) => {
                    metrics.rpc(rpc, tonic::Code::Unknown as i32, elapsed);
                    tracing::error!(error = %e, latency_us, "rpc transport error")
                }
            }
            result
        };
        match context {
            Some(context) => Box::pin(crate::telemetry::line::REQUEST.scope(context, served)),
            None => Box::pin(served.instrument(span)),
        }
    }
}

/// The deadline a caller sends in `grpc-timeout` (gRPC over HTTP/2: at
/// most 8 digits and a unit, H M S m u n), if it is well formed.
fn caller_deadline(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_of(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        caller_deadline(&headers)
    }

    #[test]
    fn grpc_timeout_is_read_in_each_unit_and_malformed_ones_are_ignored() {
        assert_eq!(deadline_of("5S"), Some(Duration::from_secs(5)));
        assert_eq!(deadline_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(deadline_of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            deadline_of("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-5S", "5 S"] {
            assert_eq!(deadline_of(bad), None, "{bad:?}");
        }
        assert_eq!(caller_deadline(&http::HeaderMap::new()), None);
    }
}
