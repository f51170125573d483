//! One tracing span per RPC, with its method, gRPC status and latency.
//! A tower layer rather than per-handler instrumentation, so that every
//! service (including health and reflection) is covered the same way.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};
use tracing::Instrument;

#[derive(Clone, Copy, Debug, Default)]
pub struct RpcTraceLayer;

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RpcTrace<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RpcTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
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
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
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
