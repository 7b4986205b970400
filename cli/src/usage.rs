//! `cybs3 admin usage`: what the store holds and what it costs, asked of the running
//! server (`GET /usage` on the management socket).
//!
//! The server answers from the engine's counters (exact, live: `Store::usage`) and the
//! last usage pass (prefixes and hot/warm/cold, with its time: `Store::usage_snapshot`),
//! or a pass run now (`--rescan`). This side prices it (`prices.rs`) and prints it.
//! Ages are in the server's lifecycle day (`--lifecycle-day-secs`), the day the
//! lifecycle rules it suggests count in. `--forecast` shows growth and fill dates instead
//! (`forecast.rs`), from the usage history the server keeps.

use crate::admin;
use crate::forecast;
use crate::iam::DataArg;
use crate::prices::{self, Prices, Saving};
use crate::server::{human_bytes, store_dir};
use anyhow::{bail, Result};
use engine::{Tally, Usage, UsageSnapshot, BANDS};
use hyper::Method;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// Only this bucket
    #[arg(long)]
    bucket: Option<String>,
    /// Prefixes shown to this many segments (1 to 3)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    prefix_depth: u8,
    /// Prices per GiB-month by storage class (JSON or .toml), over AWS us-east-1's
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Run a usage pass now (prefixes, hot/warm/cold) instead of showing the last one
    #[arg(long)]
    rescan: bool,
    /// Growth per pool and bucket, the date each pool fills, and what would postpone it
    #[arg(long)]
    forecast: bool,
    #[arg(long)]
    json: bool,
}

/// A `GET /usage` call: `bucket=NAME`, `rescan=1`, `forecast=1`.
#[derive(Debug, Default)]
pub struct Ask {
    pub bucket: Option<String>,
    rescan: bool,
    forecast: bool,
}

impl Ask {
    pub fn from_query(query: &str) -> Ask {
        let mut ask = Ask::default();
        // Bucket names need no escaping: letters, digits, dots and dashes.
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("bucket", v)) => ask.bucket = Some(v.to_string()),
                Some(("rescan", v)) => ask.rescan = v == "1",
                Some(("forecast", v)) => ask.forecast = v == "1",
                _ => {}
            }
        }
        ask
    }
}

/// What the server answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    usage: Usage,
    snapshot: Option<UsageSnapshot>,
    /// Storage classes the server has a tier for.
    tiers: Vec<String>,
    /// With `forecast=1`: the history and where classes are kept.
    #[serde(default)]
    forecast: Option<forecast::Inputs>,
}

/// Answers a call on the server's side.
pub fn answer(store: &engine::Store, ask: Ask) -> Result<serde_json::Value> {
    if let Some(b) = &ask.bucket {
        store.bucket(b)?;
    }
    let snapshot = match ask.rescan {
        true => Some(store.scan_usage()?),
        false => store.usage_snapshot()?,
    };
    let answer = Answer {
        // A forecast's suggestions read every bucket's counters; its report keeps to one.
        usage: store.usage(ask.bucket.as_deref().filter(|_| !ask.forecast))?,
        snapshot,
        tiers: store
            .storage_classes()
            .into_iter()
            .map(|c| c.class)
            .collect(),
        forecast: ask
            .forecast
            .then(|| forecast::Inputs::gather(store))
            .transpose()?,
    };
    Ok(serde_json::to_value(answer)?)
}

/// Totals as the report shows them.
#[derive(Debug, Default, Serialize)]
struct Totals {
    objects: i64,
    noncurrent_versions: i64,
    delete_markers: i64,
    uploads: i64,
    /// Logical bytes: current, noncurrent and in uploads' parts.
    bytes: i64,
    current_bytes: i64,
    noncurrent_bytes: i64,
    upload_bytes: i64,
    /// Bytes on the drives (shards with parity) of the versions.
    raw_bytes: i64,
}

impl From<&Tally> for Totals {
    fn from(t: &Tally) -> Totals {
        Totals {
            objects: t.objects,
            noncurrent_versions: t.noncurrent(),
            delete_markers: t.delete_markers,
            uploads: t.uploads,
            bytes: t.version_bytes + t.upload_bytes,
            current_bytes: t.object_bytes,
            noncurrent_bytes: t.noncurrent_bytes(),
            upload_bytes: t.upload_bytes,
            raw_bytes: t.version_raw,
        }
    }
}

