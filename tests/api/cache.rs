//! The introspection cache: hits, and every way a cached answer is dropped
//! (revocation here, on another replica, by SQL; expiry; a lost listener),
//! plus batch introspection.
use std::time::{Duration, Instant};

use authd::proto::v1;
use authd::service::clock::Clock;
use tonic::Code;

use crate::helpers::*;

/// Waits until `cond` holds, up to `within`; returns how long it took.
async fn eventually<F, Fut>(within: Duration, mut cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if cond().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn synced(app: &TestApp) {
    let cache = app.application().service().cache().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let cache = cache.clone();
            async move { cache.is_synced() }
        })
        .await
        .is_some(),
        "the invalidation listener connects"
    );
}

fn hits(app: &TestApp) -> u64 {
    app.application().service().cache().stats().hits
}

#[tokio::test]
async fn a_warm_introspection_is_a_cache_hit_and_revocation_drops_it_at_once() {
    let app = spawn_app().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(app.introspect(&client, &token).await.is_active());
    let before = hits(&app);
    let warm = app.introspect(&client, &token).await;
    assert!(warm.is_active());
    assert_eq!(warm.scope.as_deref(), Some("read"));
    assert_eq!(
        hits(&app),
        before + 1,
        "the second introspection came from memory"
    );

    app.revoke(&client, &token).await.unwrap();
    // No waiting: on the replica that revoked, the cache already knows.
    assert_eq!(
        app.introspect(&client, &token).await,
        v1::IntrospectResponse::inactive()
    );
}

#[tokio::test]
async fn a_revocation_on_one_replica_reaches_the_others_within_a_second() {
    let primary = spawn_app().await;
    let replicas = [
        primary.spawn_replica(TestOptions::default()).await,
        primary.spawn_replica(TestOptions::default()).await,
    ];
    for app in std::iter::once(&primary).chain(&replicas) {
        synced(app).await;
    }
    let client = primary.register_app(&[OOB], "read").await;
    let token = primary
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    for replica in &replicas {
        assert!(replica.introspect(&client, &token).await.is_active());
        assert!(
            replica.introspect(&client, &token).await.is_active(),
            "cached"
        );
    }
    primary.revoke(&client, &token).await.unwrap();
    for replica in &replicas {
        let took = eventually(Duration::from_secs(1), || async {
            !replica.introspect(&client, &token).await.is_active()
        })
        .await;
        assert!(
            took.is_some(),
            "the replica still says active after a second"
        );
    }
}

#[tokio::test]
async fn a_revocation_made_with_sql_reaches_the_cache() {
    let app = spawn_app().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let token = app.user_token(&alice, &client, "read").await.access_token;
    assert!(app.introspect(&client, &token).await.is_active());
    assert!(app.introspect(&client, &token).await.is_active());
    // An operator at psql: the triggers announce it.
    app.db()
        .await
        .execute(
            "UPDATE accounts SET disabled_at = now() WHERE username = 'alice'",
            &[],
        )
        .await
        .unwrap();
    let took = eventually(Duration::from_secs(1), || async {
        !app.introspect(&client, &token).await.is_active()
    })
    .await;
    assert!(
        took.is_some(),
        "disabling the account by SQL deactivates its cached token"
    );
}

#[tokio::test]
async fn caller_authentication_is_cached_and_invalidated_the_same_way() {
    let app = spawn_app().await;
    synced(&app).await;
    let owner = app.register_app(&[OOB], "read").await;
    let gateway = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&owner, "read")
        .await
        .unwrap()
        .access_token;
    assert!(!app.introspect(&gateway, &token).await.is_active());
    let clients_cached = app.application().service().cache().stats().clients;
    assert!(
        clients_cached >= 2,
        "both callers are cached: {clients_cached}"
    );
    app.db()
        .await
        .execute(
            "UPDATE apps SET is_resource_server = true WHERE client_id = $1",
            &[&gateway.client_id],
        )
        .await
        .unwrap();
    let took = eventually(Duration::from_secs(1), || async {
        app.introspect(&gateway, &token).await.is_active()
    })
    .await;
    assert!(
        took.is_some(),
        "the new resource server sees the token within a second"
    );
    // A wrong secret is refused even though the client is cached.
    let wrong = TestClient {
        client_secret: "wrong".into(),
        ..gateway.clone()
    };
    let refused = app
        .oauth()
        .introspect(v1::IntrospectRequest {
            token: token.clone(),
            client_id: wrong.client_id.clone(),
            client_secret: wrong.client_secret.clone(),
            ..Default::default()
        })
        .await;
    assert_error(refused, Code::Unauthenticated, "invalid_client");
}

