//! Redirect URIs: what an app may register, and when a requested URI matches
//! a registered one. Matching is exact string comparison (RFC 9700 section
//! 4.1.3), with the one exception RFC 8252 section 7.3 asks for: a loopback
//! IP literal may come back on any port. No prefix, wildcard, case or
//! normalisation tricks can therefore turn a registered URI into an open
//! redirect.
use std::fmt;

use url::Url;

/// The out-of-band URI: the code is shown to the user instead of redirected.
pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

const MAX_LEN: usize = 2000;
/// Most redirect URIs one app may register. Real apps register one to a
/// handful (one per platform); the bound keeps registration work and the
/// stored row small whatever a client sends.
pub const MAX_URIS: usize = 32;
/// Most bytes of redirect URI input read at all, before any is parsed:
/// `MAX_URIS` URIs of the longest length, plus separators.
pub const MAX_LIST_BYTES: usize = MAX_URIS * (MAX_LEN + 1);
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file"];

#[derive(Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("Redirect URI must be an absolute URI.")]
    NotAbsolute,
    #[error("Redirect URI must not contain a fragment.")]
    Fragment,
    #[error("Redirect URI uses a forbidden scheme.")]
    ForbiddenScheme,
    #[error("Redirect URI must not contain credentials.")]
    Userinfo,
    #[error("Redirect URI is too long.")]
    TooLong,
    #[error("Redirect URI can't be blank")]
    Empty,
    #[error("Redirect URI: too many (maximum is 32).")]
    TooMany,
}

impl RedirectUri {
    pub fn parse(input: &str) -> Result<RedirectUri, RedirectUriError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        if input.len() > MAX_LEN {
            return Err(RedirectUriError::TooLong);
        }
        if input == OOB {
            return Ok(RedirectUri(input.to_owned()));
        }
        if input.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::NotAbsolute);
        }
        let url = Url::parse(input).map_err(|_| RedirectUriError::NotAbsolute)?;
        if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
            return Err(RedirectUriError::ForbiddenScheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::Userinfo);
        }
        if matches!(url.scheme(), "http" | "https") {
            // The parser repairs "https:///cb" and "https:cb" into
            // "https://cb/"; a registered URI must be written out in full.
            let rest = &input[url.scheme().len()..];
            let authority = rest.strip_prefix("://").unwrap_or("");
            if authority.is_empty()
                || authority.starts_with('/')
                || url.host_str().is_none_or(str::is_empty)
            {
                return Err(RedirectUriError::NotAbsolute);
            }
        }
        if url.cannot_be_a_base() {
            // "myapp:cb" parses as a URL but has neither authority nor path
            // to send a client to; "myapp://cb" and "com.app:/cb" are fine.
            return Err(RedirectUriError::NotAbsolute);
        }
        Ok(RedirectUri(input.to_owned()))
    }

    /// Parses Mastodon's forms: each element may hold several URIs separated
    /// by whitespace or newlines. Duplicates collapse, order is kept.
    ///
    /// The input's size is checked before any of it is parsed (at most
    /// [`MAX_LIST_BYTES`] bytes, [`MAX_URIS`] distinct URIs), and duplicates
    /// are found with a set, so the work is linear in a bounded input.
    pub fn parse_list<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<RedirectUri>, RedirectUriError> {
        // Every input counts one byte more than its length, so this also
        // bounds the number of inputs; the inputs are not counted apart from
        // it so that a list is answered alike whether it comes as one string
        // or as one string per line (empty lines included).
        let mut total = 0usize;
        for input in inputs {
            total = total.saturating_add(input.as_ref().len() + 1);
            if total > MAX_LIST_BYTES {
                return Err(RedirectUriError::TooMany);
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut uris: Vec<RedirectUri> = Vec::new();
        for input in inputs {
            for part in input.as_ref().split_whitespace() {
                let uri = RedirectUri::parse(part)?;
                if seen.insert(uri.0.clone()) {
                    if uris.len() == MAX_URIS {
                        return Err(RedirectUriError::TooMany);
                    }
                    uris.push(uri);
                }
            }
        }
        if uris.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        Ok(uris)
    }

    /// A stored value, which was validated when it was registered.
    pub fn from_registered(value: String) -> RedirectUri {
        RedirectUri(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_oob(&self) -> bool {
        self.0 == OOB
    }

    /// Whether `requested` names this registered URI.
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        match (
            loopback_without_port(&self.0),
            loopback_without_port(requested),
        ) {
            (Some(registered), Some(requested)) => registered == requested,
            _ => false,
        }
    }

    /// This URI with query parameters added (code and state, or an error),
    /// keeping any query it already has.
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                {
                    let mut query = url.query_pairs_mut();
                    for (k, v) in params {
                        query.append_pair(k, v);
                    }
                }
                url.to_string()
            }
            // Registered URIs always parse; this keeps the function total.
            Err(_) => self.0.clone(),
        }
    }
}

