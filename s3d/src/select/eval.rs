//! Evaluating a parsed query on one record: paths, operators with SQL's three-valued
//! logic (MISSING and NULL are unknown), CAST, the string, date and conditional
//! functions, and the aggregates' running state.

use std::cmp::Ordering;

use time::{Duration, Month, OffsetDateTime};

use super::error::{Error, Result};
use super::sql::{AggFunc, Aggregate, BinOp, DatePart, Expr, Func, Step, Trim, Type};
use super::value::{parse_timestamp, Value};

/// One input record: a CSV line's fields, or a JSON or Parquet value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// The csv crate's record as read: its fields share one buffer, so a row costs two
    /// allocations however many fields it has.
    Csv(csv::StringRecord),
    Doc(Value),
}

impl Record {
    /// The slot as a CSV record, made one (empty) if it held something else: a CSV
    /// source reads each row into the last one's buffers.
    pub(crate) fn csv(&mut self) -> &mut csv::StringRecord {
        if !matches!(self, Record::Csv(_)) {
            *self = Record::Csv(csv::StringRecord::new());
        }
        match self {
            Record::Csv(record) => record,
            Record::Doc(_) => unreachable!("made a CSV record above"),
        }
    }
}

/// What an expression is evaluated against: the record, and for an aggregate query's
/// items, the aggregates' results.
pub(crate) struct Env<'a> {
    pub record: &'a Record,
    pub aggregates: &'a [Value],
}

/// The value at `steps` below `v`; `[*]` gathers the rest of the path over a list.
pub(crate) fn navigate(v: &Value, steps: &[Step]) -> Value {
    let Some((step, rest)) = steps.split_first() else {
        return v.clone();
    };
    match (step, v) {
        (Step::Field { name, exact }, Value::Struct(_)) => navigate(&v.field(name, *exact), rest),
        (Step::Index(i), Value::List(items)) => {
            items.get(*i).map_or(Value::Missing, |x| navigate(x, rest))
        }
        (Step::All, Value::List(items)) => {
            Value::List(items.iter().map(|x| navigate(x, rest)).collect())
        }
        _ => Value::Missing,
    }
}

/// The value of `e` for the record in `env`. The commonest nodes of a filter over CSV
/// (literals, comparisons, a numeric CAST of a field) are taken here, in a function of
/// a small stack frame; the rest go to [`eval_any`], whose frame is sized for every
/// kind of node and cost a scan a third of its time in copies when each of those nodes
/// went through it.
pub(crate) fn eval(e: &Expr, env: &Env) -> Result<Value> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Binary(op, a, b) if !matches!(op, BinOp::And | BinOp::Or) => {
            binary(*op, eval(a, env)?, eval(b, env)?)
        }
        Expr::Cast(a, ty) => match (&**a, env.record) {
            // The commonest filter on CSV, `CAST(_n AS INT) < …`: a number read from the
            // field in place, with no copy of it.
            (Expr::Column(i, rest), Record::Csv(fields))
                if rest.is_empty() && matches!(ty, Type::Int | Type::Float | Type::Decimal) =>
            {
                match fields.get(*i).and_then(|f| number_in(f, *ty)) {
                    Some(v) => Ok(v),
                    None => cast(eval(a, env)?, *ty),
                }
            }
            _ => cast(eval(a, env)?, *ty),
        },
        _ => eval_any(e, env),
    }
}

