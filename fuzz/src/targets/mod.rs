//! The checks of each fuzz target, as plain functions: libFuzzer calls them
//! from fuzz_targets/, and `cargo test` (tests/fuzz_corpus.rs) replays the
//! kept corpus and the seeds through them, so that every input the fuzzer
//! ever kept is checked on every test run without the fuzzing toolchain.
pub mod basic_auth;
pub mod params_form;
pub mod params_json;
pub mod params_multipart;
pub mod params_query;
pub mod redirect_uri;
pub mod scope;

/// A target's checks of one input; a broken invariant panics.
pub type Check = fn(&[u8]);

/// Every target, by the name of its fuzz_targets/ binary and corpus folder.
pub const ALL: &[(&str, Check)] = &[
    ("basic_auth", basic_auth::run),
    ("params_form", params_form::run),
    ("params_json", params_json::run),
    ("params_multipart", params_multipart::run),
    ("params_query", params_query::run),
    ("redirect_uri", redirect_uri::run),
    ("scope", scope::run),
];
