//! The policy document's structure: statements and their elements, parsed and validated.

use super::conditions::{parse_conditions, Condition};
use super::patterns::{may_match_prefixed, wildcard_match, Template};
use super::request::{Context, Decision, Principal, Request};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub(super) struct Statement {
    pub(super) effect: Decision,
    pub(super) action: Element,
    pub(super) resource: Element,
    pub(super) principal: Option<PrincipalElement>,
    pub(super) conditions: Vec<Condition>,
}

pub(super) const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
];

impl Statement {
    pub(super) fn parse(v: &Value, substitute: bool) -> Result<Statement, String> {
        let obj = v.as_object().ok_or("must be a JSON object")?;
        check_fields(obj, STATEMENT_FIELDS)?;
        if obj.get("Sid").is_some_and(|sid| !sid.is_string()) {
            return Err("Sid must be a string".into());
        }
        let effect = parse_effect(obj.get("Effect"))?;
        let (negated, actions) =
            one_of(obj, "Action", "NotAction")?.ok_or("missing Action (or NotAction)")?;
        let action = Element::parse(negated, actions, "Action", |s| {
            validate_action(s)?;
            Ok(Template::compile(&s.to_lowercase(), false))
        })?;
        let (negated, resources) =
            one_of(obj, "Resource", "NotResource")?.ok_or("missing Resource (or NotResource)")?;
        let resource = Element::parse(negated, resources, "Resource", |s| {
            validate_resource(s)?;
            Ok(Template::compile(s, substitute))
        })?;
        let principal = match one_of(obj, "Principal", "NotPrincipal")? {
            Some((negated, v)) => Some(PrincipalElement::parse(negated, v)?),
            None => None,
        };
        let conditions = match obj.get("Condition") {
            Some(v) => parse_conditions(v, substitute)?,
            None => Vec::new(),
        };
        Ok(Statement {
            effect,
            action,
            resource,
            principal,
            conditions,
        })
    }

    /// Whether it grants something to everyone without conditions (what AWS calls a
    /// public statement; the public access block's RestrictPublicBuckets voids it).
    pub(super) fn is_public(&self) -> bool {
        self.effect == Decision::Allow && self.conditions.is_empty() && self.reaches_anonymous()
    }

    /// Whether its principal takes in anonymous callers (`*`, or a `NotPrincipal`).
    pub(super) fn reaches_anonymous(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.matches(Principal::Anonymous))
    }

    pub(super) fn applies(&self, req: &Request) -> bool {
        let resources: &[&str] = if req.resource == "*" {
            // A request without a specific resource is covered only by
            // policy resources that span every bucket.
            &["*", "arn:aws:s3:::*"]
        } else {
            &[req.resource]
        };
        self.principal
            .as_ref()
            .is_none_or(|p| p.matches(req.principal))
            && self
                .action
                .matches(&[&req.action.to_lowercase()], req.context)
            && self.resource.matches(resources, req.context)
            && self.conditions.iter().all(|c| c.holds(req.context))
    }
}

pub(super) fn statement_label(index: usize, v: &Value) -> String {
    match v.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!("Statement {} (Sid {sid:?})", index + 1),
        None => format!("Statement {}", index + 1),
    }
}

pub(super) fn check_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field {k:?}")),
        None => Ok(()),
    }
}

/// Returns whether policy variables are substituted: only version 2012-10-17
/// has them; older documents treat `${...}` as literal text.
pub(super) fn parse_version(v: Option<&Value>) -> Result<bool, String> {
    match v {
        None => Ok(false),
        Some(Value::String(s)) if s == "2012-10-17" => Ok(true),
        Some(Value::String(s)) if s == "2008-10-17" => Ok(false),
        Some(other) => Err(format!(
            "unsupported Version {other} (expected \"2012-10-17\" or \"2008-10-17\")"
        )),
    }
}

pub(super) fn statement_values(v: Option<&Value>) -> Result<&[Value], String> {
    match v {
        None => Err("missing Statement".into()),
        Some(Value::Array(items)) if items.is_empty() => Err("Statement must not be empty".into()),
        Some(Value::Array(items)) => Ok(items),
        Some(obj @ Value::Object(_)) => Ok(std::slice::from_ref(obj)),
        Some(_) => Err("Statement must be an object or an array of objects".into()),
    }
}

pub(super) fn parse_effect(v: Option<&Value>) -> Result<Decision, String> {
    match v {
        None => Err("missing Effect".into()),
        Some(Value::String(s)) if s == "Allow" => Ok(Decision::Allow),
        Some(Value::String(s)) if s == "Deny" => Ok(Decision::Deny),
        Some(Value::String(s)) => Err(format!(
            "unknown Effect {s:?} (expected \"Allow\" or \"Deny\")"
        )),
        Some(_) => Err("Effect must be a string".into()),
    }
}

