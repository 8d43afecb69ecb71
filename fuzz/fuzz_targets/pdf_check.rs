//! Fuzz target: see `lectern_fuzz::pdf_check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::pdf_check(data));
