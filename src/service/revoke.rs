//! Token revocation (RFC 7009). Revoking a token a user's grant issued
//! revokes the grant: the access tokens and the whole refresh-token family
//! issued with it. Revoking an app's own token (client_credentials)
//! revokes that token alone: the tokens an app is issued at the same
//! moment share a grant (see `store::issue_batch`), and each is the app's
//! to give up on its own, as a grant of one token was before.
//!
//! The answers are Doorkeeper's (5.x, as Mastodon 4.7 runs it), which real
//! clients see: a client that is missing or fails to authenticate is
//! refused with 403 `unauthorized_client` (Doorkeeper's
//! `validate_presence_of_client`), not RFC 6749's 401 `invalid_client`; a
//! blank token, like an unknown one, is 200 `{}`; another client's token
//! is 403 `unauthorized_client`.
use super::AuthService;
use super::cache::Invalidation;
use super::introspect::TokenTypeHint;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::grant::TokenKind;

impl AuthService {
    pub async fn revoke(
        &self,
        caller: Option<&ClientCredentials>,
        token: &str,
        hint: TokenTypeHint,
    ) -> Result<(), AuthError> {
        // Section 2.1: a public client revokes its own tokens with its
        // client_id alone; the ownership check below still applies.
        let caller = self
            .identify_client(caller)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::InvalidClient => not_authorized_to_revoke(),
                _ => e,
            })?;
        // Section 2.2: an unknown token is not an error; the client's goal
        // (the token is unusable) is met. Doorkeeper answers a blank one the
        // same way.
        if token.is_empty() {
            return Ok(());
        }
        let Some(record) = self.find_token(token, hint, Some(&caller)).await? else {
            return Ok(());
        };
        if record.app_id() != caller.id {
            tracing::warn!(
                caller = %caller.id,
                owner = %record.app_id(),
                "refused to revoke another client's token"
            );
            return Err(not_authorized_to_revoke());
        }
        if record.account_id.is_none() && record.kind == TokenKind::Access {
            let key = super::introspect::token_key(token);
            self.store().revoke_access_token(&key).await?;
            self.cache().invalidate(&Invalidation::Token(key.digest));
            self.metrics().token_revoked();
            tracing::info!(
                grant_id = %record.grant_id,
                app_id = %caller.id,
                "revoked an app's own access token"
            );
            return Ok(());
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

/// Doorkeeper's `revocation_error_response`, in its own wording.
fn not_authorized_to_revoke() -> AuthError {
    AuthError::new(
        ErrorKind::UnauthorizedClient,
        "You are not authorized to revoke this token",
    )
}
