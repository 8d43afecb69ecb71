//! Fuzz target: see `lectern_fuzz::ink`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::ink(data));