#[tokio::test]
async fn forged_and_unknown_tokens_never_take_a_cache_slot() {
    let app = spawn_app().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let before = app.application().service().cache().stats().tokens;
    for i in 0..200 {
        let forged = format!("{i:0>43}");
        assert!(!app.introspect(&client, &forged).await.is_active());
    }
    for junk in [
        "",
        "short",
        "not base64 at all, but forty-three chars!!",
        "a.b.c",
    ] {
        let _ = app
            .oauth()
            .introspect(v1::IntrospectRequest {
                token: junk.into(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                ..Default::default()
            })
            .await;
    }
    assert_eq!(app.application().service().cache().stats().tokens, before);
}

#[tokio::test]
async fn an_expired_token_is_inactive_even_when_cached() {
    let (clock, time) = Clock::manual();
    let mut options = TestOptions::default();
    options.service.lifetimes.access_token = Some(Duration::from_secs(60));
    options.service.clock = clock;
    let app = spawn_app_with(options).await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(app.introspect(&client, &token).await.is_active());
    assert!(app.introspect(&client, &token).await.is_active());
    time.advance(Duration::from_secs(59));
    assert!(app.introspect(&client, &token).await.is_active());
    time.advance(Duration::from_secs(1));
    assert_eq!(
        app.introspect(&client, &token).await,
        v1::IntrospectResponse::inactive()
    );
}

#[tokio::test]
async fn a_lost_listener_resyncs_and_misses_no_revocation() {
    let app = spawn_app().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(app.introspect(&client, &token).await.is_active());
    assert!(app.introspect(&client, &token).await.is_active());
    let db = app.db().await;
    // Cut the listener off, and revoke while it cannot hear: whether the
    // answer comes from PostgreSQL meanwhile or from the resynced (emptied)
    // cache, it must be inactive.
    let cut = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'authd-listener'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut, 1, "exactly one listener connection");
    db.execute(
        "UPDATE access_tokens SET revoked_at = now() WHERE digest = sha256(convert_to($1, 'UTF8'))",
        &[&token],
    )
    .await
    .unwrap();
    assert_eq!(
        app.introspect(&client, &token).await,
        v1::IntrospectResponse::inactive()
    );
    synced(&app).await;
    assert_eq!(
        app.introspect(&client, &token).await,
        v1::IntrospectResponse::inactive()
    );
    // And it is listening again: a new token is cached and then revoked.
    let fresh = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(app.introspect(&client, &fresh).await.is_active());
    app.revoke(&client, &fresh).await.unwrap();
    assert!(!app.introspect(&client, &fresh).await.is_active());
}

