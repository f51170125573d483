//! libFuzzer's entry to [`authd_fuzz::targets::basic_auth`], where the checks are.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authd_fuzz::targets::basic_auth::run(data));
