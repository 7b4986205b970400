//! `cybs3 admin usage --forecast`: how fast each pool and bucket grows, the date each
//! pool fills with a 95 % band, and what would postpone it.
//!
//! The server sends the usage history (one record per usage day:
//! `engine/src/usage_history.rs`), today's totals, the counters and where each storage
//! class is kept; this side fits and prints. A pool fills when the first of its
//! filesystems does: each filesystem's used bytes over the last `engine::WINDOW_DAYS`
//! days of records get a least-squares line (`engine/src/trend.rs`), and the date is where
//! the line meets the filesystem's size, the band where the 95 % prediction band does.
//! Days are the server's usage day (its lifecycle day), so the lifecycle rules suggested
//! count in the same days.
//!
//! Suggestions, for a pool that fills: rules over the data kept on it (the classes bound
//! to it, or every class on a store of one pool, where nothing else can hold them), sized
//! from the counters: expiring noncurrent versions after [`RULE_DAYS`] days frees every
//! noncurrent version there is today within that many days; moving current objects older
//! than [`RULE_DAYS`] days to a class kept elsewhere frees what is that old today. Freeing
//! F bytes once postpones the date by F over the growth per day, at least: the rule goes
//! on freeing as data ages. And a pool to add, sized for a year of growth.

use crate::server::human_bytes;
use engine::{Crossing, Store, Tier, Usage, UsageDay, WINDOW_DAYS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The age, in usage days, the suggested rules act at.
pub const RULE_DAYS: u64 = 30;

/// Days of growth the suggested new pool holds.
const POOL_DAYS: f64 = 365.0;

/// Most rule suggestions shown per pool, largest first.
const MAX_RULES: usize = 5;

/// What the server sends for a forecast.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inputs {
    history: Vec<UsageDay>,
    today: UsageDay,
    placement: Vec<Placement>,
}

/// Where a storage class is kept.
#[derive(Debug, Serialize, Deserialize)]
struct Placement {
    class: String,
    /// `None`: a remote tier, which takes no space on this store.
    pool: Option<String>,
}

impl Inputs {
    /// Gathered on the server's side.
    pub fn gather(store: &Store) -> engine::Result<Inputs> {
        Ok(Inputs {
            history: store.usage_history()?,
            today: store.usage_today()?,
            placement: store
                .storage_classes()
                .into_iter()
                .map(|c| Placement {
                    pool: match c.tier {
                        Tier::Pool(p) => Some(p),
                        Tier::Remote(_) => None,
                    },
                    class: c.class,
                })
                .collect(),
        })
    }
}

/// When a pool fills, or why no date is given.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Fill {
    /// Fewer days of history than a line needs.
    NotEnoughHistory {
        days: usize,
        need: usize,
    },
    NotFilling,
    /// Later than `engine::HORIZON_DAYS`.
    NotWithinACentury,
    Fills {
        /// Unix seconds; the band's edges likewise (`late_at`: `None` when the band
        /// never closes, as when the growth could be none).
        at: u64,
        early_at: u64,
        late_at: Option<u64>,
        /// From now, in usage days.
        in_days: f64,
        early_in_days: f64,
        late_in_days: Option<f64>,
        /// The drive naming the filesystem that fills first.
        filesystem: String,
    },
}

#[derive(Debug, Serialize)]
struct PoolForecast {
    name: String,
    used_bytes: u64,
    capacity_bytes: u64,
    /// Used bytes per usage day, summed over its filesystems (`None` before a line).
    growth_per_day: Option<f64>,
    /// Days of history the line went through.
    days: usize,
    fill: Fill,
}

#[derive(Debug, Serialize)]
struct BucketGrowth {
    name: String,
    objects: i64,
    bytes: i64,
    raw_bytes: i64,
    /// Logical and raw bytes per usage day (`None` before a line).
    growth_per_day: Option<f64>,
    raw_growth_per_day: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    ExpireNoncurrent,
    Transition,
    AddPool,
}

