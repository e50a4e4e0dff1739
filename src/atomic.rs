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

/// The file every output directory gets when prepared, so that `--force` knows an earlier output
/// (and clears only those); outputs of earlier versions are known by their summaries.
pub const OUTPUT_MARK: &str = ".gradlab-output";
const OUTPUT_MARKERS: [&str; 4] = [OUTPUT_MARK, "summary.json", "results.json", "metrics.csv"];

/// Makes `dir` ready for outputs: created if missing; refused if it is a file, or if it holds
/// files already and `force` is not set (so one run never silently mixes with another). With
/// `force`, an earlier gradlab output there is cleared first (no stale file of another run is
/// left beside the new ones); a non-empty directory that is not one is refused even so.
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("--out {}: exists and is not a directory", dir.display())));
    }
    if dir.is_dir() && force {
        let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.peekable();
        if entries.peek().is_some() {
            if !OUTPUT_MARKERS.iter().any(|m| dir.join(m).is_file()) {
                return Err(Error::Usage(format!(
                    "--out {}: holds files but no earlier gradlab output ({}); --force clears only those: choose another directory",
                    dir.display(),
                    OUTPUT_MARKERS.join(", ")
                )));
            }
            for e in entries {
                let p = e.map_err(|e| Error::io(dir, e))?.path();
                let gone =
                    if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                gone.map_err(|e| Error::io(&p, e))?;
            }
        }
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
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mark = dir.join(OUTPUT_MARK);
    if !mark.exists() {
        write_atomic(&mark, b"gradlab wrote this directory; `--force` may clear it for a new run\n")?;
    }
    Ok(())
}

/// `dir` (and its parents) created if missing, whatever it holds: a study's own subdirectory
/// inside an output directory already prepared.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("{}: exists and is not a directory", dir.display())));
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
        let fresh = dir.join("fresh");
        prepare_out_dir(&fresh, false).unwrap();
        assert!(fresh.join(OUTPUT_MARK).is_file());
        std::fs::remove_dir_all(&fresh).unwrap();
        assert!(prepare_out_dir(&dir, false).unwrap_err().to_string().contains("not empty"));
        // Not an earlier output: even --force leaves it alone.
        assert!(prepare_out_dir(&dir, true).unwrap_err().to_string().contains("no earlier gradlab output"));
        assert!(p.is_file());
        assert!(prepare_out_dir(&p, true).unwrap_err().to_string().contains("not a directory"));
        // An earlier output: --force clears it, subdirectories and stale files included.
        write_atomic(&dir.join("summary.json"), b"{}").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        write_atomic(&dir.join("sub/confusion.png"), b"old").unwrap();
        prepare_out_dir(&dir, true).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [OUTPUT_MARK], "only the new mark");
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
