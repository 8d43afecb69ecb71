//! Fuzz target: see `lectern_fuzz::signed_state`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::signed_state(data));
