//! Client authentication: a client_id and secret checked against the stored
//! digest, in constant time.
use super::AuthService;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::error::AuthError;
use crate::domain::secret::Digest;
use crate::store::apps::AppRecord;

impl AuthService {
    /// The app these credentials belong to, or `invalid_client`. `None`
    /// (no credentials sent) is `invalid_client` too.
    pub async fn authenticate_client(
        &self,
        credentials: Option<&ClientCredentials>,
    ) -> Result<AppRecord, AuthError> {
        let Some(credentials) = credentials else {
            return Err(AuthError::invalid_client());
        };
        let presented = credentials.client_secret.digest();
        let app = self
            .store()
            .app_by_client_id(&credentials.client_id)
            .await?;
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
}
