//! The values a query computes with, as S3 Select's SQL has them: MISSING (no such field)
//! apart from NULL, integers apart from floats, timestamps with their offset, and the
//! lists and structs JSON and Parquet records hold (fields in the record's order).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use time::OffsetDateTime;

use super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Timestamp(OffsetDateTime),
    List(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Value::Missing | Value::Null)
    }

    /// A struct's field: an unquoted name matches regardless of case, as AWS does.
    pub(crate) fn field(&self, name: &str, exact: bool) -> Value {
        let Value::Struct(fields) = self else {
            return Value::Missing;
        };
        let found = fields.iter().find(|(k, _)| k == name).or_else(|| {
            (!exact)
                .then(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .flatten()
        });
        found.map_or(Value::Missing, |(_, v)| v.clone())
    }

    /// A number from a number, or from text that is one (CSV fields are text).
    pub(crate) fn number(&self) -> Option<Value> {
        match self {
            Value::Int(_) | Value::Float(_) => Some(self.clone()),
            Value::Str(s) => {
                let s = s.trim();
                s.parse::<i64>().map(Value::Int).ok().or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(Value::Float)
                })
            }
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self.number()? {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "MISSING",
            Value::Null => "NULL",
            Value::Bool(_) => "BOOL",
            Value::Int(_) => "INT",
            Value::Float(_) => "FLOAT",
            Value::Str(_) => "STRING",
            Value::Timestamp(_) => "TIMESTAMP",
            Value::List(_) => "LIST",
            Value::Struct(_) => "STRUCT",
        }
    }

    /// SQL comparison: `None` when either side is absent or the two cannot be compared.
    /// Text meets a number as a number when it reads as one, so `_3 > 10` works on CSV.
    pub(crate) fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Missing | Null, _) | (_, Missing | Null) => None,
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(_) | Float(_), Int(_) | Float(_)) => self.as_f64()?.partial_cmp(&other.as_f64()?),
            (Str(a), Str(b)) => Some(a.cmp(b)),
            (Str(_), Int(_) | Float(_)) | (Int(_) | Float(_), Str(_)) => {
                self.number()?.compare(&other.number()?)
            }
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Timestamp(a), Str(s)) => Some(a.cmp(&parse_timestamp(s).ok()?)),
            (Str(s), Timestamp(b)) => Some(parse_timestamp(s).ok()?.cmp(b)),
            (List(a), List(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y)? {
                        Ordering::Equal => continue,
                        o => return Some(o),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            (Struct(a), Struct(b)) => (a == b).then_some(Ordering::Equal),
            _ => None,
        }
    }

    /// The text a CSV output field holds (absent values are empty fields).
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Missing | Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::List(_) | Value::Struct(_) => {
                let mut out = String::new();
                self.write_json(&mut out);
                out
            }
            _ => {
                let mut out = String::new();
                self.write_scalar(&mut out);
                out
            }
        }
    }

    fn write_scalar(&self, out: &mut String) {
        match self {
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_float(*f, out),
            Value::Timestamp(t) => out.push_str(&format_timestamp(t)),
            _ => {}
        }
    }

    /// JSON text; MISSING fields of a struct are left out.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Value::Missing | Value::Null => out.push_str("null"),
            Value::Str(s) => write_json_str(s, out),
            Value::Timestamp(t) => write_json_str(&format_timestamp(t), out),
            Value::Float(f) if !f.is_finite() => out.push_str("null"),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Struct(fields) => {
                out.push('{');
                let mut first = true;
                for (k, v) in fields.iter().filter(|(_, v)| *v != Value::Missing) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_json_str(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            _ => self.write_scalar(out),
        }
    }
}

/// Floats as JSON and SQL print them: always with a fraction or exponent, so a float
/// stays a float when read back.
fn write_float(f: f64, out: &mut String) {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ISO 8601 as S3 Select writes timestamps: `Z` for UTC, fractions only when present.
pub(crate) fn format_timestamp(t: &OffsetDateTime) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.nanosecond() != 0 {
        let frac = format!("{:09}", t.nanosecond());
        let _ = write!(s, ".{}", frac.trim_end_matches('0'));
    }
    let off = t.offset();
    if off.is_utc() {
        s.push('Z');
    } else {
        let (h, m, _) = off.as_hms();
        let sign = if off.is_negative() { '-' } else { '+' };
        let _ = write!(s, "{sign}{:02}:{:02}", h.abs(), m.abs());
    }
    s
}

