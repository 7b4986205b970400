//! AWS IAM policy documents: parsing, validation and evaluation.
//!
//! Follows the IAM policy reference closely enough for S3 clients and tools
//! that write AWS-style identity and bucket policies: `Action`/`NotAction`,
//! `Resource`/`NotResource`, `Principal`/`NotPrincipal`, policy variables and
//! the common condition operators (including `...IfExists` and the
//! `ForAnyValue:`/`ForAllValues:` set qualifiers).

use std::fmt;

use serde_json::Value;

mod actions;
mod conditions;
mod dates;
mod document;
mod never;
mod patterns;
mod request;
mod review;
mod s3_keys;
#[cfg(test)]
mod tests;

pub use actions::action_for;
use document::{check_fields, parse_version, statement_label, statement_values, Statement};
pub use request::{Context, Decision, Principal, Request};
pub use review::Reviewed;
pub use s3_keys::{
    has_body_keys, is_body_key, is_existing_tag_key, reads_existing_tags, set_existing_tags,
    set_header_keys, set_legal_hold, set_request_tags, set_retention, takes_tagging_header,
};

/// A parsed, validated IAM policy document (identity policy or bucket policy).
#[derive(Clone, Debug)]
pub struct Policy {
    text: String,
    statements: Vec<Statement>,
    /// The name it is stored under (empty for a bucket's policy), for the audit log.
    name: String,
}

/// Why a policy document was rejected; maps to S3 `MalformedPolicy`.
#[derive(Debug)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(json)
            .map_err(|e| PolicyError(format!("policy is not valid JSON: {e}")))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| PolicyError("policy document must be a JSON object".into()))?;
        check_fields(obj, &["Version", "Id", "Statement"]).map_err(PolicyError)?;
        let substitute = parse_version(obj.get("Version")).map_err(PolicyError)?;
        if obj.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(PolicyError("Id must be a string".into()));
        }
        let statements = statement_values(obj.get("Statement")).map_err(PolicyError)?;
        let statements = statements
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Statement::parse(v, substitute)
                    .map_err(|msg| PolicyError(format!("{}: {msg}", statement_label(i, v))))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            text: json.to_owned(),
            statements,
            name: String::new(),
        })
    }

    /// The policy under its stored name.
    pub fn named(self, name: &str) -> Policy {
        Policy {
            name: name.to_string(),
            ..self
        }
    }

    /// The name it is stored under (empty for a bucket's policy).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document text exactly as it was given to [`Policy::parse`].
    pub fn to_json(&self) -> String {
        self.text.clone()
    }

    /// Evaluates this policy alone: Deny if any applicable statement denies,
    /// else Allow if any allows, else Neither.
    pub fn evaluate(&self, req: &Request) -> Decision {
        self.statements
            .iter()
            .filter(|s| s.applies(req))
            .map(|s| s.effect)
            .fold(Decision::Neither, Decision::combine)
    }
}

impl Policy {
    /// What AWS requires of a bucket policy beyond being a policy: every statement
    /// names a Principal, and has a Resource that can be the bucket or objects in it.
    /// Resources may also name other buckets (`arn:aws:s3:::*`): as on AWS, a bucket's
    /// policy is only ever consulted for requests on that bucket, so they apply to it alone.
    pub fn check_bucket_policy(&self, bucket: &str) -> Result<(), PolicyError> {
        let doc: Value = serde_json::from_str(&self.text).expect("parsed before");
        let values = statement_values(doc.get("Statement")).map_err(PolicyError)?;
        let arn = format!("arn:aws:s3:::{bucket}");
        for (i, (v, statement)) in values.iter().zip(&self.statements).enumerate() {
            let label = statement_label(i, v);
            if statement.principal.is_none() {
                return Err(PolicyError(format!(
                    "{label}: missing required field Principal"
                )));
            }
            if !statement.resource.may_cover_bucket(&arn) {
                return Err(PolicyError(format!(
                    "{label}: Policy has invalid resource (none of its resources is {arn} or {arn}/…)"
                )));
            }
        }
        Ok(())
    }

    /// Whether some condition of this policy tests a key for which `pred` holds:
    /// the keys that cost a lookup (stored tags) or wait for the body are set only then.
    pub fn tests_key(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| pred(c.key()))
    }

    /// Whether some statement grants something to everyone without conditions.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

/// Combines several policies (user's own + group policies + bucket policy):
/// explicit Deny anywhere wins, else Allow anywhere, else Neither (implicit deny).
pub fn evaluate_all<'p>(policies: impl IntoIterator<Item = &'p Policy>, req: &Request) -> Decision {
    policies
        .into_iter()
        .map(|p| p.evaluate(req))
        .fold(Decision::Neither, Decision::combine)
}

/// Names of the built-in policies accepted by [`canned`].
pub const CANNED: &[&str] = &["readonly", "readwrite", "writeonly", "admin"];

/// A built-in policy by name (see [`CANNED`]), modelled on MinIO's canned policies.
pub fn canned(name: &str) -> Option<Policy> {
    let json = match name {
        "readonly" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject","s3:ListBucket","s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        "readwrite" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        "writeonly" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        "admin" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:*","s3:*"],"Resource":["*"]}]}"#
        }
        _ => return None,
    };
    Some(Policy::parse(json).expect("canned policies are valid"))
}
