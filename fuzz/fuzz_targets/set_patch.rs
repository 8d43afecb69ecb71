//! Fuzz target: see `lectern_fuzz::set_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::set_patch(data));
