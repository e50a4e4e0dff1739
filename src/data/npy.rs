//! Reading NumPy `.npy` files (through `npyz`) with the checks gradlab needs: the dtypes NumPy
//! users commonly write (bool, uint8–uint64, int8–int64, float32, float64; little-endian or
//! single-byte), C order; every failure names the file.

use crate::error::{Error, Result};
use std::path::Path;

/// A C-ordered array converted to f64, with its shape.
#[derive(Debug, Clone)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    /// The file held integers (or booleans): class labels rather than regression targets.
    pub integer: bool,
}

/// The supported dtypes, as `descr` strings, with their item size.
const DTYPES: &[(&str, usize)] = &[
    ("|b1", 1),
    ("|u1", 1),
    ("|i1", 1),
    ("<u2", 2),
    ("<i2", 2),
    ("<u4", 4),
    ("<i4", 4),
    ("<u8", 8),
    ("<i8", 8),
    ("<f4", 4),
    ("<f8", 8),
];
const DTYPE_HELP: &str = "expected bool, uint8–uint64, int8–int64, float32 or float64";

pub fn read_npy(path: &Path) -> Result<NpyArray> {
    read_npy_with_hint(path, "")
}

/// [`read_npy`] for the course's directory layout: a missing file says where to point `--data`.
pub fn read_course_npy(path: &Path) -> Result<NpyArray> {
    read_npy_with_hint(
        path,
        "; check --data points at a directory laid out like the course's (random/, line/, detection/)",
    )
}

fn read_npy_with_hint(path: &Path, hint: &str) -> Result<NpyArray> {
    let bytes = super::read::bounded(path, super::read::MAX_ARRAY_BYTES, hint)?;
    parse_npy(&bytes).map_err(|msg| Error::data(path, msg))
}

/// Parses `.npy` bytes; the error says what is wrong, without the path.
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a NumPy .npy file (bad magic bytes)".into());
    }
    // The header's declared length, checked before npyz allocates for it (found by fuzzing).
    let (start, header_len) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        Some(2 | 3) if bytes.len() >= 12 => {
            (12, u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize)
        }
        Some(v @ (1..=3)) => return Err(format!("bad .npy header: file ends inside the version {v} preamble")),
        Some(v) => return Err(format!("bad .npy header: unknown format version {v}")),
        None => return Err("bad .npy header: file ends inside the preamble".into()),
    };
    if start + header_len > bytes.len() {
        return Err(format!("bad .npy header: it declares {header_len} bytes, the file has {}", bytes.len() - start));
    }
    // A real header is a flat dict (a structured dtype adds two levels): refuse deep nesting,
    // on which npyz's literal parser backtracks for minutes (found by fuzzing).
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    for &c in &bytes[start..start + header_len] {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'{' | b'[' | b'(') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b'}' | b']' | b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > 4 {
        return Err(format!("bad .npy header: brackets nested {deepest} deep; a .npy header is a flat dict"));
    }
    let file = npyz::NpyFile::new(bytes).map_err(|e| format!("bad .npy header: {e}"))?;
    if file.order() == npyz::Order::Fortran {
        return Err("Fortran-ordered array; save it with np.ascontiguousarray(a) first".into());
    }
    let dtype = match file.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => {
            return Err(format!("structured dtype {other:?} is not supported; {DTYPE_HELP}"));
        }
    };
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    // Check what the header promises against what the file holds before allocating for it
    // (a header can claim any shape; found by fuzzing).
    // npyz spells single-byte types with `|` (and bool as `|b1`); the spelling varies by writer.
    let dtype = match dtype.as_str() {
        "<b1" | "b1" | "?" => "|b1".to_string(),
        "<u1" | "u1" => "|u1".to_string(),
        "<i1" | "i1" => "|i1".to_string(),
        d => d.to_string(),
    };
    let item = match DTYPES.iter().find(|(d, _)| *d == dtype) {
        Some(&(_, item)) => item,
        None if dtype.starts_with('>') => {
            return Err(format!("big-endian dtype `{dtype}`; convert with a.astype(a.dtype.newbyteorder('<'))"));
        }
        None => return Err(format!("unsupported dtype `{dtype}`; {DTYPE_HELP}")),
    };
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|n| n.checked_mul(item).is_some())
        .ok_or_else(|| format!("the header's shape {shape:?} is too large"))?;
    if expected * item > bytes.len() {
        return Err(format!(
            "file is truncated: the header promises {expected} values ({} bytes), the file has {}",
            expected * item,
            bytes.len()
        ));
    }
    fn all<T: npyz::Deserialize>(
        file: npyz::NpyFile<&[u8]>,
        expected: usize,
        f: impl Fn(T) -> f64,
    ) -> std::result::Result<Vec<f64>, String> {
        Ok(file.into_vec::<T>().map_err(|e| truncated(e, expected))?.into_iter().map(f).collect())
    }
    let data: Vec<f64> = match dtype.as_str() {
        "|b1" => all::<bool>(file, expected, |v| f64::from(u8::from(v)))?,
        "|u1" => all::<u8>(file, expected, f64::from)?,
        "|i1" => all::<i8>(file, expected, f64::from)?,
        "<u2" => all::<u16>(file, expected, f64::from)?,
        "<i2" => all::<i16>(file, expected, f64::from)?,
        "<u4" => all::<u32>(file, expected, f64::from)?,
        "<i4" => all::<i32>(file, expected, f64::from)?,
        "<u8" => all::<u64>(file, expected, |v| v as f64)?,
        "<i8" => all::<i64>(file, expected, |v| v as f64)?,
        "<f4" => all::<f32>(file, expected, f64::from)?,
        _ => all::<f64>(file, expected, |v| v)?,
    };
    if data.len() != expected {
        return Err(format!("data holds {} values but the header's shape {shape:?} needs {expected}", data.len()));
    }
    Ok(NpyArray { shape, data, integer: !dtype.ends_with("f4") && !dtype.ends_with("f8") })
}

