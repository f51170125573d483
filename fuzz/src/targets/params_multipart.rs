//! `Params::parse` with a fuzzed Content-Type and body: the first line of
//! the input is the Content-Type value, the rest the body. Reaches the
//! multipart reader (through multer) and the media type dispatch. Checks:
//! no panic or hang, errors are bounded `invalid_request`s, the accessors
//! agree, and form and JSON bodies read as their own models say.
use super::super::{
    FORM, JSON, KNOWN_KEYS, Model, check_accessors, check_against_model, check_parse_error,
    form_model, json_model,
};
use authd::http::params::Params;

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let (ct, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(ct) = std::str::from_utf8(ct) else {
        return;
    };
    let result = Params::parse(None, Some(ct), body);
    match &result {
        Err(e) => check_parse_error(e),
        Ok(p) => {
            for key in KNOWN_KEYS {
                check_accessors(p, key);
            }
        }
    }
    assert_eq!(
        result,
        Params::parse(None, Some(ct), body),
        "not deterministic"
    );

    if body.is_empty() {
        assert_eq!(result, Ok(Params::default()));
        return;
    }
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut model = Model::new();
    let model = match mime.as_str() {
        FORM => form_model(body, &mut model).map(|()| model),
        JSON => json_model(body, &mut model).map(|()| model),
        "multipart/form-data" => return,
        _ => {
            assert!(result.is_err(), "a body of type {ct:?} was read");
            return;
        }
    };
    check_against_model(&result, model.as_ref());
}