/// For an `http` URI whose host is a loopback IP literal, the URI with its
/// port removed; otherwise None. Anything unusual (userinfo, fragment, a
/// string the URL parser would rewrite) disqualifies it, so the exception
/// cannot be used to smuggle a different URI past exact matching.
fn loopback_without_port(input: &str) -> Option<String> {
    let url = Url::parse(input).ok()?;
    if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if url.fragment().is_some() {
        return None;
    }
    match url.host()? {
        url::Host::Ipv4(ip) if ip.is_loopback() => {}
        url::Host::Ipv6(ip) if ip.is_loopback() => {}
        _ => return None,
    }
    // Only accept inputs already in the parser's canonical form, so that the
    // comparison below is a string comparison of what was actually sent.
    let mut canonical = url.clone();
    if canonical.to_string() != input && !input_equals_canonical_modulo_root(input, &canonical) {
        return None;
    }
    canonical.set_port(None).ok()?;
    Some(canonical.to_string())
}

/// `http://127.0.0.1:8000` and `http://127.0.0.1:8000/` are the same request
/// target; the parser adds the slash.
fn input_equals_canonical_modulo_root(input: &str, canonical: &Url) -> bool {
    canonical.path() == "/"
        && canonical.query().is_none()
        && format!("{input}/") == canonical.as_str()
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedirectUri({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RedirectUri {
        RedirectUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_oob_https_http_and_custom_schemes() {
        for s in [
            OOB,
            "https://app.example/cb",
            "http://localhost:4000/callback?x=1",
            "http://127.0.0.1:8912",
            "myapp://oauth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            ok(s);
        }
    }

    #[test]
    fn rejects_what_the_reference_forbids() {
        use RedirectUriError::*;
        for (s, e) in [
            ("", Empty),
            ("   ", Empty),
            ("/relative/path", NotAbsolute),
            ("https://app.example/cb#frag", Fragment),
            ("javascript:alert(1)", ForbiddenScheme),
            ("JavaScript:alert(1)", ForbiddenScheme),
            ("data:text/html,hi", ForbiddenScheme),
            ("vbscript:msgbox", ForbiddenScheme),
            ("https://user:pw@app.example/cb", Userinfo),
            ("https://user@app.example/cb", Userinfo),
            ("https:///cb", NotAbsolute),
            ("https:cb", NotAbsolute),
            ("http:/cb", NotAbsolute),
        ] {
            assert_eq!(RedirectUri::parse(s), Err(e), "{s}");
        }
        assert_eq!(
            RedirectUri::parse(&format!("https://a.example/{}", "x".repeat(2001))),
            Err(TooLong)
        );
    }

    #[test]
    fn parse_list_splits_on_whitespace_and_newlines_and_dedupes() {
        let uris = RedirectUri::parse_list(&[
            "https://a.example/cb\nhttps://b.example/cb  https://a.example/cb",
        ])
        .unwrap();
        assert_eq!(
            uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            ["https://a.example/cb", "https://b.example/cb"]
        );
        assert_eq!(
            RedirectUri::parse_list::<&str>(&[]),
            Err(RedirectUriError::Empty)
        );
        assert_eq!(
            RedirectUri::parse_list(&[" \n "]),
            Err(RedirectUriError::Empty)
        );
    }

    #[test]
    fn matching_is_exact() {
        let r = ok("https://app.example/cb");
        assert!(r.matches("https://app.example/cb"));
        for attack in [
            "https://app.example/cb/",
            "https://app.example/cb/../evil",
            "https://app.example/cb/..;/evil",
            "https://app.example/cbx",
            "https://app.example/c%62",
            "https://APP.example/cb",
            "https://app.example/CB",
            "https://app.example.evil.example/cb",
            "https://evil.example@app.example/cb",
            "https://app.example@evil.example/cb",
            "https://app.example/cb?x=1",
            "https://app.example/cb#x",
            "https://app.example:443/cb",
            "http://app.example/cb",
            "",
        ] {
            assert!(!r.matches(attack), "{attack}");
        }
    }

    #[test]
    fn loopback_ip_literals_may_change_port_only() {
        let r = ok("http://127.0.0.1/callback");
        assert!(r.matches("http://127.0.0.1:53123/callback"));
        assert!(!r.matches("http://127.0.0.1:53123/other"));
        assert!(!r.matches("http://127.0.0.1:53123/callback?x=1"));
        assert!(!r.matches("https://127.0.0.1:53123/callback"));
        assert!(!r.matches("http://127.0.0.2.evil.example:53123/callback"));
        let v6 = ok("http://[::1]:8000/cb");
        assert!(v6.matches("http://[::1]:9000/cb"));
        let bare = ok("http://127.0.0.1:8000");
        assert!(bare.matches("http://127.0.0.1:9000/"));
        // localhost is a name, not a literal: exact match only.
        let named = ok("http://localhost:8000/cb");
        assert!(!named.matches("http://localhost:9000/cb"));
    }

    #[test]
    fn with_params_keeps_existing_query_and_encodes_values() {
        let r = ok("https://app.example/cb?tenant=a");
        assert_eq!(
            r.with_params(&[("code", "abc"), ("state", "x y&z")]),
            "https://app.example/cb?tenant=a&code=abc&state=x+y%26z"
        );
        let custom = ok("myapp://oauth/callback");
        assert_eq!(
            custom.with_params(&[("code", "c")]),
            "myapp://oauth/callback?code=c"
        );
    }
}
