//! libFuzzer's entry to [`authd_fuzz::targets::scope`], where the checks are.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authd_fuzz::targets::scope::run(data));
