//! The rows every bench prints: a table for a person, or one JSON document.

use crate::timing::Timing;
use anyhow::Result;
use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    /// Fraction of the physical reference this is compared with, if any.
    pub(crate) ratio: Option<f64>,
    pub(crate) reference: Option<&'static str>,
    /// Fraction of a second reference, another tool doing the same in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) also_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) also_reference: Option<&'static str>,
    /// Per-operation latency percentiles, milliseconds, where operations were timed one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p99_ms: Option<f64>,
}

/// The rows as a table, or as one JSON document: `head` with `results` added.
pub(crate) fn print(mut head: serde_json::Value, rows: &[Row], json: bool) {
    if json {
        head["results"] = serde_json::json!(rows);
        println!("{head}");
        return;
    }
    let latencies = rows.iter().any(|r| r.p50_ms.is_some());
    // Names wider than the usual column widen it for the whole table.
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(44);
    if latencies {
        println!(
            "{:<w$} {:>14}  {:<8} {:>9} {:>9}  vs reference",
            "measure", "value", "unit", "p50 ms", "p99 ms"
        );
    } else {
        println!(
            "{:<w$} {:>14}  {:<8} vs reference",
            "measure", "value", "unit"
        );
    }
    for r in rows {
        let of = |ratio: Option<f64>, reference: Option<&str>| match (ratio, reference) {
            (Some(x), Some(name)) => Some(format!("{:.0} % of {name}", x * 100.0)),
            _ => None,
        };
        let vs = [of(r.ratio, r.reference), of(r.also_ratio, r.also_reference)];
        let vs = vs.into_iter().flatten().collect::<Vec<_>>().join("; ");
        if latencies {
            let ms = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
            println!(
                "{:<w$} {:>14.1}  {:<8} {:>9} {:>9}  {vs}",
                r.name,
                r.value,
                r.unit,
                ms(r.p50_ms),
                ms(r.p99_ms)
            );
        } else {
            println!("{:<w$} {:>14.1}  {:<8} {vs}", r.name, r.value, r.unit);
        }
    }
}

/// The listing rate, once every key is known to have been listed.
pub(crate) fn listing_row(
    what: &str,
    listed: usize,
    expected: usize,
    took: std::time::Duration,
) -> Result<Row> {
    anyhow::ensure!(listed == expected, "listed {listed} of {expected} keys");
    Ok(row(
        &format!("{what} {expected} keys (pages of 1000)"),
        listed as f64 / took.as_secs_f64(),
        "keys/s",
        None,
    ))
}

/// A row, compared with the reference `vs` (ratio, reference name) if there is one.
pub(crate) fn row(
    name: &str,
    value: f64,
    unit: &'static str,
    vs: Option<(f64, &'static str)>,
) -> Row {
    Row {
        name: name.to_string(),
        value,
        unit,
        ratio: vs.map(|v| v.0),
        reference: vs.map(|v| v.1),
        also_ratio: None,
        also_reference: None,
        p50_ms: None,
        p99_ms: None,
    }
}

/// A row for a rate of timed operations, with their latency percentiles.
pub(crate) fn timed_row(name: &str, t: &Timing) -> Row {
    Row {
        p50_ms: Some(t.percentile_ms(50.0)),
        p99_ms: Some(t.percentile_ms(99.0)),
        ..row(name, t.rate(), "ops/s", None)
    }
}

/// A row for runs measured in turn with runs of a reference: all `runs` together, and the
/// ratio of their median rate to the reference's.
pub(crate) fn alternating_row(
    name: &str,
    runs: Vec<Timing>,
    reference: &[Timing],
    what: &'static str,
) -> Row {
    let rate = |t: &[Timing]| crate::timing::median(t.iter().map(Timing::rate).collect());
    let ratio = rate(&runs) / rate(reference);
    let all = Timing {
        elapsed: runs.iter().map(|t| t.elapsed).sum(),
        latencies: runs.into_iter().flat_map(|t| t.latencies).collect(),
    };
    named(timed_row(name, &all), Some((ratio, what)))
}

/// A row with a second reference's ratio set.
pub(crate) fn also(r: Row, vs: Option<(f64, &'static str)>) -> Row {
    Row {
        also_ratio: vs.map(|v| v.0),
        also_reference: vs.map(|v| v.1),
        ..r
    }
}

/// A row with a reference ratio set.
pub(crate) fn named(r: Row, vs: Option<(f64, &'static str)>) -> Row {
    Row {
        ratio: vs.map(|v| v.0),
        reference: vs.map(|v| v.1),
        ..r
    }
}
