//! The IDX format of MNIST and its kin (gzip-compressed or not): a magic number (two zero
//! bytes, a type code, the number of dimensions), the dimensions as big-endian u32, then the
//! values row-major. Only unsigned bytes (type 0x08) are read: every published set uses them.

use crate::error::{Error, Result};
use std::path::Path;

/// An IDX array of bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads `path` (`.gz` decompressed).
pub fn read(path: &Path) -> Result<Idx> {
    use super::read::{MAX_ARRAY_BYTES, bounded, read_at_most};
    let raw = bounded(path, MAX_ARRAY_BYTES, "")?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        // Decompressed no further than an input may hold: a small gzip cannot become gigabytes.
        read_at_most(flate2::read::GzDecoder::new(&raw[..]), MAX_ARRAY_BYTES)
            .map_err(|m| Error::data(path, format!("gzip content {m}")))?
    } else {
        raw
    };
    parse(&bytes).map_err(|m| Error::data(path, m))
}

pub fn parse(b: &[u8]) -> std::result::Result<Idx, String> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err("not an IDX file (its first two bytes must be zero)".into());
    }
    if b[2] != 0x08 {
        return Err(format!("IDX type code 0x{:02x} is not supported (unsigned bytes, 0x08, are)", b[2]));
    }
    let ndim = b[3] as usize;
    if ndim == 0 || b.len() < 4 + 4 * ndim {
        return Err(format!("IDX header of {ndim} dimension(s) is incomplete ({} bytes)", b.len()));
    }
    let shape: Vec<usize> =
        (0..ndim).map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize).collect();
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("IDX dimensions overflow")?;
    let body = &b[4 + 4 * ndim..];
    if body.len() != count {
        return Err(format!("IDX header says {shape:?} ({count} values) but {} bytes follow", body.len()));
    }
    Ok(Idx { shape, data: body.to_vec() })
}

/// IDX bytes of `shape` and `data` (for tests and for writing small sets).
pub fn to_bytes(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, shape.len() as u8];
    for &d in shape {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
