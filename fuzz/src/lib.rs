//! Shared checks for the fuzz targets: reference models of the request
//! parameter formats, built on independent parsers (`url`'s form decoder,
//! `serde` over `serde_json`), and the accessor invariants of `Params`,
//! `read` included.
pub mod targets;

use std::collections::BTreeMap;
use std::fmt;

use authd::domain::error::{AuthError, ErrorKind};
use authd::http::params::Params;

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

/// Parameter names the handlers read, probed on every parse besides the
/// names the input itself holds.
pub const KNOWN_KEYS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_name",
    "redirect_uri",
    "redirect_uris",
    "scope",
    "scopes",
    "website",
    "grant_type",
    "code",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "response_type",
    "state",
    "token",
    "force_login",
    "lang",
    "",
    "[]",
];

/// Errors from parsing a request are `invalid_request`, and never reflect
/// an attacker-sized piece of the input.
pub fn check_parse_error(e: &AuthError) {
    assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e:?}");
    assert!(
        e.description.len() <= 400,
        "parse error reflects too much input ({} bytes): {:?}",
        e.description.len(),
        e.description
    );
}

/// What a parse should yield: each key (after the one `[]` suffix is
/// stripped) with its values in order. `Some(vec![])` for a JSON empty
/// array, which is "given" although it has no value.
pub type Model = BTreeMap<String, Vec<String>>;

pub fn model_push(model: &mut Model, key: &str, value: Option<String>) {
    let key = key.strip_suffix("[]").unwrap_or(key);
    let values = model.entry(key.to_owned()).or_default();
    if let Some(v) = value {
        values.push(v);
    }
}

/// The form model of `bytes`: `None` when a name or value is not UTF-8 once
/// percent-decoded. Pairs are split and decoded by `url::form_urlencoded`,
/// which is lossy, so strictness is checked separately per part.
pub fn form_model(bytes: &[u8], model: &mut Model) -> Option<()> {
    for pair in bytes.split(|b| *b == b'&') {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        for part in [k, v] {
            let spaced: Vec<u8> = part
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            std::str::from_utf8(&percent_encoding::percent_decode(&spaced).collect::<Vec<u8>>())
                .ok()?;
        }
    }
    for (k, v) in url::form_urlencoded::parse(bytes) {
        model_push(model, &k, Some(v.into_owned()));
    }
    Some(())
}

/// A JSON object's members in order, repeated names kept (serde_json's own
/// `Map` keeps only the last of them).
pub struct Members(pub Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// The JSON model of `body`: `None` when it is not an object of scalars and
/// arrays of scalars (which also covers every body nested deeper than the
/// limit). Repeated names are kept, so they count as given twice.
pub fn json_model(body: &[u8], model: &mut Model) -> Option<()> {
    let Members(members) = serde_json::from_slice(body).ok()?;
    fn scalar(v: serde_json::Value) -> Option<Option<String>> {
        match v {
            serde_json::Value::Null => Some(None),
            serde_json::Value::Bool(b) => Some(Some(b.to_string())),
            serde_json::Value::Number(n) => Some(Some(n.to_string())),
            serde_json::Value::String(s) => Some(Some(s)),
            _ => None,
        }
    }
    for (key, value) in members {
        match value {
            serde_json::Value::Array(items) => {
                model_push(model, &key, None);
                for item in items {
                    model_push(model, &key, Some(scalar(item)?.unwrap_or_default()));
                }
            }
            other => {
                if let Some(v) = scalar(other)? {
                    model_push(model, &key, Some(v));
                }
            }
        }
    }
    Some(())
}

/// `Params` holding exactly `model`, built through the form parser from a
/// body written by `url`'s serializer. Every key gets a `[]` suffix, so a
/// model key that itself ends in `[]` survives the one strip. Keys given as
/// empty JSON arrays go in a JSON body.
pub fn params_of(model: &Model) -> Params {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut empty = serde_json::Map::new();
    for (k, values) in model {
        let key = format!("{k}[]");
        if values.is_empty() {
            empty.insert(key.clone(), serde_json::Value::Array(vec![]));
        }
        for v in values {
            query.append_pair(&key, v);
        }
    }
    let body = if empty.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(empty).to_string()
    };
    Params::parse(Some(&query.finish()), Some(JSON), body.as_bytes())
        .expect("a body written by url's serializer parses")
}

