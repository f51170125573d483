//! Starving everyone's cache misses: one self-registered client floods
//! IntrospectBatch with 1000 unknown tokens a call. Each batch's misses are
//! looked up together, in one query per kind of token, on one turn of the
//! calling client's share, and count against the client's own rate of
//! misses: past it, its calls wait, and past the bound of a wait they are
//! refused. The flood never keeps another client's fresh token waiting,
//! and all of it shows in /metrics.
use std::time::{Duration, Instant};

use authd::proto::v1;

use super::*;

#[tokio::test]
async fn a_flood_of_unknown_token_batches_leaves_other_clients_cold_lookups_alone() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        // Two turns: the flooding client may hold one of them.
        o.service.cold_lookup_concurrency = 2;
        o
    })
    .await;
    let flooder = app.register_app(&[OOB], "read").await;
    let victim = app.register_app(&[OOB], "read").await;
    let fresh: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..5 {
            let token = app.client_credentials(&victim, "read").await.unwrap();
            tokens.push(token.access_token);
        }
        tokens
    };

    // 64 batches of 1000 unknown (but plausible: 43 base64url characters)
    // tokens at once. One lookup per token, as before, is 128,000 lookups
    // on two turns, queued in front of every other client's.
    let started = Instant::now();
    let flood: Vec<_> = (0..64)
        .map(|b| {
            let mut oauth = app.oauth();
            let flooder = flooder.clone();
            tokio::spawn(async move {
                let tokens: Vec<String> = (0..1000).map(|i| format!("{b:03}x{i:039}")).collect();
                oauth
                    .introspect_batch(v1::IntrospectBatchRequest {
                        tokens,
                        client_id: flooder.client_id,
                        client_secret: flooder.client_secret,
                        ..Default::default()
                    })
                    .await
            })
        })
        .collect();

    // Meanwhile another client introspects its fresh tokens: each is a
    // cache miss, answered on the turn the flood cannot take.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for token in &fresh {
        let asked = Instant::now();
        let answer = app.introspect(&victim, token).await;
        assert_eq!(answer.active, Some(true));
        // Queued behind the flood's lookups, this took seconds, or ran out
        // of its wait; on its own turn it takes milliseconds.
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "a fresh token's introspection took {:?} during the flood",
            asked.elapsed()
        );
    }

    // The flooder's own rate (2000 misses a second by default): its first
    // batches are answered, the next ones wait their turn, and those that
    // would wait too long are refused at once.
    let (mut answered, mut refused) = (0, 0);
    for batch in flood {
        match batch.await.unwrap() {
            Ok(answers) => {
                let answers = answers.into_inner();
                assert_eq!(answers.results.len(), 1000);
                assert!(answers.results.iter().all(|r| r.active != Some(true)));
                answered += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "rate_limited", "{status:?}");
                refused += 1;
            }
        }
    }
    assert!(
        answered >= 2 && refused >= 1,
        "{answered} answered, {refused} refused"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the flood took {:?}",
        started.elapsed()
    );

    // The queues are visible, and nothing timed out: the flood was slowed
    // and refused at its client's rate instead.
    let metrics = app
        .http()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "authd_cold_lookups_waiting{lookup=\"token\"} 0",
        "authd_cold_lookups_waiting{lookup=\"client\"} 0",
        "authd_cold_lookups_timed_out_total{lookup=\"token\"} 0",
        "authd_cold_lookups_timed_out_total{lookup=\"client\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}
