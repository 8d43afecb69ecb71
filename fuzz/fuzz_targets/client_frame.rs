//! Fuzz target: see `lectern_fuzz::client_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::client_frame(data));
