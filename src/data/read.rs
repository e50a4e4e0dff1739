//! Reading the files a user names, bounded: regular files only (a device or a FIFO named where a
//! file is expected would be read for ever), no larger than a limit, and never more bytes than
//! that limit even if the file grows while it is read; decompression likewise stops at the limit.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The most bytes one input array (a `.npy`, an `.npz` member, an IDX file, a CSV) may hold,
/// decompressed: far above any data set gradlab trains on (MNIST: 47 MB), far below what would
/// exhaust a machine.
pub const MAX_ARRAY_BYTES: u64 = 1 << 30;

/// The whole of `path`, a regular file of at most `limit` bytes. A missing file's message ends
/// with `missing_hint` (where such files come from).
pub fn bounded(path: &Path, limit: u64, missing_hint: &str) -> Result<Vec<u8>> {
    let meta = regular_file(path, missing_hint)?;
    if meta.len() > limit {
        return Err(Error::data(path, format!("is {} bytes, beyond the {limit} this input may have", meta.len())));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_at_most(file, limit).map_err(|m| Error::data(path, m))
}

/// `path`'s metadata if it is a regular file; a missing file's message ends with `missing_hint`.
pub fn regular_file(path: &Path, missing_hint: &str) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::data(path, format!("file not found{missing_hint}")),
        _ => Error::io(path, e),
    })?;
    if !meta.is_file() {
        return Err(Error::data(path, "is not a regular file (a directory, device or pipe cannot be read as data)"));
    }
    Ok(meta)
}

/// Everything `r` gives, or an error once it gives more than `limit` bytes (a decompressor
/// whose output would outgrow what its input promised stops there).
pub fn read_at_most(r: impl Read, limit: u64) -> std::result::Result<Vec<u8>, String> {
    let mut out = vec![];
    r.take(limit.saturating_add(1)).read_to_end(&mut out).map_err(|e| format!("cannot be read: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("holds more than the {limit} bytes an input may have"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_oversized_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("gradlab-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.bin");
        std::fs::write(&file, [7u8; 100]).unwrap();
        assert_eq!(bounded(&file, 100, "").unwrap().len(), 100);
        assert!(bounded(&file, 99, "").unwrap_err().to_string().contains("beyond the 99"));
        assert!(bounded(&dir, 1 << 20, "").unwrap_err().to_string().contains("not a regular file"));
        #[cfg(unix)]
        assert!(bounded(Path::new("/dev/zero"), 1 << 20, "").unwrap_err().to_string().contains("not a regular file"));
        assert!(bounded(&dir.join("none"), 10, "; hint").unwrap_err().to_string().contains("file not found; hint"));
        // A stream longer than its limit stops at the limit.
        assert!(read_at_most(std::io::repeat(0).take(1 << 20), 1000).is_err());
        assert_eq!(read_at_most(&[1u8, 2, 3][..], 3).unwrap(), vec![1, 2, 3]);
    }
}