/// An ISO 8601 timestamp as S3 Select reads them: `2007T`, `2007-02T`, `2007-02-23`,
/// `2007-02-23T12:14Z`, `2007-02-23T12:14:33.079-08:00` (a space may stand for the `T`;
/// no offset means UTC).
pub(crate) fn parse_timestamp(s: &str) -> Result<OffsetDateTime> {
    parse_iso(s.trim()).ok_or_else(|| Error::Cast(format!("'{s}' is not a timestamp")))
}

fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let b = s.as_bytes();
    let mut p = 0;
    let num = |p: &mut usize, n: usize| -> Option<u32> {
        let d = s.get(*p..*p + n)?;
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *p += n;
        d.parse().ok()
    };
    let year = num(&mut p, 4)? as i32;
    let (mut month, mut day) = (1, 1);
    if b.get(p) == Some(&b'-') {
        p += 1;
        month = num(&mut p, 2)?;
        if b.get(p) == Some(&b'-') {
            p += 1;
            day = num(&mut p, 2)?;
        }
    }
    let (mut hour, mut minute, mut second, mut nano) = (0, 0, 0, 0);
    let mut offset = UtcOffset::UTC;
    if matches!(b.get(p), Some(b'T' | b't' | b' ')) {
        p += 1;
        if p < b.len() && b[p].is_ascii_digit() {
            hour = num(&mut p, 2)?;
            if b.get(p) != Some(&b':') {
                return None;
            }
            p += 1;
            minute = num(&mut p, 2)?;
            if b.get(p) == Some(&b':') {
                p += 1;
                second = num(&mut p, 2)?;
                if b.get(p) == Some(&b'.') {
                    p += 1;
                    let start = p;
                    while p < b.len() && b[p].is_ascii_digit() {
                        p += 1;
                    }
                    let digits = &s[start..p];
                    if digits.is_empty() || digits.len() > 9 {
                        return None;
                    }
                    nano = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
                }
            }
            match b.get(p) {
                Some(b'Z' | b'z') => p += 1,
                Some(&sign @ (b'+' | b'-')) => {
                    p += 1;
                    let oh = num(&mut p, 2)? as i8;
                    if b.get(p) == Some(&b':') {
                        p += 1;
                    }
                    let om = num(&mut p, 2)? as i8;
                    let k = if sign == b'-' { -1 } else { 1 };
                    offset = UtcOffset::from_hms(k * oh, k * om, 0).ok()?;
                }
                _ => {}
            }
        }
    }
    if p != b.len() {
        return None;
    }
    let date =
        Date::from_calendar_date(year, Month::try_from(month as u8).ok()?, day as u8).ok()?;
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nano).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// JSON records are read straight into values, keeping each object's field order (the
/// order `SELECT *` gives them back in).
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> std::result::Result<Value, E> {
                Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
            }
            fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
                Ok(Value::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_unit<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = a.next_element()? {
                    items.push(v);
                }
                Ok(Value::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Value, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Value::Struct(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_and_print_as_iso_8601() {
        for (text, printed) in [
            ("2007T", "2007-01-01T00:00:00Z"),
            ("2007-02T", "2007-02-01T00:00:00Z"),
            ("2007-02-23", "2007-02-23T00:00:00Z"),
            ("2007-02-23T12:14Z", "2007-02-23T12:14:00Z"),
            (
                "2007-02-23T12:14:33.079-08:00",
                "2007-02-23T12:14:33.079-08:00",
            ),
            ("2007-02-23 12:14:33", "2007-02-23T12:14:33Z"),
        ] {
            assert_eq!(
                format_timestamp(&parse_timestamp(text).unwrap()),
                printed,
                "{text}"
            );
        }
        for bad in [
            "",
            "07-01-01",
            "2007-13-01",
            "2007-02-23T25:00Z",
            "2007-02-23Tx",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_keeps_field_order_and_types() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":[2.5,"x",null,true]}"#).unwrap();
        let mut out = String::new();
        v.write_json(&mut out);
        assert_eq!(out, r#"{"b":1,"a":[2.5,"x",null,true]}"#);
        assert_eq!(v.field("B", false), Value::Int(1));
        assert_eq!(v.field("B", true), Value::Missing);
    }

    #[test]
    fn text_compares_with_numbers_as_a_number() {
        let s = Value::Str("10".into());
        assert_eq!(s.compare(&Value::Int(9)), Some(Ordering::Greater));
        assert_eq!(s.compare(&Value::Float(10.0)), Some(Ordering::Equal));
        assert_eq!(Value::Str("x".into()).compare(&Value::Int(1)), None);
        assert_eq!(Value::Null.compare(&Value::Int(1)), None);
        assert_eq!(Value::Float(3.0).to_text(), "3.0");
    }
}
