//! Parsing an experiment file must return an error, never panic, on any text: a network file
//! (`lab::parse`), or an older `task = …` file through its conversion.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = std::path::Path::new("fuzz.toml");
    if gradlab::experiments::legacy::is_old(&text) {
        if let Ok(converted) = gradlab::experiments::legacy::convert(path, &text) {
            let _ = gradlab::experiments::lab::parse(path, &converted);
        }
    } else {
        let _ = gradlab::experiments::lab::parse(path, &text);
    }
});