/// [`eval`] for every kind of node.
#[inline(never)]
fn eval_any(e: &Expr, env: &Env) -> Result<Value> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Path(steps) => match env.record {
            Record::Doc(v) => navigate(v, steps),
            // Names are bound to columns before a CSV record is read.
            Record::Csv(_) => Value::Missing,
        },
        Expr::Column(i, rest) => match env.record {
            Record::Csv(fields) => match fields.get(*i) {
                Some(f) if rest.is_empty() => Value::Str(f.to_owned()),
                _ => Value::Missing,
            },
            Record::Doc(Value::Struct(fields)) => fields
                .get(*i)
                .map_or(Value::Missing, |(_, v)| navigate(v, rest)),
            Record::Doc(_) => Value::Missing,
        },
        Expr::Agg(i) => env.aggregates.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Neg(a) => match eval(a, env)? {
            v if v.is_absent() => Value::Null,
            v => match v.number() {
                Some(Value::Int(i)) => i
                    .checked_neg()
                    .map_or(Value::Float(-(i as f64)), Value::Int),
                Some(Value::Float(f)) => Value::Float(-f),
                _ => return Err(Error::DataType(format!("'-' on {}", v.type_name()))),
            },
        },
        Expr::Not(a) => match truth(&eval(a, env)?)? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        },
        Expr::Binary(BinOp::And, a, b) => {
            let l = truth(&eval(a, env)?)?;
            if l == Some(false) {
                return Ok(Value::Bool(false));
            }
            match (l, truth(&eval(b, env)?)?) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Binary(BinOp::Or, a, b) => {
            let l = truth(&eval(a, env)?)?;
            if l == Some(true) {
                return Ok(Value::Bool(true));
            }
            match (l, truth(&eval(b, env)?)?) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::Binary(op, a, b) => binary(*op, eval(a, env)?, eval(b, env)?)?,
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
        } => {
            let (v, p) = (eval(expr, env)?, eval(pattern, env)?);
            let esc = match escape {
                Some(e) => match eval(e, env)? {
                    Value::Str(s) if s.chars().count() == 1 => s.chars().next(),
                    other => return Err(Error::Arguments(format!("LIKE's ESCAPE {other:?}"))),
                },
                None => None,
            };
            match (v, p) {
                (Value::Str(s), Value::Str(p)) => Value::Bool(like(&s, &p, esc)? != *negated),
                (v, p) if v.is_absent() || p.is_absent() => Value::Null,
                (v, _) => return Err(Error::DataType(format!("LIKE on {}", v.type_name()))),
            }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, env)?;
            let lo = binary(BinOp::Ge, v.clone(), eval(low, env)?)?;
            let hi = binary(BinOp::Le, v, eval(high, env)?)?;
            match (truth(&lo)?, truth(&hi)?) {
                (Some(a), Some(b)) => Value::Bool((a && b) != *negated),
                (Some(false), None) | (None, Some(false)) => Value::Bool(*negated),
                _ => Value::Null,
            }
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, env)?;
            let mut unknown = v.is_absent();
            let mut found = false;
            for item in list {
                match truth(&binary(BinOp::Eq, v.clone(), eval(item, env)?)?)? {
                    Some(true) => {
                        found = true;
                        break;
                    }
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            if found {
                Value::Bool(!negated)
            } else if unknown {
                Value::Null
            } else {
                Value::Bool(*negated)
            }
        }
        Expr::Is {
            expr,
            missing,
            negated,
        } => {
            let v = eval(expr, env)?;
            let is = if *missing {
                v == Value::Missing
            } else {
                v.is_absent()
            };
            Value::Bool(is != *negated)
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = operand.as_ref().map(|o| eval(o, env)).transpose()?;
            for (when, then) in whens {
                let w = eval(when, env)?;
                let hit = match &subject {
                    Some(s) => truth(&binary(BinOp::Eq, s.clone(), w)?)?,
                    None => truth(&w)?,
                };
                if hit == Some(true) {
                    return eval(then, env);
                }
            }
            match otherwise {
                Some(o) => eval(o, env)?,
                None => Value::Null,
            }
        }
        Expr::Cast(a, ty) => cast(eval(a, env)?, *ty)?,
        Expr::Call(f, args) => {
            let args = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>>>()?;
            call(*f, args)?
        }
    })
}

