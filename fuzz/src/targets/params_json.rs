//! `Params::parse` of a JSON body, checked against a model built on serde
//! that keeps repeated member names: an object of scalars and arrays of
//! scalars is read (null is absent, an empty array is given but empty), and
//! everything else is refused: malformed JSON, a non-object, an object or a
//! nested array as a value, bodies nested too deeply. A member named twice
//! is a parameter given twice.
use super::super::{JSON, Model, check_against_model, json_model};
use authd::http::params::Params;

/// One input, checked; a broken invariant panics.
pub fn run(data: &[u8]) {
    let result = Params::parse(None, Some(JSON), data);
    if data.is_empty() {
        // No body at all: nothing to read.
        assert_eq!(result, Ok(Params::default()));
        return;
    }
    let mut model = Model::new();
    let model = json_model(data, &mut model).map(|()| model);
    check_against_model(&result, model.as_ref());

    assert_eq!(
        result,
        Params::parse(None, Some("APPLICATION/JSON; charset=utf-8"), data)
    );
}
