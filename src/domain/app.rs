//! Applications: a registered `App`, and the registration input (Mastodon's
//! POST /api/v1/apps) parsed into a `NewApp` that is valid by construction.
//! Error wording follows Mastodon's ("Validation failed: ...") because
//! clients show it verbatim.
use std::time::SystemTime;

use url::Url;

use super::client_metadata::{
    GrantType, GrantTypes, RegistrationProfile, ResponseType, SigningAlgorithm,
    TokenEndpointAuthMethod, parse_post_logout_redirect_uris,
};
use super::error::AuthError;
use super::id::AppId;
use super::redirect_uri::RedirectUri;
use super::scope::ScopeSet;
use super::secret::Digest;

/// A registered application.
#[derive(Clone, Debug)]
pub struct App {
    pub id: AppId,
    pub client_id: String,
    pub client_secret_digest: Digest,
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub scopes: ScopeSet,
    pub access_token_format: AccessTokenFormat,
    pub is_resource_server: bool,
    /// Whether an admin allowed `client_credentials` to yield `admin:*`
    /// scopes to this app acting for itself.
    pub may_use_admin_scopes: bool,
    pub created_at: SystemTime,
    /// How the client authenticates at the token endpoint; `None` is a
    /// public client, whose stored digest matches no secret.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// The grants it may use; Mastodon registrations get all of them.
    pub grant_types: GrantTypes,
    pub response_types: Vec<ResponseType>,
    /// How its id_tokens are to be signed; `None` when not registered.
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
    /// Where RP-Initiated Logout may send the user back to.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
}

impl App {
    /// A public client (RFC 6749 section 2.1): no secret, PKCE required.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method.is_public()
    }

    /// Whether it may use this grant. A public client never may use
    /// client_credentials (RFC 6749 section 4.4: confidential clients only).
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.allows(grant)
            && !(self.is_public() && grant == GrantType::ClientCredentials)
    }
}

/// How much an app is in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppUsage {
    /// Grants not revoked.
    pub live_grants: i64,
    /// Access tokens not revoked nor expired, in live grants.
    pub active_access_tokens: i64,
    /// Accounts with a live grant.
    pub accounts: i64,
}

const MAX_NAME_CHARS: usize = 60;
const MAX_WEBSITE_LEN: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessTokenFormat {
    /// 43 characters of URL-safe base64, as Mastodon issues.
    #[default]
    Opaque,
    /// RFC 9068 JWT, signed with authd's current key; always expires.
    Jwt,
}

impl AccessTokenFormat {
    /// Every format; any app may register for either.
    pub const ALL: &'static [AccessTokenFormat] =
        &[AccessTokenFormat::Opaque, AccessTokenFormat::Jwt];

