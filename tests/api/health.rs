use std::time::{Duration, Instant};

use authd::proto::v1;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::*;

async fn health(app: &TestApp, service: &str) -> ServingStatus {
    let r = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(r.status).unwrap()
}

async fn wait_for(app: &TestApp, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(app, "").await != want {
        assert!(Instant::now() < deadline, "health never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_reports_serving_for_every_service() {
    let app = spawn_app().await;
    wait_for(&app, ServingStatus::Serving).await;
    for name in authd::grpc::SERVICE_NAMES.iter() {
        assert_eq!(health(&app, name).await, ServingStatus::Serving, "{name}");
    }
}

/// Makes this test's database unreachable, as an outage would: existing
/// connections die and new ones are refused.
async fn cut_off(app: &TestApp) {
    let db = maintenance(app).await;
    db.batch_execute(&format!(
        "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{0}' AND pid <> pg_backend_pid();",
        app.db_name
    ))
    .await
    .unwrap();
}

/// A connection to another database of the same server, from which the
/// test database can be changed while it refuses connections.
async fn maintenance(app: &TestApp) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = app.db_config();
    config.dbname("postgres");
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn restore(app: &TestApp) {
    maintenance(app)
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.db_name
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_postgres_gives_unavailable_and_not_serving_then_recovers() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    wait_for(&app, ServingStatus::Serving).await;

    cut_off(&app).await;
    let started = Instant::now();
    let r = app
        .oauth()
        .introspect(v1::IntrospectRequest {
            token: token.clone(),
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            ..Default::default()
        })
        .await;
    assert_error(r, Code::Unavailable, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert_error(
        app.client_credentials(&client, "").await,
        Code::Unavailable,
        "unavailable",
    );
    wait_for(&app, ServingStatus::NotServing).await;

    restore(&app).await;
    wait_for(&app, ServingStatus::Serving).await;
    assert!(
        app.introspect(&client, &token).await.is_active(),
        "nothing lost, no restart needed"
    );
}
