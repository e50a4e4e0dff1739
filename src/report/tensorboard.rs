//! TensorBoard event files, written directly: TFRecord framing (length, masked CRC-32C, data,
//! masked CRC-32C) around hand-encoded `Event` protobufs carrying scalar summaries. No
//! protobuf or TensorFlow dependency; `read_scalars` is the matching reader the tests use.

use crate::error::{Error, Result};
use std::path::Path;

/// CRC-32C (Castagnoli), bitwise-reflected polynomial 0x82F63B78.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes_field(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// An `Event` with a wall time, a step and either a file version or scalar summary values.
fn event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut e = vec![];
    varint(1 << 3 | 1, &mut e); // wall_time: double
    e.extend_from_slice(&wall_time.to_le_bytes());
    varint(2 << 3, &mut e); // step: int64
    varint(step as u64, &mut e);
    if let Some(v) = file_version {
        bytes_field(3, v.as_bytes(), &mut e);
    }
    if !scalars.is_empty() {
        let mut summary = vec![];
        for (tag, value) in scalars {
            let mut v = vec![];
            bytes_field(1, tag.as_bytes(), &mut v); // tag
            varint(2 << 3 | 5, &mut v); // simple_value: float
            v.extend_from_slice(&value.to_le_bytes());
            bytes_field(1, &v, &mut summary); // Summary.value
        }
        bytes_field(5, &summary, &mut e); // Event.summary
    }
    e
}

fn record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// One event file: scalars per step, written whole when done.
pub struct EventFile {
    bytes: Vec<u8>,
    wall_time: f64,
}

impl EventFile {
    pub fn new() -> EventFile {
        let wall_time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let mut bytes = vec![];
        record(&event(wall_time, 0, Some("brain.Event:2"), &[]), &mut bytes);
        EventFile { bytes, wall_time }
    }

    /// Scalars of one step (non-finite values are skipped: TensorBoard cannot plot them).
    pub fn scalars(&mut self, step: i64, values: &[(&str, f32)]) {
        let finite: Vec<(&str, f32)> = values.iter().copied().filter(|(_, v)| v.is_finite()).collect();
        if !finite.is_empty() {
            record(&event(self.wall_time, step, None, &finite), &mut self.bytes);
        }
    }

    /// Writes `dir/events.out.tfevents.<time>.gradlab` (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = format!("events.out.tfevents.{}.gradlab", self.wall_time as u64);
        crate::report::atomic::write_atomic(&dir.join(name), &self.bytes)
    }
}

impl Default for EventFile {
    fn default() -> Self {
        EventFile::new()
    }
}

/// Every run's metrics as TensorBoard scalars: one run directory per setting and seed
/// (`<dir>/<setting>/seed-<s>`), one tag per metric column, step = iteration.
pub fn write_runs(dir: &Path, runs: &[crate::experiments::train::Run]) -> Result<()> {
    for run in runs {
        for (seed, rows) in run.seeds.iter().zip(&run.rows) {
            let mut f = EventFile::new();
            for (i, row) in rows.chunks_exact(run.columns.len()).enumerate() {
                let values: Vec<(&str, f32)> =
                    run.columns.iter().map(String::as_str).zip(row.iter().copied()).collect();
                f.scalars((1 + i * run.every) as i64, &values);
            }
            f.write(&dir.join(&run.setting).join(format!("seed-{seed}")))?;
        }
    }
    Ok(())
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

/// Reads an event file back: `(step, tag, value)` for every scalar, checking both CRCs of
/// every record. An error says which record is damaged.
pub fn read_scalars(bytes: &[u8]) -> std::result::Result<Vec<(i64, String, f32)>, String> {
    let mut out = vec![];
    let mut at = 0;
    let mut n = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 12).ok_or(format!("record {n}: truncated header"))?;
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
        if u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) != masked_crc(&header[..8]) {
            return Err(format!("record {n}: length CRC mismatch"));
        }
        let data = bytes.get(at + 12..at + 12 + len).ok_or(format!("record {n}: truncated data"))?;
        let crc = bytes.get(at + 12 + len..at + 16 + len).ok_or(format!("record {n}: truncated CRC"))?;
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != masked_crc(data) {
            return Err(format!("record {n}: data CRC mismatch"));
        }
        // Event: step (2), summary (5) → value (1) → tag (1), simple_value (2).
        let (mut i, mut step) = (0, 0i64);
        while i < data.len() {
            let key = read_varint(data, &mut i).ok_or("bad key")?;
            match (key >> 3, key & 7) {
                (_, 0) => {
                    let v = read_varint(data, &mut i).ok_or("bad varint")?;
                    if key >> 3 == 2 {
                        step = v as i64;
                    }
                }
                (_, 1) => i += 8,
                (_, 5) => i += 4,
                (field, 2) => {
                    let len = read_varint(data, &mut i).ok_or("bad length")? as usize;
                    let body = &data[i..i + len];
                    i += len;
                    if field == 5 {
                        let mut j = 0;
                        while j < body.len() {
                            let _key = read_varint(body, &mut j).ok_or("bad summary")?;
                            let vlen = read_varint(body, &mut j).ok_or("bad value")? as usize;
                            let value = &body[j..j + vlen];
                            j += vlen;
                            let (mut k, mut tag, mut x) = (0, String::new(), f32::NAN);
                            while k < value.len() {
                                let vk = read_varint(value, &mut k).ok_or("bad value key")?;
                                match vk {
                                    0x0a => {
                                        let l = read_varint(value, &mut k).ok_or("bad tag")? as usize;
                                        tag = String::from_utf8_lossy(&value[k..k + l]).into_owned();
                                        k += l;
                                    }
                                    0x15 => {
                                        x = f32::from_le_bytes(value[k..k + 4].try_into().expect("4 bytes"));
                                        k += 4;
                                    }
                                    _ => return Err(format!("record {n}: unexpected field {vk}")),
                                }
                            }
                            out.push((step, tag, x));
                        }
                    }
                }
                other => return Err(format!("record {n}: unexpected wire type {other:?}")),
            }
        }
        at += 16 + len;
        n += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C of "123456789" is 0xE3069283 (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn written_scalars_read_back_and_damage_is_detected() {
        let mut f = EventFile::new();
        f.scalars(1, &[("loss", 0.5), ("accuracy", 0.25)]);
        f.scalars(2, &[("loss", 0.375), ("skip", f32::NAN)]);
        let got = read_scalars(&f.bytes).unwrap();
        assert_eq!(got, vec![(1, "loss".into(), 0.5), (1, "accuracy".into(), 0.25), (2, "loss".into(), 0.375)]);
        let mut bad = f.bytes.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert!(read_scalars(&bad).unwrap_err().contains("CRC mismatch"));
    }
}
