//! A parsed query: its items, FROM path, filter, limit and aggregates, the expression
//! tree, and walks over it.

use super::super::error::Result;
use super::super::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    /// `None` for `SELECT *`.
    pub items: Option<Vec<Item>>,
    /// The path below each record that `FROM S3Object[*].a.b` names.
    pub from: Vec<Step>,
    pub filter: Option<Expr>,
    pub limit: Option<u64>,
    /// The aggregates the items use (`Expr::Agg` indexes them); a query with any is an
    /// aggregate query and answers one row.
    pub aggregates: Vec<Aggregate>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub expr: Expr,
    /// The alias, or the name a JSON output gives the field.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// A field; `exact` when the name was quoted (case-sensitive).
    Field {
        name: String,
        exact: bool,
    },
    Index(usize),
    /// `[*]`: every element of a list.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Aggregate {
    pub func: AggFunc,
    /// `None` for `COUNT(*)`.
    pub arg: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Type {
    Int,
    Float,
    Decimal,
    String,
    Bool,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DatePart {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    TimezoneHour,
    TimezoneMinute,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Trim {
    Both,
    Leading,
    Trailing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Func {
    CharLength,
    Lower,
    Upper,
    /// `SUBSTRING(s, start[, length])`, also written `SUBSTRING(s FROM start [FOR length])`.
    Substring,
    /// `TRIM([side] [chars FROM] s)`: args are `s` then the optional characters.
    Trim(Trim),
    ToTimestamp,
    UtcNow,
    Extract(DatePart),
    DateAdd(DatePart),
    DateDiff(DatePart),
    ToString,
    Coalesce,
    NullIf,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Value),
    /// A path from the record (the FROM alias already taken off).
    Path(Vec<Step>),
    /// A CSV column (0-based), by position `_N` or by a header name bound to it, then
    /// the rest of the path.
    Column(usize, Vec<Step>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `IS [NOT] NULL` (MISSING is null too) or `IS [NOT] MISSING`.
    Is {
        expr: Box<Expr>,
        missing: bool,
        negated: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, Type),
    Call(Func, Vec<Expr>),
    Agg(usize),
}

/// Calls `f` on `e` and every expression below it, aggregates' arguments excepted (they
/// live in [`Query::aggregates`]).
pub(crate) fn visit(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Lit(_) | Expr::Path(_) | Expr::Column(..) | Expr::Agg(_) => {}
        Expr::Neg(a) | Expr::Not(a) | Expr::Cast(a, _) => visit(a, f),
        Expr::Binary(_, a, b) => {
            visit(a, f);
            visit(b, f);
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            ..
        } => {
            visit(expr, f);
            visit(pattern, f);
            if let Some(e) = escape {
                visit(e, f);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            visit(expr, f);
            visit(low, f);
            visit(high, f);
        }
        Expr::In { expr, list, .. } => {
            visit(expr, f);
            list.iter().for_each(|e| visit(e, f));
        }
        Expr::Is { expr, .. } => visit(expr, f),
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            if let Some(o) = operand {
                visit(o, f);
            }
            for (w, t) in whens {
                visit(w, f);
                visit(t, f);
            }
            if let Some(o) = otherwise {
                visit(o, f);
            }
        }
        Expr::Call(_, args) => args.iter().for_each(|a| visit(a, f)),
    }
}

/// The same walk, changing what it meets.
pub(crate) fn visit_mut(e: &mut Expr, f: &mut impl FnMut(&mut Expr) -> Result<()>) -> Result<()> {
    f(e)?;
    match e {
        Expr::Lit(_) | Expr::Path(_) | Expr::Column(..) | Expr::Agg(_) => Ok(()),
        Expr::Neg(a) | Expr::Not(a) | Expr::Cast(a, _) => visit_mut(a, f),
        Expr::Binary(_, a, b) => {
            visit_mut(a, f)?;
            visit_mut(b, f)
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            ..
        } => {
            visit_mut(expr, f)?;
            visit_mut(pattern, f)?;
            escape.as_deref_mut().map_or(Ok(()), |e| visit_mut(e, f))
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            visit_mut(expr, f)?;
            visit_mut(low, f)?;
            visit_mut(high, f)
        }
        Expr::In { expr, list, .. } => {
            visit_mut(expr, f)?;
            list.iter_mut().try_for_each(|e| visit_mut(e, f))
        }
        Expr::Is { expr, .. } => visit_mut(expr, f),
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            if let Some(o) = operand {
                visit_mut(o, f)?;
            }
            for (w, t) in whens {
                visit_mut(w, f)?;
                visit_mut(t, f)?;
            }
            otherwise.as_deref_mut().map_or(Ok(()), |o| visit_mut(o, f))
        }
        Expr::Call(_, args) => args.iter_mut().try_for_each(|a| visit_mut(a, f)),
    }
}

impl Query {
    /// Every expression the query evaluates (items, filter, aggregates' arguments).
    pub(crate) fn exprs_mut(&mut self) -> impl Iterator<Item = &mut Expr> {
        self.items
            .iter_mut()
            .flatten()
            .map(|i| &mut i.expr)
            .chain(self.filter.as_mut())
            .chain(self.aggregates.iter_mut().filter_map(|a| a.arg.as_mut()))
    }
}