    pub fn parse(input: &str) -> Result<Self, AuthError> {
        match input {
            "" | "opaque" => Ok(AccessTokenFormat::Opaque),
            "jwt" => Ok(AccessTokenFormat::Jwt),
            _ => Err(AuthError::validation_failed(
                "Access token format must be opaque or jwt.",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessTokenFormat::Opaque => "opaque",
            AccessTokenFormat::Jwt => "jwt",
        }
    }
}

/// What a caller asked to register, before validation.
#[derive(Clone, Debug, Default)]
pub struct AppRegistration {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
    pub website: String,
    pub access_token_format: String,
    /// Whose rules apply: Mastodon's unless the caller says RFC 7591.
    pub profile: RegistrationProfile,
    /// Empty means client_secret_basic.
    pub token_endpoint_auth_method: String,
    /// Empty means the profile's default.
    pub grant_types: Vec<String>,
    /// Empty means ["code"].
    pub response_types: Vec<String>,
    /// Empty means not registered.
    pub id_token_signed_response_alg: String,
    pub post_logout_redirect_uris: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApp {
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub scopes: ScopeSet,
    pub access_token_format: AccessTokenFormat,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub grant_types: GrantTypes,
    pub response_types: Vec<ResponseType>,
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
}

impl NewApp {
    pub fn parse(input: &AppRegistration) -> Result<NewApp, AuthError> {
        // Mastodon's wording for name, scope and website errors is kept;
        // under RFC 7591 they are invalid_client_metadata (section 3.2.2).
        NewApp::parse_fields(input).map_err(|e| match (input.profile, e.kind) {
            (RegistrationProfile::Rfc7591, super::error::ErrorKind::ValidationFailed) => {
                let description = e.description.trim_start_matches("Validation failed: ");
                input.profile.metadata_error(description)
            }
            _ => e,
        })
    }

    fn parse_fields(input: &AppRegistration) -> Result<NewApp, AuthError> {
        let profile = input.profile;
        let name = input.client_name.trim();
        if name.is_empty() {
            return Err(AuthError::validation_failed("Name can't be blank"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::validation_failed(
                "Name is too long (maximum is 60 characters)",
            ));
        }
        if !super::text::displayable(name) {
            return Err(AuthError::validation_failed("Name is invalid"));
        }
        let redirect_uris = RedirectUri::parse_list(&input.redirect_uris)
            .map_err(|e| profile.redirect_uri_error(e.to_string()))?;
        let scopes = if input.scopes.trim().is_empty() {
            ScopeSet::read()
        } else {
            ScopeSet::parse(&input.scopes).map_err(|_| {
                AuthError::validation_failed("Scopes doesn't match configured on the server.")
            })?
        };
        let website = parse_website(&input.website)?;
        let method = TokenEndpointAuthMethod::parse(input.token_endpoint_auth_method.trim())
            .ok_or_else(|| {
                profile.metadata_error(
                    "Token endpoint auth method must be client_secret_basic, client_secret_post or none.",
                )
            })?;
        let grant_types = if input.grant_types.is_empty() {
            match profile {
                RegistrationProfile::Mastodon if method.is_public() => {
                    GrantTypes::rfc7591_default()
                }
                RegistrationProfile::Mastodon => GrantTypes::all(),
                RegistrationProfile::Rfc7591 => GrantTypes::rfc7591_default(),
            }
        } else {
            // The name is not echoed: it is the caller's, of any length, and
            // errors travel in a gRPC header.
            GrantTypes::parse(&input.grant_types).map_err(|_| {
                profile.metadata_error(
                    "Grant types must be authorization_code, refresh_token or client_credentials.",
                )
            })?
        };
        // RFC 6749 section 4.4: only a confidential client may use
        // client_credentials.
        if method.is_public() && grant_types.allows(GrantType::ClientCredentials) {
            return Err(profile.metadata_error(
                "A public client (token_endpoint_auth_method none) cannot use client_credentials.",
            ));
        }
        let mut response_types = Vec::new();
        for name in &input.response_types {
            let t = ResponseType::parse(name)
                .ok_or_else(|| profile.metadata_error("The only response type is code."))?;
            if !response_types.contains(&t) {
                response_types.push(t);
            }
        }
        if response_types.is_empty() {
            response_types.push(ResponseType::Code);
        }
        // RFC 7591 section 2.1: response type code goes with the
        // authorization_code grant.
        if !grant_types.allows(GrantType::AuthorizationCode) && !input.response_types.is_empty() {
            return Err(profile
                .metadata_error("Response type code needs the authorization_code grant type."));
        }
        let alg = input.id_token_signed_response_alg.trim();
        let id_token_signed_response_alg = if alg.is_empty() {
            None
        } else {
            Some(SigningAlgorithm::parse(alg).ok_or_else(|| {
                profile
                    .metadata_error("Id token signed response alg must be RS256, ES256 or EdDSA.")
            })?)
        };
        let post_logout_redirect_uris =
            parse_post_logout_redirect_uris(&input.post_logout_redirect_uris)
                .map_err(|e| profile.redirect_uri_error(format!("Post-logout {e}")))?;
        Ok(NewApp {
            name: name.to_owned(),
            website,
            redirect_uris,
            scopes,
            access_token_format: AccessTokenFormat::parse(input.access_token_format.trim())?,
            token_endpoint_auth_method: method,
            grant_types,
            response_types,
            id_token_signed_response_alg,
            post_logout_redirect_uris,
        })
    }
}

fn parse_website(input: &str) -> Result<Option<String>, AuthError> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    let invalid = || AuthError::validation_failed("Website is not a valid http(s) URL");
    if input.len() > MAX_WEBSITE_LEN {
        return Err(AuthError::validation_failed(
            "Website is too long (maximum is 2000 characters)",
        ));
    }
    // The URL parser would percent-encode a control or format character
    // where it stands, but the website is stored and shown as written.
    if !super::text::displayable(input) {
        return Err(invalid());
    }
    let url = Url::parse(input).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(Some(input.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::domain::scope::Scope;

    fn registration(name: &str, uris: &[&str], scopes: &str, website: &str) -> AppRegistration {
        AppRegistration {
            client_name: name.into(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.into(),
            website: website.into(),
            access_token_format: String::new(),
            ..AppRegistration::default()
        }
    }

    #[test]
    fn mastodon_registrations_are_confidential_with_every_grant() {
        let app =
            NewApp::parse(&registration("a", &["urn:ietf:wg:oauth:2.0:oob"], "", "")).unwrap();
        assert_eq!(
            app.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(app.grant_types, GrantTypes::all());
    }

    #[test]
    fn rfc7591_errors_name_the_metadata() {
        use crate::domain::error::ErrorKind;
        let mut r = registration("a", &["not a uri"], "", "");
        r.profile = RegistrationProfile::Rfc7591;
        assert_eq!(
            NewApp::parse(&r).unwrap_err().kind,
            ErrorKind::InvalidRedirectUri
        );
        r.redirect_uris = vec!["https://a.example/cb".into()];
        r.token_endpoint_auth_method = "none".into();
        r.grant_types = vec!["client_credentials".into()];
        assert_eq!(
            NewApp::parse(&r).unwrap_err().kind,
            ErrorKind::InvalidClientMetadata
        );
    }

    #[test]
    fn defaults_to_read_scope_and_opaque_tokens() {
        let app = NewApp::parse(&registration(
            "My App",
            &["urn:ietf:wg:oauth:2.0:oob"],
            "",
            "",
        ))
        .unwrap();
        assert_eq!(app.scopes, ScopeSet::read());
        assert_eq!(app.website, None);
        assert_eq!(app.access_token_format, AccessTokenFormat::Opaque);
    }

    #[test]
    fn parses_scopes_websites_and_several_uris() {
        let app = NewApp::parse(&registration(
            " Test Application ",
            &["https://a.example/cb\nmyapp://cb"],
            "read write push",
            "https://myapp.example",
        ))
        .unwrap();
        assert_eq!(app.name, "Test Application");
        assert_eq!(app.redirect_uris.len(), 2);
        assert!(app.scopes.contains(Scope::Write));
        assert_eq!(app.website.as_deref(), Some("https://myapp.example"));
    }

    #[test]
    fn rejects_bad_input_with_mastodon_wording() {
        let cases = [
            (
                registration("", &["urn:ietf:wg:oauth:2.0:oob"], "", ""),
                "Name can't be blank",
            ),
            (
                registration(&"x".repeat(61), &["urn:ietf:wg:oauth:2.0:oob"], "", ""),
                "too long",
            ),
            (registration("a", &[], "", ""), "Redirect URI"),
            (registration("a", &["not a uri"], "", ""), "absolute URI"),
            (
                registration("a", &["urn:ietf:wg:oauth:2.0:oob"], "read destroy", ""),
                "Scopes",
            ),
            (
                registration("a", &["urn:ietf:wg:oauth:2.0:oob"], "", "ftp://x.example"),
                "Website",
            ),
            (
                registration(
                    "a",
                    &["urn:ietf:wg:oauth:2.0:oob"],
                    "",
                    "javascript:alert(1)",
                ),
                "Website",
            ),
        ];
        for (input, wording) in cases {
            let err = NewApp::parse(&input).unwrap_err();
            assert_eq!(err.kind, ErrorKind::ValidationFailed);
            assert!(
                err.description.starts_with("Validation failed: "),
                "{}",
                err.description
            );
            assert!(
                err.description.contains(wording),
                "{} lacks {wording}",
                err.description
            );
        }
    }
}
