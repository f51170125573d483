//! Bearer tokens on API calls: who is calling, and may they.
use super::{AuthService, is_expired};
use crate::domain::account::Account;
use crate::domain::app::App;
use crate::domain::error::AuthError;
use crate::domain::grant::Token;
use crate::domain::scope::Scope;

/// Tokens longer than any we issue are rejected without a lookup.
pub(crate) const MAX_TOKEN_LEN: usize = 4096;

/// An authenticated API caller.
pub struct BearerContext {
    pub token: Token,
    pub app: App,
}

impl AuthService {
    /// Resolves an access token into its app, failing with Mastodon's three
    /// 401 reasons: invalid, revoked, expired.
    pub async fn authenticate_bearer(&self, bearer: &str) -> Result<BearerContext, AuthError> {
        if bearer.is_empty() || bearer.len() > MAX_TOKEN_LEN {
            return Err(AuthError::invalid_token());
        }
        let token = self
            .store()
            .access_token(&super::introspect::token_key(bearer))
            .await?
            .map(super::introspect::held)
            .ok_or_else(AuthError::invalid_token)?;
        if token.revoked {
            return Err(AuthError::token_revoked());
        }
        if is_expired(token.expires_at, self.now()) {
            return Err(AuthError::token_expired());
        }
        if token.account_disabled {
            return Err(AuthError::account_disabled());
        }
        let app = self
            .store()
            .app_by_id(token.app_id())
            .await?
            .ok_or_else(AuthError::invalid_token)?;
        Ok(BearerContext { token, app })
    }

    /// The account behind a user token that holds `required`, and is an
    /// admin: what every admin operation checks.
    pub(crate) async fn authorize_admin(
        &self,
        bearer: &str,
        required: Scope,
    ) -> Result<Account, AuthError> {
        let ctx = self.authenticate_bearer(bearer).await?;
        let account_id = ctx.token.account_id.ok_or_else(AuthError::user_required)?;
        // The role first: a token of an account that is no longer an admin
        // has lost its admin scopes too, and "forbidden" says why.
        let account = self
            .store()
            .account_by_id(account_id)
            .await?
            .ok_or_else(AuthError::invalid_token)?;
        if !account.is_admin {
            tracing::warn!(
                account = %account.id,
                "admin call by a non-admin account refused"
            );
            return Err(AuthError::forbidden());
        }
        if !ctx.token.scopes.satisfies(required) {
            return Err(AuthError::insufficient_scope());
        }
        Ok(account)
    }
}
