//! `client_auth::parse_basic` and `resolve` on a fuzzed Authorization
//! header. Checks: only a Basic scheme is read (anything else is "no client
//! authentication"); a malformed Basic header is `invalid_client`; decoded
//! credentials have a non-empty id, are bounded, and survive a round trip
//! through RFC 6749 section 2.3.1 encoding (form-urlencode each part, join
//! with ':', base64) in any spelling of the scheme; and `resolve` agrees.
use authd::domain::client_auth::{parse_basic, resolve};
use authd::domain::error::ErrorKind;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn claims_basic(header: &str) -> bool {
    let h = header.trim();
    h.eq_ignore_ascii_case("basic")
        || h.split_once(' ')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

/// `header` must decode to exactly (id, secret).
fn assert_decodes_to(header: &str, id: &str, secret: &str) {
    let c = parse_basic(Some(header))
        .unwrap_or_else(|e| panic!("{header:?}: {e:?}"))
        .unwrap_or_else(|| panic!("{header:?} not read as Basic"));
    assert_eq!(c.client_id, id, "{header:?}");
    assert_eq!(c.client_secret.expose(), secret, "{header:?}");
}

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_basic(Some(header));
    match &parsed {
        Ok(None) => assert!(!claims_basic(header), "a Basic header was ignored"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::InvalidClient);
            assert!(claims_basic(header), "{header:?} is not Basic");
        }
        Ok(Some(c)) => {
            assert!(claims_basic(header));
            let (id, secret) = (c.client_id.as_str(), c.client_secret.expose());
            assert!(!id.is_empty());
            // At most 2048 base64 characters, so at most 1536 bytes.
            assert!(id.len() + secret.len() < 1536);

            // Re-encoded per RFC 6749 section 2.3.1, they decode the same
            // (unless the encoding grew past the length limit).
            let encoded = STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)));
            if encoded.len() <= 2048 {
                assert_decodes_to(&format!("Basic {encoded}"), id, secret);
                assert_decodes_to(&format!(" bASIC \t {encoded}\t"), id, secret);
            } else {
                assert!(parse_basic(Some(&format!("Basic {encoded}"))).is_err());
            }
            // Characters that mean nothing to the form decoding may be sent
            // as they are.
            if !id.contains([':', '%', '+']) && !secret.contains(['%', '+']) {
                let raw = STANDARD.encode(format!("{id}:{secret}"));
                if raw.len() <= 2048 {
                    assert_decodes_to(&format!("Basic {raw}"), id, secret);
                }
            }

            // resolve: Basic alone, or with the same client_id, is the Basic
            // credential; with a client_secret too, it is refused.
            for body_id in ["", id] {
                if body_id.len() <= 512 {
                    let r = resolve(Some(header), body_id, "").unwrap().unwrap();
                    assert_eq!(r.client_id, id);
                    assert_eq!(r.client_secret.expose(), secret);
                }
            }
            let e = resolve(Some(header), "", "x").unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidRequest);
        }
    }
    // Without body credentials, resolve is parse_basic.
    match (resolve(Some(header), "", ""), &parsed) {
        (Ok(None), Ok(None)) => {}
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a.client_id, b.client_id);
            assert_eq!(a.client_secret.expose(), b.client_secret.expose());
        }
        (Err(a), Err(b)) => assert_eq!(&a, b),
        (a, b) => panic!("resolve {a:?} but parse_basic {b:?}"),
    }
    assert!(parse_basic(None).unwrap().is_none());
}
