//! Where a series is heading: a least-squares line through (day, value) points, and the
//! day it reaches a limit, with a 95 % prediction band. Pure arithmetic, no store: the
//! capacity forecast (`cybs3 admin usage --forecast`) fits each filesystem's used bytes
//! and each bucket's bytes over the usage history (`usage_history.rs`) with it.
//!
//! Why this model. Storage grows by what is written less what is deleted, which over weeks
//! looks like a line with day-to-day noise; a line is what an operator can check by eye,
//! and its residual standard error `s` says how noisy the days were. The band is the
//! ordinary prediction interval of one future value, `t · s · √(1 + 1/n + (x − x̄)²/Sxx)`:
//! it holds both the days' noise and the slope's own uncertainty, so it widens the
//! further out the crossing is and the fewer days there are. Its upper edge reaches the
//! limit first (the early date); its lower edge reaches it last, or never when the slope
//! could as well be zero (the band is then open-ended). Points are weighted alike: the
//! caller fits a recent window (the forecast takes the last [`WINDOW_DAYS`] days) rather
//! than weighting, so that `n` in the band is the real number of days.

/// Fewest points a line is fitted through: two always lie on one, with no noise to see.
pub const MIN_POINTS: usize = 3;

/// Days of history a forecast fits: long enough to average out weekly cycles, short
/// enough that a change of habit months ago no longer sets today's rate.
pub const WINDOW_DAYS: f64 = 90.0;

/// Farthest a crossing is looked for, in days (a century): past it, "never".
pub const HORIZON_DAYS: f64 = 36_525.0;

/// Student's t at 97.5 % (a two-sided 95 % band) for 1 to 30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// t at 97.5 % for `df` degrees of freedom; past the table, 2.0 (the value near 60, a
/// little wide for more days, never narrow).
fn t975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T975[df - 1],
        _ => 2.0,
    }
}

/// A least-squares line `value = intercept + slope · day`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub points: usize,
    pub intercept: f64,
    /// Per day.
    pub slope: f64,
    /// The residual standard error: how far a day's value typically lies off the line.
    pub sigma: f64,
    mean_x: f64,
    /// Σ(x − x̄)².
    sxx: f64,
}

impl Line {
    /// The line through `points` (day, value); `None` with fewer than [`MIN_POINTS`]
    /// or when they all share one day.
    pub fn fit(points: &[(f64, f64)]) -> Option<Line> {
        let n = points.len();
        if n < MIN_POINTS {
            return None;
        }
        let nf = n as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / nf;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / nf;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        let sse: f64 = points
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        Some(Line {
            points: n,
            intercept,
            slope,
            sigma: (sse / (nf - 2.0)).sqrt(),
            mean_x,
            sxx,
        })
    }

    pub fn at(&self, day: f64) -> f64 {
        self.intercept + self.slope * day
    }

    /// Half the width of the 95 % prediction band of one value on `day`.
    pub fn spread(&self, day: f64) -> f64 {
        let n = self.points as f64;
        t975(self.points - 2)
            * self.sigma
            * (1.0 + 1.0 / n + (day - self.mean_x).powi(2) / self.sxx).sqrt()
    }

    /// The slope's own 95 % interval.
    pub fn slope_band(&self) -> (f64, f64) {
        let half = t975(self.points - 2) * self.sigma / self.sxx.sqrt();
        (self.slope - half, self.slope + half)
    }
}

/// When a rising series reaches a limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Crossing {
    /// Fewer points than [`MIN_POINTS`].
    TooShort { points: usize },
    /// The line is flat or falling.
    NotRising,
    /// The line reaches the limit on `day`; the band's upper edge on `early`, its lower
    /// edge on `late` (`None`: not within [`HORIZON_DAYS`], as when the slope could be 0).
    At {
        day: f64,
        early: f64,
        late: Option<f64>,
    },
    /// The line does not reach the limit within [`HORIZON_DAYS`].
    Beyond,
}

/// Where the line through `points` reaches `limit`, looking from day `from` on (a crossing
/// the line puts in the past is `from`: the series is at its limit now).
pub fn crossing(points: &[(f64, f64)], limit: f64, from: f64) -> Crossing {
    let Some(line) = Line::fit(points) else {
        return Crossing::TooShort {
            points: points.len(),
        };
    };
    if line.slope <= 0.0 {
        return Crossing::NotRising;
    }
    let end = from + HORIZON_DAYS;
    let day = ((limit - line.intercept) / line.slope).max(from);
    if day > end {
        return Crossing::Beyond;
    }
    let upper = |x: f64| line.at(x) + line.spread(x) - limit;
    let lower = |x: f64| line.at(x) - line.spread(x) - limit;
    // The upper edge is at or past the limit on `day` (the line is, and the spread is
    // positive), so its first crossing lies in [from, day].
    let early = match upper(from) >= 0.0 {
        true => from,
        false => first_root(upper, from, day),
    };
    // The lower edge grows at slope − t·s/√Sxx far out: when that is not positive it
    // may never get there.
    let late = (line.slope_band().0 > 0.0 && lower(end) >= 0.0).then(|| match lower(day) >= 0.0 {
        true => day,
        false => first_root(lower, day, end),
    });
    Crossing::At { day, early, late }
}