#[derive(Debug, Serialize)]
struct Named {
    name: String,
    #[serde(flatten)]
    totals: Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    monthly_cost: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Access {
    objects: u64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct PrefixRow {
    bucket: String,
    prefix: String,
    class: String,
    objects: u64,
    bytes: u64,
    noncurrent_versions: u64,
    noncurrent_bytes: u64,
    delete_markers: u64,
    hot: Access,
    warm: Access,
    cold: Access,
}

#[derive(Debug, Serialize)]
struct Scan {
    /// When the pass ran (Unix seconds) and how long ago.
    at: u64,
    age_secs: u64,
    truncated: bool,
    /// Current objects by access class, over the buckets shown.
    hot: Access,
    warm: Access,
    cold: Access,
    prefixes: Vec<PrefixRow>,
}

#[derive(Debug, Serialize)]
struct Report {
    day_secs: u64,
    total: Totals,
    buckets: Vec<Named>,
    classes: Vec<Named>,
    ages: Vec<Named>,
    scan: Option<Scan>,
    currency: String,
    monthly_cost: f64,
    savings: Vec<Saving>,
}

fn report(answer: Answer, bucket: Option<&str>, depth: usize, prices: &Prices) -> Report {
    let u = &answer.usage;
    let named = |rows: Vec<(String, Tally)>, priced: bool| {
        rows.into_iter()
            .map(|(name, t)| Named {
                monthly_cost: priced
                    .then(|| prices.monthly(&name, t.version_bytes + t.upload_bytes)),
                totals: Totals::from(&t),
                name,
            })
            .collect::<Vec<_>>()
    };
    let by_band = u.by(|r| format!("{}", u.band_of(r)));
    let ages = BANDS
        .iter()
        .enumerate()
        .map(|(i, band)| {
            let t = by_band
                .iter()
                .find(|(b, _)| *b == i.to_string())
                .map(|(_, t)| *t)
                .unwrap_or_default();
            (band.to_string(), t)
        })
        .collect();
    let classes = named(u.by(|r| r.class.clone()), true);
    let monthly_cost = classes.iter().filter_map(|c| c.monthly_cost).sum();
    let scan = answer.snapshot.as_ref().map(|s| {
        let mine: Vec<_> = s
            .prefixes
            .iter()
            .filter(|p| bucket.is_none_or(|b| p.bucket == b))
            .collect();
        let sum = |f: fn(&engine::PrefixUsage) -> (u64, u64)| {
            let (objects, bytes) = mine
                .iter()
                .filter(|p| p.depth() == 0)
                .map(|p| f(p))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            Access { objects, bytes }
        };
        let access = |(objects, bytes)| Access { objects, bytes };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Scan {
            at: s.at_ns / 1_000_000_000,
            age_secs: now.saturating_sub(s.at_ns / 1_000_000_000),
            truncated: s.truncated,
            hot: sum(engine::PrefixUsage::hot),
            warm: sum(engine::PrefixUsage::warm),
            cold: sum(engine::PrefixUsage::cold),
            prefixes: mine
                .iter()
                .filter(|p| (1..=depth).contains(&p.depth()))
                .map(|p| PrefixRow {
                    bucket: p.bucket.clone(),
                    prefix: p.prefix.clone(),
                    class: p.class.clone(),
                    objects: p.objects,
                    bytes: p.bytes,
                    noncurrent_versions: p.noncurrent,
                    noncurrent_bytes: p.noncurrent_bytes,
                    delete_markers: p.delete_markers,
                    hot: access(p.hot()),
                    warm: access(p.warm()),
                    cold: access(p.cold()),
                })
                .collect(),
        }
    });
    let savings = answer.snapshot.as_ref().map_or_else(Vec::new, |s| {
        let mine: Vec<_> = s
            .prefixes
            .iter()
            .filter(|p| bucket.is_none_or(|b| p.bucket == b))
            .cloned()
            .collect();
        prices::savings(prices, &mine, &answer.tiers)
    });
    Report {
        day_secs: u.day_secs,
        total: Totals::from(&u.total()),
        buckets: named(u.by(|r| r.bucket.clone()), false),
        classes,
        ages: named(ages, false),
        scan,
        currency: prices.currency.clone(),
        monthly_cost,
        savings,
    }
}

pub fn run(args: UsageArgs, data: DataArg) -> Result<()> {
    let prices = Prices::load(args.prices.as_deref())?;
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("usage is kept by the server: start it with `cybs3 server start`");
    }
    if let Some(b) = &args.bucket {
        engine::validate_bucket_name(b)?;
    }
    let mut path = format!(
        "/usage?rescan={}&forecast={}",
        u8::from(args.rescan),
        u8::from(args.forecast)
    );
    if let Some(b) = &args.bucket {
        path.push_str(&format!("&bucket={b}"));
    }
    let out = crate::block_on(admin::call(&dir.socket(), Method::GET, &path, None))?;
    let answer: Answer = serde_json::from_value(out)?;
    if let Some(inputs) = &answer.forecast {
        let f = forecast::forecast(inputs, &answer.usage, args.bucket.as_deref());
        match args.json {
            true => println!("{}", serde_json::to_string(&f)?),
            false => forecast::print(&f),
        }
        return Ok(());
    }
    let r = report(
        answer,
        args.bucket.as_deref(),
        args.prefix_depth as usize,
        &prices,
    );
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    print(&r);
    Ok(())
}

fn b(n: i64) -> String {
    human_bytes(n.max(0) as u64)
}

fn print(r: &Report) {
    let t = &r.total;
    println!(
        "{} objects ({}), {} noncurrent versions ({}), {} delete markers, {} incomplete uploads ({}); {} on the drives",
        t.objects,
        b(t.current_bytes),
        t.noncurrent_versions,
        b(t.noncurrent_bytes),
        t.delete_markers,
        t.uploads,
        b(t.upload_bytes),
        b(t.raw_bytes)
    );
    println!("monthly cost: {:.2} {}", r.monthly_cost, r.currency);
    let table = |title: &str, rows: &[Named]| {
        println!(
            "\n{:<24} {:>10} {:>10} {:>8} {:>8} {:>12} {:>12}",
            title, "objects", "noncurrent", "markers", "uploads", "bytes", "raw"
        );
        for n in rows {
            let t = &n.totals;
            println!(
                "{:<24} {:>10} {:>10} {:>8} {:>8} {:>12} {:>12}{}",
                n.name,
                t.objects,
                t.noncurrent_versions,
                t.delete_markers,
                t.uploads,
                b(t.bytes),
                b(t.raw_bytes),
                n.monthly_cost
                    .map(|c| format!("  {c:.2} {}/month", r.currency))
                    .unwrap_or_default()
            );
        }
    };
    table("BUCKET", &r.buckets);
    table("CLASS", &r.classes);
    table(&format!("AGE (days of {} s)", r.day_secs), &r.ages);
    match &r.scan {
        None => println!("\nno usage pass yet: `--rescan` runs one"),
        Some(s) => {
            println!(
                "\nlast pass {} s ago{}: hot {} objects ({}), warm {} ({}), cold {} ({})",
                s.age_secs,
                if s.truncated {
                    " (prefixes truncated)"
                } else {
                    ""
                },
                s.hot.objects,
                human_bytes(s.hot.bytes),
                s.warm.objects,
                human_bytes(s.warm.bytes),
                s.cold.objects,
                human_bytes(s.cold.bytes)
            );
            println!(
                "{:<40} {:<14} {:>10} {:>12} {:>10} {:>8} {:>8} {:>8}",
                "PREFIX", "CLASS", "objects", "bytes", "noncurrent", "hot", "warm", "cold"
            );
            for p in &s.prefixes {
                println!(
                    "{:<40} {:<14} {:>10} {:>12} {:>10} {:>8} {:>8} {:>8}",
                    format!("{}/{}", p.bucket, p.prefix),
                    p.class,
                    p.objects,
                    human_bytes(p.bytes),
                    p.noncurrent_versions,
                    p.hot.objects,
                    p.warm.objects,
                    p.cold.objects
                );
            }
        }
    }
    for s in &r.savings {
        println!(
            "\nmoving {} % of {}/{} (not read in {} days) to {} saves {:.2} {} per month{}; the rule:",
            s.cold_percent,
            s.bucket,
            s.prefix,
            s.idle_days,
            s.to_class,
            s.monthly_saving,
            r.currency,
            if s.configured {
                String::new()
            } else {
                format!(" (no tier for it yet: `cybs3 admin tier add {} --pool NAME`)", s.to_class)
            }
        );
        println!("{}", s.rule);
    }
}
