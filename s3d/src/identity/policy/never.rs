//! Conditions that can never hold, told from the policy alone (for the access analyzer).
//!
//! A value its operator cannot read (a malformed CIDR for `IpAddress`, a non-number for
//! `Numeric…`, a non-date for `Date…`, a non-boolean for `Bool` or `Null`) is refused when
//! the policy is stored (`conditions::build_test`), so none reaches a stored policy. What
//! is left to find is conditions that contradict each other or the clock:
//!
//! - `Null` says a key is absent while another condition of the statement needs it
//!   present (any operator but a negated one, an `…IfExists` or a `ForAllValues:`);
//! - `StringEquals` (or `ForAnyValue:StringEquals`) needs a value from one set while
//!   `ForAllValues:StringEquals` on the same key allows only values of a disjoint set;
//! - `Numeric…` or `Date…` bounds on one key leave no value between them. The keys these
//!   operators test hold one value each, so two bounds must hold of the same value. The
//!   clock is a lower bound of `aws:CurrentTime` and `aws:EpochTime`: a condition that
//!   only held before a time that has passed never holds again.
//!
//! Values with policy variables are known only per request and are left out.

use super::conditions::{parse_number, Cmp, Condition, Kind, Qualifier, Test};
use super::dates::parse_date;
use super::patterns::literal;
use super::request::Context;

/// Why `conditions` (one statement's) can never all hold, if they cannot.
pub(super) fn never_holds(conditions: &[Condition], now_ms: i64) -> Option<String> {
    null_contradiction(conditions)
        .or_else(|| disjoint_sets(conditions))
        .or_else(|| empty_range(conditions, now_ms))
}

/// The values of a condition as written; `None` if one holds a policy variable.
fn literals(c: &Condition) -> Option<Vec<String>> {
    match &c.test {
        Test::Match(_, templates) => templates
            .iter()
            .map(|t| t.resolve(&Context::default()).map(|toks| literal(&toks)))
            .collect(),
        Test::Null(_) => None,
    }
}

/// Condition keys are case-insensitive.
fn same_key(a: &Condition, b: &Condition) -> bool {
    a.key.eq_ignore_ascii_case(&b.key)
}

/// Whether a condition fails when its key is absent (see `Matcher::holds`).
fn needs_presence(c: &Condition) -> bool {
    match &c.test {
        Test::Null(_) => false,
        Test::Match(m, _) => {
            !m.if_exists
                && match m.qualifier {
                    Qualifier::ForAnyValue => true,
                    Qualifier::Single => !m.negated,
                    Qualifier::ForAllValues => false,
                }
        }
    }
}

fn null_contradiction(cs: &[Condition]) -> Option<String> {
    cs.iter().find_map(|null| {
        let Test::Null(absent) = &null.test else {
            return None;
        };
        if !absent.iter().all(|a| *a) {
            return None;
        }
        cs.iter()
            .find(|c| same_key(c, null) && needs_presence(c))
            .map(|c| {
                format!(
                    "Null says {} is absent, while {} needs it present",
                    null.key, c.operator
                )
            })
    })
}

/// A positive `StringEquals` test, with its qualifier and literal values.
fn string_equals(c: &Condition) -> Option<(Qualifier, bool, Vec<String>)> {
    match &c.test {
        Test::Match(m, _) if matches!(m.kind, Kind::String) && !m.negated => {
            Some((m.qualifier, m.if_exists, literals(c)?))
        }
        _ => None,
    }
}

fn disjoint_sets(cs: &[Condition]) -> Option<String> {
    for all in cs {
        let Some((Qualifier::ForAllValues, _, allowed)) = string_equals(all) else {
            continue;
        };
        for any in cs.iter().filter(|c| same_key(c, all)) {
            let Some((qualifier, if_exists, wanted)) = string_equals(any) else {
                continue;
            };
            if qualifier == Qualifier::ForAllValues || if_exists {
                continue;
            }
            if wanted.iter().all(|w| !allowed.contains(w)) {
                return Some(format!(
                    "{} needs {} to be one of {wanted:?}, while {} allows only {allowed:?}",
                    any.operator, any.key, all.operator
                ));
            }
        }
    }
    None
}

