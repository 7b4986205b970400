//! A request as policies see it (action, resource, principal, condition keys), and
//! the decision they reach.

use std::collections::BTreeMap;

/// What a request wants.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// IAM action, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// Resource ARN, e.g. `arn:aws:s3:::bucket/key`, or `*` for requests that
    /// do not target a resource (ListAllMyBuckets, admin calls).
    pub resource: &'a str,
    /// Who is asking; consulted only by statements with `Principal`/`NotPrincipal`.
    pub principal: Principal<'a>,
    /// Condition keys of the request.
    pub context: &'a Context,
}

/// The caller of a request, as seen by `Principal`/`NotPrincipal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal<'a> {
    /// Unauthenticated request.
    Anonymous,
    /// An IAM user, by user name.
    User(&'a str),
    /// The root credentials; only a `*` principal names them.
    Root,
}

/// Condition keys (case-insensitive) and their values (multi-valued).
#[derive(Clone, Debug, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// Sets `key` to the single value `value`, replacing earlier values.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_lowercase(), vec![value.into()]);
    }

    /// Sets the multi-valued `key` to `values` (possibly none), replacing earlier values.
    pub fn set_all(&mut self, key: &str, values: impl IntoIterator<Item = String>) {
        self.values
            .insert(key.to_lowercase(), values.into_iter().collect());
    }

    /// Appends `value` to the values of the multi-valued `key`.
    #[cfg(test)]
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_lowercase())
            .or_default()
            .push(value.into());
    }

    /// The values of `key`, if it is present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

/// Outcome of evaluating policies against a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An applicable statement allows the request and none denies it.
    Allow,
    /// An applicable statement explicitly denies the request.
    Deny,
    /// No statement applies: an implicit deny.
    Neither,
}

impl Decision {
    /// Explicit Deny wins over Allow, and Allow over Neither.
    pub(super) fn combine(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Deny, _) | (_, Decision::Deny) => Decision::Deny,
            (Decision::Allow, _) | (_, Decision::Allow) => Decision::Allow,
            _ => Decision::Neither,
        }
    }
}
