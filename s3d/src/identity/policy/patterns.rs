//! Resource and action patterns (`*`, `?`) and policy variables (`${aws:username}`).

use super::request::Context;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Lit(char),
    /// `*`: any run of characters, including `/`.
    Star,
    /// `?`: exactly one character.
    One,
}

#[derive(Clone, Debug)]
pub(super) enum Part {
    Tok(Tok),
    Var(String),
}

/// A policy string with its wildcards and `${...}` variables identified.
#[derive(Clone, Debug)]
pub(super) struct Template(Vec<Part>);

impl Template {
    pub(super) fn compile(s: &str, substitute: bool) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if let Some((part, tail)) = substitute.then(|| variable(rest)).flatten() {
                parts.push(part);
                rest = tail;
                continue;
            }
            parts.push(Part::Tok(match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                c => Tok::Lit(c),
            }));
            rest = &rest[c.len_utf8()..];
        }
        Template(parts)
    }

    /// Substitutes variables from `ctx`; `None` if one is missing.
    /// Substituted text is literal so a value such as `*` cannot widen a match.
    pub(super) fn resolve(&self, ctx: &Context) -> Option<Vec<Tok>> {
        let mut toks = Vec::with_capacity(self.0.len());
        for part in &self.0 {
            match part {
                Part::Tok(t) => toks.push(*t),
                Part::Var(name) => {
                    let value = ctx.get(name)?.first()?;
                    toks.extend(value.chars().map(Tok::Lit));
                }
            }
        }
        Some(toks)
    }
}

impl Template {
    /// The pattern with every variable widened to `*`: what it could match once
    /// substituted, for checks made before any request is known.
    pub(super) fn widened(&self) -> Vec<Tok> {
        self.0
            .iter()
            .map(|part| match part {
                Part::Tok(t) => *t,
                Part::Var(_) => Tok::Star,
            })
            .collect()
    }
}

/// Parses a `${name}` at the start of `s`; `${*}`, `${?}` and `${$}` escape
/// the literal characters.
pub(super) fn variable(s: &str) -> Option<(Part, &str)> {
    let (name, tail) = s.strip_prefix("${")?.split_once('}')?;
    let part = match name {
        "*" => Part::Tok(Tok::Lit('*')),
        "?" => Part::Tok(Tok::Lit('?')),
        "$" => Part::Tok(Tok::Lit('$')),
        _ => Part::Var(name.trim().to_owned()),
    };
    Some((part, tail))
}

/// The pattern as plain text, for operators without wildcards.
pub(super) fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

pub(super) fn wildcard_match(pattern: &[Tok], input: &str) -> bool {
    glob(pattern, input, false)
}

/// Whether `pattern` matches some string that starts with `prefix` (whatever follows).
pub(super) fn may_match_prefixed(pattern: &[Tok], prefix: &str) -> bool {
    glob(pattern, prefix, true)
}

/// Matches `pattern` against `input`; with `open_end`, against `input` followed by
/// any text: once the input is used up, whatever pattern is left can match that text.
fn glob(pattern: &[Tok], input: &str, open_end: bool) -> bool {
    let input: Vec<char> = input.chars().collect();
    let (mut p, mut i) = (0, 0);
    // Position of the last `*` and the input index it currently absorbs up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while i < input.len() {
        match pattern.get(p) {
            Some(Tok::Star) => {
                backtrack = Some((p, i));
                p += 1;
            }
            Some(Tok::One) => (p, i) = (p + 1, i + 1),
            Some(Tok::Lit(c)) if *c == input[i] => (p, i) = (p + 1, i + 1),
            _ => match backtrack {
                Some((star, absorbed)) => {
                    backtrack = Some((star, absorbed + 1));
                    (p, i) = (star + 1, absorbed + 1);
                }
                None => return false,
            },
        }
    }
    open_end || pattern[p..].iter().all(|t| *t == Tok::Star)
}
