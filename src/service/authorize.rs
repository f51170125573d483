//! The authorization endpoint (RFC 6749 section 4.1.1): checks a request,
//! decides whether the user must sign in, be asked, or gets a code at once
//! (Mastodon's rules, `force_login` and `prompt` included), and issues codes.
//! The shim only renders these decisions, so a gRPC caller gets the same.
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
use crate::domain::client_metadata::GrantType;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::oidc::{self, ClaimsRequest, Nonce};
use crate::domain::pkce::CodeChallenge;
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::Secret;
use crate::domain::session::Session;
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
    /// Space-separated OpenID Connect prompt values; see [`Prompt`].
    pub prompt: String,
    /// Mastodon's `force_login`: sign in again, then always confirm.
    pub force_login: bool,
    /// OpenID Connect's `max_age`, in seconds: a sign-in older than this
    /// must be done again.
    pub max_age: Option<u64>,
    /// OpenID Connect's `nonce`, echoed in the id_token.
    pub nonce: String,
    /// OpenID Connect's `claims` parameter (JSON; Core 5.5).
    pub claims: String,
}

/// The `prompt` values answered (see [`Prompt`]); others are ignored.
pub const PROMPT_VALUES: &[&str] = &["none", "login", "consent", "select_account"];

/// What `prompt` and `force_login` ask of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Prompt {
    /// Sign in again, whatever session the browser has: `force_login`
    /// (Mastodon, for multi-account clients), `prompt=login` and
    /// `prompt=select_account` (OpenID Connect Core 3.1.2.1).
    sign_in_again: bool,
    /// Show the consent page even when consent is remembered:
    /// `prompt=consent`, and anything that asks to sign in again (Mastodon
    /// never answers at once when `force_login` is true).
    confirm: bool,
    /// `prompt=none`: show no page at all (OpenID Connect Core 3.1.2.1).
    none: bool,
    /// `none` came with other values, which the spec forbids.
    none_combined: bool,
}

impl AuthorizationRequest {
    fn prompt(&self) -> Prompt {
        let mut prompt = Prompt {
            sign_in_again: self.force_login,
            ..Prompt::default()
        };
        let mut asked = false;
        for value in self.prompt.split_ascii_whitespace() {
            match value {
                "login" | "select_account" => asked = true,
                "consent" => prompt.confirm = true,
                "none" => prompt.none = true,
                // Unknown values are ignored (OIDC Core 3.1.2.1).
                _ => {}
            }
        }
        prompt.none_combined = prompt.none && (asked || prompt.confirm);
        prompt.sign_in_again |= asked;
        prompt.confirm |= prompt.sign_in_again;
        prompt
    }

    /// The request to come back with once signed in: no session yet (the
    /// caller adds the new one), nothing that asks to sign in again (or the
    /// user would be sent to sign in forever), and `prompt=consent` when
    /// this request asked to sign in again, so the consent page follows.
    fn after_sign_in(&self) -> AuthorizationRequest {
        let sign_in_again = self.prompt().sign_in_again;
        let mut prompt: Vec<&str> = self
            .prompt
            .split_ascii_whitespace()
            .filter(|v| !matches!(*v, "login" | "select_account"))
            .collect();
        if sign_in_again && !prompt.contains(&"consent") {
            prompt.push("consent");
        }
        AuthorizationRequest {
            session: None,
            prompt: prompt.join(" "),
            force_login: false,
            // The sign-in about to happen is as fresh as can be: asking
            // again would send the user round for ever.
            max_age: None,
            ..self.clone()
        }
    }
}

/// The core's answer to an authorization request.
pub enum AuthorizationDecision {
    /// Sign in, then make `resume` (with the new session).
    LoginRequired { resume: AuthorizationRequest },
    /// Ask the user. Boxed: it holds the whole app, several times the
    /// size of the other answers.
    ConsentNeeded(Box<PreparedAuthorization>),
    /// Consent was remembered and nothing asked to confirm it: a code.
    Issued(IssuedCode),
    /// `prompt=none`, and a page would be needed: `error` is
    /// `login_required` or `consent_required`; `redirect_to` tells the
    /// client (None for the out-of-band URI).
    InteractionRequired {
        error: &'static str,
        redirect_to: Option<String>,
    },
}

