//! The lexer: SQL text into names, strings, numbers and symbols, each with its line and
//! column (AWS's parse errors say where).

use super::super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A name; `quoted` for `"Name"` (kept as written, never a keyword).
    Ident(String, bool),
    Str(String),
    Int(i64),
    Float(f64),
    Sym(&'static str),
    End,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
    pub(super) column: usize,
}

const SYMBOLS: [&str; 19] = [
    "<>", "!=", "<=", ">=", "||", "(", ")", "[", "]", ",", ".", "*", "+", "-", "/", "%", "=", "<",
    ">",
];

pub(super) fn lex(sql: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let (mut i, mut line, mut col) = (0, 1, 1);
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if chars[*i] == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        let (tline, tcol) = (line, col);
        let start = i;
        let tok = if c == '\'' || c == '"' {
            // Quotes double to escape themselves.
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err(Error::UnexpectedToken {
                            token: "end of input (unterminated quote)".into(),
                            line: tline,
                            column: tcol,
                        })
                    }
                    Some(&q) if q == c && chars.get(j + 1) == Some(&c) => {
                        s.push(c);
                        j += 2;
                    }
                    Some(&q) if q == c => break,
                    Some(&other) => {
                        s.push(other);
                        j += 1;
                    }
                }
            }
            advance(&mut i, &mut line, &mut col, j + 1 - start);
            if c == '\'' {
                Tok::Str(s)
            } else {
                Tok::Ident(s, true)
            }
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let mut float = false;
            if chars.get(j) == Some(&'.') && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                float = true;
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if matches!(chars.get(j), Some('e' | 'E')) {
                let mut k = j + 1;
                if matches!(chars.get(k), Some('+' | '-')) {
                    k += 1;
                }
                if chars.get(k).is_some_and(char::is_ascii_digit) {
                    float = true;
                    j = k;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                }
            }
            let text: String = chars[i..j].iter().collect();
            advance(&mut i, &mut line, &mut col, j - start);
            let bad = || Error::InvalidLiteral {
                literal: text.clone(),
                line: tline,
                column: tcol,
            };
            if float {
                Tok::Float(text.parse().map_err(|_| bad())?)
            } else {
                Tok::Int(text.parse().map_err(|_| bad())?)
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            advance(&mut i, &mut line, &mut col, j - start);
            Tok::Ident(text, false)
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err(Error::UnexpectedToken {
                    token: format!("'{c}'"),
                    line: tline,
                    column: tcol,
                });
            };
            advance(&mut i, &mut line, &mut col, sym.chars().count());
            Tok::Sym(sym)
        };
        out.push(Token {
            tok,
            line: tline,
            column: tcol,
        });
    }
    out.push(Token {
        tok: Tok::End,
        line,
        column: col,
    });
    Ok(out)
}
