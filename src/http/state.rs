//! What every handler shares: gRPC clients of the core, over one tonic
//! channel, and the shim's settings.
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tonic::transport::{Channel, Endpoint};

use crate::domain::client_ip::TrustedProxies;
use crate::domain::error::AuthError;
use crate::grpc::status::auth_error_from_status;
use crate::proto::v1::accounts_client::AccountsClient;
use crate::proto::v1::apps_client::AppsClient;
use crate::proto::v1::o_auth_client::OAuthClient;
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
    channel: Channel,
    config: ShimConfig,
    /// The shim's own listener speaks TLS.
    over_tls: bool,
}

impl ShimState {
    /// A shim in front of the core at `upstream` (e.g. http://127.0.0.1:50051).
    /// The channel connects lazily and reconnects by itself, so the shim
    /// starts even while the core is down, and answers 503 until it is up.
    pub fn new(upstream: &str, config: ShimConfig) -> anyhow::Result<ShimState> {
        ShimState::with_upstream_tls(upstream, None, config)
    }

    /// A shim in front of the core at `upstream`, over TLS when `tls` is
    /// given (for an https:// upstream).
    pub fn with_upstream_tls(
        upstream: &str,
        tls: Option<crate::tls::GrpcClientTls>,
        config: ShimConfig,
    ) -> anyhow::Result<ShimState> {
        let mut endpoint = upstream_endpoint(upstream.to_owned(), &config)?.tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.client_config())?;
        }
        Ok(ShimState::with_channel(endpoint.connect_lazy(), config))
    }

    /// A shim in the same process as the core, reaching it over the Unix
    /// socket at `path`: still a real gRPC channel, without loopback TCP.
    pub fn over_unix_socket(
        path: std::path::PathBuf,
        config: ShimConfig,
    ) -> anyhow::Result<ShimState> {
        let connector = tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        // The URI only names the authority in requests; the connector
        // decides where they go.
        let channel = upstream_endpoint("http://authd.core".into(), &config)?
            .connect_with_connector_lazy(connector);
        Ok(ShimState::with_channel(channel, config))
    }

    fn with_channel(channel: Channel, config: ShimConfig) -> ShimState {
        ShimState {
            inner: Arc::new(Inner {
                channel,
                config,
                over_tls: false,
            }),
        }
    }

    /// The same shim, served by a listener that speaks TLS.
    pub(crate) fn over_tls(self) -> ShimState {
        ShimState {
            inner: Arc::new(Inner {
                channel: self.inner.channel.clone(),
                config: self.inner.config.clone(),
                over_tls: true,
            }),
        }
    }

    /// Whether cookies get the Secure attribute: when the public URL is
    /// https (TLS ends at a proxy, say), or the listener itself speaks TLS.
    pub fn secure_cookies(&self) -> bool {
        self.inner.over_tls || self.inner.config.secure_cookies()
    }

    pub fn config(&self) -> &ShimConfig {
        &self.inner.config
    }

    pub fn apps(&self) -> AppsClient<Channel> {
        AppsClient::new(self.inner.channel.clone())
    }

    pub fn oauth(&self) -> OAuthClient<Channel> {
        OAuthClient::new(self.inner.channel.clone())
    }

    pub fn sessions(&self) -> SessionsClient<Channel> {
        SessionsClient::new(self.inner.channel.clone())
    }

    pub fn accounts(&self) -> AccountsClient<Channel> {
        AccountsClient::new(self.inner.channel.clone())
    }

    pub fn channel(&self) -> Channel {
        self.inner.channel.clone()
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

/// A gRPC request carrying what the core should know of the HTTP request:
/// its request id, and the Authorization header (client credentials or a
/// bearer token), which the core parses itself so both transports agree.
pub fn grpc_request<T>(message: T, headers: &HeaderMap) -> tonic::Request<T> {
    forwarding(message, headers, &["x-request-id", "authorization"])
}

/// A request to the core for the OAuth endpoints, whose client credentials
/// the shim has already moved into the message: no `authorization`
/// metadata, which HTTP/2 would send uncompressed on every call (hpack
/// never indexes it).
pub fn grpc_request_without_authorization<T>(message: T, headers: &HeaderMap) -> tonic::Request<T> {
    forwarding(message, headers, &["x-request-id"])
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
