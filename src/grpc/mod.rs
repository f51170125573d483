//! The gRPC server: authd's five services, thin adapters over
//! `AuthService`, next to the standard health service (whose status follows
//! PostgreSQL's reachability) and server reflection, so that grpcurl works
//! with no .proto file at hand.
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Layer;

use crate::domain::client_ip::TrustedProxies;
use crate::proto::v1::accounts_server::AccountsServer;
use crate::proto::v1::admin_server::AdminServer;
use crate::proto::v1::apps_server::AppsServer;
use crate::proto::v1::o_auth_server::OAuthServer;
use crate::proto::v1::policy_server::PolicyServer;
use crate::proto::v1::sessions_server::SessionsServer;
use crate::service::AuthService;

pub mod accounts;
pub mod admin;
pub mod apps;
pub mod client_cert;
pub mod convert;
pub mod ext_authz;
pub mod metadata;
pub mod oauth;
pub mod policy;
pub mod routes;
pub mod status;
pub mod trace;

/// The fully qualified names of authd's services, as health reports them.
pub static SERVICE_NAMES: std::sync::LazyLock<&'static [&'static str]> =
    std::sync::LazyLock::new(|| &crate::proto::surface().services);

/// The largest request message each service decodes, instead of tonic's
/// 4 MB default: what its largest legitimate request can carry, so that a
/// hostile one is refused (RESOURCE_EXHAUSTED) before it is decoded at
/// all. The domain's parsers bound each field again within these.
pub mod max_message {
    use crate::domain::redirect_uri;

    /// RegisterApp: its redirect URIs (at most
    /// [`redirect_uri::MAX_LIST_BYTES`]) and a few short fields.
    pub const APPS: usize = redirect_uri::MAX_LIST_BYTES + 16 * 1024;
    /// IntrospectBatch: 1000 tokens of up to 1 KiB each (authd's JWTs are
    /// under one); every other OAuth request is far smaller.
    pub const OAUTH: usize = crate::service::introspect::MAX_BATCH * 1024 + 16 * 1024;
    /// Sessions, Accounts and Admin: passwords of at most 1024 bytes, names,
    /// emails and ids.
    pub const SMALL: usize = 16 * 1024;
    /// Policy/Check and Envoy's Authorization/Check: a method, a request target and the request's headers
    /// (a door may pass them all, cookies included).
    pub const POLICY: usize = 64 * 1024;
}

/// How the gRPC listeners treat their callers.
#[derive(Clone, Debug)]
pub struct GrpcOptions {
    /// Peers whose x-forwarded-for names the client (for rate limits).
    pub trusted_proxies: TrustedProxies,
    /// The longest any RPC may take before it is answered UNAVAILABLE.
    pub request_timeout: Duration,
    /// TLS, or plaintext (`None`).
    pub tls: Option<crate::tls::GrpcServerTls>,
    /// The bounds on the listener's connections.
    pub limits: crate::connections::ConnectionLimits,
}

/// Serves gRPC on `listener` until `shutdown` resolves; then stops taking
/// connections and lets in-flight RPCs finish. The accept loop is
/// `connections`' (as the HTTP listener's), not tonic's, so that the same
/// bounds hold on both; the services and layers are the ones tonic's
/// server would run, given each call's connection info as tonic gives it
/// (`TcpConnectInfo`, or `TlsConnectInfo` over TLS).
pub async fn serve(
    listener: TcpListener,
    service: AuthService,
    options: GrpcOptions,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    use hyper_util::rt::TokioTimer;
    use hyper_util::server::conn::auto::Builder;

    let metrics = service.metrics().clone();
    let trace = trace::RpcTraceLayer::new(options.request_timeout, metrics.clone());
    let client_certificates = options
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_auth().is_some());
    let routes = core_routes(service, &options, health_service)?;
    // Outside the trace layer, so that the subject is in its span.
    let stack = client_cert::ClientCertLayer::new(client_certificates).layer(trace.layer(routes));
    let mut builder = Builder::new(crate::connections::SharedRuntime::current()).http2_only();
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    crate::connections::limit_http2(
        &mut builder,
        crate::connections::GRPC_MAX_CONCURRENT_STREAMS,
    );
    let served = crate::connections::Served {
        listener,
        kind: crate::metrics::Listener::Grpc,
        limits: options.limits,
        tls: options.tls.as_ref().map(|tls| tls.acceptor().clone()),
        metrics,
        pinned: false,
    };
    let service_for = move |io: &crate::connections::ServerIo| {
        let info = ConnectInfo::of(io);
        tower::ServiceExt::map_request(
            stack.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                info.insert_into(request.extensions_mut());
                request.map(tonic::body::Body::new)
            },
        )
    };
    crate::connections::serve(served, builder, service_for, shutdown).await;
    Ok(())
}

/// What tonic's server puts in each request's extensions, which
/// `Request::remote_addr` and the client-certificate layer read.
#[derive(Clone)]
enum ConnectInfo {
    Plain(TcpConnectInfo),
    Tls(TlsConnectInfo<TcpConnectInfo>),
}

impl ConnectInfo {
    fn of(io: &crate::connections::ServerIo) -> ConnectInfo {
        use tonic::transport::server::Connected;
        match io {
            tokio_util::either::Either::Left(plain) => ConnectInfo::Plain(plain.connect_info()),
            tokio_util::either::Either::Right(tls) => ConnectInfo::Tls(tls.connect_info()),
        }
    }

