//! Group commit for client_credentials issuance. Each token is durable
//! before its caller hears of it, but tokens issued at the same moment
//! share one statement and one commit: while a batch is being written, the
//! next requests queue, and the next batch takes them all. Under load that
//! turns hundreds of single-row transactions a second (each with its own
//! round trip, WAL flush and lock traffic) into a few dozen.
//!
//! The tokens of a batch that one app asked for with the same scopes share
//! one grant: a grant row per token was two of a token's five index
//! entries, one of its two heap rows and a foreign-key check against the
//! app, and sharing it raised client_credentials from 12.6k to 15.0k
//! tokens/s (medians of 7 alternating 8 s rounds, wrk -t2 -c32). An app's
//! own grant means nothing beyond its tokens: revoking one of them revokes
//! that token alone (service::revoke), and the purge deletes the grant when
//! its tokens are gone.
use std::collections::HashMap;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::apps::scopes_to_sql;
use super::grants::NewAccessToken;
use super::{Store, StoreError};
use crate::domain::id::AppId;

/// Most tokens in one statement.
const MAX_BATCH: usize = 256;
/// Batches written at once; a second one overlaps the first's commit.
/// More writers make smaller batches, and PostgreSQL's work per token
/// falls with the batch's size (a statement's start and its commit are
/// paid once per batch): at wrk's 32 connections on 2 cores, 2 writers
/// issued 15.2-16.8k tokens/s against 14.4-15.4k with 3 and 14.7-15.6k
/// with 4, in alternating 8 s rounds (2026-12-07). The batches are cut
/// even (see batch.rs): without that, a writer that came free took the one
/// or two requests queued meanwhile, and a commit carried 8.2 tokens on
/// average at that load; with it, 11.4 (pg_waldump's count of commits
/// against tokens issued).
const WRITERS: usize = 2;

pub(super) struct Pending {
    app_id: AppId,
    token: NewAccessToken,
    done: oneshot::Sender<Result<(), StoreError>>,
    /// The request's span: a row written on its own is logged in it.
    span: tracing::Span,
}

pub(super) type Queue = mpsc::UnboundedSender<Pending>;

/// One grant per app and scope set in the batch (nearly always one), and
/// one access token per row naming its grant by its place in the first
/// three arrays. The grant ids are drawn first so that each token row can
/// name its grant in the same statement; `grants` is materialized (it is
/// read twice), so nextval runs once per grant. The sequence is looked up
/// once per statement (a subquery, run once), not once per row:
/// pg_get_serial_sequence reads the catalogs each time it is called.
const INSERT_BATCH: &str = "
    WITH grants_in AS (
        SELECT nextval((SELECT pg_get_serial_sequence('grants', 'id'))) AS grant_id, r.*
        FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) WITH ORDINALITY
             AS r(app_id, scopes, created_at, n)
    ), g AS (
        INSERT INTO grants (id, app_id, scopes, created_at) OVERRIDING SYSTEM VALUE
        SELECT grant_id, app_id, string_to_array(scopes, ' '), created_at FROM grants_in
    )
    INSERT INTO access_tokens (selector, digest, grant_id, format, scopes, created_at, expires_at)
    SELECT t.selector, t.digest, g.grant_id, t.format, string_to_array(g.scopes, ' '), t.created_at, t.expires_at
    FROM unnest($4::int[], $5::bytea[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::bytea[])
         AS t(grant_n, digest, format, created_at, expires_at, selector)
    JOIN grants_in g ON g.n = t.grant_n";

impl Store {
    /// Stores a client_credentials token and its grant, in a batch with
    /// whatever else is being issued at the same time. Returns once the
    /// batch has committed.
    pub async fn issue_app_token_batched(
        &self,
        app_id: AppId,
        token: NewAccessToken,
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        let queue = self.issue_queue.get_or_init(|| start(self.clone()));
        queue
            .send(Pending {
                app_id,
                token,
                done,
                span: tracing::Span::current(),
            })
            .map_err(|_| {
                StoreError::Unavailable(super::message("the issuance writer has stopped"))
            })?;
        result.await.map_err(|_| {
            StoreError::Unavailable(super::message("the issuance writer has stopped"))
        })?
    }
}

fn start(store: Store) -> Queue {
    let runtime = store.runtime.clone();
    super::batch::spawn(
        runtime.as_ref(),
        super::batch::Shape {
            workers: WRITERS,
            max_weight: MAX_BATCH,
            weight: |_: &Pending| 1,
            even: true,
        },
        move |batch| {
            let store = store.clone();
            async move { write(&store, batch).await }
        },
    )
}

async fn write(store: &Store, batch: Vec<Pending>) {
    if batch.len() == 1 {
        let p = batch.into_iter().next().expect("one");
        let result = store
            .issue_app_token(p.app_id, &p.token)
            .instrument(p.span)
            .await;
        let _ = p.done.send(result);
        return;
    }
    match insert(store, &batch).await {
        Ok(()) => {
            for p in batch {
                let _ = p.done.send(Ok(()));
            }
        }
        Err(e @ StoreError::Unavailable(_)) => {
            for p in batch {
                let _ = p.done.send(Err(e.clone()));
            }
        }
        // One bad row (say, its app was deleted meanwhile) must not fail
        // the others: write them one by one, so each gets its own answer.
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "batched issuance failed; retrying row by row");
            for p in batch {
                let result = store
                    .issue_app_token(p.app_id, &p.token)
                    .instrument(p.span)
                    .await;
                let _ = p.done.send(result);
            }
        }
    }
}

async fn insert(store: &Store, batch: &[Pending]) -> Result<(), StoreError> {
    // The batch's grants: one per app and scope set, in order of first use.
    let mut grant_apps: Vec<i64> = Vec::new();
    let mut grant_scopes: Vec<String> = Vec::new();
    let mut grant_created: Vec<SystemTime> = Vec::new();
    let mut grant_of: Vec<i32> = Vec::with_capacity(batch.len());
    let mut known: HashMap<(i64, String), i32> = HashMap::new();
    for p in batch {
        let key = (p.app_id.get(), scopes_to_sql(&p.token.scopes).join(" "));
        let n = match known.get(&key) {
            Some(&n) => n,
            None => {
                grant_apps.push(key.0);
                grant_scopes.push(key.1.clone());
                grant_created.push(p.token.created_at);
                // WITH ORDINALITY counts from 1; a batch holds at most
                // MAX_BATCH.
                let n = i32::try_from(grant_apps.len()).unwrap_or(i32::MAX);
                known.insert(key, n);
                n
            }
        };
        grant_of.push(n);
    }
    let created: Vec<SystemTime> = batch.iter().map(|p| p.token.created_at).collect();
    let digests: Vec<&[u8]> = batch
        .iter()
        .map(|p| p.token.digest.as_bytes().as_slice())
        .collect();
    let selectors: Vec<&[u8]> = batch
        .iter()
        .map(|p| p.token.selector.as_bytes().as_slice())
        .collect();
    let formats: Vec<&str> = batch.iter().map(|p| p.token.format.as_str()).collect();
    let expires: Vec<Option<SystemTime>> = batch.iter().map(|p| p.token.expires_at).collect();
    let conn = store.conn().await?;
    let stmt = conn.prepare_cached(INSERT_BATCH).await?;
    conn.execute(
        &stmt,
        &[
            &grant_apps,
            &grant_scopes,
            &grant_created,
            &grant_of,
            &digests,
            &formats,
            &created,
            &expires,
            &selectors,
        ],
    )
    .await?;
    Ok(())
}
