//! TensorBoard event files, written directly: TFRecord framing (length, masked CRC-32C, data,
//! masked CRC-32C) around `Event` protobufs, declared below with `prost` (the subset of
//! TensorFlow's `event.proto` and `summary.proto` that scalars and histograms need). No
//! TensorFlow dependency; `read_events` is the matching reader the tests use.

use crate::error::{Error, Result};
use prost::Message;
use std::path::Path;

/// `tensorflow.Event` (the fields gradlab writes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: a scalar (`simple_value`) or a histogram (`histo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
}

/// `tensorflow.HistogramProto`: bucket `i` holds the values up to `bucket_limit[i]`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

impl HistogramProto {
    /// Equal-width buckets between the finite values' minimum and maximum (as `np.histogram`).
    pub fn of(values: &[f32], buckets: usize) -> Option<HistogramProto> {
        let v: Vec<f64> = values.iter().map(|&x| x as f64).filter(|x| x.is_finite()).collect();
        let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        if v.is_empty() {
            return None;
        }
        let width = if max > min { (max - min) / buckets as f64 } else { 1.0 };
        let mut bucket = vec![0.0; buckets];
        for &x in &v {
            bucket[(((x - min) / width) as usize).min(buckets - 1)] += 1.0;
        }
        Some(HistogramProto {
            min,
            max,
            num: v.len() as f64,
            sum: v.iter().sum(),
            sum_squares: v.iter().map(|x| x * x).sum(),
            bucket_limit: (1..=buckets).map(|i| min + i as f64 * width).collect(),
            bucket,
        })
    }
}

/// CRC-32C (Castagnoli), from the `crc32c` crate (hardware-accelerated where available).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// TFRecord's masked CRC.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// One event file: scalars and histograms per step, written whole when done.
pub struct EventFile {
    bytes: Vec<u8>,
    wall_time: f64,
}

impl EventFile {
    pub fn new() -> EventFile {
        let wall_time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let mut bytes = vec![];
        let first = Event { wall_time, step: 0, file_version: Some("brain.Event:2".into()), summary: None };
        record(&first.encode_to_vec(), &mut bytes);
        EventFile { bytes, wall_time }
    }

    fn summary(&mut self, step: i64, value: Vec<SummaryValue>) {
        if !value.is_empty() {
            let e = Event { wall_time: self.wall_time, step, file_version: None, summary: Some(Summary { value }) };
            record(&e.encode_to_vec(), &mut self.bytes);
        }
    }

    /// Scalars of one step (non-finite values are skipped: TensorBoard cannot plot them).
    pub fn scalars(&mut self, step: i64, values: &[(&str, f32)]) {
        let value = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(tag, v)| SummaryValue { tag: tag.to_string(), simple_value: Some(*v), histo: None })
            .collect();
        self.summary(step, value);
    }

    /// Histograms of one step, `(tag, values)`, 30 buckets each.
    pub fn histograms(&mut self, step: i64, values: &[(String, &[f32])]) {
        let value = values
            .iter()
            .filter_map(|(tag, v)| {
                HistogramProto::of(v, 30).map(|h| SummaryValue { tag: tag.clone(), simple_value: None, histo: Some(h) })
            })
            .collect();
        self.summary(step, value);
    }

    /// Writes `dir/events.out.tfevents.<time>.gradlab` (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = format!("events.out.tfevents.{}.gradlab", self.wall_time as u64);
        crate::atomic::write_atomic(&dir.join(name), &self.bytes)
    }
}

impl Default for EventFile {
    fn default() -> Self {
        EventFile::new()
    }
}

