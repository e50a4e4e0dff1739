//! Names users type: the suggestion at the end of every "unknown name" message. A leaf, used by
//! activations, optimisers, initialisations, the network schema and the presets alike.

/// `"; did you mean `x`?"` when `word` looks like a typo of one of `candidates`, else empty: the
/// tail of every "unknown name" message.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// The candidate with the smallest edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn lev(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, &cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates.iter().map(|c| (lev(word, c), *c)).filter(|(d, _)| *d <= 3).min().map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typo_gets_the_closest_name_and_nonsense_gets_none() {
        assert_eq!(super::did_you_mean("sigmod", &["sigmoid", "tanh"]), "; did you mean `sigmoid`?");
        assert_eq!(super::did_you_mean("completely-else", &["sigmoid", "tanh"]), "");
    }
}

/// `x` for a message: as written for everyday magnitudes, in scientific notation beyond them
/// (`1e300`, not 301 digits).
pub fn number(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || !x.is_finite() || (1e-4..1e6).contains(&a) { format!("{x}") } else { format!("{x:e}") }
}

#[cfg(test)]
mod number_tests {
    #[test]
    fn large_and_small_numbers_are_short() {
        assert_eq!(super::number(1e300), "1e300");
        assert_eq!(super::number(-2.5e-9), "-2.5e-9");
        assert_eq!(super::number(0.1), "0.1");
        assert_eq!(super::number(12345.0), "12345");
        assert_eq!(super::number(f64::NAN), "NaN");
    }
}
