//! Files fetched once into the user's cache directory: `GRADLAB_CACHE`, else
//! `$XDG_CACHE_HOME/gradlab`, else `~/.cache/gradlab`. Each download is checked against its
//! pinned size and SHA-256 before it is kept, and lands whole (written to a temporary file in
//! the same directory, then renamed): an interrupted, truncated or altered download leaves
//! nothing behind, and the next run fetches it again.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file as published: where, how large, and its SHA-256 (lowercase hex).
#[derive(Clone, Copy, Debug)]
pub struct Pinned<'a> {
    pub url: &'a str,
    pub size: u64,
    pub sha256: &'a str,
}

/// The cache directory (not created).
pub fn cache_dir() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("GRADLAB_CACHE") {
        return Ok(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Ok(d.join("gradlab"));
    }
    var("HOME")
        .map(|h| h.join(".cache").join("gradlab"))
        .ok_or_else(|| Error::Usage("no cache directory: set GRADLAB_CACHE (or XDG_CACHE_HOME or HOME)".into()))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `dest` if it is there with the pinned size (checked in full when first fetched), else
/// fetched from `file.url` and checked. Errors name the URL or the path and what went wrong.
pub fn fetch(file: &Pinned, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<PathBuf> {
    if dest.metadata().is_ok_and(|m| m.len() == file.size) {
        // Checked on every use, not trusted by size (11 MB: milliseconds).
        let bytes = std::fs::read(dest).map_err(|e| cache_error(dest, e))?;
        if sha256_hex(&bytes) == file.sha256 {
            return Ok(dest.to_path_buf());
        }
        return Err(Error::data(
            dest,
            format!(
                "this cached download has the pinned size but not the pinned SHA-256 {} (corrupted or replaced): delete it and run again to fetch {} afresh",
                file.sha256, file.url
            ),
        ));
    }
    let dir = dest.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.part-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("download"),
        std::process::id()
    ));
    let result = download_to(file, &tmp, progress).and_then(|()| {
        std::fs::rename(&tmp, dest).map_err(|e| cache_error(dir, e))?;
        Ok(dest.to_path_buf())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn cache_error(dir: &Path, e: std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30) {
        " (not writable: set GRADLAB_CACHE to a writable directory)"
    } else {
        ""
    };
    Error::data(dir, format!("cannot write the download cache: {e}{hint}"))
}

fn download_to(file: &Pinned, tmp: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
    let url = Path::new(file.url);
    let fail = |msg: String| Error::data(url, format!("download failed: {msg}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut resp = agent.get(file.url).call().map_err(|e| fail(e.to_string()))?;
    let mut out = std::fs::File::create(tmp).map_err(|e| cache_error(tmp.parent().unwrap_or(tmp), e))?;
    let mut reader = resp.body_mut().as_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(format!("after {got} of {} bytes: {e}", file.size))),
        };
        got += n as u64;
        if got > file.size {
            return Err(fail(format!("more than the expected {} bytes; not the published file", file.size)));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| cache_error(tmp.parent().unwrap_or(tmp), e))?;
        progress(got, file.size);
    }
    if got != file.size {
        return Err(fail(format!("truncated: {got} of {} bytes arrived", file.size)));
    }
    let sum = hex(&hasher.finalize());
    if sum != file.sha256 {
        return Err(fail(format!(
            "checksum mismatch: SHA-256 {sum}, expected {} (the file was not kept)",
            file.sha256
        )));
    }
    out.sync_all().map_err(|e| cache_error(tmp.parent().unwrap_or(tmp), e))?;
    Ok(())
}
