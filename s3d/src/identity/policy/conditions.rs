//! `Condition` blocks: operators, qualifiers (`ForAnyValue:`, `ForAllValues:`,
//! `...IfExists`) and how each kind of value compares.

use super::dates::parse_date;
use super::patterns::{literal, wildcard_match, Template, Tok};
use super::request::Context;
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

#[derive(Clone, Debug)]
pub(super) struct Condition {
    pub(super) key: String,
    /// The operator as written (`ForAllValues:StringEquals`), for the analyzer's messages.
    pub(super) operator: String,
    pub(super) test: Test,
}

#[derive(Clone, Debug)]
pub(super) enum Test {
    /// `Null`: each value says whether the key is expected to be absent.
    Null(Vec<bool>),
    Match(Matcher, Vec<Template>),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Matcher {
    pub(super) kind: Kind,
    pub(super) negated: bool,
    pub(super) qualifier: Qualifier,
    pub(super) if_exists: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Qualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Ip,
    Arn,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Base operator name, value kind, and whether it is a negated ("Not") operator.
/// AWS gives ArnEquals the same wildcard semantics as ArnLike.
pub(super) const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::String, false),
    ("StringNotEquals", Kind::String, true),
    ("StringEqualsIgnoreCase", Kind::StringIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Kind::StringIgnoreCase, true),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Kind::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Kind::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Kind::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Kind::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Kind::Numeric(Cmp::Ge), false),
    ("DateEquals", Kind::Date(Cmp::Eq), false),
    ("DateNotEquals", Kind::Date(Cmp::Eq), true),
    ("DateLessThan", Kind::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Kind::Date(Cmp::Le), false),
    ("DateGreaterThan", Kind::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Kind::Date(Cmp::Ge), false),
    ("Bool", Kind::Bool, false),
    ("IpAddress", Kind::Ip, false),
    ("NotIpAddress", Kind::Ip, true),
    ("ArnEquals", Kind::Arn, false),
    ("ArnLike", Kind::Arn, false),
    ("ArnNotEquals", Kind::Arn, true),
    ("ArnNotLike", Kind::Arn, true),
];

/// A parsed operator name: `Null`, or a matcher still waiting for its values.
pub(super) enum Operator {
    Null,
    Match(Matcher),
}

pub(super) fn parse_operator(name: &str) -> Result<Operator, String> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, rest)
    } else {
        (Qualifier::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    if base == "Null" {
        return match (qualifier, if_exists) {
            (Qualifier::Single, false) => Ok(Operator::Null),
            _ => Err(format!(
                "condition operator {name:?}: Null takes neither IfExists nor a set qualifier"
            )),
        };
    }
    let &(_, kind, negated) = OPERATORS
        .iter()
        .find(|(op, _, _)| *op == base)
        .ok_or_else(|| format!("unknown condition operator {name:?}"))?;
    Ok(Operator::Match(Matcher {
        kind,
        negated,
        qualifier,
        if_exists,
    }))
}

pub(super) fn parse_conditions(v: &Value, substitute: bool) -> Result<Vec<Condition>, String> {
    let operators = v.as_object().ok_or("Condition must be a JSON object")?;
    let mut conditions = Vec::new();
    for (name, keys) in operators {
        let operator = parse_operator(name)?;
        let keys = keys
            .as_object()
            .ok_or_else(|| format!("Condition {name} must be an object of condition keys"))?;
        for (key, values) in keys {
            let values = condition_values(values)
                .and_then(|values| build_test(&operator, &values, substitute))
                .map_err(|e| format!("Condition {name} {key:?}: {e}"))?;
            conditions.push(Condition {
                key: key.clone(),
                operator: name.clone(),
                test: values,
            });
        }
    }
    Ok(conditions)
}

/// Condition values may be strings, numbers or booleans, alone or in a
/// non-empty array; all are compared as strings.
pub(super) fn condition_values(v: &Value) -> Result<Vec<String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("values must be strings, numbers or booleans".to_owned()),
    };
    match v {
        Value::Array(items) if items.is_empty() => Err("values must not be empty".into()),
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

pub(super) fn build_test(
    operator: &Operator,
    values: &[String],
    substitute: bool,
) -> Result<Test, String> {
    match operator {
        Operator::Null => values
            .iter()
            .map(|v| {
                parse_bool(v).ok_or_else(|| format!("invalid value {v:?} (expected true or false)"))
            })
            .collect::<Result<_, _>>()
            .map(Test::Null),
        Operator::Match(matcher) => {
            let templates: Vec<Template> = values
                .iter()
                .map(|v| Template::compile(v, substitute))
                .collect();
            for (template, raw) in templates.iter().zip(values) {
                // Values with variables can only be checked once substituted.
                let fixed = template.resolve(&Context::default());
                if fixed.is_some_and(|toks| !matcher.kind.accepts(&literal(&toks))) {
                    return Err(format!("invalid value {raw:?}"));
                }
            }
            Ok(Test::Match(*matcher, templates))
        }
    }
}

impl Condition {
    /// The condition key this condition tests.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    pub(super) fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.get(&self.key).filter(|values| !values.is_empty());
        match &self.test {
            Test::Null(expect_absent) => expect_absent.contains(&present.is_none()),
            Test::Match(matcher, templates) => matcher.holds(templates, present, ctx),
        }
    }
}