/// The answer to `prompt=none` when the user would have to act.
fn interaction_required(
    redirect_uri: &RedirectUri,
    state: &str,
    error: &'static str,
    description: &str,
) -> AuthorizationDecision {
    let redirect_to = (!redirect_uri.is_oob()).then(|| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        redirect_uri.with_params(&params)
    });
    tracing::info!(error, "prompt=none: the user would have to act");
    AuthorizationDecision::InteractionRequired { error, redirect_to }
}

const LOGIN_REQUIRED: &str = "login_required";
const CONSENT_REQUIRED: &str = "consent_required";

/// A request that passed every check: what the consent page shows.
pub struct PreparedAuthorization {
    pub app: App,
    pub account: Account,
    pub scopes: ScopeSet,
    pub redirect_uri: RedirectUri,
    pub state: String,
    challenge: Option<CodeChallenge>,
    /// When the user signed in: the id_token's auth_time.
    signed_in_at: SystemTime,
    nonce: Option<Nonce>,
    id_token_claims: ClaimsRequest,
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

/// A request whose client, redirect URI, response type, scopes and PKCE
/// passed their checks; the account is not known yet.
struct CheckedRequest {
    app: App,
    redirect_uri: RedirectUri,
    scopes: ScopeSet,
    challenge: Option<CodeChallenge>,
    nonce: Option<Nonce>,
    id_token_claims: ClaimsRequest,
}

impl AuthService {
    /// Decides an authorization request: every check first (a bad request
    /// is an error, shown to the user, never redirected), then sign in,
    /// ask, or issue at once.
    pub async fn decide_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationDecision, AuthError> {
        let checked = self.check_authorization(request).await?;
        let prompt = request.prompt();
        if prompt.none_combined {
            return Err(AuthError::invalid_request(
                "prompt=none cannot be combined with other prompt values.",
            ));
        }
        if prompt.none && prompt.sign_in_again {
            return Ok(interaction_required(
                &checked.redirect_uri,
                &request.state,
                LOGIN_REQUIRED,
                "force_login asks the user to sign in, which prompt=none forbids.",
            ));
        }
        if prompt.sign_in_again {
            // The session stays open: a link must not sign anyone out, and
            // the sign-in that follows replaces it in the browser.
            return Ok(AuthorizationDecision::LoginRequired {
                resume: request.after_sign_in(),
            });
        }
        let session = match &request.session {
            Some(session) => self.get_session(session).await,
            None => Err(AuthError::invalid_session()),
        };
        // max_age (OpenID Connect Core 3.1.2.1): a sign-in older than this
        // counts as none. Whole seconds, so max_age=0 after a fresh sign-in
        // does not send the user round again.
        let session = session.and_then(|s| match request.max_age {
            Some(max_age)
                if self
                    .now()
                    .duration_since(s.signed_in_at)
                    .map_or(0, |d| d.as_secs())
                    > max_age =>
            {
                Err(AuthError::invalid_session())
            }
            _ => Ok(s),
        });
        let session = match session {
            Ok(session) => session,
            Err(e) if e.kind == ErrorKind::InvalidSession && prompt.none => {
                return Ok(interaction_required(
                    &checked.redirect_uri,
                    &request.state,
                    LOGIN_REQUIRED,
                    "The user is not signed in.",
                ));
            }
            Err(e) if e.kind == ErrorKind::InvalidSession => {
                return Ok(AuthorizationDecision::LoginRequired {
                    resume: request.after_sign_in(),
                });
            }
            Err(e) => return Err(e),
        };
        let prepared = self.prepared(checked, session, request)?;
        if !prompt.confirm && self.consent_remembered(&prepared).await? {
            tracing::debug!(app_id = %prepared.app.id, "consent remembered: issuing at once");
            return Ok(AuthorizationDecision::Issued(
                self.issue_code(prepared).await?,
            ));
        }
        if prompt.none {
            return Ok(interaction_required(
                &prepared.redirect_uri,
                &prepared.state,
                CONSENT_REQUIRED,
                "The user has not consented to these scopes for this application.",
            ));
        }
        Ok(AuthorizationDecision::ConsentNeeded(Box::new(prepared)))
    }

