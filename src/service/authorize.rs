//! The authorization endpoint (RFC 6749 section 4.1.1): checks a request,
//! tells the consent page what to show, and issues codes.
//!
//! Checks run in Mastodon's order, so the same bad request gets the same
//! error: client_id present, client known, redirect_uri registered,
//! response_type, scopes, PKCE; then the signed-in account. Errors about the
//! client or the redirect URI must never be sent to the redirect URI; the
//! shim shows them as a page.
use std::time::SystemTime;

use super::{AuthService, requested_scopes};
use crate::domain::account::Account;
use crate::domain::app::App;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::pkce::CodeChallenge;
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::Secret;
use crate::store::grants::NewCode;

/// What an authorization request carries.
#[derive(Clone, Debug, Default)]
pub struct AuthorizationRequest {
    pub session: Option<Secret>,
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
}

/// A request that passed every check: what the consent page shows.
pub struct PreparedAuthorization {
    pub app: App,
    pub account: Account,
    pub scopes: ScopeSet,
    pub redirect_uri: RedirectUri,
    /// The account already granted the app every requested scope.
    pub previously_granted: bool,
    pub state: String,
    challenge: Option<CodeChallenge>,
}

impl PreparedAuthorization {
    /// Where "Deny" sends the user (RFC 6749 section 4.1.2.1); None for the
    /// out-of-band URI.
    pub fn deny_redirect(&self) -> Option<String> {
        if self.redirect_uri.is_oob() {
            return None;
        }
        let mut params = vec![
            ("error", ErrorKind::AccessDenied.as_str()),
            (
                "error_description",
                "The resource owner or authorization server denied the request.",
            ),
        ];
        if !self.state.is_empty() {
            params.push(("state", self.state.as_str()));
        }
        Some(self.redirect_uri.with_params(&params))
    }
}

/// A code, handed out once.
pub struct IssuedCode {
    pub code: Secret,
    pub redirect_uri: RedirectUri,
    pub state: String,
    pub scopes: ScopeSet,
    pub expires_at: SystemTime,
    pub expires_in: std::time::Duration,
    /// The redirect with code and state; None for the out-of-band URI.
    pub redirect_to: Option<String>,
}

impl AuthService {
    pub async fn prepare_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<PreparedAuthorization, AuthError> {
        if request.client_id.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: client_id.",
            ));
        }
        let app = self
            .store()
            .app_by_client_id(&request.client_id)
            .await?
            .ok_or_else(AuthError::invalid_client)?;
        let redirect_uri = resolve_redirect_uri(&app, &request.redirect_uri)?;
        match request.response_type.as_str() {
            "" => {
                return Err(AuthError::invalid_request(
                    "Missing required parameter: response_type.",
                ));
            }
            "code" => {}
            _ => {
                return Err(AuthError::new(
                    ErrorKind::UnsupportedResponseType,
                    "The authorization server does not support this response type.",
                ));
            }
        }
        let scopes = requested_scopes(&request.scope, &app.scopes)?;
        let challenge =
            CodeChallenge::parse(&request.code_challenge, &request.code_challenge_method)?;
        let account = self.session_account(request.session.as_ref()).await?;
        let scopes = super::grantable_scopes(scopes, account.is_admin)?;
        // Consent is skipped only while the user still holds an unrevoked
        // token of this app with at least these scopes (Doorkeeper's
        // `matching_token?`): once every such token is revoked (RFC 7009,
        // an admin, a password reset), the user is asked again.
        let previously_granted =
            self.store()
                .consent(account.id, app.id)
                .await?
                .is_some_and(|consent| {
                    scopes.is_within(&consent.scopes)
                        && consent
                            .live_token_scopes
                            .iter()
                            .any(|held| scopes.is_within(held))
                });
        Ok(PreparedAuthorization {
            app,
            account,
            scopes,
            redirect_uri,
            previously_granted,
            state: request.state.clone(),
            challenge,
        })
    }

    /// Issues a code: the signed-in user approved the request.
    pub async fn authorize(&self, request: &AuthorizationRequest) -> Result<IssuedCode, AuthError> {
        let prepared = self.prepare_authorization(request).await?;
        let code = Secret::generate();
        let expires_in = self.lifetimes().authorization_code;
        let expires_at = self.now() + expires_in;
        self.store()
            .insert_code(&NewCode {
                digest: code.digest(),
                app_id: prepared.app.id,
                account_id: prepared.account.id,
                redirect_uri: prepared.redirect_uri.as_str(),
                scopes: &prepared.scopes,
                code_challenge: prepared.challenge.as_ref(),
                expires_at,
            })
            .await?;
        self.store()
            .record_consent(prepared.account.id, prepared.app.id, &prepared.scopes)
            .await?;
        tracing::info!(
            app_id = %prepared.app.id,
            account = %prepared.account.id,
            scope = %prepared.scopes,
            pkce = prepared.challenge.is_some(),
            "issued authorization code"
        );
        let redirect_to = if prepared.redirect_uri.is_oob() {
            None
        } else {
            let mut params = vec![("code", code.expose())];
            if !prepared.state.is_empty() {
                params.push(("state", prepared.state.as_str()));
            }
            Some(prepared.redirect_uri.with_params(&params))
        };
        Ok(IssuedCode {
            code,
            redirect_uri: prepared.redirect_uri,
            state: prepared.state,
            scopes: prepared.scopes,
            expires_at,
            expires_in,
            redirect_to,
        })
    }
}

/// The URI the code will go to: the request's own spelling once it matches
/// a registered URI (the token request must repeat it exactly, RFC 6749
/// section 4.1.3), or the only registered URI when the request names none
/// (section 3.1.2.3).
fn resolve_redirect_uri(app: &App, requested: &str) -> Result<RedirectUri, AuthError> {
    let invalid = || {
        AuthError::new(
            ErrorKind::InvalidRedirectUri,
            "The redirect uri included is not valid.",
        )
    };
    if requested.is_empty() {
        return match app.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(invalid()),
        };
    }
    if app
        .redirect_uris
        .iter()
        .any(|registered| registered.matches(requested))
    {
        Ok(RedirectUri::from_registered(requested.to_owned()))
    } else {
        Err(invalid())
    }
}
