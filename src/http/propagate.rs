//! What every call the shim makes to the core carries of the HTTP request
//! it serves: the request id, and (when traces are exported) the W3C trace
//! context. The `observe` middleware sets the id once per HTTP request, in
//! a task-local, and an interceptor on the channel to the core adds both to
//! every call, so that no handler can forget them.
use axum::http::{HeaderName, HeaderValue};
use tonic::service::Interceptor;

static X_REQUEST_ID: HeaderName = HeaderName::from_static(crate::domain::request_id::HEADER);

tokio::task_local! {
    /// The request id of the HTTP request this task is serving.
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` (the rest of the HTTP request) with `id` as its request id.
pub async fn with_request_id<F: Future>(id: HeaderValue, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Adds the request id and trace context to each call to the core.
#[derive(Clone, Copy, Debug, Default)]
pub struct Propagate;

impl Interceptor for Propagate {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let headers = request.metadata_mut().as_mut();
        let _ = REQUEST_ID.try_with(|id| headers.insert(X_REQUEST_ID.clone(), id.clone()));
        crate::telemetry::otel::inject_into(headers);
        Ok(request)
    }
}
