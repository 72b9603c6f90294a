//! Summaries of measured samples.

/// The median (mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The `q` quantile (0..=1) by nearest rank; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `median (min–max)` with `decimals` digits after the point.
pub fn summary(values: &[f64], decimals: usize) -> String {
    format!(
        "{:.decimals$} ({:.decimals$}–{:.decimals$})",
        median(values),
        min(values),
        max(values)
    )
}

/// A 95% bootstrap interval of `median(a) / median(b)`: both samples
/// resampled with replacement, 2,000 times, the 2.5th and 97.5th
/// percentiles of the ratios (the percentile method). Seeded, so the same
/// samples give the same interval. NaN when either is empty.
pub fn ratio_interval(a: &[f64], b: &[f64]) -> (f64, f64) {
    const RESAMPLES: usize = 2000;
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix64(0x5EED_B007);
    let mut draw = |sample: &[f64]| -> f64 {
        let resampled: Vec<f64> = (0..sample.len())
            .map(|_| sample[rng.below(sample.len())])
            .collect();
        median(&resampled)
    };
    let ratios: Vec<f64> = (0..RESAMPLES).map(|_| draw(a) / draw(b)).collect();
    (quantile(&ratios, 0.025), quantile(&ratios, 0.975))
}

/// A 95% bootstrap interval of `median(a) / median(b)` for samples taken
/// in rounds (`a[round]`), which drift apart more than samples in one
/// round do: rounds are resampled with replacement (a cluster bootstrap),
/// and each draw's median is that of the drawn rounds' samples together.
/// `paired` when both ran in the same rounds (every init in each, in
/// turn): one draw of rounds serves both, so that what a round shares
/// (the machine's load then, a baseline run subtracted from both) stays
/// paired. Draws with no sample are passed over.
pub fn clustered_ratio_interval(a: &[Vec<f64>], b: &[Vec<f64>], paired: bool) -> (f64, f64) {
    const RESAMPLES: usize = 2000;
    if a.iter().all(Vec::is_empty) || b.iter().all(Vec::is_empty) {
        return (f64::NAN, f64::NAN);
    }
    let paired = paired && a.len() == b.len();
    let mut rng = SplitMix64(0x5EED_B007);
    let draw = |rounds: &[Vec<f64>], picks: &[usize]| -> f64 {
        let mut drawn = Vec::new();
        for pick in picks {
            drawn.extend_from_slice(&rounds[*pick]);
        }
        median(&drawn)
    };
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        let picks_a: Vec<usize> = (0..a.len()).map(|_| rng.below(a.len())).collect();
        let picks_b: Vec<usize> = if paired {
            picks_a.clone()
        } else {
            (0..b.len()).map(|_| rng.below(b.len())).collect()
        };
        let ratio = draw(a, &picks_a) / draw(b, &picks_b);
        if ratio.is_finite() {
            ratios.push(ratio);
        }
    }
    (quantile(&ratios, 0.025), quantile(&ratios, 0.975))
}

/// splitmix64: a small, well-mixed generator, enough to resample with.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the modulo bias is nil for samples this size).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(min(&hundred), 1.0);
        assert_eq!(max(&hundred), 100.0);
        assert_eq!(quantile(&hundred, 0.99), 99.0);
        assert_eq!(quantile(&hundred, 0.1), 10.0);
        assert_eq!(summary(&[1.0, 2.0, 4.0], 1), "2.0 (1.0–4.0)");
    }

    #[test]
    fn the_interval_holds_the_ratio_and_narrows_with_samples() {
        // Two samples of the same spread, one twice the other.
        let b: Vec<f64> = (0..400).map(|i| 1.0 + f64::from(i % 20) / 100.0).collect();
        let a: Vec<f64> = b.iter().map(|v| v * 2.0).collect();
        let (low, high) = ratio_interval(&a, &b);
        assert!(low <= 2.0 && 2.0 <= high, "{low} {high}");
        assert!(high - low < 0.1, "{low} {high}");
        let few = ratio_interval(&a[..5], &b[..5]);
        assert!(few.1 - few.0 > high - low, "{few:?}");
        // Equal samples: a tie, and the interval says so.
        let (low, high) = ratio_interval(&b, &b);
        assert!(low < 1.0 && 1.0 < high, "{low} {high}");
        assert!(ratio_interval(&[], &b).0.is_nan());
    }

    #[test]
    fn pairing_by_round_takes_out_what_a_round_shares() {
        // Five rounds whose levels drift by ±20%; within each, a and b
        // have noise of their own, the same spread for both.
        let levels = [0.8, 1.2, 1.0, 0.9, 1.1];
        let noisy = |seed: u64| -> Vec<Vec<f64>> {
            let mut rng = SplitMix64(seed);
            levels
                .iter()
                .map(|level| {
                    (0..40)
                        .map(|_| level * (1.0 + (rng.below(100) as f64) / 1000.0))
                        .collect()
                })
                .collect()
        };
        let (a, mut b) = (noisy(1), noisy(2));
        let paired = clustered_ratio_interval(&a, &b, true);
        let independent = clustered_ratio_interval(&a, &b, false);
        assert!(paired.0 < 1.0 && 1.0 < paired.1, "{paired:?}");
        assert!(
            paired.1 - paired.0 < (independent.1 - independent.0) / 2.0,
            "{paired:?} {independent:?}"
        );
        // A round with no sample: its draws are passed over, not NaN.
        b[0].clear();
        let with_empty = clustered_ratio_interval(&a, &b, true);
        assert!(
            with_empty.0.is_finite() && with_empty.1.is_finite(),
            "{with_empty:?}"
        );
    }

    #[test]
    fn rounds_that_drift_widen_the_interval() {
        // One sample per round: the plain bootstrap's interval.
        let b: Vec<f64> = (0..40).map(|i| 1.0 + f64::from(i % 20) / 100.0).collect();
        let a: Vec<f64> = b.iter().map(|v| v * 2.0).collect();
        let single = |v: &[f64]| v.iter().map(|x| vec![*x]).collect::<Vec<_>>();
        // Paired by round: a is b doubled in every round, so every draw
        // gives exactly 2, where unpaired draws spread around it.
        let (low, high) = clustered_ratio_interval(&single(&a), &single(&b), true);
        assert!(
            (low - 2.0).abs() < 1e-9 && (high - 2.0).abs() < 1e-9,
            "{low} {high}"
        );
        let unpaired = clustered_ratio_interval(&single(&a), &single(&b), false);
        assert!(unpaired.1 - unpaired.0 > 0.01, "{unpaired:?}");
        // Five rounds of 100 whose levels drift by ±20%: pooled, the
        // 500 samples look precise; by round, they are five.
        let rounds = |scale: f64| -> Vec<Vec<f64>> {
            [0.8, 1.2, 1.0, 0.9, 1.1]
                .iter()
                .map(|level| {
                    (0..100)
                        .map(|i| scale * level * (1.0 + f64::from(i % 10) / 1000.0))
                        .collect()
                })
                .collect()
        };
        // Independent rounds, so that the drift shows.
        let (a, b) = (rounds(1.0), rounds(1.0));
        let pooled = ratio_interval(&a.concat(), &b.concat());
        let (low, high) = clustered_ratio_interval(&a, &b, false);
        assert!(low < 1.0 && 1.0 < high, "{low} {high}");
        assert!(
            high - low > 2.0 * (pooled.1 - pooled.0),
            "{low} {high} {pooled:?}"
        );
    }
}