/// Every run's metrics as TensorBoard scalars: one run directory per setting and seed
/// (`<dir>/<setting>/seed-<s>`), one tag per metric column, step = iteration; with probes, also
/// `probe/<layer>/<quantity>` scalars and `hist/<layer>/<kind>` histograms (at the first probe
/// and the last), for TensorBoard's Histograms and Distributions dashboards; with per-sample
/// measures, `samples/<measure>` scalars (the mean over samples; unforgettable as a count) at
/// the last iteration, EL2N and GraNd at their iterations, and `samples_hist/<measure>`
/// histograms over the training samples.
pub fn write_runs(dir: &Path, runs: &[crate::record::Run]) -> Result<()> {
    for run in runs {
        for (s, (seed, rows)) in run.seeds.iter().zip(&run.rows).enumerate() {
            let mut f = EventFile::new();
            for (row, &it) in rows.chunks_exact(run.columns.len()).zip(&run.at[s]) {
                let values: Vec<(&str, f32)> =
                    run.columns.iter().map(String::as_str).zip(row.iter().copied()).collect();
                f.scalars(it as i64, &values);
            }
            if let Some(p) = &run.probes {
                let tags: Vec<String> = p.keys.iter().map(|(l, q)| format!("probe/{l}/{q}")).collect();
                let mut at = 0;
                while at < p.rows[s].len() {
                    let it = p.rows[s][at].0;
                    let end = at + p.rows[s][at..].iter().take_while(|r| r.0 == it).count();
                    let values: Vec<(&str, f32)> =
                        p.rows[s][at..end].iter().map(|&(_, k, v)| (tags[k as usize].as_str(), v)).collect();
                    f.scalars(it as i64, &values);
                    at = end;
                }
                fn hist<'a>(keys: &[(String, &str)], moment: &'a [Vec<f32>]) -> Vec<(String, &'a [f32])> {
                    keys.iter().zip(moment).map(|((l, k), v)| (format!("hist/{l}/{k}"), v.as_slice())).collect()
                }
                let first_it = p.rows[s].first().map_or(1, |r| r.0 as i64);
                f.histograms(first_it, &hist(&p.hist_keys, &p.first[s]));
                if p.last_iteration[s] as i64 > first_it {
                    f.histograms(p.last_iteration[s] as i64, &hist(&p.hist_keys, &p.last[s]));
                }
            }
            if let Some(r) = run.samples.as_ref().map(|v| &v[s]) {
                let last = run.at[s].last().copied().unwrap_or(1) as i64;
                let n = r.evaluations.len();
                let forgetting: Vec<f32> = (0..n).map(|k| r.forgetting(k) as f32).collect();
                let confidence: Vec<f32> = r.confidence.iter().map(|&v| v as f32).collect();
                let variability: Vec<f32> = r.variability.iter().map(|&v| v as f32).collect();
                let correctness: Vec<f32> = (0..n).map(|k| r.correctness(k) as f32).collect();
                let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() as f32 / n.max(1) as f32;
                let unforgettable = (0..n).filter(|&k| r.ever_correct[k] && r.forgetting_events[k] == 0).count();
                f.scalars(
                    last,
                    &[
                        ("samples/unforgettable", unforgettable as f32),
                        ("samples/forgetting", mean(&forgetting)),
                        ("samples/confidence", mean(&confidence)),
                        ("samples/variability", mean(&variability)),
                        ("samples/correctness", mean(&correctness)),
                    ],
                );
                f.histograms(
                    last,
                    &[
                        ("samples_hist/forgetting".to_string(), forgetting.as_slice()),
                        ("samples_hist/confidence".to_string(), confidence.as_slice()),
                        ("samples_hist/variability".to_string(), variability.as_slice()),
                    ],
                );
                for sc in &r.scored {
                    let (el2n, grand): (Vec<f32>, Vec<f32>) =
                        sc.el2n.iter().zip(&sc.grand).map(|(&a, &b)| (a as f32, b as f32)).unzip();
                    f.scalars(sc.iteration as i64, &[("samples/el2n", mean(&el2n)), ("samples/grand", mean(&grand))]);
                    f.histograms(
                        sc.iteration as i64,
                        &[
                            ("samples_hist/el2n".to_string(), el2n.as_slice()),
                            ("samples_hist/grand".to_string(), grand.as_slice()),
                        ],
                    );
                }
            }
            f.write(&dir.join(&run.setting).join(format!("seed-{seed}")))?;
        }
    }
    Ok(())
}

/// What a record held: a step and its scalars or histograms.
#[derive(Clone, Debug, PartialEq)]
pub enum Logged {
    Scalar(i64, String, f32),
    Histogram(i64, String, HistogramProto),
}

/// Reads an event file back, checking both CRCs of every record; an error says which record
/// is damaged.
pub fn read_events(bytes: &[u8]) -> std::result::Result<Vec<Logged>, String> {
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
        let e = Event::decode(data).map_err(|err| format!("record {n}: not an Event: {err}"))?;
        for v in e.summary.map(|s| s.value).unwrap_or_default() {
            match (v.simple_value, v.histo) {
                (Some(x), _) => out.push(Logged::Scalar(e.step, v.tag, x)),
                (None, Some(h)) => out.push(Logged::Histogram(e.step, v.tag, h)),
                _ => return Err(format!("record {n}: value `{}` holds neither a scalar nor a histogram", v.tag)),
            }
        }
        at += 16 + len;
        n += 1;
    }
    Ok(out)
}

/// The scalars of an event file: `(step, tag, value)`.
pub fn read_scalars(bytes: &[u8]) -> std::result::Result<Vec<(i64, String, f32)>, String> {
    Ok(read_events(bytes)?
        .into_iter()
        .filter_map(|l| match l {
            Logged::Scalar(s, t, v) => Some((s, t, v)),
            Logged::Histogram(..) => None,
        })
        .collect())
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
    fn written_scalars_and_histograms_read_back_and_damage_is_detected() {
        let mut f = EventFile::new();
        f.scalars(1, &[("loss", 0.5), ("accuracy", 0.25)]);
        f.scalars(2, &[("loss", 0.375), ("skip", f32::NAN)]);
        let values = [0.0f32, 1.0, 1.0, 3.0];
        f.histograms(2, &[("hist/w".to_string(), &values[..])]);
        let got = read_scalars(&f.bytes).unwrap();
        assert_eq!(got, vec![(1, "loss".into(), 0.5), (1, "accuracy".into(), 0.25), (2, "loss".into(), 0.375)]);
        let hists: Vec<Logged> =
            read_events(&f.bytes).unwrap().into_iter().filter(|l| matches!(l, Logged::Histogram(..))).collect();
        let Logged::Histogram(step, tag, h) = &hists[0] else { unreachable!() };
        assert_eq!(
            (*step, tag.as_str(), h.num, h.sum, h.sum_squares, h.min, h.max),
            (2, "hist/w", 4.0, 5.0, 11.0, 0.0, 3.0)
        );
        assert_eq!(h.bucket.len(), 30);
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
        assert_eq!((h.bucket[0], h.bucket[10], h.bucket[29]), (1.0, 2.0, 1.0));
        assert_eq!(*h.bucket_limit.last().unwrap(), 3.0);
        let mut bad = f.bytes.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert!(read_events(&bad).unwrap_err().contains("CRC mismatch"));
    }
}
