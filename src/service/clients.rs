//! Client authentication: a client_id and secret checked against the stored
//! digest, in constant time.
use std::sync::Arc;

use super::AuthService;
use crate::domain::app::App;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::error::AuthError;
use crate::domain::secret::Digest;

impl AuthService {
    /// The app these credentials belong to, or `invalid_client`. `None`
    /// (no credentials sent) is `invalid_client` too.
    pub async fn authenticate_client(
        &self,
        credentials: Option<&ClientCredentials>,
    ) -> Result<Arc<App>, AuthError> {
        let Some(credentials) = credentials else {
            return Err(AuthError::invalid_client());
        };
        let presented = credentials.client_secret.digest();
        let app = self.client_record(&credentials.client_id).await?;
        match app {
            Some(app) if presented.ct_eq(&app.client_secret_digest) => Ok(app),
            Some(_) => {
                tracing::info!(client_id = %credentials.client_id, "client authentication failed: wrong secret");
                Err(AuthError::invalid_client())
            }
            None => {
                // Same work as a known client, so timing does not reveal
                // which client_ids exist.
                let _ = presented.ct_eq(&Digest::of(""));
                tracing::info!("client authentication failed: unknown client");
                Err(AuthError::invalid_client())
            }
        }
    }

    /// A client's record: from the cache, or from the database (then
    /// cached). Unknown client_ids are not cached.
    async fn client_record(&self, client_id: &str) -> Result<Option<Arc<App>>, AuthError> {
        if client_id.is_empty() || client_id.len() > 256 {
            return Ok(None);
        }
        let cache = self.cache();
        if let Some(app) = cache.client(client_id) {
            return Ok(Some(app));
        }
        let ticket = cache.ticket();
        let _turn = self.cold_lookups().client().await?;
        let app = self.store().app_by_client_id(client_id).await?;
        if let Some(app) = &app {
            cache.insert_client(ticket, app.clone());
        }
        Ok(app.map(Arc::new))
    }
}
