//! Outputs land whole: each file is written beside its destination under a temporary name,
//! flushed, then renamed over it, so a killed process never leaves a truncated file.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The temporary a file is written under: hidden, beside it, named after it and this process.
fn temporary(path: &Path) -> Result<std::path::PathBuf> {
    let file_name = path.file_name().ok_or_else(|| Error::Usage(format!("{} is not a file path", path.display())))?;
    Ok(path.with_file_name(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id())))
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary(path)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io(path, e))
}

/// A file written as a stream and landed whole by [`AtomicFile::finish`]: for outputs too big
/// to build in memory first (metrics.csv of a thousand seeds). Dropped unfinished (an error,
/// a panic), the temporary is removed and the destination untouched.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let tmp = temporary(path)?;
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        Ok(AtomicFile { path: path.to_path_buf(), tmp, out: Some(std::io::BufWriter::with_capacity(1 << 20, f)) })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("not finished");
        out.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes, syncs and renames over the destination.
    pub fn finish(mut self) -> Result<()> {
        let out = self.out.take().expect("finished once");
        let result = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|_| std::fs::rename(&self.tmp, &self.path));
        result.map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Makes `dir` ready for outputs: created if missing; refused if it is a file, or if it holds
/// files already and `force` is not set (so one run never silently mixes with another).
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("--out {}: exists and is not a directory", dir.display())));
    }
    if dir.is_dir() && !force {
        let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        if entries.next().is_some() {
            return Err(Error::Usage(format!(
                "--out {}: directory is not empty; choose another or pass --force to overwrite",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("gradlab-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(prepare_out_dir(&dir, false).unwrap_err().to_string().contains("not empty"));
        prepare_out_dir(&dir, true).unwrap();
        assert!(prepare_out_dir(&p, true).unwrap_err().to_string().contains("not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_streamed_file_lands_only_when_finished() {
        let dir = std::env::temp_dir().join(format!("gradlab-atomic-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big.csv");
        write_atomic(&p, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write(b"half").unwrap(); // dropped unfinished: as if an error happened
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write(b"new, ").unwrap();
        f.write(b"whole").unwrap();
        f.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new, whole");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
