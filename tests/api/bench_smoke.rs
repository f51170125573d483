//! `authd bench` runs, briefly and small, against a real authd: every
//! scenario completes with no errors and prints its figures. It measures
//! nothing worth keeping here; speed is never asserted.
use std::process::Command;

use crate::helpers::*;

#[tokio::test]
async fn the_load_generator_runs_every_scenario_without_errors() {
    let app = spawn_app().await;
    let grpc = format!("http://{}", app.application().grpc_addr());
    let http = app.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_authd"))
            .args(["bench", "--grpc", &grpc, "--http", &http])
            .args([
                "--concurrency",
                "2",
                "--connections",
                "1",
                "--tokens",
                "3",
                "--batch-size",
                "4",
            ])
            .args([
                "--duration",
                "300ms",
                "--warmup",
                "100ms",
                "--login-storm",
                "1",
            ])
            .args([
                "--scenarios",
                "echo,introspect-grpc,introspect-batch,introspect-http,client-credentials",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run authd bench")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for scenario in [
        "Echo",
        "IntrospectGrpc",
        "IntrospectBatch",
        "IntrospectHttp",
        "ClientCredentials",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(scenario))
            .unwrap_or_else(|| panic!("no {scenario} line in {stdout}"));
        assert!(line.contains("req/s") && line.contains("p99"), "{line}");
        assert!(line.contains("errors 0"), "{line}");
        if scenario != "Echo" {
            assert!(line.contains("x echo req/s"), "{line}");
        }
    }
    assert!(stdout.contains("logins/s"), "{stdout}");
}