/// One side of the values a key may take.
struct Bound<'c> {
    at: f64,
    inclusive: bool,
    /// The condition that sets it (`None`: the clock), with the value as written.
    by: Option<(&'c Condition, String)>,
}

impl Bound<'_> {
    fn describe(&self) -> String {
        match &self.by {
            Some((c, raw)) => format!("{} {} {raw}", c.operator, c.key),
            None => "the current time".into(),
        }
    }
}

/// The bounds one single-valued `Numeric…`/`Date…` condition sets: (lower, upper).
fn bounds(c: &Condition) -> Option<(bool, Option<Bound<'_>>, Option<Bound<'_>>)> {
    let Test::Match(m, _) = &c.test else {
        return None;
    };
    if m.negated || m.if_exists || m.qualifier != Qualifier::Single {
        return None;
    }
    let (date, cmp) = match m.kind {
        Kind::Numeric(cmp) => (false, cmp),
        Kind::Date(cmp) => (true, cmp),
        _ => return None,
    };
    let raw = literals(c)?;
    let parse = |v: &String| {
        if date {
            parse_date(v).map(|ms| ms as f64)
        } else {
            parse_number(v)
        }
    };
    let values: Vec<(f64, &String)> = raw
        .iter()
        .map(|v| parse(v).map(|n| (n, v)))
        .collect::<Option<_>>()?;
    // Several values OR together: the loosest bound is the one that holds.
    let loosest = |upper: bool| {
        values
            .iter()
            .copied()
            .reduce(|a, b| if (b.0 > a.0) == upper { b } else { a })
    };
    let bound = |(at, raw): (f64, &String), inclusive| Bound {
        at,
        inclusive,
        by: Some((c, raw.clone())),
    };
    Some(match cmp {
        Cmp::Eq if values.len() == 1 => (
            date,
            Some(bound(values[0], true)),
            Some(bound(values[0], true)),
        ),
        Cmp::Eq => return None,
        Cmp::Gt => (date, loosest(false).map(|v| bound(v, false)), None),
        Cmp::Ge => (date, loosest(false).map(|v| bound(v, true)), None),
        Cmp::Lt => (date, None, loosest(true).map(|v| bound(v, false))),
        Cmp::Le => (date, None, loosest(true).map(|v| bound(v, true))),
    })
}

fn empty_range(cs: &[Condition], now_ms: i64) -> Option<String> {
    for first in cs {
        let Some((date, _, _)) = bounds(first) else {
            continue;
        };
        let key = first.key.to_lowercase();
        let clock = match key.as_str() {
            "aws:currenttime" | "aws:epochtime" if date => Some(now_ms as f64),
            "aws:epochtime" => Some((now_ms / 1000) as f64),
            _ => None,
        };
        let mut lower = clock.map(|at| Bound {
            at,
            inclusive: true,
            by: None,
        });
        let mut upper: Option<Bound> = None;
        for (lo, hi) in cs
            .iter()
            .filter(|c| same_key(c, first))
            .filter_map(bounds)
            .filter(|(d, _, _)| *d == date)
            .map(|(_, lo, hi)| (lo, hi))
        {
            if let Some(lo) = lo {
                if lower.as_ref().is_none_or(|l| tighter(&lo, l, true)) {
                    lower = Some(lo);
                }
            }
            if let Some(hi) = hi {
                if upper.as_ref().is_none_or(|u| tighter(&hi, u, false)) {
                    upper = Some(hi);
                }
            }
        }
        let (Some(lo), Some(hi)) = (lower, upper) else {
            continue;
        };
        if lo.at > hi.at || (lo.at == hi.at && !(lo.inclusive && hi.inclusive)) {
            return Some(match lo.by {
                None => format!("{} has passed", hi.describe()),
                Some(_) => format!(
                    "{} and {} leave {} no value",
                    lo.describe(),
                    hi.describe(),
                    first.key
                ),
            });
        }
    }
    None
}

/// Whether bound `a` narrows the range more than `b` (a lower bound if `lower`).
fn tighter(a: &Bound, b: &Bound, lower: bool) -> bool {
    if a.at == b.at {
        return !a.inclusive && b.inclusive;
    }
    (a.at > b.at) == lower
}