/// The accessors of `p` agree with each other for `key`.
pub fn check_accessors(p: &Params, key: &str) {
    let list = p.list(key);
    let get = p.get(key);
    match list.as_slice() {
        [] => assert_eq!(get.as_ref().ok(), Some(&None), "{key:?}"),
        [one] => assert_eq!(get.as_ref().ok(), Some(&Some(one.as_str())), "{key:?}"),
        _ => {
            // A parameter given twice is refused, list keys included when
            // read as a single value.
            let e = get.as_ref().expect_err("several values read as one");
            assert_eq!(e.kind, ErrorKind::InvalidRequest);
        }
    }
    if !list.is_empty() {
        assert!(p.contains(key), "{key:?} has values but is not contained");
    }
}

/// Parameters as a handler reads them (`Params::read`): single values, a
/// flag, and a list parameter.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct Read {
    client_id: String,
    scope: String,
    state: String,
    redirect_uri: String,
    force_login: bool,
    redirect_uris: Vec<String>,
}

/// `Params::read` agrees with `get` and `list`: each field is the single
/// value ("" when absent, a flag false only for the false spellings, in any case), a list
/// field every value; and it refuses exactly when a single field was given
/// more than once, with `invalid_request`.
pub fn check_read(p: &Params) {
    const SINGLE: &[&str] = &["client_id", "scope", "state", "redirect_uri", "force_login"];
    let repeated = SINGLE.iter().any(|key| p.list(key).len() > 1);
    match p.read::<Read>() {
        Ok(read) => {
            assert!(!repeated, "a repeated parameter was read as one: {read:?}");
            let single = |key: &str| p.get(key).unwrap().unwrap_or("").to_owned();
            assert_eq!(read.client_id, single("client_id"));
            assert_eq!(read.scope, single("scope"));
            assert_eq!(read.state, single("state"));
            assert_eq!(read.redirect_uri, single("redirect_uri"));
            assert_eq!(
                read.force_login,
                !["", "0", "f", "false", "off", "no", "n"]
                    .contains(&single("force_login").to_ascii_lowercase().as_str())
            );
            assert_eq!(read.redirect_uris, p.list("redirect_uris"));
        }
        Err(e) => {
            assert!(repeated, "refused without a repeated parameter: {e:?}");
            assert_eq!(e.kind, ErrorKind::InvalidRequest);
        }
    }
}

/// Two parses read the same: the same parameters, or both refused (their
/// messages may differ, as they name the part of the request at fault).
pub fn assert_same(a: &Result<Params, AuthError>, b: &Result<Params, AuthError>) {
    assert_eq!(a.as_ref().ok(), b.as_ref().ok());
    if let (Err(a), Err(b)) = (a, b) {
        assert_eq!(a.kind, b.kind);
    }
}

/// Checks a parse against its model (`None`: the parse must fail).
pub fn check_against_model(result: &Result<Params, AuthError>, model: Option<&Model>) {
    match (result, model) {
        (Err(e), None) => check_parse_error(e),
        (Ok(p), Some(model)) => {
            assert_eq!(
                p,
                &params_of(model),
                "parse differs from the model {model:?}"
            );
            for (key, values) in model {
                assert_eq!(&p.list(key), values, "{key:?}");
                assert!(p.contains(key), "{key:?}");
                check_accessors(p, key);
            }
            for key in KNOWN_KEYS {
                assert_eq!(p.contains(key), model.contains_key(*key), "{key:?}");
                check_accessors(p, key);
            }
            check_read(p);
        }
        (Ok(p), None) => panic!("parsed {p:?}, but the model refuses the input"),
        (Err(e), Some(model)) => panic!("refused ({e:?}), but the model reads {model:?}"),
    }
}
