//! The recursive-descent parser: tokens into a [`Query`], with AWS's error codes and the
//! position of the token that was not expected.

use super::super::error::{Error, Result};
use super::super::value::Value;
use super::ast::*;
use super::lex::{lex, Tok, Token};

/// Words that end an expression or a name, so they are never taken as an alias.
const RESERVED: [&str; 26] = [
    "SELECT", "FROM", "WHERE", "LIMIT", "AS", "AND", "OR", "NOT", "LIKE", "ESCAPE", "IN",
    "BETWEEN", "IS", "NULL", "MISSING", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "TRUE",
    "FALSE", "FOR", "GROUP", "ORDER",
];

pub(crate) fn parse(sql: &str) -> Result<Query> {
    let mut p = Parser {
        toks: lex(sql)?,
        pos: 0,
        aggregates: Vec::new(),
        alias: None,
        in_aggregate: false,
    };
    p.query()
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    aggregates: Vec<Aggregate>,
    /// The FROM clause's alias, which paths may start with.
    alias: Option<String>,
    in_aggregate: bool,
}

impl Parser {
    /// The token at `pos`; past the end, the end (so `pos` may step back after `next`).
    fn at(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.at().tok
    }

    fn next(&mut self) -> Token {
        let t = self.at().clone();
        self.pos += 1;
        t
    }

    fn unexpected(&self) -> Error {
        let t = self.at();
        let token = match &t.tok {
            Tok::Ident(s, false) if is_reserved(s) => format!("KEYWORD:{}", s.to_ascii_lowercase()),
            Tok::Ident(s, _) => format!("IDENTIFIER:{s}"),
            Tok::Str(s) => format!("LITERAL:'{s}'"),
            Tok::Int(i) => format!("LITERAL:{i}"),
            Tok::Float(f) => format!("LITERAL:{f}"),
            Tok::Sym(s) => format!("OPERATOR:{s}"),
            Tok::End => "EOF".into(),
        };
        Error::UnexpectedToken {
            token,
            line: t.line,
            column: t.column,
        }
    }

