//! Parsing an experiment file must return an error, never panic, on any text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = gradlab::experiments::sweep::parse(std::path::Path::new("fuzz.toml"), &text);
});
