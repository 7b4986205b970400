//! A policy's statements seen without a request, for the access analyzer: whom each
//! one reaches, which whole-service wildcards it grants, and whether its conditions can
//! ever hold. "Public" is the evaluator's own rule (`Statement::is_public`).

use super::document::{statement_label, statement_values, Statement};
use super::never::never_holds;
use super::request::Decision;
use super::Policy;
use serde_json::Value;

/// What one statement grants.
#[derive(Clone, Debug)]
pub struct Reviewed {
    /// `Statement N (Sid "…")`.
    pub label: String,
    /// The statement as the document holds it.
    pub json: Value,
    pub allow: bool,
    /// An Allow that reaches anonymous callers without conditions.
    pub public: bool,
    /// An Allow that reaches anonymous callers under conditions.
    pub anonymous_if: bool,
    /// The users an Allow names in its `Principal`.
    pub users: Vec<String>,
    /// The whole-service action wildcards an Allow grants (`*`, `s3:*`), or `NotAction`.
    pub wildcards: Vec<String>,
    /// An Allow of every S3 action (`s3:*` or `*`) on every resource (`*` or
    /// `arn:aws:s3:::*`).
    pub all_s3: bool,
    /// Why its conditions can never all hold, if they cannot (`never.rs`).
    pub never: Option<String>,
}

impl Policy {
    /// Each statement's review; `now_ms` (Unix milliseconds) is the clock conditions
    /// on `aws:CurrentTime` are held against.
    pub fn review(&self, now_ms: i64) -> Vec<Reviewed> {
        let doc: Value = serde_json::from_str(&self.text).expect("parsed before");
        let values = statement_values(doc.get("Statement")).expect("parsed before");
        values
            .iter()
            .zip(&self.statements)
            .enumerate()
            .map(|(i, (v, s))| review(s, statement_label(i, v), v.clone(), now_ms))
            .collect()
    }
}

fn review(s: &Statement, label: String, json: Value, now_ms: i64) -> Reviewed {
    let allow = s.effect == Decision::Allow;
    let anonymous = allow && s.reaches_anonymous();
    let users = match &s.principal {
        Some(p) if allow && !p.negated => p.users.clone(),
        _ => Vec::new(),
    };
    let wildcards = if !allow {
        Vec::new()
    } else if s.action.negated {
        vec!["NotAction".to_string()]
    } else {
        s.action
            .texts
            .iter()
            .filter(|a| a.as_str() == "*" || a.split_once(':').is_some_and(|(_, op)| op == "*"))
            .cloned()
            .collect()
    };
    let names = |texts: &[String], any: &[&str]| {
        texts
            .iter()
            .any(|t| any.iter().any(|a| t.eq_ignore_ascii_case(a)))
    };
    let all_s3 = allow
        && !s.action.negated
        && !s.resource.negated
        && names(&s.action.texts, &["*", "s3:*"])
        && names(&s.resource.texts, &["*", "arn:aws:s3:::*"]);
    Reviewed {
        label,
        json,
        allow,
        public: s.is_public(),
        anonymous_if: anonymous && !s.conditions.is_empty(),
        users,
        wildcards,
        all_s3,
        never: never_holds(&s.conditions, now_ms),
    }
}