impl Matcher {
    pub(super) fn holds(
        &self,
        templates: &[Template],
        present: Option<&[String]>,
        ctx: &Context,
    ) -> bool {
        let Some(request_values) = present else {
            return self.if_exists
                || match self.qualifier {
                    // Vacuously true over the empty set.
                    Qualifier::ForAllValues => true,
                    Qualifier::ForAnyValue => false,
                    // AWS: negated operators hold when the key is missing.
                    Qualifier::Single => self.negated,
                };
        };
        let Some(patterns) = templates
            .iter()
            .map(|t| t.resolve(ctx))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        // Several policy values OR together; negated operators hold when none matches.
        let value_ok =
            |v: &String| patterns.iter().any(|p| self.kind.compare(p, v)) != self.negated;
        match self.qualifier {
            Qualifier::ForAllValues => request_values.iter().all(value_ok),
            Qualifier::Single | Qualifier::ForAnyValue => request_values.iter().any(value_ok),
        }
    }
}

impl Kind {
    /// Whether `policy_value` is well-formed for this kind of operator.
    pub(super) fn accepts(self, policy_value: &str) -> bool {
        match self {
            Kind::String | Kind::StringIgnoreCase | Kind::StringLike | Kind::Arn => true,
            Kind::Numeric(_) => parse_number(policy_value).is_some(),
            Kind::Date(_) => parse_date(policy_value).is_some(),
            Kind::Bool => parse_bool(policy_value).is_some(),
            Kind::Ip => parse_cidr(policy_value).is_some(),
        }
    }

    /// The positive sense of the operator: does request `value` match `pattern`?
    pub(super) fn compare(self, pattern: &[Tok], value: &str) -> bool {
        match self {
            Kind::String => literal(pattern) == value,
            Kind::StringIgnoreCase => literal(pattern).to_lowercase() == value.to_lowercase(),
            Kind::StringLike => wildcard_match(pattern, value),
            Kind::Numeric(cmp) => {
                both(parse_number, &literal(pattern), value).is_some_and(|(p, v)| cmp.holds(v, p))
            }
            Kind::Date(cmp) => {
                both(parse_date, &literal(pattern), value).is_some_and(|(p, v)| cmp.holds(v, p))
            }
            Kind::Bool => both(parse_bool, &literal(pattern), value).is_some_and(|(p, v)| p == v),
            Kind::Ip => match (parse_cidr(&literal(pattern)), value.parse::<IpAddr>()) {
                (Some(net), Ok(ip)) => net.contains(&ip.to_canonical()),
                _ => false,
            },
            Kind::Arn => arn_match(pattern, value),
        }
    }
}

pub(super) fn both<T>(parse: fn(&str) -> Option<T>, a: &str, b: &str) -> Option<(T, T)> {
    Some((parse(a)?, parse(b)?))
}

impl Cmp {
    /// `request <op> policy`, e.g. NumericLessThan holds when request < policy.
    pub(super) fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

pub(super) fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(super) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// ARNs compare component by component so a wildcard cannot span a `:`;
/// values that are not six-part ARNs fall back to a plain wildcard match.
pub(super) fn arn_match(pattern: &[Tok], value: &str) -> bool {
    let pattern_parts: Vec<&[Tok]> = pattern.splitn(6, |t| *t == Tok::Lit(':')).collect();
    let value_parts: Vec<&str> = value.splitn(6, ':').collect();
    if pattern_parts.len() != 6 || value_parts.len() != 6 {
        return wildcard_match(pattern, value);
    }
    pattern_parts
        .iter()
        .zip(&value_parts)
        .all(|(p, v)| wildcard_match(p, v))
}

/// An address with an optional `/prefix`; a bare address is a host route. An
/// IPv4-mapped IPv6 address is taken as the IPv4 address it maps.
pub(super) fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
        None => (s.trim(), None),
    };
    let addr = addr.parse::<IpAddr>().ok()?.to_canonical();
    let max = if addr.is_ipv4() { 32 } else { 128 };
    IpNet::new(addr, prefix.unwrap_or(max)).ok()
}
