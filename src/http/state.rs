//! What every handler shares: gRPC clients of the core, over one channel
//! (a network one, or the in-process one when core and shim share a
//! process), and the shim's settings.
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tonic::transport::Endpoint;

use crate::metrics::Metrics;

use crate::domain::client_ip::TrustedProxies;
use crate::domain::error::AuthError;
use crate::grpc::CoreChannel;
use crate::grpc::status::auth_error_from_status;
use crate::proto::v1::accounts_client::AccountsClient;
use crate::proto::v1::apps_client::AppsClient;
use crate::proto::v1::o_auth_client::OAuthClient;
use crate::proto::v1::policy_client::PolicyClient;
use crate::proto::v1::sessions_client::SessionsClient;

#[derive(Clone, Debug)]
pub struct ShimConfig {
    /// The public base URL (the issuer): metadata endpoints, Account URLs.
    pub public_url: String,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a call to the core may take before the shim answers 503.
    pub upstream_timeout: Duration,
    /// How long a client may take to send its headers, and then its body.
    pub request_timeout: Duration,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: TrustedProxies,
    /// The backend behind the door (`--upstream-api`), if any.
    pub upstream_api: Option<super::door::UpstreamApi>,
}

impl ShimConfig {
    /// Cookies are `Secure` when the service is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[derive(Clone)]
pub struct ShimState {
    inner: Arc<Inner>,
}

struct Inner {
    channel: CoreChannel,
    config: ShimConfig,
    metrics: Metrics,
    /// Whether GET /metrics answers on the HTTP listener (not when the
    /// metrics have a listener of their own).
    metrics_on_http: bool,
    /// The shim's own listener speaks TLS.
    over_tls: bool,
    /// The reverse proxy's connections to `--upstream-api`.
    upstream_client: super::door::UpstreamClient,
}

/// The channel to the core, adding the request id (and trace context) of
/// the HTTP request being served to every call.
pub type ShimChannel = tower::util::MapRequest<CoreChannel, PropagateFn>;

/// What `ShimChannel` does to each call (`propagate::propagate`).
pub type PropagateFn = fn(http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body>;

impl ShimState {
    /// A shim in front of the core at `upstream` (e.g. http://127.0.0.1:50051).
    /// The channel connects lazily and reconnects by itself, so the shim
    /// starts even while the core is down, and answers 503 until it is up.
    pub fn new(upstream: &str, config: ShimConfig) -> anyhow::Result<ShimState> {
        ShimState::with_upstream_tls(upstream, None, config, true)
    }

    /// A shim in front of the core at `upstream`, over TLS when `tls` is
    /// given (for an https:// upstream), with metrics of its own, served at
    /// GET /metrics if `metrics_on_http`.
    pub fn with_upstream_tls(
        upstream: &str,
        tls: Option<crate::tls::GrpcClientTls>,
        config: ShimConfig,
        metrics_on_http: bool,
    ) -> anyhow::Result<ShimState> {
        let mut endpoint = upstream_endpoint(upstream.to_owned(), &config)?.tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.client_config())?;
        }
        Ok(ShimState::with_channel(
            crate::grpc::remote(endpoint.connect_lazy()),
            config,
            Metrics::new(),
            metrics_on_http,
        ))
    }

    /// A shim in the same process as the core, calling it through `channel`
    /// (see [`crate::grpc::in_process`]) and counting into `metrics` (the
    /// process's, shared with the core), served at GET /metrics if
    /// `metrics_on_http`.
    pub fn in_process(
        channel: CoreChannel,
        config: ShimConfig,
        metrics: Metrics,
        metrics_on_http: bool,
    ) -> ShimState {
        ShimState::with_channel(channel, config, metrics, metrics_on_http)
    }

    fn with_channel(
        channel: CoreChannel,
        config: ShimConfig,
        metrics: Metrics,
        metrics_on_http: bool,
    ) -> ShimState {
        ShimState {
            inner: Arc::new(Inner {
                channel,
                config,
                metrics,
                metrics_on_http,
                over_tls: false,
                upstream_client: super::door::upstream_client(),
            }),
        }
    }

    /// The same shim, served by a listener that speaks TLS.
    pub(crate) fn over_tls(self) -> ShimState {
        ShimState {
            inner: Arc::new(Inner {
                channel: self.inner.channel.clone(),
                config: self.inner.config.clone(),
                metrics: self.inner.metrics.clone(),
                metrics_on_http: self.inner.metrics_on_http,
                over_tls: true,
                upstream_client: self.inner.upstream_client.clone(),
            }),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn metrics_on_http(&self) -> bool {
        self.inner.metrics_on_http
    }

    /// Whether cookies get the Secure attribute: when the public URL is
    /// https (TLS ends at a proxy, say), or the listener itself speaks TLS.
    pub fn secure_cookies(&self) -> bool {
        self.inner.over_tls || self.inner.config.secure_cookies()
    }

    pub fn config(&self) -> &ShimConfig {
        &self.inner.config
    }

    pub fn apps(&self) -> AppsClient<ShimChannel> {
        AppsClient::new(self.channel())
    }

    pub fn oauth(&self) -> OAuthClient<ShimChannel> {
        OAuthClient::new(self.channel())
    }

    pub fn sessions(&self) -> SessionsClient<ShimChannel> {
        SessionsClient::new(self.channel())
    }

    pub fn accounts(&self) -> AccountsClient<ShimChannel> {
        AccountsClient::new(self.channel())
    }

    pub fn policy(&self) -> PolicyClient<ShimChannel> {
        PolicyClient::new(self.channel())
    }

    pub fn upstream_client(&self) -> &super::door::UpstreamClient {
        &self.inner.upstream_client
    }

    pub fn channel(&self) -> ShimChannel {
        tower::util::MapRequest::new(
            self.inner.channel.clone(),
            super::propagate::propagate as PropagateFn,
        )
    }

    /// The URL of a path on this service.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.inner.config.public_url.trim_end_matches('/'),
            path
        )
    }
}

/// The settings of the channel to the core, however it is reached.
fn upstream_endpoint(uri: String, config: &ShimConfig) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(uri)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(config.upstream_timeout)
        .http2_keep_alive_interval(Duration::from_secs(30)))
}

/// A gRPC request carrying the Authorization header (client credentials or
/// a bearer token), which the core parses itself so both transports agree.
/// (The request id is added to every call by the channel: `propagate`.)
pub fn grpc_request<T>(message: T, headers: &HeaderMap) -> tonic::Request<T> {
    forwarding(message, headers, &["authorization"])
}

/// A request to the core for the OAuth endpoints, whose client credentials
/// the shim has already moved into the message: no `authorization`
/// metadata, which HTTP/2 would send uncompressed on every call (hpack
/// never indexes it).
pub fn grpc_request_without_authorization<T>(
    message: T,
    _headers: &HeaderMap,
) -> tonic::Request<T> {
    tonic::Request::new(message)
}

/// Forwards the named headers as metadata. Never `x-forwarded-for`: the
/// core believes that from the shim, so only an address the shim resolved
/// (`input::ClientAddress`) may travel in it.
fn forwarding<T>(message: T, headers: &HeaderMap, names: &[&'static str]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for &name in names {
        if let Some(value) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            request.metadata_mut().insert(name, value);
        }
    }
    request
}

/// Unwraps a core response, turning a status back into the core's error.
pub fn from_core<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, AuthError> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| auth_error_from_status(&status))
}
