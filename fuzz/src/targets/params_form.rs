//! `Params::parse` of an application/x-www-form-urlencoded body, checked
//! against a model built on `url::form_urlencoded`: same parameters in the
//! same order, invalid UTF-8 refused, a repeated parameter refused when read
//! as one value, and the query string and body read alike and merged in order.
use super::super::{FORM, Model, assert_same, check_against_model, form_model};
use authd::http::params::Params;

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let result = Params::parse(None, Some(FORM), data);
    let mut model = Model::new();
    let model = form_model(data, &mut model).map(|()| model);
    check_against_model(&result, model.as_ref());

    // The media type is case-insensitive and its parameters are ignored.
    let spelled = Params::parse(
        None,
        Some(" Application/X-WWW-Form-URLEncoded ; charset=UTF-8"),
        data,
    );
    assert_eq!(result, spelled);

    if let Ok(text) = std::str::from_utf8(data) {
        // The same bytes as a query string read the same.
        assert_same(&result, &Params::parse(Some(text), None, b""));
        // Split at an '&' into query string and body: merged in order, the
        // parameters are those of the whole.
        if let Some(i) = text.find('&') {
            let (query, body) = (&text[..i], &text[i + 1..]);
            assert_same(
                &result,
                &Params::parse(Some(query), Some(FORM), body.as_bytes()),
            );
        }
    }
}
