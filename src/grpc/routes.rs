//! Which service a call is for: the first segment of its path
//! (`/authd.v1.OAuth/Introspect`), looked up among the services' names.
//! tonic's own `Routes` does the same through an axum router, which
//! matched the path against a route table, set axum's path parameters and
//! boxed the body into axum's type and back on every call: about 4% of an
//! HTTP introspection's instructions, spent on a choice among eight names.
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::BoxFuture;
use tonic::server::NamedService;
use tower::Service;

/// What a call to one of the services returns: tonic's generated servers
/// box their futures already, so they are called as they are, with no
/// second box around the first.
type CallFuture = BoxFuture<http::Response<Body>, Infallible>;

/// One service as tonic generates them, called through a shared reference.
pub trait CoreService: Send + Sync {
    fn call(&self, request: http::Request<Body>) -> CallFuture;
}

impl<S> CoreService for S
where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future = CallFuture,
        > + Clone
        + Send
        + Sync,
{
    fn call(&self, request: http::Request<Body>) -> CallFuture {
        // tonic's generated servers are always ready (their poll_ready
        // answers Ready at once), as tonic's Routes assumes; a clone is an
        // Arc's count and the server's settings.
        Service::call(&mut self.clone(), request)
    }
}

/// The core's gRPC services, by name.
#[derive(Clone, Default)]
pub struct CoreRoutes {
    services: Arc<Vec<(&'static str, Arc<dyn CoreService>)>>,
}

impl CoreRoutes {
    /// Adds `service`, found by its fully qualified name.
    pub fn add_service<S: CoreService + NamedService + 'static>(
        mut self,
        service: S,
    ) -> CoreRoutes {
        Arc::make_mut(&mut self.services).push((S::NAME, Arc::new(service)));
        self
    }

    fn find(&self, path: &str) -> Option<&dyn CoreService> {
        let (name, _method) = path.strip_prefix('/')?.split_once('/')?;
        self.services
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, service)| &**service)
    }
}

impl Service<http::Request<Body>> for CoreRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.find(request.uri().path()) {
            Some(service) => service.call(request),
            // As tonic answers a service it does not serve.
            None => Box::pin(std::future::ready(Ok(
                tonic::Status::unimplemented("").into_http()
            ))),
        }
    }
}
