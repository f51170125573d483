//! GET /metrics: the Prometheus exposition, on the HTTP listener (the
//! default) or on a listener of its own (`--metrics-addr`), which keeps it
//! off a public port.
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::ShimState;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// GET /metrics on the shim's router: 404 when the metrics are served on
/// their own listener instead.
pub async fn scrape(State(state): State<ShimState>) -> Response {
    if !state.metrics_on_http() {
        return super::not_found().await;
    }
    exposition(state.metrics())
}

fn exposition(metrics: &Metrics) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response()
}

/// Serves GET /metrics alone on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(metrics): State<Metrics>| async move { exposition(&metrics) }),
        )
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