#[tokio::test]
async fn batch_introspection_answers_each_token_in_order() {
    let app = spawn_app().await;
    let mine = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let my_token = app
        .client_credentials(&mine, "read")
        .await
        .unwrap()
        .access_token;
    let their_token = app
        .client_credentials(&other, "read")
        .await
        .unwrap()
        .access_token;
    let batch = |tokens: Vec<String>| {
        let mut oauth = app.oauth();
        let mine = mine.clone();
        async move {
            oauth
                .introspect_batch(v1::IntrospectBatchRequest {
                    tokens,
                    client_id: mine.client_id,
                    client_secret: mine.client_secret,
                    ..Default::default()
                })
                .await
        }
    };
    let answers = batch(vec![
        my_token.clone(),
        "unknown".into(),
        their_token,
        my_token,
    ])
    .await
    .unwrap()
    .into_inner()
    .results;
    let active: Vec<bool> = answers.iter().map(|a| a.is_active()).collect();
    assert_eq!(active, [true, false, false, true]);
    assert_eq!(
        answers[0].client_id.as_deref(),
        Some(mine.client_id.as_str())
    );
    assert_eq!(answers[1], v1::IntrospectResponse::inactive());

    assert_error(
        batch(vec![]).await,
        Code::InvalidArgument,
        "invalid_request",
    );
    assert_error(
        batch(vec!["x".into(); 1001]).await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

#[tokio::test]
async fn with_the_cache_off_every_introspection_reads_postgres() {
    let mut options = TestOptions::default();
    options.service.cache_capacity = 0;
    let app = spawn_app_with(options).await;
    let client = app.register_app(&[OOB], "read").await;
    let token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    for _ in 0..3 {
        assert!(app.introspect(&client, &token).await.is_active());
    }
    let cache = app.application().service().cache();
    assert!(
        !cache.is_synced(),
        "no listener runs, so the cache is never used"
    );
    assert_eq!(cache.stats().hits, 0);
    assert_eq!(cache.stats().tokens, 0);
    // A revocation made straight in the database is seen at once.
    app.db()
        .await
        .execute("UPDATE access_tokens SET revoked_at = now()", &[])
        .await
        .unwrap();
    assert!(!app.introspect(&client, &token).await.is_active());
}

#[tokio::test]
async fn cold_misses_that_arrive_together_share_a_statement_and_each_gets_its_own_record() {
    let mut options = TestOptions::default();
    // Every introspection misses, and is looked up by the batched reader.
    options.service.cache_capacity = 0;
    let app = spawn_app_with(options).await;
    let clients = [
        app.register_app(&[OOB], "read").await,
        app.register_app(&[OOB], "read write").await,
    ];
    let mut calls = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        for _ in 0..24 {
            let token = app
                .client_credentials(client, if i == 0 { "read" } else { "write" })
                .await
                .unwrap()
                .access_token;
            calls.push((i, token, true));
        }
        // Unknown tokens of the right shape, in the same batches.
        for n in 0..8 {
            calls.push((i, format!("{:A>43}", format!("unknown{i}x{n}")), false));
        }
    }
    let before = app.application().service().store().token_lookup_stats();
    let app = &app;
    let answers = futures::future::join_all(calls.iter().map(|(i, token, known)| {
        let caller = &clients[*i];
        async move { (*i, *known, app.introspect(caller, token).await) }
    }))
    .await;
    let after = app.application().service().store().token_lookup_stats();
    for (i, known, answer) in answers {
        if !known {
            assert!(!answer.is_active(), "an unknown token is inactive");
            continue;
        }
        assert!(answer.is_active(), "an issued token is active");
        assert_eq!(
            answer.client_id.as_deref(),
            Some(clients[i].client_id.as_str()),
            "each token is answered with its own record, not a batch neighbour's"
        );
        assert_eq!(
            answer.scope.as_deref(),
            Some(if i == 0 { "read" } else { "write" })
        );
    }
    let keys = after.keys - before.keys;
    let statements = after.statements - before.statements;
    assert!(keys >= 64, "every miss was looked up: {keys} keys");
    assert!(
        statements < keys,
        "{keys} misses arriving together took {statements} statements"
    );
}

#[tokio::test]
async fn revocations_wait_for_one_sweep_together_but_their_tokens_are_inactive_at_once() {
    let app = spawn_app().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let user = app.create_user("sweeps", false).await;
    // A user's grants: revoking a token revokes its grant, which the
    // cache sweeps for (an app's own token is revoked, and dropped, alone).
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let token = app.user_token(&user, &client, "read").await.access_token;
        assert!(app.introspect(&client, &token).await.is_active());
        tokens.push(token);
    }
    let cache = app.application().service().cache().clone();
    let (cached, sweeps) = (cache.stats().tokens, cache.stats().sweeps);
    for token in &tokens[..10] {
        app.revoke(&client, token).await.unwrap();
    }
    // Inactive at once, on this replica, before any sweep has run (half
    // of them asked: the others stay cached until the sweep).
    for (i, token) in tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 5 || *i >= 10)
    {
        assert_eq!(app.introspect(&client, token).await.is_active(), i >= 10);
    }
    // The listener's sweep drops the rest from memory within seconds, in
    // fewer passes than revocations.
    assert!(
        eventually(Duration::from_secs(5), || {
            let cache = cache.clone();
            async move { cache.stats().tokens + 10 <= cached && cache.stats().sweeps > sweeps }
        })
        .await
        .is_some(),
        "swept: {:?}",
        cache.stats()
    );
    assert!(cache.stats().sweeps - sweeps < 10);
    for token in &tokens[10..] {
        assert!(app.introspect(&client, token).await.is_active());
    }
}

