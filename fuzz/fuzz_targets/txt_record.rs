//! Fuzz target: see `lectern_fuzz::txt_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lectern_fuzz::txt_record(data));