    fn unsupported(&self, what: &str) -> Error {
        let t = self.at();
        Error::UnsupportedSyntax {
            what: what.into(),
            line: t.line,
            column: t.column,
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s, false) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let yes = matches!(self.peek(), Tok::Sym(s) if *s == sym);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_sym(&mut self, sym: &str) -> Result<()> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn query(&mut self) -> Result<Query> {
        self.expect_kw("SELECT")?;
        // The items are parsed after FROM (its alias tells how paths start): remember
        // where they are.
        let items_at = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Tok::End => return Err(self.unexpected()),
                Tok::Sym("(") => depth += 1,
                Tok::Sym(")") => depth = depth.saturating_sub(1),
                Tok::Ident(s, false) if depth == 0 && s.eq_ignore_ascii_case("FROM") => break,
                _ => {}
            }
            self.next();
        }
        self.next();
        let from = self.source()?;
        let after_from = self.pos;
        self.pos = items_at;
        let items = if self.eat_sym("*") {
            None
        } else {
            let mut items = Vec::new();
            loop {
                let at = items.len();
                items.push(self.item(at)?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            Some(items)
        };
        if !self.is_kw("FROM") {
            return Err(self.unexpected());
        }
        self.pos = after_from;
        let filter = if self.eat_kw("WHERE") {
            let before = self.aggregates.len();
            let e = self.expr()?;
            if self.aggregates.len() != before {
                return Err(Error::Aggregate(
                    "aggregate functions are not allowed in WHERE".into(),
                ));
            }
            Some(e)
        } else {
            None
        };
        let limit = if self.eat_kw("LIMIT") {
            match self.next().tok {
                Tok::Int(n) if n >= 0 => Some(n as u64),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        } else {
            None
        };
        if self.is_kw("GROUP") || self.is_kw("ORDER") || self.is_kw("JOIN") {
            return Err(self.unsupported(&format!("{:?}", self.peek())));
        }
        if *self.peek() != Tok::End {
            return Err(self.unexpected());
        }
        if !self.aggregates.is_empty() {
            let plain = items
                .iter()
                .flatten()
                .any(|i| refers_outside_aggregate(&i.expr));
            if plain || items.is_none() {
                return Err(Error::Aggregate(
                    "a query with aggregates may only select aggregates".into(),
                ));
            }
        }
        Ok(Query {
            items,
            from,
            filter,
            limit,
            aggregates: std::mem::take(&mut self.aggregates),
        })
    }

    fn source(&mut self) -> Result<Vec<Step>> {
        match self.next().tok {
            Tok::Ident(s, _) if s.eq_ignore_ascii_case("S3Object") => {}
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        }
        let mut path = self.steps()?;
        // `S3Object[*]` is the records themselves.
        if path.first() == Some(&Step::All) {
            path.remove(0);
        }
        let alias = self.eat_kw("AS");
        match self.peek().clone() {
            Tok::Ident(name, quoted) if quoted || !is_reserved(&name) => {
                self.next();
                self.alias = Some(name);
            }
            _ if alias => return Err(self.unexpected()),
            _ => {}
        }
        Ok(path)
    }

    /// `.name`, `[n]`, `[*]` after a path's start.
    fn steps(&mut self) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        loop {
            if self.eat_sym(".") {
                match self.next().tok {
                    Tok::Ident(name, exact) => steps.push(Step::Field { name, exact }),
                    Tok::Sym("*") => return Err(self.unsupported("'.*'")),
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
            } else if self.eat_sym("[") {
                match self.next().tok {
                    Tok::Sym("*") => steps.push(Step::All),
                    Tok::Int(n) if n >= 0 => steps.push(Step::Index(n as usize)),
                    Tok::Str(name) => steps.push(Step::Field { name, exact: true }),
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
                self.expect_sym("]")?;
            } else {
                return Ok(steps);
            }
        }
    }

    fn item(&mut self, at: usize) -> Result<Item> {
        let expr = self.expr()?;
        let alias = if self.eat_kw("AS") {
            match self.next().tok {
                Tok::Ident(name, _) => Some(name),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        } else {
            match self.peek().clone() {
                Tok::Ident(name, quoted) if quoted || !is_reserved(&name) => {
                    self.next();
                    Some(name)
                }
                _ => None,
            }
        };
        let name = alias.unwrap_or_else(|| match &expr {
            Expr::Path(steps) | Expr::Column(_, steps) if !steps.is_empty() => match steps.last() {
                Some(Step::Field { name, .. }) => name.clone(),
                _ => format!("_{}", at + 1),
            },
            Expr::Column(i, _) => format!("_{}", i + 1),
            _ => format!("_{}", at + 1),
        });
        Ok(Item { expr, name })
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut left = self.not()?;
        while self.eat_kw("AND") {
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr> {
        let left = self.concat()?;
        let op = match self.peek() {
            Tok::Sym("=") => Some(BinOp::Eq),
            Tok::Sym("!=" | "<>") => Some(BinOp::Ne),
            Tok::Sym("<") => Some(BinOp::Lt),
            Tok::Sym("<=") => Some(BinOp::Le),
            Tok::Sym(">") => Some(BinOp::Gt),
            Tok::Sym(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            return Ok(Expr::Binary(op, Box::new(left), Box::new(self.concat()?)));
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            let missing = if self.eat_kw("NULL") {
                false
            } else if self.eat_kw("MISSING") {
                true
            } else {
                return Err(self.unexpected());
            };
            return Ok(Expr::Is {
                expr: Box::new(left),
                missing,
                negated,
            });
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("LIKE") {
            let pattern = Box::new(self.concat()?);
            let escape = if self.eat_kw("ESCAPE") {
                Some(Box::new(self.concat()?))
            } else {
                None
            };
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                escape,
                negated,
            });
        }
        if self.eat_kw("BETWEEN") {
            let low = Box::new(self.concat()?);
            self.expect_kw("AND")?;
            let high = Box::new(self.concat()?);
            return Ok(Expr::Between {
                expr: Box::new(left),
                low,
                high,
                negated,
            });
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let list = self.list(")")?;
            return Ok(Expr::In {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        if negated {
            return Err(self.unexpected());
        }
        Ok(left)
    }

    /// Expressions separated by commas, up to `close`.
    fn list(&mut self, close: &str) -> Result<Vec<Expr>> {
        let mut list = Vec::new();
        if self.eat_sym(close) {
            return Ok(list);
        }
        loop {
            list.push(self.expr()?);
            if self.eat_sym(close) {
                return Ok(list);
            }
            self.expect_sym(",")?;
        }
    }

    fn concat(&mut self) -> Result<Expr> {
        let mut left = self.additive()?;
        while self.eat_sym("||") {
            left = Expr::Binary(BinOp::Concat, Box::new(left), Box::new(self.additive()?));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                _ => return Ok(left),
            };
            self.next();
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                Tok::Sym("%") => BinOp::Mod,
                _ => return Ok(left),
            };
            self.next();
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_sym("-") {
            return Ok(match self.unary()? {
                Expr::Lit(Value::Int(i)) => Expr::Lit(Value::Int(-i)),
                Expr::Lit(Value::Float(f)) => Expr::Lit(Value::Float(-f)),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr> {
        let t = self.next();
        let (name, quoted) = match t.tok {
            Tok::Int(i) => return Ok(Expr::Lit(Value::Int(i))),
            Tok::Float(f) => return Ok(Expr::Lit(Value::Float(f))),
            Tok::Str(s) => return Ok(Expr::Lit(Value::Str(s))),
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                return Ok(e);
            }
            Tok::Ident(name, quoted) => (name, quoted),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        if !quoted {
            let upper = name.to_ascii_uppercase();
            match upper.as_str() {
                "TRUE" => return Ok(Expr::Lit(Value::Bool(true))),
                "FALSE" => return Ok(Expr::Lit(Value::Bool(false))),
                "NULL" => return Ok(Expr::Lit(Value::Null)),
                "MISSING" => return Ok(Expr::Lit(Value::Missing)),
                "CASE" => return self.case(),
                _ => {}
            }
            if matches!(self.peek(), Tok::Sym("(")) {
                self.next();
                return self.call(&upper);
            }
            if is_reserved(&name) {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        }
        self.path(name, quoted)
    }

    fn path(&mut self, name: String, quoted: bool) -> Result<Expr> {
        let mut steps = vec![Step::Field {
            name,
            exact: quoted,
        }];
        steps.extend(self.steps()?);
        // `s.a` with `FROM S3Object s`, and `S3Object.a`, start at the record.
        let starts_at_record = |n: &str, exact: bool| {
            n.eq_ignore_ascii_case("S3Object") && !exact
                || self.alias.as_deref().is_some_and(|a| {
                    if exact {
                        a == n
                    } else {
                        a.eq_ignore_ascii_case(n)
                    }
                })
        };
        if let Some(Step::Field { name, exact }) = steps.first() {
            if steps.len() > 1 && starts_at_record(name, *exact) {
                steps.remove(0);
            }
        }
        // `_N`: a CSV column by position.
        if let Some(Step::Field { name, exact: false }) = steps.first() {
            if let Some(n) = name.strip_prefix('_').and_then(|d| d.parse::<i64>().ok()) {
                if n < 1 {
                    return Err(Error::ColumnIndex(n));
                }
                return Ok(Expr::Column(n as usize - 1, steps.split_off(1)));
            }
        }
        Ok(Expr::Path(steps))
    }

    fn case(&mut self) -> Result<Expr> {
        let operand = if self.is_kw("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let cond = self.expr()?;
            self.expect_kw("THEN")?;
            whens.push((cond, self.expr()?));
        }
        if whens.is_empty() {
            return Err(self.unexpected());
        }
        let otherwise = if self.eat_kw("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("END")?;
        Ok(Expr::Case {
            operand,
            whens,
            otherwise,
        })
    }

    fn date_part(&mut self) -> Result<DatePart> {
        let part = match self.peek() {
            Tok::Ident(s, false) => match s.to_ascii_uppercase().as_str() {
                "YEAR" => DatePart::Year,
                "MONTH" => DatePart::Month,
                "DAY" => DatePart::Day,
                "HOUR" => DatePart::Hour,
                "MINUTE" => DatePart::Minute,
                "SECOND" => DatePart::Second,
                "TIMEZONE_HOUR" => DatePart::TimezoneHour,
                "TIMEZONE_MINUTE" => DatePart::TimezoneMinute,
                _ => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok(part)
    }

    /// A function call, its `(` taken.
    fn call(&mut self, name: &str) -> Result<Expr> {
        let agg = match name {
            "COUNT" => Some(AggFunc::Count),
            "SUM" => Some(AggFunc::Sum),
            "AVG" => Some(AggFunc::Avg),
            "MIN" => Some(AggFunc::Min),
            "MAX" => Some(AggFunc::Max),
            _ => None,
        };
        if let Some(func) = agg {
            if self.in_aggregate {
                return Err(Error::Aggregate("aggregates cannot be nested".into()));
            }
            let arg = if func == AggFunc::Count && self.eat_sym("*") {
                None
            } else {
                self.in_aggregate = true;
                let arg = self.expr();
                self.in_aggregate = false;
                Some(arg?)
            };
            self.expect_sym(")")?;
            self.aggregates.push(Aggregate { func, arg });
            return Ok(Expr::Agg(self.aggregates.len() - 1));
        }
        let func = match name {
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => Some(Func::CharLength),
            "LOWER" => Some(Func::Lower),
            "UPPER" => Some(Func::Upper),
            "TO_TIMESTAMP" => Some(Func::ToTimestamp),
            "UTCNOW" => Some(Func::UtcNow),
            "TO_STRING" => Some(Func::ToString),
            "COALESCE" => Some(Func::Coalesce),
            "NULLIF" => Some(Func::NullIf),
            _ => None,
        };
        let (func, args) = if let Some(func) = func {
            (func, self.list(")")?)
        } else {
            match name {
                "CAST" => {
                    let e = self.expr()?;
                    self.expect_kw("AS")?;
                    let ty = self.cast_type()?;
                    self.expect_sym(")")?;
                    return Ok(Expr::Cast(Box::new(e), ty));
                }
                "SUBSTRING" => {
                    let s = self.expr()?;
                    let mut args = vec![s];
                    if self.eat_kw("FROM") {
                        args.push(self.expr()?);
                        if self.eat_kw("FOR") {
                            args.push(self.expr()?);
                        }
                        self.expect_sym(")")?;
                    } else {
                        self.expect_sym(",")?;
                        args.extend(self.list(")")?);
                    }
                    (Func::Substring, args)
                }
                "TRIM" => {
                    let side = if self.eat_kw("LEADING") {
                        Some(Trim::Leading)
                    } else if self.eat_kw("TRAILING") {
                        Some(Trim::Trailing)
                    } else if self.eat_kw("BOTH") {
                        Some(Trim::Both)
                    } else {
                        None
                    };
                    let args = if side.is_some() && self.eat_kw("FROM") {
                        vec![self.expr()?]
                    } else {
                        let first = self.expr()?;
                        if self.eat_kw("FROM") {
                            vec![self.expr()?, first]
                        } else {
                            vec![first]
                        }
                    };
                    self.expect_sym(")")?;
                    (Func::Trim(side.unwrap_or(Trim::Both)), args)
                }
                "EXTRACT" => {
                    let part = self.date_part()?;
                    self.expect_kw("FROM")?;
                    let e = self.expr()?;
                    self.expect_sym(")")?;
                    (Func::Extract(part), vec![e])
                }
                "DATE_ADD" | "DATE_DIFF" => {
                    let part = self.date_part()?;
                    self.expect_sym(",")?;
                    let args = self.list(")")?;
                    let f = if name == "DATE_ADD" {
                        Func::DateAdd(part)
                    } else {
                        Func::DateDiff(part)
                    };
                    (f, args)
                }
                _ => {
                    self.pos -= 2;
                    return Err(self.unsupported(&format!("function {name}")));
                }
            }
        };
        let arity = match func {
            Func::UtcNow => 0..=0,
            Func::CharLength | Func::Lower | Func::Upper | Func::Extract(_) => 1..=1,
            Func::ToTimestamp => 1..=2,
            Func::Substring => 2..=3,
            Func::Trim(_) => 1..=2,
            Func::DateAdd(_) | Func::DateDiff(_) | Func::ToString | Func::NullIf => 2..=2,
            Func::Coalesce => 1..=usize::MAX,
        };
        if !arity.contains(&args.len()) {
            return Err(Error::Arguments(name.into()));
        }
        Ok(Expr::Call(func, args))
    }

    fn cast_type(&mut self) -> Result<Type> {
        let ty = match self.peek() {
            Tok::Ident(s, false) => match s.to_ascii_uppercase().as_str() {
                "INT" | "INTEGER" | "BIGINT" | "SMALLINT" => Type::Int,
                "FLOAT" | "REAL" | "DOUBLE" => Type::Float,
                "DECIMAL" | "NUMERIC" => Type::Decimal,
                "STRING" | "VARCHAR" | "CHAR" => Type::String,
                "BOOL" | "BOOLEAN" => Type::Bool,
                "TIMESTAMP" => Type::Timestamp,
                _ => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.next();
        if self.eat_sym("(") {
            // Precision and scale (`DECIMAL(10,2)`, `VARCHAR(20)`) do not change a value here.
            self.list(")")?;
        }
        Ok(ty)
    }
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Whether `e` reads the record outside any aggregate.
fn refers_outside_aggregate(e: &Expr) -> bool {
    let mut found = false;
    visit(e, &mut |e| {
        if matches!(e, Expr::Path(_) | Expr::Column(..)) {
            found = true;
        }
    });
    found
}
