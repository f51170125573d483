//! What every call the shim makes to the core carries of the HTTP request
//! it serves: the request id, and (when traces are exported) the W3C trace
//! context. The `observe` middleware sets the id once per HTTP request, in
//! a task-local, and the channel to the core adds both to
//! every call, so that no handler can forget them.
use axum::http::{HeaderName, HeaderValue};

static X_REQUEST_ID: HeaderName = HeaderName::from_static(crate::domain::request_id::HEADER);

tokio::task_local! {
    /// The request id of the HTTP request this task is serving.
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` (the rest of the HTTP request) with `id` as its request id.
pub async fn with_request_id<F: Future>(id: HeaderValue, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Adds the request id and trace context to a call to the core: the
/// channel's request map (see `ShimChannel`). On the request's headers
/// directly: tonic's interceptor turned each request into a tonic request
/// and back (its headers into metadata and back) to do the same.
pub fn propagate(
    mut request: http::Request<tonic::body::Body>,
) -> http::Request<tonic::body::Body> {
    let headers = request.headers_mut();
    let _ = REQUEST_ID.try_with(|id| headers.insert(X_REQUEST_ID.clone(), id.clone()));
    crate::telemetry::otel::inject_into(headers);
    request
}