/// The element `name` or its negation `not_name`, at most one of which may be present.
pub(super) fn one_of<'v>(
    obj: &'v Map<String, Value>,
    name: &str,
    not_name: &str,
) -> Result<Option<(bool, &'v Value)>, String> {
    match (obj.get(name), obj.get(not_name)) {
        (Some(_), Some(_)) => Err(format!("both {name} and {not_name} given; use only one")),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty array of strings.
pub(super) fn string_list(v: &Value, name: &str) -> Result<Vec<String>, String> {
    let items = match v {
        Value::String(s) => return Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => return Err(format!("{name} must not be empty")),
        _ => return Err(format!("{name} must be a string or an array of strings")),
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{name} must be a string or an array of strings"))
        })
        .collect()
}

pub(super) fn validate_action(s: &str) -> Result<(), String> {
    let well_formed = s == "*"
        || s.split_once(':')
            .is_some_and(|(service, action)| !service.is_empty() && !action.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "invalid action {s:?} (expected \"service:Action\")"
        ))
    }
}

pub(super) fn validate_resource(s: &str) -> Result<(), String> {
    if s == "*" || s.starts_with("arn:") {
        Ok(())
    } else {
        Err(format!("invalid resource {s:?} (expected \"*\" or an ARN)"))
    }
}

/// `Action`/`Resource` and their `Not...` forms: a list of wildcard patterns.
#[derive(Clone, Debug)]
pub(super) struct Element {
    pub(super) negated: bool,
    patterns: Vec<Template>,
    /// The patterns as written, for the analyzer's review (`review.rs`).
    pub(super) texts: Vec<String>,
}

impl Element {
    pub(super) fn parse(
        negated: bool,
        v: &Value,
        name: &str,
        compile: impl Fn(&str) -> Result<Template, String>,
    ) -> Result<Element, String> {
        let texts = string_list(v, name)?;
        let patterns = texts.iter().map(|s| compile(s)).collect::<Result<_, _>>()?;
        Ok(Element {
            negated,
            patterns,
            texts,
        })
    }

    /// Whether any pattern matches any of `inputs`, inverted for `Not...`.
    /// A pattern whose policy variable is missing makes the whole element
    /// fail to match, so neither form applies (AWS semantics).
    pub(super) fn matches(&self, inputs: &[&str], ctx: &Context) -> bool {
        let mut hit = false;
        for pattern in &self.patterns {
            let Some(toks) = pattern.resolve(ctx) else {
                return false;
            };
            hit |= inputs.iter().any(|input| wildcard_match(&toks, input));
        }
        hit != self.negated
    }

    /// Whether this `Resource` can name bucket `arn` or an object in it; a
    /// `NotResource` always can (it names what it leaves out).
    pub(super) fn may_cover_bucket(&self, arn: &str) -> bool {
        self.negated
            || self.patterns.iter().any(|p| {
                let toks = p.widened();
                wildcard_match(&toks, arn) || may_match_prefixed(&toks, &format!("{arn}/"))
            })
    }
}

/// `Principal`/`NotPrincipal`.
#[derive(Clone, Debug)]
pub(super) struct PrincipalElement {
    pub(super) negated: bool,
    pub(super) everyone: bool,
    /// Names the account (`arn:aws:iam::<account>:root` or the bare account id): the
    /// root credentials. The server is one account, so any account id names it.
    pub(super) account: bool,
    pub(super) users: Vec<String>,
}

impl PrincipalElement {
    pub(super) fn parse(negated: bool, v: &Value) -> Result<PrincipalElement, String> {
        let mut element = PrincipalElement {
            negated,
            everyone: false,
            account: false,
            users: Vec::new(),
        };
        match v {
            Value::String(s) if s == "*" => element.everyone = true,
            Value::Object(map) if !map.is_empty() => {
                for (kind, ids) in map {
                    if kind != "AWS" {
                        return Err(format!(
                            "unsupported Principal type {kind:?} (only \"AWS\" is supported)"
                        ));
                    }
                    for id in string_list(ids, "Principal AWS")? {
                        element.add(&id);
                    }
                }
            }
            _ => return Err("Principal must be \"*\" or an object like {\"AWS\": [...]}".into()),
        }
        Ok(element)
    }

    /// Records one `AWS` principal: `*`, an account (ARN or id), a user ARN or a plain
    /// user name. Other ARNs (roles) name nobody this server knows.
    pub(super) fn add(&mut self, id: &str) {
        if id == "*" {
            self.everyone = true;
        } else if is_account(id) {
            self.account = true;
        } else if !id.starts_with("arn:") {
            self.users.push(id.to_owned());
        } else if let Some(name) = iam_user_name(id) {
            self.users.push(name.to_owned());
        }
    }

    /// `Principal` applies to the callers it names; `NotPrincipal` to every caller it
    /// does not name, anonymous ones included, whether its statement allows or denies.
    pub(super) fn matches(&self, who: Principal) -> bool {
        let hit = self.everyone
            || match who {
                Principal::User(name) => self.users.iter().any(|u| u == name),
                Principal::Root => self.account,
                Principal::Anonymous => false,
            };
        hit != self.negated
    }
}

/// `arn:aws:iam::<12 digits>:root` or the 12 digits alone.
fn is_account(id: &str) -> bool {
    let digits = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    digits(id)
        || id
            .strip_prefix("arn:")
            .and_then(|rest| rest.split_once(":iam::"))
            .and_then(|(_, rest)| rest.strip_suffix(":root"))
            .is_some_and(digits)
}

/// The user name in `arn:aws:iam::<account>:user/[path/]NAME`.
pub(super) fn iam_user_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", _, _, resource] => {
            let path = resource.strip_prefix("user/")?;
            path.rsplit('/').next().filter(|name| !name.is_empty())
        }
        _ => None,
    }
}
