//! The token endpoint (RFC 6749 sections 4.1.3, 4.4 and 6): exchanges an
//! authorization code, client credentials or a refresh token for tokens.
//!
//! Codes are single use, and a second presentation revokes what the first
//! one issued (section 4.1.2). Refresh tokens rotate on every use, and a
//! used one presented again revokes its whole grant (RFC 9700 section
//! 4.14.2). Both checks run under row locks, so concurrent attempts are
//! serialized and at most one succeeds.
use std::time::{Duration, SystemTime};

use super::cache::Invalidation;
use super::jwt::{AccessTokenClaims, expiry_seconds};
use super::oidc::{IdTokenInput, OPENID_ACCESS_TOKEN_LIFETIME};
use super::{AuthService, is_expired, requested_scopes};
use crate::domain::account::Account;
use crate::domain::app::AccessTokenFormat;
use crate::domain::app::App;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::client_metadata::GrantType;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::id::AccountId;
use crate::domain::oidc::{self, ClaimsRequest};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{Digest, Secret};
use crate::domain::time::unix_seconds;
use crate::metrics::Grant;
use crate::store::grants::{self, NewAccessToken, NewRefreshToken};

#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client: Option<ClientCredentials>,
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: String,
    pub refresh_token: String,
    pub scope: String,
}

/// Tokens handed out once (RFC 6749 section 5.1).
pub struct IssuedTokens {
    pub access_token: Secret,
    pub scopes: ScopeSet,
    pub created_at: SystemTime,
    pub expires_in: Option<Duration>,
    pub refresh_token: Option<Secret>,
    /// OpenID Connect: for a grant with the `openid` scope.
    pub id_token: Option<String>,
}

/// A minted access token: the value for the client, the row for the store.
struct MintedAccessToken {
    value: Secret,
    row: NewAccessToken,
    expires_in: Option<Duration>,
}

impl AuthService {
    pub async fn exchange(&self, request: &TokenRequest) -> Result<IssuedTokens, AuthError> {
        let grant_type = match request.grant_type.as_str() {
            "" => {
                return Err(AuthError::invalid_request(
                    "Missing required parameter: grant_type.",
                ));
            }
            "authorization_code" => GrantType::AuthorizationCode,
            "client_credentials" => GrantType::ClientCredentials,
            "refresh_token" => GrantType::RefreshToken,
            _ => {
                return Err(AuthError::new(
                    ErrorKind::UnsupportedGrantType,
                    "The authorization grant type is not supported by the authorization server.",
                ));
            }
        };
        // Section 3.2.1: a public client identifies itself by client_id.
        let app = self.identify_client(request.client.as_ref()).await?;
        // RFC 7591 section 2: the grants it registered, and never
        // client_credentials for a public client (RFC 6749 section 4.4).
        if !app.allows_grant(grant_type) {
            return Err(AuthError::new(
                ErrorKind::UnauthorizedClient,
                "The client is not authorized to use this authorization grant type.",
            ));
        }
        let (issued, grant) = match grant_type {
            GrantType::AuthorizationCode => (
                self.redeem_code(&app, request).await?,
                Grant::AuthorizationCode,
            ),
            GrantType::ClientCredentials => (
                self.client_credentials(&app, request).await?,
                Grant::ClientCredentials,
            ),
            GrantType::RefreshToken => (self.refresh(&app, request).await?, Grant::RefreshToken),
        };
        self.metrics().token_issued(grant);
        Ok(issued)
    }

