#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| valkit_fuzz::check_decode(data));
