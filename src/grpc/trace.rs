//! One tracing span per RPC, with its method, gRPC status and latency, and
//! one deadline for every RPC. A tower layer rather than per-handler code,
//! so that every service (including health and reflection) is covered the
//! same way.
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

#[derive(Clone, Copy, Debug)]
pub struct RpcTraceLayer {
    deadline: Duration,
}

impl RpcTraceLayer {
    pub fn new(deadline: Duration) -> RpcTraceLayer {
        RpcTraceLayer { deadline }
    }
}

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace {
            inner,
            deadline: self.deadline,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcTrace<S> {
    inner: S,
    deadline: Duration,
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            request_id = tracing::field::Empty,
        );
        if let Some(id) = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        let start = Instant::now();
        let deadline = self.deadline;
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = match tokio::time::timeout(deadline, future).await {
                    Ok(result) => result,
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
                let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                match &result {
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
                        let code = tonic::Code::from_i32(status);
                        if matches!(
                            code,
                            tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
                        ) {
                            tracing::warn!(status = ?code, latency_ms, "rpc failed");
                        } else {
                            tracing::info!(status = ?code, latency_ms, "rpc");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, latency_ms, "rpc transport error"),
                }
                result
            }
            .instrument(span),
        )
    }
}
