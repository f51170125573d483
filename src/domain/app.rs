//! Applications: a registered `App`, and the registration input (Mastodon's
//! POST /api/v1/apps) parsed into a `NewApp` that is valid by construction.
//! Error wording follows Mastodon's ("Validation failed: ...") because
//! clients show it verbatim.
use std::time::SystemTime;

use url::Url;

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApp {
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub scopes: ScopeSet,
    pub access_token_format: AccessTokenFormat,
}

impl NewApp {
    pub fn parse(input: &AppRegistration) -> Result<NewApp, AuthError> {
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
            .map_err(|e| AuthError::validation_failed(e.to_string()))?;
        let scopes = if input.scopes.trim().is_empty() {
            ScopeSet::read()
        } else {
            ScopeSet::parse(&input.scopes).map_err(|_| {
                AuthError::validation_failed("Scopes doesn't match configured on the server.")
            })?
        };
        let website = parse_website(&input.website)?;
        Ok(NewApp {
            name: name.to_owned(),
            website,
            redirect_uris,
            scopes,
            access_token_format: AccessTokenFormat::parse(input.access_token_format.trim())?,
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
        }
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
