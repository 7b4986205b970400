//! What is usual for one user, key or bucket: per measure (writes, destructive changes,
//! incompressible overwrites, bytes read), the count in a window, learned online as an
//! exponentially weighted mean and variance, once for each hour of the day and once
//! over all hours.
//!
//! The hour's own figures are used once it has seen enough windows (a user's nights are
//! quieter than their days), the all-hours ones before that. A window is "far above"
//! its baseline when it passes every one of three bars, each easy to explain: an
//! absolute floor (a quiet user starting work is not an attack), the mean plus
//! [`SIGMAS`] standard deviations (what the user's own variation allows), and
//! [`TIMES`] times the mean (a heavy user's bursts stay in proportion).

use serde::{Deserialize, Serialize};

/// The measures kept per subject, in this order in every array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Objects written (PUT, POST, completed uploads).
    Writes = 0,
    /// Objects overwritten or deleted: what ransomware does to files.
    Destructive = 1,
    /// Overwrites whose new bytes look incompressible (sampled entropy).
    Incompressible = 2,
    /// Bytes read by GET.
    ReadBytes = 3,
}

pub const MEASURES: usize = 4;

impl Measure {
    pub const ALL: [Measure; MEASURES] = [
        Measure::Writes,
        Measure::Destructive,
        Measure::Incompressible,
        Measure::ReadBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Writes => "writes",
            Measure::Destructive => "overwrites and deletes",
            Measure::Incompressible => "incompressible overwrites",
            Measure::ReadBytes => "bytes read",
        }
    }
}

/// How fast an hour's figures follow new windows: each window weighs 5 %, so about the
/// last 20 windows of that hour (a third of it on one day) make the figure.
const HOUR_ALPHA: f64 = 0.05;
/// The all-hours figures move slower: about the last 100 windows.
const ALL_ALPHA: f64 = 0.01;
/// Windows an hour must have seen before its own figures are trusted.
const HOUR_MATURE: u32 = 30;
/// How many standard deviations above the mean a window must be.
pub const SIGMAS: f64 = 6.0;
/// How many times the mean a window must be.
pub const TIMES: f64 = 4.0;

/// An exponentially weighted mean and variance (West's incremental form).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    pub mean: f64,
    pub var: f64,
    /// Windows seen (saturating): whether the figure can be trusted yet.
    pub n: u32,
}

impl Ewma {
    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.var = (1.0 - alpha) * (self.var + diff * incr);
        }
        self.n = self.n.saturating_add(1);
    }

    pub fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

/// One subject's baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// `hours[h][m]`: measure `m` in the windows of hour `h` of the day.
    pub hours: Vec<[Ewma; MEASURES]>,
    pub all: [Ewma; MEASURES],
}

/// The usual for one measure in one hour, and the bar a window must pass to be unusual.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usual {
    pub mean: f64,
    pub sd: f64,
    /// Whether it is the hour's own figure (else the all-hours one).
    pub hourly: bool,
    /// How many windows the figure has learned from.
    pub windows: u32,
}

impl Usual {
    /// The count a window must exceed to be far above this baseline.
    pub fn limit(&self, floor: f64) -> f64 {
        floor
            .max(self.mean + SIGMAS * self.sd)
            .max(TIMES * self.mean)
    }
}

impl Baseline {
    /// Learn one finished window of `hour` (0–23).
    pub fn learn(&mut self, hour: usize, counts: &[f64; MEASURES]) {
        if self.hours.len() < 24 {
            self.hours.resize(24, [Ewma::default(); MEASURES]);
        }
        for (m, &x) in counts.iter().enumerate() {
            self.hours[hour % 24][m].update(x, HOUR_ALPHA);
            self.all[m].update(x, ALL_ALPHA);
        }
    }

    /// What is usual for `m` in `hour`.
    pub fn usual(&self, hour: usize, m: Measure) -> Usual {
        let hourly = self.hours.get(hour % 24).map(|h| h[m as usize]);
        let (e, is_hour) = match hourly {
            Some(e) if e.n >= HOUR_MATURE => (e, true),
            _ => (self.all[m as usize], false),
        };
        Usual {
            mean: e.mean,
            sd: e.sd(),
            hourly: is_hour,
            windows: e.n,
        }
    }

    /// Whether nothing was ever learned (a subject seen for the first time).
    pub fn is_empty(&self) -> bool {
        self.all.iter().all(|e| e.n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_and_variance_follow_a_steady_series() {
        let mut e = Ewma::default();
        for i in 0..2000 {
            e.update(if i % 2 == 0 { 8.0 } else { 12.0 }, 0.05);
        }
        assert!((e.mean - 10.0).abs() < 0.2, "{e:?}");
        assert!((e.sd() - 2.0).abs() < 0.2, "{e:?}");
    }

    #[test]
    fn an_immature_hour_falls_back_to_all_hours_and_a_mature_one_is_its_own() {
        let mut b = Baseline::default();
        for _ in 0..40 {
            b.learn(3, &[20.0, 0.0, 0.0, 0.0]);
        }
        for _ in 0..10 {
            b.learn(9, &[2.0, 0.0, 0.0, 0.0]);
        }
        let h3 = b.usual(3, Measure::Writes);
        assert!(h3.hourly && (h3.mean - 20.0).abs() < 0.01);
        let h9 = b.usual(9, Measure::Writes);
        assert!(!h9.hourly && h9.windows == 50);
    }

    #[test]
    fn the_limit_is_the_highest_of_its_three_bars() {
        let quiet = Usual {
            mean: 0.1,
            sd: 0.3,
            hourly: true,
            windows: 100,
        };
        assert_eq!(quiet.limit(20.0), 20.0);
        let busy = Usual {
            mean: 100.0,
            sd: 10.0,
            hourly: true,
            windows: 100,
        };
        assert_eq!(busy.limit(20.0), 400.0);
        let erratic = Usual {
            mean: 10.0,
            sd: 30.0,
            hourly: true,
            windows: 100,
        };
        assert_eq!(erratic.limit(20.0), 190.0);
    }
}
