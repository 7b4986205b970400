//! What storage costs: a price per GiB-month for each storage class, the monthly cost
//! of what a store holds, and the savings of moving cold prefixes to a cheaper class.
//!
//! Defaults are AWS S3's list prices in us-east-1 (USD per GB-month, first tier);
//! `admin usage --prices FILE` overrides or adds classes, cybs3's own tier classes by
//! their names (`{"currency": "EUR", "classes": {"COLD": 0.002}}` in JSON, or the same
//! keys in TOML). A class the table does not name is priced as STANDARD.
//!
//! A saving is suggested for a top-level prefix when most of its bytes in a class are
//! cold (not read in `engine::WARM_DAYS` days, or never read since written that long
//! ago): the rule moves what is older than that many days to the cheapest class the
//! server has a tier for, and the saving is priced on those bytes. When no tier is
//! cheaper, the cheapest class of the table is named instead, marked `configured:
//! false` (bind a pool to it first: `cybs3 admin tier add CLASS --pool NAME`), since a
//! lifecycle rule naming a class with no tier is refused.

use anyhow::{Context, Result};
use engine::{PrefixUsage, WARM_DAYS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// AWS S3 list prices, us-east-1, USD per GB-month (first 50 TB for STANDARD; the
/// frequent-access tier for INTELLIGENT_TIERING).
const DEFAULTS: [(&str, f64); 8] = [
    ("STANDARD", 0.023),
    ("INTELLIGENT_TIERING", 0.023),
    ("STANDARD_IA", 0.0125),
    ("ONEZONE_IA", 0.01),
    ("REDUCED_REDUNDANCY", 0.024),
    ("GLACIER_IR", 0.004),
    ("GLACIER", 0.0036),
    ("DEEP_ARCHIVE", 0.00099),
];

/// A share of a class's bytes that must be cold for a move to be suggested.
const COLD_SHARE: f64 = 0.5;

const GIB: f64 = (1u64 << 30) as f64;

/// Prices per GiB-month by class.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prices {
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default)]
    pub classes: BTreeMap<String, f64>,
}

fn usd() -> String {
    "USD".into()
}

impl Default for Prices {
    fn default() -> Prices {
        Prices {
            currency: usd(),
            classes: DEFAULTS.iter().map(|(c, p)| (c.to_string(), *p)).collect(),
        }
    }
}

impl Prices {
    /// The defaults, with a file's prices over them.
    pub fn load(file: Option<&Path>) -> Result<Prices> {
        let mut prices = Prices::default();
        let Some(file) = file else {
            return Ok(prices);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the price table {}", file.display()))?;
        let given: Prices = match file.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text)
                .with_context(|| format!("{} is not a price table", file.display()))?,
            _ => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a price table", file.display()))?,
        };
        prices.currency = given.currency;
        prices.classes.extend(given.classes);
        Ok(prices)
    }

    /// A class's price per GiB-month (STANDARD's for a class not in the table).
    pub fn of(&self, class: &str) -> f64 {
        self.classes
            .get(class)
            .or_else(|| self.classes.get("STANDARD"))
            .copied()
            .unwrap_or(0.0)
    }

    /// What `bytes` in `class` cost a month.
    pub fn monthly(&self, class: &str, bytes: i64) -> f64 {
        bytes.max(0) as f64 / GIB * self.of(class)
    }
}

/// A suggested move of a prefix's cold data to a cheaper class.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saving {
    pub bucket: String,
    pub prefix: String,
    pub from_class: String,
    pub to_class: String,
    /// The server has a tier for `to_class`.
    pub configured: bool,
    /// Share (percent) of the prefix's bytes in `from_class` not read in `idle_days`.
    pub cold_percent: f64,
    pub idle_days: u64,
    /// Bytes the rule moves: current objects older than `idle_days`.
    pub bytes: u64,
    pub monthly_saving: f64,
    /// A PutBucketLifecycleConfiguration document (`aws s3api
    /// put-bucket-lifecycle-configuration --lifecycle-configuration`).
    pub rule: serde_json::Value,
}

/// Savings of the top-level prefixes of a pass, largest first.
pub fn savings(prices: &Prices, prefixes: &[PrefixUsage], tiers: &[String]) -> Vec<Saving> {
    let cheapest = |among: &mut dyn Iterator<Item = &String>| {
        among
            .map(|c| (prices.of(c), c.clone()))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    let tier = cheapest(&mut tiers.iter());
    let any = cheapest(&mut prices.classes.keys());
    let mut out = Vec::new();
    for p in prefixes.iter().filter(|p| p.depth() == 1) {
        let from = prices.of(&p.class);
        let (to, configured) = match (&tier, &any) {
            (Some((price, c)), _) if *price < from => (c.clone(), true),
            (_, Some((price, c))) if *price < from => (c.clone(), false),
            _ => continue,
        };
        let cold = p.cold().1;
        if p.bytes == 0 || (cold as f64) < COLD_SHARE * p.bytes as f64 {
            continue;
        }
        let moved = p.bytes_older_than(WARM_DAYS);
        let saving = moved as f64 / GIB * (from - prices.of(&to));
        out.push(Saving {
            rule: rule(&p.prefix, &to),
            bucket: p.bucket.clone(),
            prefix: p.prefix.clone(),
            from_class: p.class.clone(),
            to_class: to,
            configured,
            cold_percent: (cold as f64 * 1000.0 / p.bytes as f64).round() / 10.0,
            idle_days: WARM_DAYS,
            bytes: moved,
            monthly_saving: saving,
        });
    }
    out.sort_by(|a, b| b.monthly_saving.total_cmp(&a.monthly_saving));
    out
}

/// The lifecycle configuration that moves `prefix` to `class` after [`WARM_DAYS`] days.
fn rule(prefix: &str, class: &str) -> serde_json::Value {
    let id: String = format!("cybs3-usage-{prefix}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    serde_json::json!({
        "Rules": [{
            "ID": id.trim_end_matches('-'),
            "Status": "Enabled",
            "Filter": {"Prefix": prefix},
            "Transitions": [{"Days": WARM_DAYS, "StorageClass": class}]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(class: &str, bytes: u64, cold: u64) -> PrefixUsage {
        let mut p = PrefixUsage {
            bucket: "b".into(),
            prefix: "photos/".into(),
            class: class.into(),
            objects: 2,
            bytes,
            ..Default::default()
        };
        p.idle_bytes[3] = cold;
        p.idle_bytes[0] = bytes - cold;
        p.age_bytes[3] = bytes;
        p
    }

    #[test]
    fn a_cold_prefix_goes_to_the_cheapest_tier_there_is() {
        let prices = Prices::default();
        let p = prefix("STANDARD", 10 << 30, 8 << 30);
        let s = savings(
            &prices,
            std::slice::from_ref(&p),
            &["GLACIER".into(), "STANDARD_IA".into()],
        );
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].to_class.as_str(), s[0].configured), ("GLACIER", true));
        assert_eq!(s[0].cold_percent, 80.0);
        assert!((s[0].monthly_saving - 10.0 * (0.023 - 0.0036)).abs() < 1e-9);
        assert_eq!(s[0].rule["Rules"][0]["Transitions"][0]["Days"], WARM_DAYS);
        // No tier: the cheapest class of the table, said to be unbound.
        let s = savings(&prices, &[p], &[]);
        assert_eq!(
            (s[0].to_class.as_str(), s[0].configured),
            ("DEEP_ARCHIVE", false)
        );
        // Mostly read: nothing to suggest.
        assert!(savings(&prices, &[prefix("STANDARD", 10, 4)], &[]).is_empty());
    }
}