/// The cold lookup's plan, made on authd's own session (its generic plan,
/// kept until PostgreSQL next analyzes the tables), probes `grants` by its
/// key while `grants` is a tenth of `access_tokens`, as shared
/// client_credentials grants leave it: a hash join over a full scan of
/// `grants`, which PostgreSQL's default costs chose at these sizes, would
/// be kept as the table grows, every lookup scanning it whole.
#[tokio::test]
async fn the_cold_lookup_probes_grants_by_key_while_grants_is_small() {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read").await;
    let db = app.db().await;
    // 20,000 tokens in 1,900 grants: the cold benchmark's first round.
    db.execute(
        "INSERT INTO grants (app_id, scopes)
         SELECT a.id, '{read}' FROM apps a, generate_series(1, 1900) WHERE a.client_id = $1",
        &[&client.client_id],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO access_tokens (selector, digest, grant_id, format, scopes)
         SELECT substr(sha256(('s' || i)::bytea), 1, 16), sha256(('d' || i)::bytea),
                (SELECT min(id) FROM grants) + i % 1900, 'opaque', '{read}'
         FROM generate_series(1, 20000) AS i",
        &[],
    )
    .await
    .unwrap();
    db.execute("ANALYZE grants, access_tokens", &[])
        .await
        .unwrap();

    let store = app.application().service().store();
    let conn = store.conn().await.unwrap();
    conn.batch_execute(&format!(
        "PREPARE lookup_plan(bytea[], bytea[]) AS {}",
        authd::store::grants::ACCESS_TOKENS_BY_KEYS
    ))
    .await
    .unwrap();
    let plan: Vec<String> = conn
        .query(
            "EXPLAIN EXECUTE lookup_plan(ARRAY['\\x00'::bytea], ARRAY['\\x00'::bytea])",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect();
    conn.batch_execute("DEALLOCATE lookup_plan").await.unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan using grants_pkey on grants"),
        "{plan}"
    );
    assert!(!plan.contains("Seq Scan on grants"), "{plan}");
}

/// A pooled connection is replaced once past its lifetime (so that its
/// plans are made again for the tables as they are), and reused before.
#[tokio::test]
async fn a_pooled_connection_is_replaced_past_its_lifetime() {
    let app = spawn_app().await;
    let store_with = |lifetime: Duration| {
        authd::store::Store::new(authd::store::StoreConfig {
            pg: app.db_config(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            connection_lifetime: lifetime,
        })
        .unwrap()
    };
    async fn backend(store: &authd::store::Store) -> i32 {
        let conn = store.conn().await.unwrap();
        conn.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    }
    let short = store_with(Duration::from_millis(200));
    let first = backend(&short).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_ne!(
        backend(&short).await,
        first,
        "a connection outlived its lifetime"
    );
    let long = store_with(Duration::from_secs(600));
    let first = backend(&long).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(backend(&long).await, first, "a connection was not reused");
}
