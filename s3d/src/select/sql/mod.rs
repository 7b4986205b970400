//! The SQL S3 Select accepts, parsed by hand: `SELECT … FROM S3Object[*].path [AS] alias
//! [WHERE …] [LIMIT n]` with the operators, functions and aggregates AWS documents.
//!
//! Hand-written rather than `sqlparser`: no dialect of it reads `S3Object[*].a[*]` paths,
//! `MISSING`, or the `DATE_ADD(day, …)` part names, and the subset is small enough that a
//! parser of its own costs less code than adapting another's AST, and no build time.
//!
//! - [`ast`]: what a query is, and walks over its expressions;
//! - [`lex`]: the tokens, with their line and column for AWS's error positions;
//! - [`parse`]: the recursive-descent parser over them.

mod ast;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

pub(crate) use ast::*;
pub(crate) use parse::parse;
