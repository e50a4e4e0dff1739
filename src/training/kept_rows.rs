//! Row thinning: which evaluated rows a run keeps in `metrics.csv` (every one with `all_rows`).
//! A row no observer keeps is replaced by the next; other observers keep theirs too (held-out
//! measurements on their own grid, sharpness measurements), and each seed's last row stays.

use super::{At, Observer};
use crate::models::Net;
use crate::record::Run;

pub struct KeptRows {
    /// Keep every row.
    pub all: bool,
}

impl Observer for KeptRows {
    fn evaluated(&mut self, _: &Net<f32>, at: &At, _: &mut Run, keep: &mut bool) {
        *keep |= self.all || keep_row(at.row);
    }
}

/// Evaluated rows a run keeps by default (row `i` is iteration `1 + i·every`): the first 64,
/// then 16 per doubling of the row index — log-spaced, ~180 rows for a 10 000-iteration
/// curve, where the early, fast part is seen row by row. Memory and metrics.csv stay small
/// with a thousand seeds; curves.csv's quantiles over seeds are exact at every kept row.
pub fn keep_row(i: usize) -> bool {
    if i < 64 {
        return true;
    }
    let octave = usize::BITS - 1 - i.leading_zeros(); // ⌊log₂ i⌋ ≥ 6
    i.is_multiple_of(1 << (octave - 4))
}
