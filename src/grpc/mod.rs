//! The gRPC server: authd's four services, thin adapters over
//! `AuthService`, next to the standard health service (whose status follows
//! PostgreSQL's reachability) and server reflection, so that grpcurl works
//! with no .proto file at hand.
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::domain::client_ip::TrustedProxies;
use crate::proto::v1::accounts_server::AccountsServer;
use crate::proto::v1::apps_server::AppsServer;
use crate::proto::v1::o_auth_server::OAuthServer;
use crate::proto::v1::sessions_server::SessionsServer;
use crate::service::AuthService;

pub mod accounts;
pub mod apps;
pub mod client_cert;
pub mod convert;
pub mod metadata;
pub mod oauth;
pub mod status;
pub mod trace;

/// The fully qualified names of authd's services, as health reports them.
pub const SERVICE_NAMES: &[&str] = &[
    "authd.v1.Apps",
    "authd.v1.OAuth",
    "authd.v1.Sessions",
    "authd.v1.Accounts",
];

/// How the gRPC listeners treat their callers.
#[derive(Clone, Debug)]
pub struct GrpcOptions {
    /// Peers whose x-forwarded-for names the client (for rate limits).
    pub trusted_proxies: TrustedProxies,
    /// The longest any RPC may take before it is answered UNAVAILABLE.
    pub request_timeout: Duration,
    /// TLS, or plaintext (`None`).
    pub tls: Option<crate::tls::GrpcServerTls>,
}

/// Serves gRPC on `listener` until `shutdown` resolves; then stops taking
/// connections and lets in-flight RPCs finish.
pub async fn serve(
    listener: TcpListener,
    service: AuthService,
    options: GrpcOptions,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    serve_incoming(incoming, service, options, health_service, shutdown).await
}

/// Serves gRPC on a Unix socket: the in-process shim's way to the core,
/// without the loopback TCP stack (which showed in the profile).
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    service: AuthService,
    request_timeout: Duration,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    // Only this host's shim can reach the socket; it forwards the client's
    // address, and nothing else is a proxy here.
    let options = GrpcOptions {
        trusted_proxies: TrustedProxies::none(),
        request_timeout,
        // Local, and only this user can reach it.
        tls: None,
    };
    serve_incoming(incoming, service, options, health_service, shutdown).await
}

async fn serve_incoming<IO>(
    incoming: impl futures::Stream<Item = std::io::Result<IO>>,
    service: AuthService,
    options: GrpcOptions,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
{
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
    let client_certificates = options
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_auth().is_some());
    let mut server = Server::builder();
    if let Some(tls) = &options.tls {
        server = server.tls_config(tls.server_config())?;
    }
    server
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(client_cert::ClientCertLayer::new(client_certificates))
        .layer(trace::RpcTraceLayer::new(options.request_timeout))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AppsServer::new(apps::AppsService {
            service: service.clone(),
            trusted_proxies: options.trusted_proxies.clone(),
        }))
        .add_service(OAuthServer::new(oauth::OAuthService {
            service: service.clone(),
        }))
        .add_service(SessionsServer::new(accounts::SessionsService {
            service: service.clone(),
            trusted_proxies: options.trusted_proxies,
        }))
        .add_service(AccountsServer::new(accounts::AccountsService { service }))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
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
            for name in SERVICE_NAMES {
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