/// Whether a WHERE keeps a value: TRUE only; NULL and MISSING are unknown.
pub(crate) fn truth(v: &Value) -> Result<Option<bool>> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Missing | Value::Null => Ok(None),
        Value::Str(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::Str(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(Error::DataType(format!(
            "a condition ({} is not a boolean)",
            other.type_name()
        ))),
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value> {
    let cmp = |want: fn(Ordering) -> bool| match a.compare(&b) {
        Some(o) => Value::Bool(want(o)),
        None if a.is_absent() || b.is_absent() => Value::Null,
        // Values of kinds that never meet are unequal, and have no order.
        None => match op {
            BinOp::Eq => Value::Bool(false),
            BinOp::Ne => Value::Bool(true),
            _ => Value::Null,
        },
    };
    Ok(match op {
        BinOp::Eq => cmp(Ordering::is_eq),
        BinOp::Ne => cmp(Ordering::is_ne),
        BinOp::Lt => cmp(Ordering::is_lt),
        BinOp::Le => cmp(Ordering::is_le),
        BinOp::Gt => cmp(Ordering::is_gt),
        BinOp::Ge => cmp(Ordering::is_ge),
        BinOp::Concat => {
            if a.is_absent() || b.is_absent() {
                Value::Null
            } else {
                Value::Str(a.to_text() + &b.to_text())
            }
        }
        _ if a.is_absent() || b.is_absent() => Value::Null,
        _ => {
            let (Some(x), Some(y)) = (a.number(), b.number()) else {
                return Err(Error::DataType(format!(
                    "arithmetic on {} and {}",
                    a.type_name(),
                    b.type_name()
                )));
            };
            arithmetic(op, x, y)?
        }
    })
}

fn arithmetic(op: BinOp, x: Value, y: Value) -> Result<Value> {
    if let (Value::Int(i), Value::Int(j)) = (&x, &y) {
        let (i, j) = (*i, *j);
        if matches!(op, BinOp::Div | BinOp::Mod) && j == 0 {
            return Err(Error::DivideByZero);
        }
        let exact = match op {
            BinOp::Add => i.checked_add(j),
            BinOp::Sub => i.checked_sub(j),
            BinOp::Mul => i.checked_mul(j),
            BinOp::Div => i.checked_div(j),
            _ => i.checked_rem(j),
        };
        if let Some(v) = exact {
            return Ok(Value::Int(v));
        }
    }
    let (f, g) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
    if matches!(op, BinOp::Div | BinOp::Mod) && g == 0.0 {
        return Err(Error::DivideByZero);
    }
    Ok(Value::Float(match op {
        BinOp::Add => f + g,
        BinOp::Sub => f - g,
        BinOp::Mul => f * g,
        BinOp::Div => f / g,
        _ => f % g,
    }))
}

/// SQL LIKE: `%` any run, `_` one character, `esc` makes the next one literal.
fn like(s: &str, pattern: &str, esc: Option<char>) -> Result<bool> {
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            c if Some(c) == esc => match it.next() {
                Some(n) => P::Char(n),
                None => {
                    return Err(Error::Arguments(
                        "LIKE (pattern ends with its escape)".into(),
                    ))
                }
            },
            '%' => P::Any,
            '_' => P::One,
            c => P::Char(c),
        });
    }
    let s: Vec<char> = s.chars().collect();
    // Greedy with one backtrack point: the last `%` seen.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(j) {
            Some(P::One) => {
                i += 1;
                j += 1;
            }
            Some(P::Char(c)) if *c == s[i] => {
                i += 1;
                j += 1;
            }
            Some(P::Any) => {
                star = Some((j, i));
                j += 1;
            }
            _ => match star {
                Some((sj, si)) => {
                    j = sj + 1;
                    i = si + 1;
                    star = Some((sj, si + 1));
                }
                None => return Ok(false),
            },
        }
    }
    Ok(pat[j..].iter().all(|p| matches!(p, P::Any)))
}

/// A numeric CAST of a field's text, when it is a plain integer (the same answer as
/// [`cast`] gives its copy); `None` leaves anything else to [`cast`].
fn number_in(field: &str, ty: Type) -> Option<Value> {
    let i = field.trim().parse::<i64>().ok()?;
    Some(match ty {
        Type::Int => Value::Int(i),
        _ => Value::Float(i as f64),
    })
}

