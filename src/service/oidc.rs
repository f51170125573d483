//! OpenID Connect on top of the code flow: the id_token an `openid` grant
//! yields (Core 2, 3.1.3.6), the claims userinfo answers for such a token
//! (Core 5.3), and RP-initiated logout (RP-Initiated Logout 1.0).
//!
//! Everything is decided here, from the grant's scopes: a token without
//! `openid` is answered exactly as Mastodon answers it.
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256, Sha512};

use super::AuthService;
use crate::domain::account::Account;
use crate::domain::app::App;
use crate::domain::error::AuthError;
use crate::domain::id::AccountId;
use crate::domain::oidc::{self, Claim, ClaimsRequest, Nonce};
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::secret::Secret;
use crate::domain::signing_key::SigningAlgorithm;
use crate::domain::time::unix_seconds;

/// How long an id_token is valid. It proves a sign-in to the relying
/// party at the time it is handed over; the RP keeps its own session.
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// How long an opaque access token of an OpenID grant lives when the
/// operator did not set one (`--access-token-ttl`): Mastodon's tokens never
/// expire, but OpenID relying parties expect `expires_in` and refresh, and
/// their tokens are presented to backends Mastodon clients never meet.
pub const OPENID_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Every claim an id_token or userinfo may carry, for discovery.
pub fn claims_supported() -> Vec<&'static str> {
    let own = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "azp",
    ];
    own.into_iter()
        .chain(Claim::ALL.iter().map(|c| c.as_str()))
        .collect()
}

/// Discovery's subject type: `sub` is the account id for every client.
pub const SUBJECT_TYPE: &str = "public";

/// The `sub` of an account: its id, which never changes (a username can).
pub fn subject(account: AccountId) -> String {
    account.to_string()
}

/// The claims of an id_token (Core 2), then the standard claims asked for.
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    /// The one audience is the client: azp says so (Core 2; optional
    /// there, and some RPs check it when present, so it is always right).
    azp: &'a str,
    #[serde(flatten)]
    standard: StandardClaims,
}

/// The standard claims (Core 5.1) authd has of an account, each present
/// only when released.
#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct StandardClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// authd does not confirm addresses, so it never says one is verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl StandardClaims {
    pub fn of(account: &Account, claims: &BTreeSet<Claim>) -> StandardClaims {
        let has = |c: Claim| claims.contains(&c);
        StandardClaims {
            // authd's accounts have no display name apart from the
            // username (as Mastodon's userinfo answers for them).
            name: has(Claim::Name).then(|| account.username.clone()),
            preferred_username: has(Claim::PreferredUsername).then(|| account.username.clone()),
            email: has(Claim::Email).then(|| account.email.clone()),
            email_verified: has(Claim::EmailVerified).then_some(false),
        }
    }
}