    /// Every check of the request and its session: what the consent page
    /// shows, and what Allow and Deny act on.
    pub async fn prepare_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<PreparedAuthorization, AuthError> {
        let checked = self.check_authorization(request).await?;
        let session = request
            .session
            .as_ref()
            .ok_or_else(AuthError::invalid_session)?;
        let session = self.get_session(session).await?;
        self.prepared(checked, session, request)
    }

    /// Where Deny sends the user, after every check of the request.
    pub async fn deny_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Option<String>, AuthError> {
        let prepared = self.prepare_authorization(request).await?;
        tracing::info!(
            app_id = %prepared.app.id,
            account = %prepared.account.id,
            "authorization denied by the user"
        );
        Ok(prepared.deny_redirect())
    }

    fn prepared(
        &self,
        checked: CheckedRequest,
        session: Session,
        request: &AuthorizationRequest,
    ) -> Result<PreparedAuthorization, AuthError> {
        let scopes = super::grantable_scopes(checked.scopes, session.account.is_admin)?;
        Ok(PreparedAuthorization {
            app: checked.app,
            account: session.account,
            scopes,
            redirect_uri: checked.redirect_uri,
            state: request.state.clone(),
            challenge: checked.challenge,
            signed_in_at: session.signed_in_at,
            nonce: checked.nonce,
            id_token_claims: checked.id_token_claims,
        })
    }

    /// Consent is remembered only while the user still holds an unrevoked
    /// token of this app with at least these scopes (Doorkeeper's
    /// `matching_token?`): once every such token is revoked (RFC 7009, an
    /// admin, a password reset), the user is asked again.
    async fn consent_remembered(
        &self,
        prepared: &PreparedAuthorization,
    ) -> Result<bool, AuthError> {
        let scopes = &prepared.scopes;
        Ok(self
            .store()
            .consent(prepared.account.id, prepared.app.id)
            .await?
            .is_some_and(|consent| {
                scopes.is_within(&consent.scopes)
                    && consent
                        .live_token_scopes
                        .iter()
                        .any(|held| scopes.is_within(held))
            }))
    }

    async fn check_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<CheckedRequest, AuthError> {
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
        // A code is only worth issuing to an app that may redeem it.
        if !app.allows_grant(GrantType::AuthorizationCode) {
            return Err(AuthError::new(
                ErrorKind::UnauthorizedClient,
                "The client is not authorized to request an authorization code.",
            ));
        }
        let scopes = requested_scopes(&request.scope, &app.scopes)?;
        let challenge =
            CodeChallenge::parse(&request.code_challenge, &request.code_challenge_method)?;
        // A public client has no secret, so PKCE is what binds the code to
        // it (RFC 9700 section 2.1.1): required, and S256 (parse refuses
        // any other method).
        if app.is_public() && challenge.is_none() {
            return Err(AuthError::invalid_request(
                "A public client must send a code_challenge (PKCE, S256).",
            ));
        }
        // Read for every request (a malformed one is refused alike), kept
        // only for OpenID ones: nothing else has an id_token.
        let nonce = Nonce::parse(&request.nonce)?;
        let id_token_claims = ClaimsRequest::parse(&request.claims)?;
        let (nonce, id_token_claims) = if oidc::is_openid(&scopes) {
            (nonce, id_token_claims)
        } else {
            (None, ClaimsRequest::default())
        };
        Ok(CheckedRequest {
            app,
            redirect_uri,
            scopes,
            challenge,
            nonce,
            id_token_claims,
        })
    }

    /// Issues a code: the signed-in user approved the request.
    pub async fn authorize(&self, request: &AuthorizationRequest) -> Result<IssuedCode, AuthError> {
        let prepared = self.prepare_authorization(request).await?;
        self.issue_code(prepared).await
    }

    async fn issue_code(&self, prepared: PreparedAuthorization) -> Result<IssuedCode, AuthError> {
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
                nonce: prepared.nonce.as_ref(),
                auth_time: prepared.signed_in_at,
                id_token_claims: &prepared.id_token_claims,
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
