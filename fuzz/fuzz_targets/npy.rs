//! The `.npy` reader must return an error, never panic, on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gradlab::data::npy::parse_npy(data);
});
