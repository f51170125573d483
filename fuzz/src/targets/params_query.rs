//! `Params::parse` of a query string (no body), checked against the
//! `url::form_urlencoded` model, and against the same string sent as a form
//! body or beside a JSON body.
use super::super::{FORM, JSON, Model, assert_same, check_against_model, form_model, model_push};
use authd::http::params::Params;

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let result = Params::parse(Some(query), None, b"");
    let mut model = Model::new();
    let model = form_model(data, &mut model).map(|()| model);
    check_against_model(&result, model.as_ref());

    // A query string is read exactly as a form body is.
    assert_same(&result, &Params::parse(None, Some(FORM), data));

    // Beside a JSON body, its parameters come first and the body's are added.
    let with_json = Params::parse(
        Some(query),
        Some(JSON),
        br#"{"client_id":"fuzz","scopes":["read","write"]}"#,
    );
    let model = model.map(|mut m| {
        model_push(&mut m, "client_id", Some("fuzz".into()));
        model_push(&mut m, "scopes", None);
        model_push(&mut m, "scopes", Some("read".into()));
        model_push(&mut m, "scopes", Some("write".into()));
        m
    });
    check_against_model(&with_json, model.as_ref());
}