pub(crate) fn cast(v: Value, ty: Type) -> Result<Value> {
    if v.is_absent() {
        return Ok(Value::Null);
    }
    let fail = |v: &Value| Error::Cast(format!("{} {:?} as {ty:?}", v.type_name(), v.to_text()));
    Ok(match ty {
        Type::Int => match &v {
            Value::Bool(b) => Value::Int(i64::from(*b)),
            Value::Timestamp(_) | Value::List(_) | Value::Struct(_) => return Err(fail(&v)),
            _ => match v.number() {
                Some(Value::Int(i)) => Value::Int(i),
                Some(Value::Float(f)) if f.abs() < 9.2e18 => Value::Int(f.trunc() as i64),
                _ => return Err(fail(&v)),
            },
        },
        Type::Float | Type::Decimal => match &v {
            Value::Bool(b) => Value::Float(f64::from(u8::from(*b))),
            Value::Timestamp(_) | Value::List(_) | Value::Struct(_) => return Err(fail(&v)),
            _ => Value::Float(v.as_f64().ok_or_else(|| fail(&v))?),
        },
        Type::String => Value::Str(v.to_text()),
        Type::Bool => match &v {
            Value::Bool(_) => v,
            Value::Int(i) => Value::Bool(*i != 0),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(fail(&v)),
        },
        Type::Timestamp => match &v {
            Value::Timestamp(_) => v,
            Value::Str(s) => Value::Timestamp(parse_timestamp(s)?),
            _ => return Err(fail(&v)),
        },
    })
}

fn text(v: &Value, f: &str) -> Result<String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Timestamp(_) => Ok(v.to_text()),
        _ => Err(Error::DataType(format!("{f} ({})", v.type_name()))),
    }
}

fn int(v: &Value, f: &str) -> Result<i64> {
    match cast(v.clone(), Type::Int) {
        Ok(Value::Int(i)) => Ok(i),
        _ => Err(Error::Arguments(f.into())),
    }
}

fn timestamp(v: &Value, f: &str) -> Result<OffsetDateTime> {
    match v {
        Value::Timestamp(t) => Ok(*t),
        Value::Str(s) => parse_timestamp(s),
        _ => Err(Error::Arguments(f.into())),
    }
}

