//! Token revocation (RFC 7009). Revoking any token revokes its grant: the
//! access tokens and the whole refresh-token family issued with it.
use super::AuthService;
use super::cache::Invalidation;
use super::introspect::TokenTypeHint;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::error::{AuthError, ErrorKind};

impl AuthService {
    pub async fn revoke(
        &self,
        caller: Option<&ClientCredentials>,
        token: &str,
        hint: TokenTypeHint,
    ) -> Result<(), AuthError> {
        let caller = self.authenticate_client(caller).await?;
        if token.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: token.",
            ));
        }
        // Section 2.2: an unknown token is not an error; the client's goal
        // (the token is unusable) is met.
        let Some(record) = self.find_token(token, hint, Some(&caller)).await? else {
            return Ok(());
        };
        if record.app_id != caller.id {
            tracing::warn!(
                caller = %caller.id,
                owner = %record.app_id,
                "refused to revoke another client's token"
            );
            return Err(AuthError::new(
                ErrorKind::UnauthorizedClient,
                "You are not authorized to revoke this token",
            ));
        }
        self.store().revoke_grant(record.grant_id).await?;
        self.cache()
            .invalidate(&Invalidation::Grant(record.grant_id));
        self.metrics().token_revoked();
        tracing::info!(
            grant_id = %record.grant_id,
            app_id = %caller.id,
            "revoked grant"
        );
        Ok(())
    }
}
