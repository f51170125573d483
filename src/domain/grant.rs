//! Grants and what they hold: authorization codes, access and refresh
//! tokens, and the consents that let a code be issued without asking again.
//!
//! A grant is one redemption of a code (or one client_credentials
//! issuance); its tokens live and die with it. These are the values the
//! store hands back, with their joined facts (the app's client id, the
//! account's state) already read, so the core decides on them alone.
use std::sync::Arc;
use std::time::SystemTime;

use super::app::App;
use super::id::{AccessTokenId, AccountId, AppId, GrantId, RefreshTokenId};
use super::oidc::{ClaimsRequest, Nonce};
use super::pkce::CodeChallenge;
use super::redirect_uri::RedirectUri;
use super::scope::ScopeSet;
use super::time::UnixSeconds;

/// An authorization code as stored, locked for redemption.
#[derive(Clone, Debug)]
pub struct Code {
    pub app_id: AppId,
    pub account_id: AccountId,
    /// The redirect URI of the authorization request, which the token
    /// request must repeat.
    pub redirect_uri: RedirectUri,
    pub scopes: ScopeSet,
    pub code_challenge: Option<CodeChallenge>,
    pub expires_at: SystemTime,
    pub redeemed_at: Option<SystemTime>,
    /// The grant the code was redeemed for, once it has been.
    pub grant_id: Option<GrantId>,
    /// OpenID Connect: the relying party's nonce, when it sent one.
    pub nonce: Option<Nonce>,
    /// When the user signed in; None for codes from before OpenID Connect.
    pub auth_time: Option<SystemTime>,
    /// OpenID Connect: the claims asked for in the id_token.
    pub id_token_claims: ClaimsRequest,
    pub account_disabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What introspection and bearer authentication need to know of a token
/// (access or refresh), with its grant's, app's and account's state.
///
/// The introspection cache holds one of these per token (a million by
/// default), so its size is watched: at most 80 bytes, which with its
/// reference counts fills the allocator's 96-byte size class.
#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub grant_id: GrantId,
    /// Shared by every cached token of the app (the cache interns it), so
    /// that a million cached tokens hold a pointer each, not a copy.
    pub issued_to: Arc<IssuedTo>,
    pub account_id: Option<AccountId>,
    /// A boxed str, not a String: no spare capacity, 8 bytes less inline.
    pub username: Option<Box<str>>,
    pub account_disabled: bool,
    /// Whether the token's holder may hold `admin:*` scopes now: its
    /// account is an admin, or, for an app acting for itself, an admin
    /// allowed the app to.
    pub holder_may_use_admin_scopes: bool,
    pub scopes: ScopeSet,
    pub created_at: UnixSeconds,
    pub expires_at: Option<SystemTime>,
    /// The token or its grant was revoked, or (refresh) it was already used.
    pub revoked: bool,
}

const _: () = assert!(std::mem::size_of::<Token>() <= 80);

/// The app a token was issued to, as the token names it.
#[derive(Debug, PartialEq, Eq)]
pub struct IssuedTo {
    pub app_id: AppId,
    pub client_id: Box<str>,
}

impl Token {
    pub fn app_id(&self) -> AppId {
        self.issued_to.app_id
    }

    pub fn client_id(&self) -> &str {
        &self.issued_to.client_id
    }
}

/// A refresh token with its grant, locked for rotation.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub grant_id: GrantId,
    pub app_id: AppId,
    pub account_id: Option<AccountId>,
    pub scopes: ScopeSet,
    /// The access token issued with it, revoked when it is rotated.
    pub access_token_id: Option<AccessTokenId>,
    pub expires_at: Option<SystemTime>,
    pub used_at: Option<SystemTime>,
    pub grant_revoked: bool,
    pub account_disabled: bool,
    /// As [`Token::holder_may_use_admin_scopes`].
    pub holder_may_use_admin_scopes: bool,
    /// When the user signed in for the grant (OpenID Connect's auth_time).
    pub auth_time: Option<SystemTime>,
}

/// What an account consented to give an app, and what it still holds of it.
#[derive(Clone, Debug)]
pub struct Consent {
    pub scopes: ScopeSet,
    /// The scopes of each unrevoked access token of the account for the app.
    pub live_token_scopes: Vec<ScopeSet>,
}

/// An app an account has authorized: the app, and its live grants summed up.
#[derive(Clone, Debug)]
pub struct AuthorizedApp {
    pub app: App,
    pub scopes: ScopeSet,
    pub authorized_at: SystemTime,
}

/// What a bulk revocation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevokedTokens {
    /// Grants revoked, each with its access and refresh tokens.
    pub grants: u64,
    /// Authorization codes deleted before they were redeemed.
    pub codes: u64,
}

/// What a password reset did besides changing the password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PasswordReset {
    pub ended_sessions: u64,
    pub revoked: RevokedTokens,
}