fn call(f: Func, args: Vec<Value>) -> Result<Value> {
    // Functions of values give NULL for an absent argument; the conditional ones are
    // about absent arguments, and UTCNOW has none.
    if !matches!(f, Func::Coalesce | Func::NullIf | Func::UtcNow)
        && args.iter().any(Value::is_absent)
    {
        return Ok(Value::Null);
    }
    Ok(match f {
        Func::CharLength => Value::Int(text(&args[0], "CHAR_LENGTH")?.chars().count() as i64),
        Func::Lower => Value::Str(text(&args[0], "LOWER")?.to_lowercase()),
        Func::Upper => Value::Str(text(&args[0], "UPPER")?.to_uppercase()),
        Func::Substring => {
            let s: Vec<char> = text(&args[0], "SUBSTRING")?.chars().collect();
            let start = int(&args[1], "SUBSTRING")?;
            // 1-based, and a start before 1 eats into the length, as in SQL.
            let end = match args.get(2) {
                Some(n) => {
                    let n = int(n, "SUBSTRING")?;
                    if n < 0 {
                        return Err(Error::Arguments("SUBSTRING (negative length)".into()));
                    }
                    start.saturating_add(n)
                }
                None => i64::MAX,
            };
            let from = start.max(1) as usize - 1;
            let to = (end.max(1) as usize - 1).min(s.len());
            Value::Str(
                s.get(from..to.max(from))
                    .map_or(String::new(), |c| c.iter().collect()),
            )
        }
        Func::Trim(side) => {
            let s = text(&args[0], "TRIM")?;
            let chars: Vec<char> = match args.get(1) {
                Some(c) => text(c, "TRIM")?.chars().collect(),
                None => vec![' '],
            };
            let t = match side {
                Trim::Both => s.trim_matches(chars.as_slice()),
                Trim::Leading => s.trim_start_matches(chars.as_slice()),
                Trim::Trailing => s.trim_end_matches(chars.as_slice()),
            };
            Value::Str(t.to_owned())
        }
        Func::ToTimestamp => {
            if args.len() > 1 {
                return Err(Error::Arguments(
                    "TO_TIMESTAMP (only ISO 8601 text is read; patterns are not)".into(),
                ));
            }
            Value::Timestamp(timestamp(&args[0], "TO_TIMESTAMP")?)
        }
        Func::UtcNow => Value::Timestamp(OffsetDateTime::now_utc()),
        Func::Extract(part) => {
            let t = timestamp(&args[0], "EXTRACT")?;
            let (oh, om, _) = t.offset().as_hms();
            Value::Int(match part {
                DatePart::Year => i64::from(t.year()),
                DatePart::Month => t.month() as i64,
                DatePart::Day => i64::from(t.day()),
                DatePart::Hour => i64::from(t.hour()),
                DatePart::Minute => i64::from(t.minute()),
                DatePart::Second => i64::from(t.second()),
                DatePart::TimezoneHour => i64::from(oh),
                DatePart::TimezoneMinute => i64::from(om),
            })
        }
        Func::DateAdd(part) => {
            let n = int(&args[0], "DATE_ADD")?;
            let t = timestamp(&args[1], "DATE_ADD")?;
            Value::Timestamp(date_add(part, n, t)?)
        }
        Func::DateDiff(part) => {
            let a = timestamp(&args[0], "DATE_DIFF")?;
            let b = timestamp(&args[1], "DATE_DIFF")?;
            let months = (i64::from(b.year()) - i64::from(a.year())) * 12
                + (b.month() as i64 - a.month() as i64);
            let d = b - a;
            Value::Int(match part {
                DatePart::Year => months / 12,
                DatePart::Month => months,
                DatePart::Day => d.whole_days(),
                DatePart::Hour => d.whole_hours(),
                DatePart::Minute => d.whole_minutes(),
                DatePart::Second => d.whole_seconds(),
                DatePart::TimezoneHour | DatePart::TimezoneMinute => {
                    return Err(Error::Arguments("DATE_DIFF (a time zone part)".into()))
                }
            })
        }
        Func::ToString => {
            let t = timestamp(&args[0], "TO_STRING")?;
            Value::Str(to_string(&t, &text(&args[1], "TO_STRING")?)?)
        }
        Func::Coalesce => args
            .into_iter()
            .find(|v| !v.is_absent())
            .unwrap_or(Value::Null),
        Func::NullIf => {
            let mut args = args.into_iter();
            let (a, b) = (
                args.next().unwrap_or(Value::Null),
                args.next().unwrap_or(Value::Null),
            );
            if a.compare(&b) == Some(Ordering::Equal) {
                Value::Null
            } else {
                a
            }
        }
    })
}

fn date_add(part: DatePart, n: i64, t: OffsetDateTime) -> Result<OffsetDateTime> {
    let overflow = || Error::Arguments("DATE_ADD (out of range)".into());
    let months = match part {
        DatePart::Year => n.checked_mul(12).ok_or_else(overflow)?,
        DatePart::Month => n,
        DatePart::Day => return t.checked_add(Duration::days(n)).ok_or_else(overflow),
        DatePart::Hour => return t.checked_add(Duration::hours(n)).ok_or_else(overflow),
        DatePart::Minute => return t.checked_add(Duration::minutes(n)).ok_or_else(overflow),
        DatePart::Second => return t.checked_add(Duration::seconds(n)).ok_or_else(overflow),
        DatePart::TimezoneHour | DatePart::TimezoneMinute => {
            return Err(Error::Arguments("DATE_ADD (a time zone part)".into()))
        }
    };
    let total = i64::from(t.year()) * 12 + (t.month() as i64 - 1) + months;
    let year = i32::try_from(total.div_euclid(12)).map_err(|_| overflow())?;
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).map_err(|_| overflow())?;
    // The 31st plus a month is the month's last day.
    let day = t.day().min(time::util::days_in_month(month, year));
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| overflow())?;
    Ok(t.replace_date(date))
}

