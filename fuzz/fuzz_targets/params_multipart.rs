//! libFuzzer's entry to [`authd_fuzz::targets::params_multipart`], where the checks are.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authd_fuzz::targets::params_multipart::run(data));