    async fn redeem_code(
        &self,
        app: &App,
        request: &TokenRequest,
    ) -> Result<IssuedTokens, AuthError> {
        if request.code.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: code.",
            ));
        }
        if request.redirect_uri.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: redirect_uri.",
            ));
        }
        let invalid = || {
            AuthError::invalid_grant(
                "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
            )
        };
        if request.code.len() > super::bearer::MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let digest = Digest::of(&request.code);
        let mut conn = self.store().conn().await?;
        let tx = grants::begin(&mut conn).await?;
        let code = tx.lock_code(&digest).await?.ok_or_else(invalid)?;
        if code.redeemed_at.is_some() {
            if let Some(grant_id) = code.grant_id {
                tx.revoke_grant(grant_id).await?;
                tx.commit().await?;
                self.cache().invalidate(&Invalidation::Grant(grant_id));
                tracing::warn!(
                    grant_id = %grant_id,
                    app_id = %code.app_id,
                    "authorization code reused: revoked the tokens issued from it"
                );
            }
            return Err(invalid());
        }
        if code.app_id != app.id {
            tracing::warn!(
                app_id = %app.id,
                "authorization code presented by another client"
            );
            return Err(invalid());
        }
        let at = self.now();
        if code.expires_at <= at {
            return Err(invalid());
        }
        if code.redirect_uri.as_str() != request.redirect_uri {
            return Err(invalid());
        }
        // A public client has only PKCE to prove it is the client that
        // asked for the code (RFC 9700 section 2.1.1); its codes always
        // carry a challenge, and no verifier is a bad grant.
        if app.is_public() && (code.code_challenge.is_none() || request.code_verifier.is_empty()) {
            return Err(AuthError::invalid_grant(
                "A public client must send the code_verifier of its code_challenge.",
            ));
        }
        match (&code.code_challenge, request.code_verifier.is_empty()) {
            (Some(_), true) => {
                return Err(AuthError::invalid_request(
                    "Missing required parameter: code_verifier.",
                ));
            }
            (Some(challenge), false) => {
                if !challenge.verify(&request.code_verifier) {
                    return Err(AuthError::invalid_grant(
                        "The code_verifier does not match the code_challenge.",
                    ));
                }
            }
            (None, false) => {
                return Err(AuthError::invalid_grant(
                    "A code_verifier was sent but the authorization request had no code_challenge.",
                ));
            }
            (None, true) => {}
        }
        if code.account_disabled {
            return Err(invalid());
        }
        let grant_id = tx
            .create_grant(
                app.id,
                Some(code.account_id),
                &code.scopes,
                at,
                code.auth_time,
            )
            .await?;
        let access = self.mint_access_token(app, Some(code.account_id), &code.scopes, at)?;
        let access_id = tx.insert_access_token(grant_id, &access.row).await?;
        // An app that did not register refresh_token gets none: it could
        // not use it (exchange refuses the grant).
        let refresh = match access.expires_in {
            Some(_) if app.allows_grant(GrantType::RefreshToken) => {
                let refresh = self.new_refresh_token(&code.scopes, at);
                tx.insert_refresh_token(grant_id, access_id, &refresh.1)
                    .await?;
                Some(refresh.0)
            }
            _ => None,
        };
        let id_token = if oidc::is_openid(&code.scopes) {
            let account = self.openid_account(code.account_id).await?;
            Some(self.id_token(&IdTokenInput {
                app,
                account: &account,
                scopes: &code.scopes,
                auth_time: code.auth_time,
                nonce: code.nonce.as_ref(),
                requested: &code.id_token_claims,
                access_token: &access.value,
                at,
            })?)
        } else {
            None
        };
        tx.mark_code_redeemed(&digest, grant_id).await?;
        tx.commit().await?;
        tracing::info!(grant_id = %grant_id, app_id = %app.id, account = %code.account_id, scope = %code.scopes, "redeemed authorization code");
        Ok(IssuedTokens {
            access_token: access.value,
            scopes: code.scopes,
            created_at: at,
            expires_in: access.expires_in,
            refresh_token: refresh,
            id_token,
        })
    }

    /// RFC 6749 section 4.4: an app acting for itself. No refresh token
    /// (section 4.4.3): the app can always ask again.
    async fn client_credentials(
        &self,
        app: &App,
        request: &TokenRequest,
    ) -> Result<IssuedTokens, AuthError> {
        // admin:* only for an app an admin allowed to hold them: an app
        // registers itself, anonymously, with any scopes it likes.
        let scopes = super::grantable_scopes(
            requested_scopes(&request.scope, &app.scopes)?,
            app.may_use_admin_scopes,
        )?;
        let at = self.now();
        let access = self.mint_access_token(app, None, &scopes, at)?;
        self.store()
            .issue_app_token_batched(app.id, access.row)
            .await?;
        tracing::debug!(app_id = %app.id, scope = %scopes, "issued client_credentials token");
        Ok(IssuedTokens {
            access_token: access.value,
            scopes,
            created_at: at,
            expires_in: access.expires_in,
            refresh_token: None,
            id_token: None,
        })
    }

    async fn refresh(&self, app: &App, request: &TokenRequest) -> Result<IssuedTokens, AuthError> {
        if request.refresh_token.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: refresh_token.",
            ));
        }
        let invalid =
            || AuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
        if request.refresh_token.len() > super::bearer::MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let mut conn = self.store().conn().await?;
        let tx = grants::begin(&mut conn).await?;
        let current = tx
            .lock_refresh_token(&super::introspect::token_key(&request.refresh_token))
            .await?
            .ok_or_else(invalid)?;
        if current.app_id != app.id {
            tracing::warn!(app_id = %app.id, "refresh token presented by another client");
            return Err(invalid());
        }
        if current.used_at.is_some() {
            if !current.grant_revoked {
                tx.revoke_grant(current.grant_id).await?;
                tx.commit().await?;
                self.cache()
                    .invalidate(&Invalidation::Grant(current.grant_id));
                tracing::warn!(
                    grant_id = %current.grant_id,
                    app_id = %app.id,
                    "refresh token reused: revoked its grant"
                );
            }
            return Err(invalid());
        }
        let at = self.now();
        if current.grant_revoked || is_expired(current.expires_at, at) {
            return Err(invalid());
        }
        if current.account_disabled {
            return Err(invalid());
        }
        // RFC 6749 section 6: the new access token may be narrower; the
        // refresh token keeps the scopes of the one it replaces, less the
        // admin scopes of an account that has lost its admin role.
        let family_scopes = if current.holder_may_use_admin_scopes {
            current.scopes.clone()
        } else {
            current.scopes.without_admin()
        };
        if family_scopes.is_empty() {
            return Err(invalid());
        }
        let scopes = if request.scope.trim().is_empty() {
            family_scopes.clone()
        } else {
            requested_scopes(&request.scope, &family_scopes)?
        };
        tx.mark_refresh_token_used(current.id).await?;
        if let Some(old) = current.access_token_id {
            tx.revoke_access_token(old).await?;
        }
        let access = self.mint_access_token(app, current.account_id, &scopes, at)?;
        let access_id = tx
            .insert_access_token(current.grant_id, &access.row)
            .await?;
        let (refresh, refresh_row) = self.new_refresh_token(&family_scopes, at);
        tx.insert_refresh_token(current.grant_id, access_id, &refresh_row)
            .await?;
        // Core 12.2: a new id_token for the same sign-in, without the
        // nonce (there is no new authentication request to bind it to).
        let id_token = match current.account_id {
            Some(account_id) if oidc::is_openid(&scopes) => {
                let account = self.openid_account(account_id).await?;
                Some(self.id_token(&IdTokenInput {
                    app,
                    account: &account,
                    scopes: &scopes,
                    auth_time: current.auth_time,
                    nonce: None,
                    requested: &ClaimsRequest::default(),
                    access_token: &access.value,
                    at,
                })?)
            }
            _ => None,
        };
        tx.commit().await?;
        // The spent refresh token and the access token it replaced.
        self.cache()
            .invalidate(&Invalidation::Grant(current.grant_id));
        tracing::info!(
            grant_id = %current.grant_id,
            app_id = %app.id,
            "rotated refresh token"
        );
        Ok(IssuedTokens {
            access_token: access.value,
            scopes,
            created_at: at,
            expires_in: access.expires_in,
            refresh_token: Some(refresh),
            id_token,
        })
    }

    fn mint_access_token(
        &self,
        app: &App,
        account_id: Option<AccountId>,
        scopes: &ScopeSet,
        at: SystemTime,
    ) -> Result<MintedAccessToken, AuthError> {
        let lifetimes = self.lifetimes();
        // An opaque token carries its selector; a JWT carries it in its jti.
        let (value, selector, ttl) = match app.access_token_format {
            AccessTokenFormat::Opaque => {
                let (value, selector) = Secret::generate_token();
                let ttl = match lifetimes.access_token {
                    None if oidc::is_openid(scopes) => Some(OPENID_ACCESS_TOKEN_LIFETIME),
                    ttl => ttl,
                };
                (value, selector, ttl)
            }
            AccessTokenFormat::Jwt => {
                let ttl = lifetimes.jwt_access_token;
                let sub = account_id.map_or_else(|| app.client_id.clone(), |id| id.to_string());
                let scope = scopes.to_string();
                // The jti is made like an opaque token, so that the row is
                // found by its selector in the same way.
                let (jti, selector) = Secret::generate_token();
                let claims = AccessTokenClaims {
                    iss: &self.config().issuer,
                    exp: expiry_seconds(at + ttl),
                    aud: &self.config().issuer,
                    sub: &sub,
                    client_id: &app.client_id,
                    iat: unix_seconds(at),
                    jti: jti.expose(),
                    scope: &scope,
                };
                (
                    Secret::new(
                        self.inner.keys.sign(
                            app.id_token_signed_response_alg
                                .unwrap_or(super::jwt::DEFAULT_ACCESS_TOKEN_ALGORITHM),
                            &claims,
                        )?,
                    ),
                    selector,
                    Some(ttl),
                )
            }
        };
        Ok(MintedAccessToken {
            row: NewAccessToken {
                selector,
                digest: value.digest(),
                format: app.access_token_format,
                scopes: scopes.clone(),
                created_at: at,
                expires_at: ttl.map(|ttl| at + ttl),
            },
            value,
            expires_in: ttl,
        })
    }

    fn new_refresh_token(&self, scopes: &ScopeSet, at: SystemTime) -> (Secret, NewRefreshToken) {
        let (value, selector) = Secret::generate_token();
        let row = NewRefreshToken {
            selector,
            digest: value.digest(),
            scopes: scopes.clone(),
            created_at: at,
            expires_at: self.lifetimes().refresh_token.map(|ttl| at + ttl),
        };
        (value, row)
    }

    /// The account an id_token is about: it exists, since its code or
    /// refresh token was just locked with it.
    async fn openid_account(&self, id: AccountId) -> Result<Account, AuthError> {
        self.store()
            .account_by_id(id)
            .await?
            .ok_or_else(AuthError::invalid_token)
    }

    /// The JWKS of the keys that sign JWT access tokens.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        self.inner.keys.jwks().await
    }
}
