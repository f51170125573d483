//! libFuzzer's entry to [`authd_fuzz::targets::redirect_uri`], where the checks are.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authd_fuzz::targets::redirect_uri::run(data));
