//! The HTTP shim: Mastodon's REST/OAuth API, translated call by call into
//! the gRPC API of the core, over a real tonic channel. It keeps no state
//! of its own (the login session lives in the core), so any number of shim
//! replicas behave as one.
use std::time::Instant;

use axum::Router;
use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use tracing::Instrument;

pub mod api;
pub mod authorize;
pub mod authorized_apps;
pub mod cookies;
pub mod door;
pub mod end_session;
pub mod entities;
pub mod error;
pub mod input;
pub mod login;
pub mod meta;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod params;
pub mod propagate;
pub mod register;
pub mod state;

pub use state::{ShimConfig, ShimState};

/// The shim's routes and their handlers: the one declaration of the HTTP
/// surface. The router is built from it, the metrics label requests with
/// its paths ([`route_paths`]), and the tests walk it (the OpenAPI
/// document must describe exactly these, with the methods each answers).
/// The handlers take no state here: the router is given it once.
pub fn routes() -> Vec<(&'static str, MethodRouter<ShimState>)> {
    vec![
        ("/api/v1/apps", post(api::register_app)),
        ("/api/v1/instance", get(meta::instance_v1)),
        ("/api/v2/instance", get(meta::instance_v2)),
        (
            "/api/v1/apps/verify_credentials",
            get(api::verify_app_credentials),
        ),
        (
            "/api/v1/accounts/verify_credentials",
            get(api::verify_account_credentials),
        ),
        (
            "/api/v1/authorized_applications",
            get(authorized_apps::api_list),
        ),
        (
            "/api/v1/authorized_applications/{id}",
            delete(authorized_apps::api_revoke),
        ),
        (
            "/oauth/authorize",
            get(authorize::show)
                .post(authorize::decide)
                .delete(authorize::deny),
        ),
        ("/oauth/authorize/native", get(authorize::native)),
        ("/oauth/register", post(register::register)),
        ("/oauth/token", post(oauth::token)),
        ("/oauth/revoke", post(oauth::revoke)),
        ("/oauth/introspect", post(oauth::introspect)),
        ("/oauth/userinfo", get(api::userinfo).post(api::userinfo)),
        ("/oauth/authorized_applications", get(authorized_apps::page)),
        (
            "/oauth/authorized_applications/{id}/revoke",
            post(authorized_apps::revoke_from_page),
        ),
        (
            "/auth/sign_in",
            get(login::sign_in_form).post(login::sign_in),
        ),
        ("/auth/sign_out", post(login::sign_out)),
        (
            "/oauth/end_session",
            get(end_session::end_session).post(end_session::end_session),
        ),
        (
            "/.well-known/oauth-authorization-server",
            get(meta::authorization_server_metadata),
        ),
        (
            "/.well-known/openid-configuration",
            get(meta::openid_configuration),
        ),
        ("/.well-known/jwks.json", get(meta::jwks)),
        ("/openapi.json", get(meta::openapi)),
        ("/metrics", get(metrics::scrape)),
        ("/authd/check", get(door::forward_auth)),
        ("/healthz", get(meta::healthz)),
        ("/readyz", get(meta::readyz)),
        ("/assets/authd.css", get(meta::stylesheet)),
        ("/avatars/original/missing.png", get(meta::missing_image)),
        ("/headers/original/missing.png", get(meta::missing_image)),
    ]
}

/// The paths of [`routes`], in its order, read once.
pub fn route_paths() -> &'static [&'static str] {
    static PATHS: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| routes().into_iter().map(|(path, _)| path).collect());
    &PATHS
}

pub fn router(state: ShimState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
        // With --upstream-api, everything else goes to the backend, once
        // the policy lets it; otherwise it is not found.
        .fallback(door::proxy)
        .layer(ObserveLayer {
            state: state.clone(),
        })
        .with_state(state)
}

/// A 302 redirect, as Mastodon (Rails) answers: clients written against it
/// expect that status from the authorization endpoint.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (axum::http::StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => {
            error::HttpError::page(crate::domain::error::AuthError::internal()).into_response()
        }
    }
}

pub(crate) async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "Record not found" })),
    )
        .into_response()
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static(crate::domain::request_id::HEADER);

/// The layer around every route: [`observe`], then [`security_headers`] on
/// the response. A tower layer of its own rather than axum's `from_fn`
/// middlewares, which box a clone of the inner router for every request
/// (twice, with two of them).
#[derive(Clone)]
struct ObserveLayer {
    state: ShimState,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
struct Observed<S> {
    inner: S,
    state: ShimState,
}

impl<S> tower::Service<Request> for Observed<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was made ready serves this request; a clone
        // stays for the next one (tower's rule for cloned services).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move { Ok(observe(state, request, inner).await) })
    }
}

