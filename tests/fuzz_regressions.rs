//! Inputs the fuzzers (fuzz/, cargo-fuzz) found to crash or exhaust memory, kept as tests:
//! each must now give an error, quickly and without a large allocation.

use std::path::PathBuf;

fn inputs(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn npy_inputs_found_by_fuzzing_are_refused() {
    let found = inputs("npy-");
    assert!(!found.is_empty());
    for (name, bytes) in found {
        let err = gradlab::data::npy::parse_npy(&bytes).unwrap_err();
        assert!(err.contains("header") || err.contains("truncated") || err.contains("too large"), "{name}: {err}");
        // (npy-timeout-nested-header used to keep npyz's header parser busy for minutes.)
    }
}

#[test]
fn a_header_may_not_promise_more_than_the_file_holds() {
    use gradlab::data::npy::npy_bytes;
    // A valid header claiming 10¹² values over 16 bytes of data.
    let e = gradlab::data::npy::parse_npy(&npy_bytes(&[1_000_000, 1_000_000], "<f8", false, &[0u8; 16])).unwrap_err();
    assert!(e.contains("truncated") && e.contains("promises"), "{e}");
    let e = gradlab::data::npy::parse_npy(&npy_bytes(&[usize::MAX / 2, 4], "<f8", false, &[])).unwrap_err();
    assert!(e.contains("too large"), "{e}");
}