/// TO_STRING's patterns (Java's DateTimeFormatter letters, as AWS documents them).
fn to_string(t: &OffsetDateTime, pattern: &str) -> Result<String> {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .map(|p| i + 1 + p);
            let end = end.ok_or_else(|| Error::Arguments("TO_STRING (unclosed quote)".into()))?;
            out.extend(&chars[i + 1..end]);
            i = end + 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let (oh, om, _) = t.offset().as_hms();
        let offset = |colon: bool| {
            if t.offset().is_utc() {
                return "Z".to_string();
            }
            let sign = if t.offset().is_negative() { '-' } else { '+' };
            let sep = if colon { ":" } else { "" };
            format!("{sign}{:02}{sep}{:02}", oh.abs(), om.abs())
        };
        let pad = |v: i64, n: usize| format!("{v:0n$}");
        match c {
            'y' if n == 2 => out.push_str(&pad(i64::from(t.year()) % 100, 2)),
            'y' => out.push_str(&pad(i64::from(t.year()), n)),
            'M' if n >= 4 => out.push_str(&t.month().to_string()),
            'M' if n == 3 => out.push_str(&t.month().to_string()[..3]),
            'M' => out.push_str(&pad(t.month() as i64, n)),
            'd' => out.push_str(&pad(i64::from(t.day()), n)),
            'H' => out.push_str(&pad(i64::from(t.hour()), n)),
            'h' => out.push_str(&pad(i64::from(hour12), n)),
            'm' => out.push_str(&pad(i64::from(t.minute()), n)),
            's' => out.push_str(&pad(i64::from(t.second()), n)),
            'S' => out.push_str(&format!("{:09}", t.nanosecond())[..n.min(9)]),
            'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            'X' | 'x' => out.push_str(&offset(n >= 3)),
            c if c.is_ascii_alphabetic() => {
                return Err(Error::Arguments(format!(
                    "TO_STRING (pattern letter '{c}')"
                )))
            }
            c => out.extend(std::iter::repeat_n(c, n)),
        }
        i += n;
    }
    Ok(out)
}

/// An aggregate's running state, fed one record at a time.
#[derive(Debug)]
pub(crate) enum Acc {
    Count(i64),
    Sum(Option<Value>),
    Avg(f64, i64),
    Min(Option<Value>),
    Max(Option<Value>),
}

impl Acc {
    pub(crate) fn new(f: AggFunc) -> Acc {
        match f {
            AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => Acc::Sum(None),
            AggFunc::Avg => Acc::Avg(0.0, 0),
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
        }
    }

    pub(crate) fn add(&mut self, a: &Aggregate, env: &Env) -> Result<()> {
        let v = match &a.arg {
            None => Value::Bool(true),
            Some(e) => eval(e, env)?,
        };
        if v.is_absent() {
            return Ok(());
        }
        let numeric = |v: &Value, f: &str| {
            v.number().ok_or_else(|| {
                Error::DataType(format!("{f} ({} {:?})", v.type_name(), v.to_text()))
            })
        };
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum(s) => {
                let x = numeric(&v, "SUM")?;
                *s = Some(match s.take() {
                    None => x,
                    Some(acc) => arithmetic(BinOp::Add, acc, x)?,
                });
            }
            Acc::Avg(sum, n) => {
                *sum += numeric(&v, "AVG")?.as_f64().unwrap_or(0.0);
                *n += 1;
            }
            Acc::Min(m) => keep(m, v, Ordering::Less),
            Acc::Max(m) => keep(m, v, Ordering::Greater),
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(n),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(sum, n) => Value::Float(sum / n as f64),
            Acc::Sum(v) | Acc::Min(v) | Acc::Max(v) => v.unwrap_or(Value::Null),
        }
    }
}

