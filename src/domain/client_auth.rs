//! Client authentication input (RFC 6749 section 2.3.1): HTTP Basic, or
//! client_id and client_secret parameters, never both. Shared by the gRPC
//! metadata and the HTTP shim, so both read credentials the same way.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::AuthError;
use super::secret::Secret;

/// Credentials longer than this are not ours; rejecting them early keeps
/// hashing and logging bounded.
const MAX_CREDENTIAL_LEN: usize = 512;

/// How a client sent its credentials, as far as a 401 is concerned (RFC
/// 6749 section 5.2): in the Authorization header (HTTP Basic), whose
/// scheme the challenge must then name, or otherwise (parameters, or not at
/// all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Basic,
    #[default]
    Parameters,
}

impl ClientAuthMethod {
    /// Basic when the Authorization header claims the Basic scheme, even
    /// malformed (the client did try the header).
    pub fn of(authorization: Option<&str>) -> ClientAuthMethod {
        let scheme = authorization
            .map(str::trim)
            .map(|h| h.split_once(' ').map_or(h, |(scheme, _)| scheme));
        match scheme {
            Some(scheme) if scheme.eq_ignore_ascii_case("basic") => ClientAuthMethod::Basic,
            _ => ClientAuthMethod::Parameters,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Decodes an `Authorization: Basic ...` value. Returns `Ok(None)` when the
/// header is absent or uses another scheme (a Bearer token is not client
/// authentication), and `invalid_client` when it claims Basic but is
/// malformed.
pub fn parse_basic(header: Option<&str>) -> Result<Option<ClientCredentials>, AuthError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let header = header.trim();
    let Some((scheme, encoded)) = header.split_once(' ') else {
        // "Basic" with nothing after it is a malformed Basic header.
        return if header.eq_ignore_ascii_case("basic") {
            Err(AuthError::invalid_client())
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let encoded = encoded.trim();
    if encoded.len() > 4 * MAX_CREDENTIAL_LEN {
        return Err(AuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| AuthError::invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthError::invalid_client())?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(AuthError::invalid_client)?;
    // RFC 6749 section 2.3.1: both parts are form-urlencoded before encoding.
    let id = form_decode(id).ok_or_else(AuthError::invalid_client)?;
    let secret = form_decode(secret).ok_or_else(AuthError::invalid_client)?;
    if id.is_empty() {
        return Err(AuthError::invalid_client());
    }
    Ok(Some(ClientCredentials {
        client_id: id,
        client_secret: Secret::new(secret),
    }))
}

fn form_decode(s: &str) -> Option<String> {
    // A client_id or secret authd issued has nothing to decode.
    if !s.contains(['+', '%']) {
        return Some(s.to_owned());
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// Resolves the credentials of a request from a Basic header and the
/// client_id / client_secret parameters. `Ok(None)` means none were sent.
pub fn resolve(
    authorization: Option<&str>,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<ClientCredentials>, AuthError> {
    if client_id.len() > MAX_CREDENTIAL_LEN || client_secret.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::invalid_client());
    }
    match parse_basic(authorization)? {
        Some(basic) => {
            if !client_secret.is_empty() {
                return Err(AuthError::invalid_request(
                    "Only one client authentication method may be used.",
                ));
            }
            if !client_id.is_empty() && client_id != basic.client_id {
                return Err(AuthError::invalid_request(
                    "client_id does not match the client authenticated with HTTP Basic.",
                ));
            }
            Ok(Some(basic))
        }
        None if client_id.is_empty() && client_secret.is_empty() => Ok(None),
        None => Ok(Some(ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: Secret::new(client_secret),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn the_method_is_basic_only_when_the_header_claims_basic() {
        assert_eq!(
            ClientAuthMethod::of(Some(&basic("id", "s"))),
            ClientAuthMethod::Basic
        );
        assert_eq!(ClientAuthMethod::of(Some("basic")), ClientAuthMethod::Basic);
        assert_eq!(
            ClientAuthMethod::of(Some("Basic !!!")),
            ClientAuthMethod::Basic
        );
        assert_eq!(
            ClientAuthMethod::of(Some("Bearer x")),
            ClientAuthMethod::Parameters
        );
        assert_eq!(ClientAuthMethod::of(None), ClientAuthMethod::Parameters);
    }

    #[test]
    fn decodes_basic_with_form_encoding() {
        let c = parse_basic(Some(&basic("my%20id", "s%3Acret+x")))
            .unwrap()
            .unwrap();
        assert_eq!(c.client_id, "my id");
        assert_eq!(c.client_secret.expose(), "s:cret x");
        let lower = parse_basic(Some(&basic("id", "s").replace("Basic", "basic"))).unwrap();
        assert!(lower.is_some());
    }

    #[test]
    fn other_schemes_and_absence_are_not_client_auth() {
        assert!(parse_basic(None).unwrap().is_none());
        assert!(parse_basic(Some("Bearer abc")).unwrap().is_none());
        assert!(parse_basic(Some("garbage")).unwrap().is_none());
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in [
            "Basic !!!",
            "Basic ",
            &format!("Basic {}", STANDARD.encode("nocolon")),
            &basic("", "x"),
        ] {
            assert_eq!(
                parse_basic(Some(h)).unwrap_err().kind,
                ErrorKind::InvalidClient,
                "{h}"
            );
        }
        let huge = format!("Basic {}", "A".repeat(10_000));
        assert_eq!(
            parse_basic(Some(&huge)).unwrap_err().kind,
            ErrorKind::InvalidClient
        );
    }

    #[test]
    fn body_credentials_are_used_without_basic() {
        let c = resolve(None, "id", "secret").unwrap().unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.expose()),
            ("id", "secret")
        );
        assert!(resolve(None, "", "").unwrap().is_none());
    }

    #[test]
    fn basic_and_body_must_not_disagree_or_double_up() {
        let h = basic("id", "secret");
        assert!(resolve(Some(&h), "id", "").unwrap().is_some());
        assert_eq!(
            resolve(Some(&h), "other", "").unwrap_err().kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            resolve(Some(&h), "id", "secret").unwrap_err().kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            resolve(None, "id", &"x".repeat(10_000)).unwrap_err().kind,
            ErrorKind::InvalidClient
        );
    }
}
