//! The load tool (`authd-bench`, a workspace member) runs, briefly and
//! small, against a real authd: every scenario completes with no errors,
//! and with --hostile the attacks run beside it. It measures nothing worth
//! keeping here; speed is never asserted.
use clap::Parser;

use crate::helpers::*;

/// `authd-bench run`'s arguments, parsed as its command line would be.
#[derive(Parser)]
struct Run {
    #[command(flatten)]
    args: authd_bench::BenchArgs,
}

async fn bench(app: &TestApp, extra: &[&str]) -> Vec<authd_bench::Report> {
    let grpc = format!("http://{}", app.application().grpc_addr());
    let http = app.url("");
    let mut argv = vec![
        "authd-bench",
        "--grpc",
        &grpc,
        "--http",
        &http,
        "--concurrency",
        "2",
        "--connections",
        "1",
        "--tokens",
        "3",
        "--batch-size",
        "4",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--echo-in-process",
    ];
    argv.extend_from_slice(extra);
    authd_bench::run(Run::parse_from(argv).args)
        .await
        .expect("every scenario runs without errors")
}

#[tokio::test]
async fn the_load_generator_runs_every_scenario_without_errors() {
    let app = spawn_app().await;
    let reports = bench(
        &app,
        &[
            "--login-storm",
            "1",
            "--scenarios",
            "echo,introspect-grpc,introspect-batch,introspect-http,client-credentials,policy-check,ext-authz",
        ],
    )
    .await;
    let scenarios: Vec<String> = reports
        .iter()
        .map(|r| format!("{:?}", r.scenario))
        .collect();
    assert_eq!(
        scenarios,
        [
            "Echo",
            "IntrospectGrpc",
            "IntrospectBatch",
            "IntrospectHttp",
            "ClientCredentials",
            "PolicyCheck",
            "ExtAuthz"
        ]
    );
    for report in &reports {
        assert!(report.requests > 0, "{report:?}");
        assert_eq!(report.errors, 0, "{report:?}");
    }
}

#[tokio::test]
async fn the_hostile_load_runs_beside_a_scenario_in_alternating_rounds() {
    let app = spawn_app().await;
    let reports = bench(
        &app,
        &[
            "--scenarios",
            "introspect-grpc",
            "--hostile",
            "--hostile-idle-connections",
            "4",
            "--hostile-batches",
            "2",
            "--rounds",
            "2",
        ],
    )
    .await;
    // Quiet, under attack, quiet, under attack; none failed.
    assert_eq!(reports.len(), 4);
    assert!(reports.iter().all(|r| r.requests > 0 && r.errors == 0));
}