/// The first `x` in `[lo, hi]` where a function going from negative at `lo` to
/// non-negative at `hi` reaches 0 (bisection to a millionth of a day; both edges of the
/// band are monotonic once past the points, which is where crossings are looked for).
fn first_root(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    while hi - lo > 1e-6 {
        let mid = (lo + hi) / 2.0;
        match f(mid) >= 0.0 {
            true => hi = mid,
            false => lo = mid,
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise of mean 0 and spread about ±`amp`.
    fn noise(i: usize, amp: f64) -> f64 {
        let r = ((i as u64 * 2_654_435_761) % 1000) as f64 / 1000.0;
        (r - 0.5) * 2.0 * amp
    }

    #[test]
    fn an_exact_line_is_found_with_no_spread() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|d| (d as f64, 100.0 + 5.0 * d as f64))
            .collect();
        let l = Line::fit(&pts).unwrap();
        assert!((l.slope - 5.0).abs() < 1e-9 && (l.intercept - 100.0).abs() < 1e-9);
        assert!(l.sigma < 1e-9);
        match crossing(&pts, 200.0, 9.0) {
            Crossing::At { day, early, late } => {
                assert!((day - 20.0).abs() < 1e-6);
                assert!((early - 20.0).abs() < 1e-5 && (late.unwrap() - 20.0).abs() < 1e-5);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn a_noisy_series_crosses_where_its_true_line_does_within_the_band() {
        // True growth: 1 GB a day from 10 GB, limit 100 GB: full on day 90.
        for (days, amp) in [(30, 0.5e9), (60, 2e9), (10, 0.2e9)] {
            let pts: Vec<(f64, f64)> = (0..days)
                .map(|d| (d as f64, 10e9 + 1e9 * d as f64 + noise(d, amp)))
                .collect();
            let Crossing::At { day, early, late } = crossing(&pts, 100e9, days as f64 - 1.0) else {
                panic!("no crossing for {days} days");
            };
            let late = late.unwrap();
            assert!(
                early <= 90.0 && 90.0 <= late,
                "{days}: {early} {day} {late}"
            );
            assert!(early < day && day < late);
        }
    }

    #[test]
    fn the_band_widens_with_fewer_days() {
        let series = |days: usize| -> Vec<(f64, f64)> {
            (0..days)
                .map(|d| (d as f64, 1e6 * d as f64 + noise(d, 2e5)))
                .collect()
        };
        let width = |days: usize| match crossing(&series(days), 50e6, days as f64 - 1.0) {
            Crossing::At { early, late, .. } => late.unwrap_or(f64::INFINITY) - early,
            c => panic!("{c:?}"),
        };
        assert!(width(5) > width(20));
    }

    #[test]
    fn flat_or_shrinking_series_never_fill() {
        let flat: Vec<(f64, f64)> = (0..10).map(|d| (d as f64, 5e9 + noise(d, 1e3))).collect();
        let shrinking: Vec<(f64, f64)> =
            (0..10).map(|d| (d as f64, 5e9 - 1e6 * d as f64)).collect();
        assert_eq!(crossing(&shrinking, 1e10, 9.0), Crossing::NotRising);
        // Flat with noise: a slope of either sign, never a date the band closes on.
        match crossing(&flat, 1e10, 9.0) {
            Crossing::NotRising | Crossing::Beyond | Crossing::At { late: None, .. } => {}
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn too_short_a_history_gives_no_date() {
        let two = [(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(crossing(&two, 10.0, 1.0), Crossing::TooShort { points: 2 });
        assert_eq!(Line::fit(&[(3.0, 1.0), (3.0, 2.0), (3.0, 5.0)]), None);
    }

    #[test]
    fn a_series_past_its_limit_is_full_now() {
        let pts: Vec<(f64, f64)> = (0..5)
            .map(|d| (d as f64, 100.0 + 10.0 * d as f64))
            .collect();
        match crossing(&pts, 120.0, 4.0) {
            Crossing::At { day, early, .. } => assert_eq!((day, early), (4.0, 4.0)),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn a_slow_line_does_not_reach_a_far_limit() {
        let pts: Vec<(f64, f64)> = (0..5).map(|d| (d as f64, d as f64)).collect();
        assert_eq!(crossing(&pts, 1e12, 4.0), Crossing::Beyond);
    }
}