fn truncated(e: std::io::Error, expected: usize) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        format!("file is truncated: the header promises {expected} values")
    } else {
        format!("cannot read the data: {e}")
    }
}

/// Writes a little-endian, C-ordered `.npy` (format 1.0). Used by tests and to export data.
pub fn npy_bytes(shape: &[usize], descr: &str, fortran: bool, payload: &[u8]) -> Vec<u8> {
    let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
    let shape_txt = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape_txt}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn f64_npy(shape: &[usize], data: &[f64]) -> Vec<u8> {
    npy_bytes(shape, "<f8", false, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_supported_dtype() {
        let f8 = f64_npy(&[2, 2], &[1.0, 2.0, 3.0, 4.5]);
        assert_eq!(parse_npy(&f8).unwrap().data, vec![1.0, 2.0, 3.0, 4.5]);
        let i8 = npy_bytes(&[3], "<i8", false, &[1i64, 0, 7].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
        let a = parse_npy(&i8).unwrap();
        assert_eq!((a.shape, a.data), (vec![3], vec![1.0, 0.0, 7.0]));
        let f4 =
            npy_bytes(&[2], "<f4", false, &[0.5f32, -1.0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
        assert_eq!(parse_npy(&f4).unwrap().data, vec![0.5, -1.0]);
        let u1 = npy_bytes(&[3], "|u1", false, &[0, 16, 255]);
        let a = parse_npy(&u1).unwrap();
        assert_eq!((a.data, a.integer), (vec![0.0, 16.0, 255.0], true));
        let b1 = npy_bytes(&[2], "|b1", false, &[1, 0]);
        assert_eq!(parse_npy(&b1).unwrap().data, vec![1.0, 0.0]);
        let i1 = npy_bytes(&[2], "|i1", false, &[0xff, 5]);
        assert_eq!(parse_npy(&i1).unwrap().data, vec![-1.0, 5.0]);
        let i2 = npy_bytes(&[2], "<i2", false, &[0xfe, 0xff, 7, 0]);
        assert_eq!(parse_npy(&i2).unwrap().data, vec![-2.0, 7.0]);
        let u4 = npy_bytes(&[1], "<u4", false, &70000u32.to_le_bytes());
        assert_eq!(parse_npy(&u4).unwrap().data, vec![70000.0]);
        assert!(!parse_npy(&f4).unwrap().integer);
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        let good = f64_npy(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let err = |b: &[u8]| parse_npy(b).unwrap_err();
        assert!(err(b"PK\x03\x04garbage").contains("magic"));
        assert!(err(&good[..good.len() - 8]).contains("truncated"), "{}", err(&good[..good.len() - 8]));
        assert!(err(&npy_bytes(&[2], "<f8", true, &[0u8; 16])).contains("Fortran"));
        assert!(err(&npy_bytes(&[2], ">f8", false, &[0u8; 16])).contains("big-endian"));
        assert!(err(&npy_bytes(&[2], "<c8", false, &[0u8; 16])).contains("unsupported dtype"));
        assert!(err(&npy_bytes(&[2], "<f2", false, &[0u8; 4])).contains("unsupported dtype"));
        let mut bad_header = good.clone();
        bad_header[12..20].copy_from_slice(b"nonsense");
        assert!(err(&bad_header).contains("header"), "{}", err(&bad_header));
    }
}

/// An array named by a data key: `file.npy`; `archive.npz:name` (the array `name` of a NumPy
/// `.npz` archive, as `np.load(archive)[name]`); `table.csv` (every column) or
/// `table.csv:a,b` (the columns named in its header row), numbers only. CSV values that are
/// all whole numbers are read as integers (class labels), as an integer `.npy` would be.
pub fn read_array(spec: &Path) -> Result<NpyArray> {
    let text = spec.to_string_lossy();
    if let Some((file, name)) = split_spec(&text, ".npz:") {
        return read_npz(Path::new(file), name);
    }
    if text.ends_with(".npz") {
        return Err(Error::data(spec, "an .npz archive needs the array's name: `archive.npz:name`"));
    }
    if let Some((file, cols)) = split_spec(&text, ".csv:") {
        return read_csv(Path::new(file), Some(cols));
    }
    if text.ends_with(".csv") {
        return read_csv(spec, None);
    }
    read_npy(spec)
}

/// `("dir/a.npz", "x")` from `"dir/a.npz:x"`.
/// The file a data key names: `dir/a.npz` of `dir/a.npz:x`, `t.csv` of `t.csv:a,b`, else the
/// key itself (what a server checks against its data directories).
pub fn file_of(text: &str) -> &str {
    split_spec(text, ".npz:").or_else(|| split_spec(text, ".csv:")).map_or(text, |(file, _)| file)
}

fn split_spec<'a>(text: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let at = text.rfind(marker)?;
    Some((&text[..at + marker.len() - 1], &text[at + marker.len()..]))
}

fn read_npz(path: &Path, name: &str) -> Result<NpyArray> {
    super::read::regular_file(path, "")?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| Error::data(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let names: Vec<String> = zip.file_names().filter_map(|n| n.strip_suffix(".npy")).map(String::from).collect();
    let mut entry = match zip.by_name(&format!("{name}.npy")) {
        Ok(e) => e,
        Err(e) if names.iter().any(|n| n == name) => {
            // There, but not readable: a compression other than stored and deflate (bzip2, lzma).
            return Err(Error::data(
                path,
                format!(
                    "array `{name}` cannot be read ({e}): only stored or deflate members are, as np.savez and np.savez_compressed write them"
                ),
            ));
        }
        Err(_) => {
            let mut names = names;
            names.sort();
            return Err(Error::data(path, format!("the archive has no array `{name}` (it has {})", names.join(", "))));
        }
    };
    // The member's declared size first, then never more than it (nor than an input may hold):
    // a small archive cannot inflate into gigabytes.
    let limit = entry.size();
    if limit > super::read::MAX_ARRAY_BYTES {
        return Err(Error::data(
            path,
            format!(
                "array `{name}` is {limit} bytes uncompressed, beyond the {} an input may have",
                super::read::MAX_ARRAY_BYTES
            ),
        ));
    }
    let bytes =
        super::read::read_at_most(&mut entry, limit).map_err(|m| Error::data(path, format!("array `{name}` {m}")))?;
    parse_npy(&bytes).map_err(|m| Error::data(path, format!("array `{name}`: {m}")))
}

fn read_csv(path: &Path, columns: Option<&str>) -> Result<NpyArray> {
    let bytes = super::read::bounded(path, super::read::MAX_ARRAY_BYTES, "")?;
    let text = String::from_utf8(bytes).map_err(|_| Error::data(path, "is not UTF-8 text"))?;
    // A byte-order mark (spreadsheets write one) is not part of the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
    let split = |l: &str| l.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect::<Vec<_>>();
    // A first row that is not all numbers is the header.
    let header = match lines.peek() {
        Some((_, l)) if split(l).iter().any(|c| c.parse::<f64>().is_err()) => {
            Some(split(lines.next().expect("peeked").1))
        }
        _ => None,
    };
    let picked: Option<Vec<usize>> = match columns {
        None => None,
        Some(cols) => {
            let Some(h) = &header else {
                return Err(Error::data(path, format!("columns `{cols}` are named but the file has no header row")));
            };
            let mut ix = vec![];
            for c in cols.split(',').map(str::trim) {
                match h.iter().position(|n| n == c) {
                    Some(i) => ix.push(i),
                    None => {
                        return Err(Error::data(path, format!("no column `{c}` (the header has {})", h.join(", "))));
                    }
                }
            }
            Some(ix)
        }
    };
    let (mut data, mut rows, mut width) = (vec![], 0usize, None);
    for (line_no, line) in lines {
        let cells = split(line);
        if let Some(w) = width
            && cells.len() != w
        {
            return Err(Error::data(
                path,
                format!("line {}: {} values, the rows before have {w}", line_no + 1, cells.len()),
            ));
        }
        width = Some(cells.len());
        let take: Vec<usize> = picked.clone().unwrap_or_else(|| (0..cells.len()).collect());
        for i in take {
            let cell =
                cells.get(i).ok_or_else(|| Error::data(path, format!("line {}: no column {}", line_no + 1, i + 1)))?;
            let v: f64 = cell.parse().map_err(|_| {
                Error::data(path, format!("line {}, column {}: `{cell}` is not a number", line_no + 1, i + 1))
            })?;
            data.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::data(path, "no data rows"));
    }
    let cols = data.len() / rows;
    let integer = data.iter().all(|v| v.fract() == 0.0);
    Ok(NpyArray { shape: vec![rows, cols], data, integer })
}