/// Each request's context, with a request id (the caller's `x-request-id`
/// if acceptable, or a new one) that every call to the core carries and
/// that is returned to the caller; its log line; and its metrics, by route
/// template. Only the path is logged: codes and tokens travel in query
/// strings. The context is a span when spans are exported or lines are
/// JSON, and a task-local that text lines read otherwise (see
/// `telemetry::spans_per_request`).
async fn observe<S>(state: ShimState, mut request: Request, inner: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let route = crate::metrics::Route::new(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
        request.method(),
    );
    let (request_id, _) = crate::telemetry::request_id(request.headers_mut());
    if !crate::telemetry::spans_per_request() {
        let context = crate::telemetry::line::RequestContext {
            request: crate::telemetry::line::Served::Http {
                method: request.method().clone(),
                uri: request.uri().clone(),
            },
            request_id: request_id.clone(),
        };
        return crate::telemetry::line::REQUEST
            .scope(context, respond(state, route, request_id, request, inner))
            .await;
    }
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = request_id.to_str().unwrap_or_default(),
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    crate::telemetry::otel::set_parent_from(&span, request.headers());
    crate::telemetry::otel::name_server_span(&span, || {
        format!("{} {}", request.method(), route.template())
    });
    respond(state, route, request_id, request, inner)
        .instrument(span)
        .await
}

/// Serves `request`, then counts and logs it.
async fn respond<S>(
    state: ShimState,
    route: crate::metrics::Route,
    request_id: HeaderValue,
    request: Request,
    mut inner: S,
) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let start = Instant::now();
    let version = request.version();
    let body_read = request
        .extensions()
        .get::<crate::connections::BodyRead>()
        .cloned();
    let served = async move {
        match inner.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    let response = propagate::with_request_id(request_id.clone(), served).await;
    let mut response = security_headers(response);
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    state.metrics().http(route, status, elapsed);
    // Whole microseconds: an integer formats in a fraction of a float's
    // cost, on every request's line.
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if response.status().is_server_error() {
        tracing::warn!(status, latency_us, "request failed");
    } else {
        tracing::info!(status, latency_us, "request");
    }
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id);
    if let Some(body_read) = body_read {
        body_read.close_unless_read(version, response.headers_mut());
    }
    response
}

/// Headers every response gets unless it set its own: nothing is cached
/// (pages carry CSRF tokens and codes), nothing may frame the pages
/// (clickjacking of the consent form), and nothing is loaded from elsewhere.
/// A backend's answer through the door is left as it is.
fn security_headers(mut response: Response) -> Response {
    if response.extensions().get::<door::FromBackend>().is_some() {
        return response;
    }
    let headers = response.headers_mut();
    // Room for these and the request id at once, rather than the map
    // growing (and rehashing) as they go in.
    headers.reserve(6);
    let defaults = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Serves the shim on `listener`, in plaintext, until `shutdown`
/// resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: ShimState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_tls(
        listener,
        state,
        None,
        crate::connections::ConnectionLimits::default(),
        shutdown,
    )
    .await
}

/// Serves the shim on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish. Each connection is bounded by `limits` (see
/// `connections`); a client must also send its request headers (HTTP/1;
/// the body has its own deadline in `input`) within the request timeout,
/// so slow clients cannot pin connections open.
pub async fn serve_with_tls(
    listener: TcpListener,
    state: ShimState,
    tls: Option<crate::tls::HttpServerTls>,
    limits: crate::connections::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::TokioTimer;
    use hyper_util::server::conn::auto::Builder;

    let request_timeout = state.config().request_timeout;
    let metrics = state.metrics().clone();
    // Served over TLS, the cookies are Secure whatever the issuer says.
    let state = if tls.is_some() {
        state.over_tls()
    } else {
        state
    };
    // Mastodon (Rails) ignores a trailing slash, and clients rely on it:
    // Mastodon.py asks for "/api/v1/instance/". Routing happens after the
    // slash is trimmed, so the layer wraps the router from outside.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    let mut builder = Builder::new(crate::connections::SharedRuntime::current());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .keep_alive_timeout(request_timeout);
    crate::connections::limit_http2(
        &mut builder,
        crate::connections::HTTP_MAX_CONCURRENT_STREAMS,
    );
    let served = crate::connections::Served {
        listener,
        kind: crate::metrics::Listener::Http,
        limits,
        tls: tls.map(|tls| tls.acceptor().clone()),
        metrics,
        pinned: true,
    };
    let service_for = move |io: &crate::connections::ServerIo| {
        let peer = crate::connections::peer(io);
        tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                // Before the trailing slash is trimmed: the door decides
                // on, and forwards, what the client sent.
                let target = door::OriginalTarget(request.uri().clone());
                request.extensions_mut().insert(target);
                let (mut request, body_read) = crate::connections::watch_body(request);
                request.extensions_mut().insert(body_read);
                request.map(axum::body::Body::new)
            },
        )
    };
    crate::connections::serve(served, builder, service_for, shutdown).await;
    Ok(())
}
