//! LISTEN on the invalidation channel (migrations/0002): a connection of its
//! own, outside the pool, whose notifications arrive as payload strings.
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Store, StoreError};

pub const INVALIDATION_CHANNEL: &str = "authd_invalidations";

/// A listening connection. `next` yields payloads; `None` means the
/// connection is gone, and whatever was sent meanwhile was missed.
pub struct Listener {
    client: tokio_postgres::Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Store {
    pub async fn listen(&self) -> Result<Listener, StoreError> {
        let mut pg = self.pg.clone();
        // Named, so that an operator can tell it apart in pg_stat_activity.
        pg.application_name("authd-listener");
        let (client, mut connection) = pg.connect(NoTls).await?;
        let (tx, payloads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "invalidation listener connection failed");
                        break;
                    }
                }
            }
            // Dropping tx ends the stream: the listener knows it is deaf.
        });
        client
            .batch_execute(&format!("LISTEN {INVALIDATION_CHANNEL}"))
            .await?;
        Ok(Listener { client, payloads })
    }
}

impl Listener {
    pub async fn next(&mut self) -> Option<String> {
        self.payloads.recv().await
    }

    /// A round trip on the listening connection itself, to notice a
    /// connection that died without closing.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client.simple_query("SELECT 1").await?;
        Ok(())
    }
}