    fn insert_into(&self, extensions: &mut http::Extensions) {
        match self {
            ConnectInfo::Plain(info) => {
                extensions.insert(info.clone());
            }
            ConnectInfo::Tls(info) => {
                extensions.insert(info.clone());
            }
        }
    }
}

/// The core as a tower service of gRPC requests: what a generated client
/// calls, whether the core is across a network ([`Channel`]) or in this very
/// process ([`in_process`]).
pub type CoreChannel = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    CoreCallError,
>;

/// Why a call never reached the core (a transport error). A type of its
/// own rather than a boxed error: the generated clients' `Into<StdError>`
/// bound on a boxed error trips a rustc limitation in async handlers. Its
/// source is the transport's error, which tonic reads to pick the status.
#[derive(Debug)]
pub struct CoreCallError(tonic::codegen::StdError);

impl std::fmt::Display for CoreCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CoreCallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A channel to a remote core.
pub fn remote(channel: tonic::transport::Channel) -> CoreChannel {
    CoreChannel::new(tower::ServiceExt::map_err(channel, |e| {
        CoreCallError(e.into())
    }))
}

/// The in-process shim's channel to the core: the same services behind the
/// same layers as on the network listener, called directly, as grpc-java's
/// in-process transport does. Requests are still encoded, decoded and
/// routed as gRPC, but skip HTTP/2 framing, header compression, a socket
/// and two connection tasks, which were most of the cost of an HTTP
/// introspection (see BENCHMARKS.md).
pub fn in_process(
    service: AuthService,
    request_timeout: Duration,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> anyhow::Result<CoreChannel> {
    // Only this process's shim calls it; it forwards the client's address,
    // and nothing else is a proxy here.
    let options = GrpcOptions {
        trusted_proxies: TrustedProxies::none(),
        request_timeout,
        // In-process: nothing crosses a wire.
        tls: None,
        limits: crate::connections::ConnectionLimits::default(),
    };
    let trace = trace::RpcTraceLayer::in_process(request_timeout, service.metrics().clone());
    let routes = core_routes(service, &options, health_service)?;
    let stack = trace.layer(routes);
    Ok(CoreChannel::new(tower::ServiceExt::<
        http::Request<tonic::body::Body>,
    >::map_err(
        stack,
        |never: std::convert::Infallible| -> CoreCallError { match never {} },
    )))
}

/// Every service the core serves, with health and reflection beside them.
fn core_routes(
    service: AuthService,
    options: &GrpcOptions,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> anyhow::Result<routes::CoreRoutes> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc.ErrorInfo, so grpcurl can decode error details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(routes::CoreRoutes::default()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            AppsServer::new(apps::AppsService {
                service: service.clone(),
                trusted_proxies: options.trusted_proxies.clone(),
            })
            .max_decoding_message_size(max_message::APPS),
        )
        .add_service(
            OAuthServer::new(oauth::OAuthService {
                service: service.clone(),
            })
            .max_decoding_message_size(max_message::OAUTH),
        )
        .add_service(
            SessionsServer::new(accounts::SessionsService {
                service: service.clone(),
                trusted_proxies: options.trusted_proxies.clone(),
            })
            .max_decoding_message_size(max_message::SMALL),
        )
        .add_service(
            AdminServer::new(admin::AdminService {
                service: service.clone(),
            })
            .max_decoding_message_size(max_message::SMALL),
        )
        .add_service(
            PolicyServer::new(policy::PolicyService {
                service: service.clone(),
            })
            .max_decoding_message_size(max_message::POLICY),
        )
        .add_service(
            // Door 3: Envoy's ext_authz, the same decision as Policy/Check.
            envoy_types::ext_authz::v3::pb::AuthorizationServer::new(ext_authz::ExtAuthzService {
                service: service.clone(),
            })
            .max_decoding_message_size(max_message::POLICY),
        )
        .add_service(
            AccountsServer::new(accounts::AccountsService { service })
                .max_decoding_message_size(max_message::SMALL),
        ))
}

/// Keeps the health status in step with PostgreSQL: SERVING while a ping
/// succeeds, NOT_SERVING while it fails.
pub async fn watch_health(
    service: AuthService,
    reporter: HealthReporter,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut last: Option<ServingStatus> = None;
    loop {
        let status = match tokio::time::timeout(
            interval.max(Duration::from_secs(1)),
            service.store().ping(),
        )
        .await
        {
            Ok(Ok(())) => ServingStatus::Serving,
            Ok(Err(e)) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::warn!(error = %e, "PostgreSQL unreachable: health is NOT_SERVING");
                }
                ServingStatus::NotServing
            }
            Err(_) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::warn!("PostgreSQL ping timed out: health is NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if last != Some(status) {
            if last == Some(ServingStatus::NotServing) {
                tracing::info!("PostgreSQL reachable again: health is SERVING");
            }
            // The named services first: whoever sees the overall status
            // change can then ask for any of them.
            for name in SERVICE_NAMES.iter() {
                reporter.set_service_status(*name, status).await;
            }
            reporter.set_service_status("", status).await;
            last = Some(status);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => {
                reporter.set_service_status("", ServingStatus::NotServing).await;
                return;
            }
        }
    }
}
