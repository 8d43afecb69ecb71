//! Fuzz target: see `lectern_fuzz::join_link`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::join_link(data));
