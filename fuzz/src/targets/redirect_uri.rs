//! `RedirectUri::parse`, `parse_list`, `matches` and `with_params`. The
//! input is "registered\nrequested" (without a newline, the input is both).
//! Checks, with the `url` crate as the reference:
//! - an accepted URI is the trimmed input, re-parses to itself, is OOB or
//!   an absolute URL with a base, no fragment, no credentials, no forbidden
//!   scheme, no whitespace, within the length limit, and matches itself;
//! - `parse_list` is the whitespace-separated URIs, deduplicated, in order;
//! - `matches` is string equality, except that an `http` loopback IP
//!   literal in canonical form may change its port, and nothing else: never
//!   another scheme, host, path, query or credentials;
//! - `with_params` yields a URL that keeps the registered scheme, host,
//!   port, path and query as a prefix and appends exactly the given pairs.
use authd::domain::redirect_uri::{MAX_LIST_BYTES, MAX_URIS, OOB, RedirectUri, RedirectUriError};
use url::{Host, Url};

const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file"];

fn check_parse(input: &str) -> Option<RedirectUri> {
    let result = RedirectUri::parse(input);
    let trimmed = input.trim();
    if trimmed.is_empty() {
        assert_eq!(result, Err(RedirectUriError::Empty));
        return None;
    }
    if trimmed.len() > 2000 {
        assert_eq!(result, Err(RedirectUriError::TooLong));
        return None;
    }
    let uri = result.ok()?;
    assert_eq!(uri.as_str(), trimmed);
    assert_eq!(RedirectUri::parse(uri.as_str()).as_ref(), Ok(&uri));
    assert!(uri.matches(uri.as_str()));
    assert_eq!(uri.to_string(), trimmed);
    assert_eq!(uri.is_oob(), trimmed == OOB);
    if !uri.is_oob() {
        assert!(!trimmed.contains('#'));
        assert!(!trimmed.chars().any(|c| c.is_whitespace() || c.is_control()));
        let url = Url::parse(trimmed).expect("an accepted URI parses as a URL");
        assert!(!FORBIDDEN_SCHEMES.contains(&url.scheme()), "{trimmed:?}");
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{trimmed:?}"
        );
        assert!(url.fragment().is_none());
        assert!(!url.cannot_be_a_base(), "{trimmed:?}");
        if matches!(url.scheme(), "http" | "https") {
            assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{trimmed:?}");
            assert!(
                trimmed[url.scheme().len()..].starts_with("://"),
                "{trimmed:?} does not write out its authority"
            );
        }
    }
    Some(uri)
}

fn is_http_loopback(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

fn check_matches(registered: &RedirectUri, requested: &str, port: u16) {
    let reg = registered.as_str();
    let matched = registered.matches(requested);
    if requested == reg {
        assert!(matched);
    }
    let reg_url = Url::parse(reg).ok();
    let reg_loopback = reg_url.as_ref().is_some_and(is_http_loopback);
    if matched && requested != reg {
        // Only the loopback exception: same everything but the port.
        assert!(reg_loopback, "{requested:?} matched non-loopback {reg:?}");
        let (a, b) = (reg_url.as_ref().unwrap(), Url::parse(requested).unwrap());
        assert!(is_http_loopback(&b), "{requested:?} matched {reg:?}");
        assert_eq!(a.host(), b.host(), "{requested:?} matched {reg:?}");
        assert_eq!(a.path(), b.path(), "{requested:?} matched {reg:?}");
        assert_eq!(a.query(), b.query(), "{requested:?} matched {reg:?}");
        assert!(b.username().is_empty() && b.password().is_none() && b.fragment().is_none());
        assert!(!requested.contains(['#', ' ', '\t', '\n', '\r']));
        // Nothing the URL parser would have rewritten.
        assert!(
            b.as_str() == requested || b.as_str() == format!("{requested}/"),
            "{requested:?} is not canonical"
        );
    }
    // The exception itself: a canonical loopback URI, on another port.
    if let Some(mut url) = reg_url.filter(|u| is_http_loopback(u) && u.as_str() == reg) {
        url.set_port(Some(port)).unwrap();
        assert!(registered.matches(url.as_str()), "{reg:?} vs {url}");
    }
}

fn check_with_params(registered: &RedirectUri, code: &str, state: &str) {
    let out = registered.with_params(&[("code", code), ("state", state)]);
    let base = Url::parse(registered.as_str()).expect("a registered URI parses");
    let url = Url::parse(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    assert!(out.starts_with(base.as_str()), "{out:?} lost {base}");
    assert_eq!(url.scheme(), base.scheme());
    assert_eq!(url.host(), base.host());
    assert_eq!(url.port(), base.port());
    assert_eq!(url.path(), base.path());
    assert_eq!(url.fragment(), None);
    if let Some(q) = base.query() {
        assert!(url.query().unwrap().starts_with(q));
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(pairs.len() >= 2, "{out:?}");
    assert_eq!(
        &pairs[pairs.len() - 2..],
        &[
            ("code".to_owned(), code.to_owned()),
            ("state".to_owned(), state.to_owned())
        ],
        "{out:?}"
    );
}

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, requested) = s.split_once('\n').unwrap_or((s, s));
    let port = data
        .iter()
        .fold(1u16, |a, b| a.wrapping_mul(31).wrapping_add(u16::from(*b)));

    for input in [s, registered, requested] {
        check_parse(input);
    }

    // parse_list: each whitespace-separated URI, first occurrences in order,
    // refused as a whole when it is too long or names too many distinct URIs,
    // and otherwise at its first invalid URI.
    let tokens: Vec<&str> = s.split_whitespace().collect();
    let want: Result<Vec<&str>, RedirectUriError> = (|| {
        if s.len() + 1 > MAX_LIST_BYTES {
            return Err(RedirectUriError::TooMany);
        }
        let mut want: Vec<&str> = Vec::new();
        for t in &tokens {
            RedirectUri::parse(t)?;
            if !want.contains(t) {
                if want.len() == MAX_URIS {
                    return Err(RedirectUriError::TooMany);
                }
                want.push(t);
            }
        }
        if want.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        Ok(want)
    })();
    let got = RedirectUri::parse_list(&[s]);
    assert_eq!(
        got.as_ref()
            .map(|list| list.iter().map(RedirectUri::as_str).collect::<Vec<_>>()),
        want.as_ref().map(|list| list.to_vec())
    );
    if got.is_ok() {
        for t in &tokens {
            assert!(check_parse(t).is_some());
        }
    }
    let lines: Vec<&str> = s.split('\n').collect();
    assert_eq!(
        RedirectUri::parse_list(&lines),
        RedirectUri::parse_list(&[s])
    );

    if let Ok(reg) = RedirectUri::parse(registered) {
        check_matches(&reg, requested, port);
        let mid = (0..=requested.len() / 2)
            .rev()
            .find(|i| requested.is_char_boundary(*i))
            .unwrap_or(0);
        let (code, state) = requested.split_at(mid);
        check_with_params(&reg, code, state);
    }
}
