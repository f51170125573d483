//! Client authentication: a client_id and secret checked against the stored
//! digest, in constant time; and, where RFC 6749 lets a public client in
//! with its client_id alone (the token endpoint, section 3.2.1; revocation,
//! RFC 7009 section 2.1), the identification of a public client.
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

    /// The client of a token or revocation request: a confidential client
    /// authenticated by its secret, or a public one (token_endpoint_auth_method
    /// none) named by its client_id alone. A public client that presents a
    /// secret is refused: it has none, so whoever sends one is not it, and
    /// accepting it would teach clients that secrets are optional checks.
    pub async fn identify_client(
        &self,
        credentials: Option<&ClientCredentials>,
    ) -> Result<Arc<App>, AuthError> {
        let Some(c) = credentials else {
            return Err(AuthError::invalid_client());
        };
        if c.client_secret.expose().is_empty() {
            if let Some(app) = self.client_record(&c.client_id).await?
                && app.is_public()
            {
                return Ok(app);
            }
        } else if let Some(app) = self.client_record(&c.client_id).await?
            && app.is_public()
        {
            tracing::info!(client_id = %c.client_id, "client authentication failed: a public client sent a secret");
            return Err(AuthError::invalid_client());
        }
        self.authenticate_client(credentials).await
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
