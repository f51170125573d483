//! Client metadata beyond Mastodon's (RFC 7591 section 2, OpenID Connect
//! Registration, RP-Initiated Logout): how a client authenticates, which
//! grants and response types it may use, how its id_tokens are signed, and
//! where it may be sent after logout. Each value is typed and parsed once.
use super::error::{AuthError, ErrorKind};
use super::redirect_uri::RedirectUri;

/// Which rules registration follows: Mastodon's (POST /api/v1/apps; errors
/// are 422 "Validation failed", every grant allowed by default) or RFC
/// 7591's (POST /oauth/register; errors are invalid_redirect_uri or
/// invalid_client_metadata, defaults from RFC 7591 section 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegistrationProfile {
    #[default]
    Mastodon,
    Rfc7591,
}

impl RegistrationProfile {
    /// A metadata error in this profile's terms.
    pub fn metadata_error(self, description: impl Into<String>) -> AuthError {
        match self {
            RegistrationProfile::Mastodon => AuthError::validation_failed(description),
            RegistrationProfile::Rfc7591 => {
                AuthError::new(ErrorKind::InvalidClientMetadata, description)
            }
        }
    }

    /// A redirect URI error in this profile's terms.
    pub fn redirect_uri_error(self, description: impl Into<String>) -> AuthError {
        match self {
            RegistrationProfile::Mastodon => AuthError::validation_failed(description),
            RegistrationProfile::Rfc7591 => {
                AuthError::new(ErrorKind::InvalidRedirectUri, description)
            }
        }
    }
}

/// RFC 7591 section 2 `token_endpoint_auth_method`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenEndpointAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client (RFC 6749 section 2.1): no secret, client_id alone.
    None,
}

impl TokenEndpointAuthMethod {
    pub const ALL: &'static [TokenEndpointAuthMethod] =
        &[Self::ClientSecretBasic, Self::ClientSecretPost, Self::None];

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "" | "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn is_public(self) -> bool {
        self == Self::None
    }
}

/// A grant type a client may register (RFC 7591 section 2 `grant_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: &'static [GrantType] = &[
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// The grant types an app registered: a non-empty set, canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTypes(Vec<GrantType>);

impl GrantTypes {
    /// Every grant: what a Mastodon registration gets.
    pub fn all() -> Self {
        GrantTypes(GrantType::ALL.to_vec())
    }

    /// RFC 7591 section 2's default is authorization_code alone; authd adds
    /// refresh_token, so that a dynamically registered client whose tokens
    /// expire can keep its session without registering it by name.
    pub fn rfc7591_default() -> Self {
        GrantTypes(vec![GrantType::AuthorizationCode, GrantType::RefreshToken])
    }

    /// Parses names; `None` names the first unknown one. Empty input is
    /// refused by the caller, who knows the profile's default.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut types = Vec::new();
        for name in names {
            let name = name.as_ref();
            let t = GrantType::parse(name).ok_or_else(|| name.to_owned())?;
            types.push(t);
        }
        types.sort();
        types.dedup();
        Ok(GrantTypes(types))
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.0.contains(&grant)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = GrantType> + '_ {
        self.0.iter().copied()
    }

    pub fn to_vec_strings(&self) -> Vec<String> {
        self.0.iter().map(|g| g.as_str().to_owned()).collect()
    }
}

/// RFC 7591 `response_types`: only "code" is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseType {
    #[default]
    Code,
}

impl ResponseType {
    pub fn parse(input: &str) -> Option<Self> {
        (input == "code").then_some(ResponseType::Code)
    }

    pub fn as_str(self) -> &'static str {
        "code"
    }
}

pub use super::signing_key::SigningAlgorithm;

/// Parses `post_logout_redirect_uris` (OpenID RP-Initiated Logout 1.0
/// section 3.1): absolute URIs, checked as redirect URIs are, but never
/// the out-of-band URN, which no browser can be sent to.
pub fn parse_post_logout_redirect_uris<S: AsRef<str>>(
    inputs: &[S],
) -> Result<Vec<RedirectUri>, String> {
    // None is a valid registration; otherwise the redirect URIs' own
    // parser, with its bounds (bytes, count) and its linear de-duplication.
    if inputs.iter().all(|i| i.as_ref().trim().is_empty()) {
        return Ok(Vec::new());
    }
    let uris = RedirectUri::parse_list(inputs).map_err(|e| e.to_string())?;
    if uris.iter().any(RedirectUri::is_oob) {
        return Err("Post-logout redirect URI must not be out of band.".into());
    }
    Ok(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_parse_dedupe_and_refuse_unknown_names() {
        let g =
            GrantTypes::parse(&["refresh_token", "authorization_code", "refresh_token"]).unwrap();
        assert_eq!(g.to_vec_strings(), ["authorization_code", "refresh_token"]);
        assert_eq!(GrantTypes::parse(&["implicit"]).unwrap_err(), "implicit");
    }

    #[test]
    fn auth_methods_and_algs_parse_only_their_names() {
        assert_eq!(
            TokenEndpointAuthMethod::parse(""),
            Some(TokenEndpointAuthMethod::ClientSecretBasic)
        );
        assert!(TokenEndpointAuthMethod::parse("none").unwrap().is_public());
        assert_eq!(TokenEndpointAuthMethod::parse("private_key_jwt"), None);
        assert_eq!(
            SigningAlgorithm::parse("EdDSA"),
            Some(SigningAlgorithm::EdDsa)
        );
        assert_eq!(SigningAlgorithm::parse("HS256"), None);
        assert_eq!(ResponseType::parse("token"), None);
    }

    #[test]
    fn post_logout_uris_are_bounded_like_redirect_uris() {
        let many: Vec<String> = (0..40).map(|i| format!("https://a.example/{i}")).collect();
        assert!(parse_post_logout_redirect_uris(&many).is_err());
        assert!(
            parse_post_logout_redirect_uris(&["", " "])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn post_logout_uris_refuse_oob() {
        assert!(parse_post_logout_redirect_uris(&["urn:ietf:wg:oauth:2.0:oob"]).is_err());
        assert_eq!(
            parse_post_logout_redirect_uris(&["https://a.example/bye"])
                .unwrap()
                .len(),
            1
        );
    }
}
