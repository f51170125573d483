//! What an account has authorized: the list Mastodon's settings page shows,
//! and revoking an app's access from it.
use super::AuthService;
use super::cache::Invalidation;
use crate::domain::error::AuthError;
use crate::domain::grant::AuthorizedApp;
use crate::domain::id::AppId;
use crate::domain::secret::Secret;

impl AuthService {
    pub async fn authorized_apps(&self, session: &Secret) -> Result<Vec<AuthorizedApp>, AuthError> {
        let account = self.session_account(Some(session)).await?;
        Ok(self.store().authorized_apps(account.id).await?)
    }

    pub async fn revoke_authorized_app(
        &self,
        session: &Secret,
        app_id: &str,
    ) -> Result<(), AuthError> {
        let account = self.session_account(Some(session)).await?;
        let app_id: AppId = app_id
            .parse()
            .map_err(|_| AuthError::not_found("Record not found"))?;
        let revoked = self
            .store()
            .revoke_authorized_app(account.id, app_id)
            .await?;
        if revoked == 0 {
            return Err(AuthError::not_found("Record not found"));
        }
        // A superset (all of this account's cached tokens), which is safe.
        self.cache().invalidate(&Invalidation::Account(account.id));
        tracing::info!(
            account = %account.id,
            app_id = %app_id,
            grants = revoked,
            "revoked an app's access"
        );
        Ok(())
    }
}