#[derive(Debug, Serialize)]
struct Suggestion {
    kind: Kind,
    pool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    /// Raw bytes freed on the pool (for `add_pool`: the size to add).
    bytes: u64,
    /// Days the fill date moves out, at least.
    postpones_days: f64,
    text: String,
    /// A PutBucketLifecycleConfiguration document, for rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct Forecast {
    /// When it was made (Unix seconds): the `in_days` of the fill dates count from it.
    as_of: f64,
    day_secs: u64,
    /// Records in the history, and the most a fit goes back.
    history_days: usize,
    window_days: f64,
    pools: Vec<PoolForecast>,
    buckets: Vec<BucketGrowth>,
    suggestions: Vec<Suggestion>,
}

/// Seconds since the epoch now.
fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The forecast from the server's inputs and counters, now, for every bucket or one.
pub fn forecast(inputs: &Inputs, usage: &Usage, bucket: Option<&str>) -> Forecast {
    let day_secs = inputs.today.day_secs.max(1);
    let in_days = |ns: u64| ns as f64 / 1e9 / day_secs as f64;
    let as_of = now_secs();
    let now = as_of / day_secs as f64;
    // The window: records at most WINDOW_DAYS older than the newest.
    let newest = inputs.history.last().map_or(0.0, |d| in_days(d.at_ns));
    let window: Vec<&UsageDay> = inputs
        .history
        .iter()
        .filter(|d| newest - in_days(d.at_ns) <= WINDOW_DAYS)
        .collect();
    let series = |value: &dyn Fn(&UsageDay) -> Option<f64>| -> Vec<(f64, f64)> {
        window
            .iter()
            .filter_map(|d| value(d).map(|v| (in_days(d.at_ns), v)))
            .collect()
    };
    let pools: Vec<PoolForecast> = inputs
        .today
        .pools
        .iter()
        .map(|pool| {
            let mut fits = Vec::new();
            for fs in &pool.filesystems {
                let points = series(&|d| {
                    d.pools
                        .iter()
                        .find(|p| p.name == pool.name)
                        .and_then(|p| p.filesystems.iter().find(|f| f.drive == fs.drive))
                        .map(|f| f.used_bytes as f64)
                });
                let crossing = engine::crossing(&points, fs.total_bytes as f64, now);
                fits.push((fs, engine::Line::fit(&points), crossing, points.len()));
            }
            let to_secs = |day: f64| (day * day_secs as f64).round() as u64;
            let days = fits.iter().map(|f| f.3).min().unwrap_or(0);
            let first = fits
                .iter()
                .filter_map(|(fs, _, c, _)| match c {
                    Crossing::At { day, early, late } => Some((*day, *early, *late, fs)),
                    _ => None,
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let fill = match first {
                _ if days < engine::MIN_POINTS => Fill::NotEnoughHistory {
                    days,
                    need: engine::MIN_POINTS,
                },
                Some((day, early, late, fs)) => Fill::Fills {
                    at: to_secs(day),
                    early_at: to_secs(early),
                    late_at: late.map(to_secs),
                    in_days: day - now,
                    early_in_days: early - now,
                    late_in_days: late.map(|l| l - now),
                    filesystem: fs.drive.clone(),
                },
                None if fits.iter().any(|f| matches!(f.2, Crossing::Beyond)) => {
                    Fill::NotWithinACentury
                }
                None => Fill::NotFilling,
            };
            PoolForecast {
                name: pool.name.clone(),
                used_bytes: pool.used_bytes(),
                capacity_bytes: pool.total_bytes(),
                growth_per_day: fits
                    .iter()
                    .map(|f| f.1.map(|l| l.slope))
                    .sum::<Option<f64>>()
                    .filter(|_| !fits.is_empty()),
                days,
                fill,
            }
        })
        .collect();
    let buckets = inputs
        .today
        .buckets
        .iter()
        .filter(|b| bucket.is_none_or(|only| b.name == only))
        .map(|b| {
            let slope = |f: fn(&engine::BucketDay) -> i64| {
                let points = series(&|d| {
                    let found = d.buckets.iter().find(|x| x.name == b.name);
                    // A bucket absent from a day's record held nothing that day.
                    Some(found.map_or(0.0, |x| f(x) as f64))
                });
                engine::Line::fit(&points).map(|l| l.slope)
            };
            BucketGrowth {
                name: b.name.clone(),
                objects: b.objects,
                bytes: b.bytes,
                raw_bytes: b.raw_bytes,
                growth_per_day: slope(|x| x.bytes),
                raw_growth_per_day: slope(|x| x.raw_bytes),
            }
        })
        .collect();
    let suggestions = suggest(inputs, usage, &pools, bucket);
    Forecast {
        as_of,
        day_secs,
        history_days: inputs.history.len(),
        window_days: WINDOW_DAYS,
        pools,
        buckets,
        suggestions,
    }
}

/// Rules and pools that would postpone the fill date of each pool that fills.
fn suggest(
    inputs: &Inputs,
    usage: &Usage,
    pools: &[PoolForecast],
    bucket: Option<&str>,
) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let one_pool = inputs.today.pools.len() == 1;
    for p in pools {
        let (Fill::Fills { in_days, .. }, Some(growth)) = (&p.fill, p.growth_per_day) else {
            continue;
        };
        if growth <= 0.0 {
            continue;
        }
        // Classes whose data this pool holds.
        let here = |class: &str| match inputs.placement.iter().find(|c| c.class == class) {
            Some(c) => c.pool.as_deref() == Some(p.name.as_str()),
            None => one_pool,
        };
        // A class kept elsewhere, to move data to: a remote tier, or another pool that
        // does not fill before this one.
        let elsewhere =
            inputs
                .placement
                .iter()
                .filter(|c| match &c.pool {
                    None => true,
                    Some(other) => other != &p.name
                        && pools.iter().find(|q| &q.name == other).is_some_and(
                            |q| !matches!(&q.fill, Fill::Fills { in_days: d, .. } if d <= in_days),
                        ),
                })
                .map(|c| c.class.clone())
                .next();
        // Per bucket: noncurrent raw bytes, and current raw bytes RULE_DAYS old or more.
        let mut by_bucket: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for r in usage
            .rows
            .iter()
            .filter(|r| here(&r.class) && bucket.is_none_or(|b| r.bucket == b))
        {
            let e = by_bucket.entry(r.bucket.as_str()).or_default();
            e.0 += r.tally.version_raw - r.tally.object_raw;
            if usage.today.saturating_sub(r.day) >= RULE_DAYS {
                e.1 += r.tally.object_raw;
            }
        }
        let mut rules = Vec::new();
        for (b, (noncurrent, old)) in by_bucket {
            if noncurrent > 0 {
                let days = noncurrent as f64 / growth;
                rules.push(Suggestion {
                    kind: Kind::ExpireNoncurrent,
                    pool: p.name.clone(),
                    bucket: Some(b.to_string()),
                    bytes: noncurrent as u64,
                    postpones_days: days,
                    text: format!(
                        "a rule on bucket {b} expiring noncurrent versions after {RULE_DAYS} days \
                         frees {} on pool {} within {RULE_DAYS} days and postpones its fill date \
                         by {} days or more",
                        human_bytes(noncurrent as u64),
                        p.name,
                        round1(days)
                    ),
                    rule: Some(serde_json::json!({"Rules": [{
                        "ID": "cybs3-forecast-noncurrent",
                        "Status": "Enabled",
                        "Filter": {},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": RULE_DAYS}
                    }]})),
                });
            }
            if let (true, Some(to)) = (old > 0, &elsewhere) {
                let days = old as f64 / growth;
                rules.push(Suggestion {
                    kind: Kind::Transition,
                    pool: p.name.clone(),
                    bucket: Some(b.to_string()),
                    bytes: old as u64,
                    postpones_days: days,
                    text: format!(
                        "a rule on bucket {b} moving objects older than {RULE_DAYS} days to {to} \
                         frees {} on pool {} and postpones its fill date by {} days or more",
                        human_bytes(old as u64),
                        p.name,
                        round1(days)
                    ),
                    rule: Some(serde_json::json!({"Rules": [{
                        "ID": "cybs3-forecast-transition",
                        "Status": "Enabled",
                        "Filter": {},
                        "Transitions": [{"Days": RULE_DAYS, "StorageClass": to}]
                    }]})),
                });
            }
        }
        rules.sort_by(|a, b| b.postpones_days.total_cmp(&a.postpones_days));
        rules.truncate(MAX_RULES);
        out.extend(rules);
        let size = (growth * POOL_DAYS).ceil() as u64;
        let bound: Vec<&str> = inputs
            .placement
            .iter()
            .filter(|c| c.pool.as_deref() == Some(p.name.as_str()))
            .map(|c| c.class.as_str())
            .collect();
        out.push(Suggestion {
            kind: Kind::AddPool,
            pool: p.name.clone(),
            bucket: None,
            bytes: size,
            postpones_days: POOL_DAYS,
            text: format!(
                "adding a pool of {} raw (`cybs3 admin pool add NAME --drives DIR,…`) holds a year \
                 of pool {}'s growth at the current rate{}",
                human_bytes(size),
                p.name,
                match bound.is_empty() {
                    true => String::new(),
                    false => format!(
                        "; bind {} to it (`cybs3 admin tier add CLASS --pool NAME`), as {} \
                         keeps only what is bound to it",
                        bound.join(", "),
                        p.name
                    ),
                }
            ),
            rule: None,
        });
    }
    out
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A time as the report shows it: the date for real days, the second for short ones.
fn when(secs: u64, day_secs: u64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs as i64) else {
        return format!("@{secs}");
    };
    let f = match day_secs >= engine::DAY_SECS {
        true => time::macros::format_description!("[year]-[month]-[day]"),
        false => {
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")
        }
    };
    t.format(&f).unwrap_or_else(|_| format!("@{secs}"))
}

fn per_day(g: Option<f64>) -> String {
    match g {
        None => "-".into(),
        Some(g) if g < 0.0 => format!("-{}", human_bytes((-g) as u64)),
        Some(g) => format!("+{}", human_bytes(g as u64)),
    }
}

pub fn print(f: &Forecast) {
    println!(
        "capacity forecast from {} days of usage history (days of {} s; a line through the last {} days)",
        f.history_days, f.day_secs, f.window_days
    );
    println!(
        "\n{:<16} {:>12} {:>12} {:>12}  FILLS",
        "POOL", "used", "capacity", "growth/day"
    );
    for p in &f.pools {
        let fill = match &p.fill {
            Fill::NotEnoughHistory { days, need } => {
                format!("not enough history yet ({days} days; need {need})")
            }
            Fill::NotFilling => "not filling at the current rate".into(),
            Fill::NotWithinACentury => "not within a century at the current rate".into(),
            Fill::Fills {
                at,
                early_at,
                late_at,
                in_days,
                early_in_days,
                late_in_days,
                ..
            } => format!(
                "{} (in {} days; 95 %: {} to {}, in {} to {} days)",
                when(*at, f.day_secs),
                round1(*in_days),
                when(*early_at, f.day_secs),
                late_at.map_or("never".into(), |l| when(l, f.day_secs)),
                round1(*early_in_days),
                late_in_days.map_or("∞".into(), |l| round1(l).to_string()),
            ),
        };
        println!(
            "{:<16} {:>12} {:>12} {:>12}  {}",
            p.name,
            human_bytes(p.used_bytes),
            human_bytes(p.capacity_bytes),
            per_day(p.growth_per_day),
            fill
        );
    }
    println!(
        "\n{:<24} {:>10} {:>12} {:>12} {:>12}",
        "BUCKET", "objects", "bytes", "growth/day", "raw/day"
    );
    for b in &f.buckets {
        println!(
            "{:<24} {:>10} {:>12} {:>12} {:>12}",
            b.name,
            b.objects,
            human_bytes(b.bytes.max(0) as u64),
            per_day(b.growth_per_day),
            per_day(b.raw_growth_per_day)
        );
    }
    for s in &f.suggestions {
        println!("\n{}", s.text);
        if let Some(rule) = &s.rule {
            println!("{rule}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{BucketDay, FsDay, PoolDay, Tally, UsageRow};

    const DAY: u64 = 86_400;

    fn day(d: u64, used: u64, bucket_bytes: i64) -> UsageDay {
        UsageDay {
            day: d,
            day_secs: DAY,
            at_ns: d * DAY * 1_000_000_000,
            buckets: vec![BucketDay {
                name: "b".into(),
                objects: 1,
                bytes: bucket_bytes,
                raw_bytes: bucket_bytes * 2,
            }],
            pools: vec![PoolDay {
                name: "main".into(),
                filesystems: vec![FsDay {
                    drive: "/d0".into(),
                    drives: 1,
                    used_bytes: used,
                    total_bytes: 1 << 40,
                }],
            }],
        }
    }

    fn inputs(days: u64, growth: u64) -> Inputs {
        let today = now_secs() as u64 / DAY;
        let first = today + 1 - days;
        let history: Vec<UsageDay> = (first..=today)
            .map(|d| {
                day(
                    d,
                    (d - first) * growth + (1 << 30),
                    (d - first) as i64 * 1000,
                )
            })
            .collect();
        Inputs {
            today: history.last().cloned().unwrap_or_else(|| day(today, 0, 0)),
            history,
            placement: Vec::new(),
        }
    }

    fn usage(noncurrent_raw: i64) -> Usage {
        Usage {
            day_secs: DAY,
            today: now_secs() as u64 / DAY,
            rows: vec![UsageRow {
                bucket: "b".into(),
                class: "STANDARD".into(),
                day: 0,
                tally: Tally {
                    objects: 1,
                    object_raw: 10 << 30,
                    versions: 2,
                    version_raw: (10 << 30) + noncurrent_raw,
                    ..Tally::default()
                },
            }],
        }
    }

    #[test]
    fn a_steady_pool_fills_when_its_line_says_and_rules_postpone_it() {
        // 10 GiB a day on a 1 TiB disk from 1 GiB: full 102.3 days after the first day.
        let f = forecast(&inputs(20, 10 << 30), &usage(20 << 30), None);
        let p = &f.pools[0];
        assert!((p.growth_per_day.unwrap() - (10u64 << 30) as f64).abs() < 1.0);
        let Fill::Fills {
            in_days,
            early_in_days,
            late_in_days,
            ..
        } = p.fill
        else {
            panic!("{:?}", p.fill);
        };
        let expected = ((1u64 << 40) - (1 << 30)) as f64 / (10u64 << 30) as f64 - 19.0;
        // Measured from now, not the day's start: within a day of it.
        assert!((in_days - expected).abs() < 1.0, "{in_days} {expected}");
        assert!(early_in_days <= in_days && in_days <= late_in_days.unwrap());
        assert_eq!(f.buckets[0].growth_per_day.map(|g| g.round()), Some(1000.0));
        // One pool holds everything: its noncurrent 20 GiB postpone the date 2 days; the
        // 10 GiB of current objects have nowhere to go (no other class), so no move.
        let kinds: Vec<&Kind> = f.suggestions.iter().map(|s| &s.kind).collect();
        assert!(
            matches!(kinds[..], [Kind::ExpireNoncurrent, Kind::AddPool]),
            "{kinds:?}"
        );
        assert_eq!(f.suggestions[0].bytes, 20 << 30);
        assert!((f.suggestions[0].postpones_days - 2.0).abs() < 1e-6);
        assert_eq!(f.suggestions[1].bytes, (10u64 << 30) * 365);
    }

    #[test]
    fn a_short_or_flat_history_gives_a_reason_not_a_date() {
        let f = forecast(&inputs(2, 10 << 30), &usage(0), None);
        assert!(matches!(
            f.pools[0].fill,
            Fill::NotEnoughHistory { days: 2, need: 3 }
        ));
        assert!(f.suggestions.is_empty());
        let f = forecast(&inputs(10, 0), &usage(0), None);
        assert!(matches!(f.pools[0].fill, Fill::NotFilling));
    }

    #[test]
    fn objects_move_to_a_class_on_a_pool_that_does_not_fill() {
        let mut i = inputs(20, 10 << 30);
        i.placement = vec![
            Placement {
                class: "STANDARD".into(),
                pool: Some("main".into()),
            },
            Placement {
                class: "GLACIER".into(),
                pool: None,
            },
        ];
        let f = forecast(&i, &usage(0), None);
        let t = &f.suggestions[0];
        assert!(matches!(t.kind, Kind::Transition), "{:?}", f.suggestions);
        assert_eq!(t.bytes, 10 << 30);
        assert!((t.postpones_days - 1.0).abs() < 1e-6);
        let rule = t.rule.as_ref().unwrap();
        assert_eq!(
            rule["Rules"][0]["Transitions"][0]["StorageClass"],
            "GLACIER"
        );
        assert_eq!(rule["Rules"][0]["Transitions"][0]["Days"], RULE_DAYS);
    }
}
