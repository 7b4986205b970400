//! Timed runs of many operations: the wall time and each operation's own, and the median
//! of repeated measurements.

use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a run of operations took: the wall time and each operation's own time.
#[derive(Default)]
pub(crate) struct Timing {
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

impl Timing {
    /// Another run of the same operations counted in with this one.
    pub(crate) fn add(&mut self, other: Timing) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        match l.len() {
            0 => 0.0,
            n => {
                let i = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
                l[i].as_secs_f64() * 1e3
            }
        }
    }
}

/// Run `op(0..ops)` on `threads` threads, each taking the next index from a shared counter.
pub(crate) fn parallel(
    threads: usize,
    ops: usize,
    op: impl Fn(usize) -> Result<()> + Sync,
) -> Result<Timing> {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Vec<Duration>> {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ops {
                            return Ok(lat);
                        }
                        let start = Instant::now();
                        op(i)?;
                        lat.push(start.elapsed());
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(Timing {
        elapsed: t.elapsed(),
        latencies: per_thread.concat(),
    })
}

/// The middle value of `v`, or the mean of the middle two of an even count; `v` must not
/// be empty.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let half = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[half - 1] + v[half]) / 2.0
    } else {
        v[half]
    }
}