/// The left half of the access token's hash, base64url (Core 3.1.3.6):
/// SHA-256 for RS256 and ES256, SHA-512 for EdDSA over Ed25519 (as
/// oidc-provider and the JOSE registrations for Ed25519 do).
pub fn half_hash(value: &str, algorithm: &str) -> String {
    let digest: Vec<u8> = match algorithm {
        "EdDSA" => Sha512::digest(value.as_bytes()).to_vec(),
        _ => Sha256::digest(value.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// What the id_token of one issuance says.
pub(crate) struct IdTokenInput<'a> {
    pub app: &'a App,
    pub account: &'a Account,
    pub scopes: &'a ScopeSet,
    pub auth_time: Option<SystemTime>,
    pub nonce: Option<&'a Nonce>,
    pub requested: &'a ClaimsRequest,
    pub access_token: &'a Secret,
    pub at: SystemTime,
}

/// What userinfo answers for a token.
pub enum Userinfo {
    /// A Mastodon token: Mastodon's answer, rendered from the account.
    Mastodon(Account),
    /// An OpenID token: `sub` and the claims its scopes release.
    OpenId { sub: String, claims: StandardClaims },
}

/// A logout request (RP-Initiated Logout 1.0 section 2).
#[derive(Clone, Debug, Default)]
pub struct EndSessionRequest {
    pub session: Option<Secret>,
    pub id_token_hint: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
    /// The user confirmed on the logout page (needed when the request
    /// carries no id_token_hint of the signed-in user, so a link alone
    /// cannot sign anyone out).
    pub confirmed: bool,
}

/// The core's answer to a logout request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndSession {
    /// Ask the user first; `client_name` says who asks, when known.
    ConfirmationNeeded { client_name: Option<String> },
    /// Signed out (or nobody was signed in): go to `redirect_to`, or show
    /// that the user is signed out when None.
    SignedOut { redirect_to: Option<String> },
}

/// The longest id_token_hint read: ours are well under 2 KiB.
const MAX_ID_TOKEN_HINT_LEN: usize = 8192;

impl AuthService {
    /// The id_token of an issuance, signed with the app's algorithm.
    pub(crate) fn id_token(&self, input: &IdTokenInput<'_>) -> Result<String, AuthError> {
        let algorithm = self.id_token_algorithm(input.app);
        let released = Claim::released_by(input.scopes);
        let asked: BTreeSet<Claim> = input
            .requested
            .id_token
            .intersection(&released)
            .copied()
            .collect();
        let claims = IdTokenClaims {
            iss: &self.config().issuer,
            sub: subject(input.account.id),
            aud: &input.app.client_id,
            exp: unix_seconds(input.at + ID_TOKEN_LIFETIME),
            iat: unix_seconds(input.at),
            auth_time: input.auth_time.map(unix_seconds),
            nonce: input.nonce.map(Nonce::as_str),
            at_hash: half_hash(input.access_token.expose(), algorithm.as_str()),
            azp: &input.app.client_id,
            standard: StandardClaims::of(input.account, &asked),
        };
        self.keys().sign_jwt(algorithm, "JWT", &claims)
    }

    /// The algorithm the app's id_tokens are signed with: the one it
    /// registered, else RS256, which every relying party accepts (Core
    /// 3.1.3.7, RFC 7591's default for id_token_signed_response_alg).
    fn id_token_algorithm(&self, app: &App) -> SigningAlgorithm {
        app.id_token_signed_response_alg
            .unwrap_or(SigningAlgorithm::Rs256)
    }

    /// What userinfo answers for `bearer`: Mastodon's answer (the
    /// `profile` scope) for a Mastodon token; for an OpenID one (the
    /// `openid` scope, Core 5.3), `sub` and what its scopes release.
    pub async fn userinfo(&self, bearer: &str) -> Result<Userinfo, AuthError> {
        let ctx = self.authenticate_bearer(bearer).await?;
        let scopes = &ctx.token.scopes;
        if !oidc::is_openid(scopes) && !scopes.contains(Scope::Profile) {
            return Err(AuthError::insufficient_scope());
        }
        let account_id = ctx.token.account_id.ok_or_else(AuthError::user_required)?;
        let account = self
            .store()
            .account_by_id(account_id)
            .await?
            .ok_or_else(AuthError::invalid_token)?;
        if !oidc::is_openid(scopes) {
            return Ok(Userinfo::Mastodon(account));
        }
        Ok(Userinfo::OpenId {
            sub: subject(account.id),
            claims: StandardClaims::of(&account, &Claim::released_by(scopes)),
        })
    }

    /// RP-initiated logout: checks the hint and the redirect against the
    /// client's registration (a bad one is an error, shown to the user,
    /// never redirected), then ends the session when the hint names the
    /// signed-in user or the user confirmed.
    pub async fn end_session(&self, request: &EndSessionRequest) -> Result<EndSession, AuthError> {
        let hint = match request.id_token_hint.as_str() {
            "" => None,
            token => Some(self.id_token_hint(token).await?),
        };
        let client_id = match (&hint, request.client_id.as_str()) {
            (Some(hint), "") => Some(hint.aud.clone()),
            (Some(hint), client_id) if hint.aud != client_id => {
                return Err(AuthError::invalid_request(
                    "The id_token_hint was issued to another client than client_id.",
                ));
            }
            (_, "") => None,
            (_, client_id) => Some(client_id.to_owned()),
        };
        let app = match &client_id {
            Some(client_id) => Some(
                self.store()
                    .app_by_client_id(client_id)
                    .await?
                    .ok_or_else(AuthError::invalid_client)?,
            ),
            None => None,
        };
        let redirect = match request.post_logout_redirect_uri.as_str() {
            "" => None,
            uri => {
                let app = app.as_ref().ok_or_else(|| {
                    AuthError::invalid_request(
                        "post_logout_redirect_uri needs an id_token_hint or a client_id.",
                    )
                })?;
                Some(post_logout_redirect(app, uri)?)
            }
        };
        let session = match &request.session {
            Some(session) => self.get_session(session).await.ok(),
            None => None,
        };
        if let Some(session) = &session {
            let hinted_user = hint
                .as_ref()
                .is_some_and(|h| h.sub == subject(session.account.id));
            if !hinted_user && !request.confirmed {
                return Ok(EndSession::ConfirmationNeeded {
                    client_name: app.as_ref().map(|a| a.name.clone()),
                });
            }
            if let Some(secret) = &request.session {
                self.logout(secret).await?;
            }
            tracing::info!(
                account = %session.account.id,
                client_id = client_id.as_deref().unwrap_or(""),
                "signed out at the relying party's request"
            );
        }
        let redirect_to = redirect.map(|uri| {
            let mut params = Vec::new();
            if !request.state.is_empty() {
                params.push(("state", request.state.as_str()));
            }
            uri.with_params(&params)
        });
        Ok(EndSession::SignedOut { redirect_to })
    }

    /// An id_token we signed (expired or not: RP-Initiated Logout 1.0
    /// section 2 accepts expired ones), for this issuer.
    async fn id_token_hint(&self, token: &str) -> Result<HintClaims, AuthError> {
        let invalid =
            || AuthError::invalid_request("The id_token_hint is not an id_token authd issued.");
        if token.len() > MAX_ID_TOKEN_HINT_LEN || !self.keys().signature_is_valid(token).await? {
            return Err(invalid());
        }
        let payload = token.split('.').nth(1).ok_or_else(invalid)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let claims: HintClaims = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if claims.iss != self.config().issuer {
            return Err(invalid());
        }
        Ok(claims)
    }
}

#[derive(serde::Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: String,
}

/// The post-logout redirect, when the app registered it exactly (RP-
/// Initiated Logout 1.0 section 3: exact match, like redirect URIs).
fn post_logout_redirect(app: &App, uri: &str) -> Result<RedirectUri, AuthError> {
    if app.post_logout_redirect_uris.iter().any(|r| r.matches(uri)) {
        Ok(RedirectUri::from_registered(uri.to_owned()))
    } else {
        Err(AuthError::invalid_request(
            "The post_logout_redirect_uri is not one the client registered.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core's example (A.3): this access token's at_hash
        // under RS256.
        assert_eq!(
            half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(half_hash("x", "ES256").len(), 22);
        assert_eq!(half_hash("x", "EdDSA").len(), 43);
    }
}