/// MIN and MAX: keep `v` when it is `want` of the value kept.
fn keep(kept: &mut Option<Value>, v: Value, want: Ordering) {
    if kept.as_ref().is_none_or(|k| v.compare(k) == Some(want)) {
        *kept = Some(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::sql::parse;
    use crate::select::value::format_timestamp;

    fn eval_on(sql_expr: &str, record: Record) -> Result<Value> {
        let q = parse(&format!("SELECT {sql_expr} FROM S3Object s"))?;
        let items = q.items.unwrap();
        eval(
            &items[0].expr,
            &Env {
                record: &record,
                aggregates: &[],
            },
        )
    }

    fn doc(json: &str) -> Record {
        Record::Doc(serde_json::from_str(json).unwrap())
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn paths_columns_and_operators() {
        let r = doc(r#"{"a":{"b":[1,2,{"c":"x"}]},"n":5,"Name":"Ann"}"#);
        assert_eq!(
            eval_on("s.a.b[1] + n * 2", r.clone()).unwrap(),
            Value::Int(12)
        );
        assert_eq!(eval_on("a.b[2].c || '!'", r.clone()).unwrap(), s("x!"));
        assert_eq!(
            eval_on("a.b[*].c", r.clone()).unwrap(),
            Value::List(vec![Value::Missing, Value::Missing, s("x")])
        );
        assert_eq!(eval_on("name", r.clone()).unwrap(), s("Ann"));
        assert_eq!(eval_on("\"name\"", r.clone()).unwrap(), Value::Missing);
        assert_eq!(
            eval_on("nope IS MISSING AND nope IS NULL", r.clone()).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            eval_on("nope = 1 OR n = 5", r.clone()).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            eval_on("nope = 1 AND n = 5", r.clone()).unwrap(),
            Value::Null
        );
        assert_eq!(
            eval_on("7 / 2 + 7 % 2 + 1.5", r.clone()).unwrap(),
            Value::Float(5.5)
        );
        assert_eq!(eval_on("1 / 0", r).unwrap_err().code(), "DivideByZero");
        let csv = Record::Csv(csv::StringRecord::from(vec!["10", "abc"]));
        assert_eq!(
            eval_on("_1 > 9 AND _2 = 'abc'", csv.clone()).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(eval_on("_3", csv.clone()).unwrap(), Value::Missing);
        assert_eq!(
            eval_on("_1 BETWEEN 5 AND 10 AND _1 IN (1, 10)", csv.clone()).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(eval_on("_2 NOT IN ('x', NULL)", csv).unwrap(), Value::Null);
    }

    #[test]
    fn like_with_wildcards_and_escape() {
        for (v, p, esc, want) in [
            ("abc", "a%", None, true),
            ("abc", "%c", None, true),
            ("abc", "a_c", None, true),
            ("abc", "a_", None, false),
            ("a%c", "a!%c", Some('!'), true),
            ("abc", "a!%c", Some('!'), false),
            ("mississippi", "%iss%ppi", None, true),
            ("", "%", None, true),
            ("x", "", None, false),
        ] {
            assert_eq!(like(v, p, esc).unwrap(), want, "{v} LIKE {p}");
        }
        let r = doc(r#"{"a":"50%"}"#);
        assert_eq!(
            eval_on("a LIKE '%!%' ESCAPE '!'", r).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn casts_and_string_functions() {
        let r = doc(r#"{"a":"  42 ","t":"x"}"#);
        assert_eq!(
            eval_on("CAST(a AS INT)", r.clone()).unwrap(),
            Value::Int(42)
        );
        assert_eq!(
            eval_on("CAST('2.5' AS FLOAT)", r.clone()).unwrap(),
            Value::Float(2.5)
        );
        assert_eq!(
            eval_on("CAST(t AS INT)", r.clone()).unwrap_err().code(),
            "CastFailed"
        );
        assert_eq!(
            eval_on("CAST(nope AS INT)", r.clone()).unwrap(),
            Value::Null
        );
        assert_eq!(
            eval_on("CAST(3 AS STRING) || 'x'", r.clone()).unwrap(),
            s("3x")
        );
        assert_eq!(
            eval_on("CHAR_LENGTH('héllo')", r.clone()).unwrap(),
            Value::Int(5)
        );
        assert_eq!(
            eval_on("UPPER('abc') || LOWER('DEF')", r.clone()).unwrap(),
            s("ABCdef")
        );
        assert_eq!(
            eval_on("SUBSTRING('123456789', 0)", r.clone()).unwrap(),
            s("123456789")
        );
        assert_eq!(
            eval_on("SUBSTRING('123456789', 1)", r.clone()).unwrap(),
            s("123456789")
        );
        assert_eq!(
            eval_on("SUBSTRING('123456789', 2)", r.clone()).unwrap(),
            s("23456789")
        );
        assert_eq!(
            eval_on("SUBSTRING('123456789' FROM -2 FOR 4)", r.clone()).unwrap(),
            s("1")
        );
        assert_eq!(
            eval_on("SUBSTRING('123456789', 3, 2)", r.clone()).unwrap(),
            s("34")
        );
        assert_eq!(eval_on("TRIM('  x  ')", r.clone()).unwrap(), s("x"));
        assert_eq!(
            eval_on("TRIM(LEADING FROM '  x  ')", r.clone()).unwrap(),
            s("x  ")
        );
        assert_eq!(
            eval_on("TRIM(BOTH '12' FROM '1112211foobar22211122')", r.clone()).unwrap(),
            s("foobar")
        );
        assert_eq!(
            eval_on("COALESCE(nope, NULL, 'x')", r.clone()).unwrap(),
            s("x")
        );
        assert_eq!(eval_on("NULLIF(1, 1)", r.clone()).unwrap(), Value::Null);
        assert_eq!(
            eval_on(
                "CASE WHEN 1 > 2 THEN 'a' WHEN 2 > 1 THEN 'b' END",
                r.clone()
            )
            .unwrap(),
            s("b")
        );
        assert_eq!(
            eval_on("CASE t WHEN 'x' THEN 1 ELSE 2 END", r).unwrap(),
            Value::Int(1)
        );
    }

    #[test]
    fn dates() {
        let r = doc("{}");
        let ts = |sql: &str| match eval_on(sql, r.clone()).unwrap() {
            Value::Timestamp(t) => format_timestamp(&t),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            ts("TO_TIMESTAMP('2007-02-23T12:14:33.079-08:00')"),
            "2007-02-23T12:14:33.079-08:00"
        );
        assert_eq!(
            ts("DATE_ADD(year, 5, '2010-01-01T')"),
            "2015-01-01T00:00:00Z"
        );
        assert_eq!(
            ts("DATE_ADD(month, 1, '2010-01-31T')"),
            "2010-02-28T00:00:00Z"
        );
        assert_eq!(
            ts("DATE_ADD(hour, -1, '2017-01-10T05:30Z')"),
            "2017-01-10T04:30:00Z"
        );
        assert_eq!(
            eval_on("DATE_DIFF(year, '2010-01-01T', '2011-01-01T')", r.clone()).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            eval_on(
                "DATE_DIFF(day, '2010-01-01T23:00Z', '2010-01-03T01:00Z')",
                r.clone()
            )
            .unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            eval_on(
                "EXTRACT(YEAR FROM CAST('2010-01-01T' AS TIMESTAMP))",
                r.clone()
            )
            .unwrap(),
            Value::Int(2010)
        );
        assert_eq!(
            eval_on(
                "EXTRACT(TIMEZONE_HOUR FROM '2017-01-01T13:00-08:00')",
                r.clone()
            )
            .unwrap(),
            Value::Int(-8)
        );
        assert_eq!(
            eval_on(
                "TO_STRING(TO_TIMESTAMP('1969-07-20T20:18Z'), 'MMMM d, y')",
                r.clone()
            )
            .unwrap(),
            s("July 20, 1969")
        );
        assert_eq!(
            eval_on(
                "TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'yyyy-MM-dd''T''hh:mm:ssa X')",
                r
            )
            .unwrap(),
            s("1969-07-20T08:18:00PM Z")
        );
    }

    #[test]
    fn aggregates_skip_absent_values() {
        let q = parse("SELECT COUNT(*), COUNT(a), SUM(a), AVG(a), MIN(a), MAX(a) FROM S3Object")
            .unwrap();
        let mut accs: Vec<Acc> = q.aggregates.iter().map(|a| Acc::new(a.func)).collect();
        for r in ["{\"a\":1}", "{\"a\":\"4\"}", "{}", "{\"a\":null}"] {
            let record = doc(r);
            let env = Env {
                record: &record,
                aggregates: &[],
            };
            for (acc, a) in accs.iter_mut().zip(&q.aggregates) {
                acc.add(a, &env).unwrap();
            }
        }
        let got: Vec<Value> = accs.into_iter().map(Acc::finish).collect();
        assert_eq!(
            got,
            [
                Value::Int(4),
                Value::Int(2),
                Value::Int(5),
                Value::Float(2.5),
                Value::Int(1),
                s("4")
            ]
        );
    }
}
