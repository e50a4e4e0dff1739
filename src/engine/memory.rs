//! The memory budget: every tape reserves its buffers against one process-wide budget before
//! allocating them, so a network too large for this machine is a named error (what to shrink)
//! instead of an allocation failure that aborts the process — the command line, `gradlab
//! serve`'s request worker and a Python kernel alike.
//!
//! The budget is `GRADLAB_MEMORY` (bytes, or with a K/M/G suffix, powers of 1024), else half of
//! this machine's memory (`/proc/meminfo`; 8 GiB where that cannot be read). Tapes are counted
//! while they live (a run split over threads counts every part); an optimiser's state is
//! counted with the parameters (two moments each, what Adam keeps).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// Bytes the tapes of this process may hold at once.
pub fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("GRADLAB_MEMORY").ok().and_then(|v| parse_bytes(&v)).unwrap_or_else(|| machine_memory() / 2)
    })
}

/// `"512M"`, `"8G"`, `"1000000"` as bytes (K, M, G, T: powers of 1024); `None` if not a size.
pub fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit() && *c != '.') {
        Some((i, _)) => (&t[..i], t[i..].trim().trim_end_matches(['B', 'b']).trim_end_matches(['i'])),
        None => (t, ""),
    };
    let scale: f64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v: f64 = digits.parse().ok()?;
    let bytes = v * scale;
    (bytes.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// This machine's memory in bytes (Linux), else 16 GiB.
fn machine_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        })
        .unwrap_or(16 << 30)
}

/// Takes `bytes` from the budget, or says how much is left.
pub fn reserve(bytes: usize) -> Result<(), usize> {
    let budget = budget();
    let mut now = RESERVED.load(Ordering::Relaxed);
    loop {
        let Some(after) = now.checked_add(bytes).filter(|&a| a <= budget) else {
            return Err(budget.saturating_sub(now));
        };
        match RESERVED.compare_exchange_weak(now, after, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(seen) => now = seen,
        }
    }
}

/// Returns `bytes` to the budget.
pub fn release(bytes: usize) {
    RESERVED.fetch_sub(bytes, Ordering::AcqRel);
}

/// `bytes` as "1.5 GB" (powers of 1024, as the budget's suffixes).
pub fn human(bytes: f64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v:.0} {}", units[0]) } else { format!("{v:.1} {}", units[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("8GiB"), Some(8 << 30));
        assert_eq!(parse_bytes("1.5K"), Some(1536));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("5X"), None);
    }

    #[test]
    fn a_reservation_beyond_the_budget_is_refused_and_changes_nothing() {
        let before = RESERVED.load(Ordering::SeqCst);
        assert!(reserve(usize::MAX).is_err());
        assert!(reserve(budget() + 1).is_err());
        assert_eq!(RESERVED.load(Ordering::SeqCst), before);
        assert!(reserve(1024).is_ok());
        release(1024);
    }
}
