//! AWS IAM policy documents: parsing, validation and evaluation.
//!
//! Follows the IAM policy reference closely enough for S3 clients and tools
//! that write AWS-style identity and bucket policies: `Action`/`NotAction`,
//! `Resource`/`NotResource`, `Principal`/`NotPrincipal`, policy variables and
//! the common condition operators (including `...IfExists` and the
//! `ForAnyValue:`/`ForAllValues:` set qualifiers).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

/// A parsed, validated IAM policy document (identity policy or bucket policy).
#[derive(Clone, Debug)]
pub struct Policy {
    text: String,
    statements: Vec<Statement>,
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
    fn combine(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Deny, _) | (_, Decision::Deny) => Decision::Deny,
            (Decision::Allow, _) | (_, Decision::Allow) => Decision::Allow,
            _ => Decision::Neither,
        }
    }
}

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
        })
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
    /// names a Principal, and every Resource is the bucket or objects in it.
    pub fn check_bucket_policy(&self, bucket: &str) -> Result<(), PolicyError> {
        let doc: Value = serde_json::from_str(&self.text).expect("parsed before");
        let statements = statement_values(doc.get("Statement")).map_err(PolicyError)?;
        let arn = format!("arn:aws:s3:::{bucket}");
        for (i, v) in statements.iter().enumerate() {
            let label = statement_label(i, v);
            if v.get("Principal").is_none() && v.get("NotPrincipal").is_none() {
                return Err(PolicyError(format!(
                    "{label}: missing required field Principal"
                )));
            }
            let resources = v.get("Resource").or_else(|| v.get("NotResource"));
            for r in resources
                .map(|r| string_list(r, "Resource"))
                .transpose()
                .map_err(PolicyError)?
                .unwrap_or_default()
            {
                let inside = r == arn
                    || r.strip_prefix(&arn)
                        .is_some_and(|rest| rest.starts_with('/'));
                if !inside {
                    return Err(PolicyError(format!(
                        "{label}: Policy has invalid resource {r:?} (it must be {arn} or {arn}/…)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether some statement grants something to everyone without conditions.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Decision::Allow
                && s.conditions.is_empty()
                && s.principal
                    .as_ref()
                    .is_some_and(|p| p.everyone && !p.negated)
        })
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

/// Returned by [`action_for`] for operations it does not know. Only the
/// wildcards `s3:*` and `*` grant it, so a new s3s operation is never
/// silently authorized by a narrowly scoped policy.
const UNKNOWN_ACTION: &str = "s3:UnknownOperation";

/// The IAM action for an s3s operation name (`S3Operation::name()`), given
/// whether the request names an object version (`versionId`).
///
/// Mapping per <https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-actions.html>.
/// CopyObject/UploadPartCopy map to the destination's `s3:PutObject`; the
/// caller checks `s3:GetObject` on the copy source separately.
pub fn action_for(op: &str, has_version_id: bool) -> &'static str {
    object_action(op, has_version_id)
        .or_else(|| bucket_action(op))
        .or_else(|| bucket_config_action(op))
        .unwrap_or(UNKNOWN_ACTION)
}

/// Object-level operations, some of which have `...Version...` variants.
fn object_action(op: &str, v: bool) -> Option<&'static str> {
    let pick = |plain, version| Some(if v { version } else { plain });
    match op {
        "GetObject" | "HeadObject" => pick("s3:GetObject", "s3:GetObjectVersion"),
        "GetObjectAttributes" => pick("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
        "GetObjectAcl" => pick("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        "PutObjectAcl" => pick("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        "GetObjectTagging" => pick("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        "PutObjectTagging" => pick("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        "DeleteObjectTagging" => pick("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        "DeleteObject" => pick("s3:DeleteObject", "s3:DeleteObjectVersion"),
        "GetObjectTorrent" => pick("s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
        "DeleteObjects" => Some("s3:DeleteObject"),
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => Some("s3:PutObject"),
        "SelectObjectContent" => Some("s3:GetObject"),
        "AbortMultipartUpload" => Some("s3:AbortMultipartUpload"),
        "ListParts" => Some("s3:ListMultipartUploadParts"),
        "RestoreObject" => Some("s3:RestoreObject"),
        "GetObjectRetention" => Some("s3:GetObjectRetention"),
        "PutObjectRetention" => Some("s3:PutObjectRetention"),
        "GetObjectLegalHold" => Some("s3:GetObjectLegalHold"),
        "PutObjectLegalHold" => Some("s3:PutObjectLegalHold"),
        "WriteGetObjectResponse" => Some("s3-object-lambda:WriteGetObjectResponse"),
        _ => None,
    }
}

/// Bucket lifecycle, listing and access-control operations.
fn bucket_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "ListBuckets" => "s3:ListAllMyBuckets",
        "ListDirectoryBuckets" => "s3express:ListAllMyDirectoryBuckets",
        "CreateSession" => "s3express:CreateSession",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "s3:ListBucket",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "DeleteBucketPolicy" => "s3:DeleteBucketPolicy",
        "GetBucketPolicyStatus" => "s3:GetBucketPolicyStatus",
        "GetBucketAcl" => "s3:GetBucketAcl",
        "PutBucketAcl" => "s3:PutBucketAcl",
        "GetBucketOwnershipControls" => "s3:GetBucketOwnershipControls",
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            "s3:PutBucketOwnershipControls"
        }
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        _ => return None,
    })
}

/// Bucket sub-resource configuration operations; AWS maps most `Delete...`
/// calls to the matching `Put...` permission.
fn bucket_config_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "GetBucketTagging" => "s3:GetBucketTagging",
        "PutBucketTagging" | "DeleteBucketTagging" => "s3:PutBucketTagging",
        "GetBucketCors" => "s3:GetBucketCORS",
        "PutBucketCors" | "DeleteBucketCors" => "s3:PutBucketCORS",
        "GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
            "s3:PutLifecycleConfiguration"
        }
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetObjectLockConfiguration" => "s3:GetBucketObjectLockConfiguration",
        "PutObjectLockConfiguration" => "s3:PutBucketObjectLockConfiguration",
        "GetBucketNotificationConfiguration" => "s3:GetBucketNotification",
        "PutBucketNotificationConfiguration" => "s3:PutBucketNotification",
        "GetBucketWebsite" => "s3:GetBucketWebsite",
        "PutBucketWebsite" => "s3:PutBucketWebsite",
        "DeleteBucketWebsite" => "s3:DeleteBucketWebsite",
        "GetBucketLogging" => "s3:GetBucketLogging",
        "PutBucketLogging" => "s3:PutBucketLogging",
        "GetBucketReplication" => "s3:GetReplicationConfiguration",
        "PutBucketReplication" | "DeleteBucketReplication" => "s3:PutReplicationConfiguration",
        "GetBucketRequestPayment" => "s3:GetBucketRequestPayment",
        "PutBucketRequestPayment" => "s3:PutBucketRequestPayment",
        "GetBucketAccelerateConfiguration" => "s3:GetAccelerateConfiguration",
        "PutBucketAccelerateConfiguration" => "s3:PutAccelerateConfiguration",
        "GetBucketAnalyticsConfiguration" | "ListBucketAnalyticsConfigurations" => {
            "s3:GetAnalyticsConfiguration"
        }
        "PutBucketAnalyticsConfiguration" | "DeleteBucketAnalyticsConfiguration" => {
            "s3:PutAnalyticsConfiguration"
        }
        "GetBucketInventoryConfiguration" | "ListBucketInventoryConfigurations" => {
            "s3:GetInventoryConfiguration"
        }
        "PutBucketInventoryConfiguration" | "DeleteBucketInventoryConfiguration" => {
            "s3:PutInventoryConfiguration"
        }
        "GetBucketMetricsConfiguration" | "ListBucketMetricsConfigurations" => {
            "s3:GetMetricsConfiguration"
        }
        "PutBucketMetricsConfiguration" | "DeleteBucketMetricsConfiguration" => {
            "s3:PutMetricsConfiguration"
        }
        "GetBucketIntelligentTieringConfiguration"
        | "ListBucketIntelligentTieringConfigurations" => "s3:GetIntelligentTieringConfiguration",
        "PutBucketIntelligentTieringConfiguration"
        | "DeleteBucketIntelligentTieringConfiguration" => "s3:PutIntelligentTieringConfiguration",
        "CreateBucketMetadataTableConfiguration" => "s3:CreateBucketMetadataTableConfiguration",
        "GetBucketMetadataTableConfiguration" => "s3:GetBucketMetadataTableConfiguration",
        "DeleteBucketMetadataTableConfiguration" => "s3:DeleteBucketMetadataTableConfiguration",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Document structure
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Statement {
    effect: Decision,
    action: Element,
    resource: Element,
    principal: Option<PrincipalElement>,
    conditions: Vec<Condition>,
}

const STATEMENT_FIELDS: &[&str] = &[
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
    fn parse(v: &Value, substitute: bool) -> Result<Statement, String> {
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

    fn applies(&self, req: &Request) -> bool {
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

fn statement_label(index: usize, v: &Value) -> String {
    match v.get("Sid").and_then(Value::as_str) {
        Some(sid) => format!("Statement {} (Sid {sid:?})", index + 1),
        None => format!("Statement {}", index + 1),
    }
}

fn check_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field {k:?}")),
        None => Ok(()),
    }
}

/// Returns whether policy variables are substituted: only version 2012-10-17
/// has them; older documents treat `${...}` as literal text.
fn parse_version(v: Option<&Value>) -> Result<bool, String> {
    match v {
        None => Ok(false),
        Some(Value::String(s)) if s == "2012-10-17" => Ok(true),
        Some(Value::String(s)) if s == "2008-10-17" => Ok(false),
        Some(other) => Err(format!(
            "unsupported Version {other} (expected \"2012-10-17\" or \"2008-10-17\")"
        )),
    }
}

fn statement_values(v: Option<&Value>) -> Result<&[Value], String> {
    match v {
        None => Err("missing Statement".into()),
        Some(Value::Array(items)) if items.is_empty() => Err("Statement must not be empty".into()),
        Some(Value::Array(items)) => Ok(items),
        Some(obj @ Value::Object(_)) => Ok(std::slice::from_ref(obj)),
        Some(_) => Err("Statement must be an object or an array of objects".into()),
    }
}

fn parse_effect(v: Option<&Value>) -> Result<Decision, String> {
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
fn one_of<'v>(
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
fn string_list(v: &Value, name: &str) -> Result<Vec<String>, String> {
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

fn validate_action(s: &str) -> Result<(), String> {
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

fn validate_resource(s: &str) -> Result<(), String> {
    if s == "*" || s.starts_with("arn:") {
        Ok(())
    } else {
        Err(format!("invalid resource {s:?} (expected \"*\" or an ARN)"))
    }
}

/// `Action`/`Resource` and their `Not...` forms: a list of wildcard patterns.
#[derive(Clone, Debug)]
struct Element {
    negated: bool,
    patterns: Vec<Template>,
}

impl Element {
    fn parse(
        negated: bool,
        v: &Value,
        name: &str,
        compile: impl Fn(&str) -> Result<Template, String>,
    ) -> Result<Element, String> {
        let patterns = string_list(v, name)?
            .iter()
            .map(|s| compile(s))
            .collect::<Result<_, _>>()?;
        Ok(Element { negated, patterns })
    }

    /// Whether any pattern matches any of `inputs`, inverted for `Not...`.
    /// A pattern whose policy variable is missing makes the whole element
    /// fail to match, so neither form applies (AWS semantics).
    fn matches(&self, inputs: &[&str], ctx: &Context) -> bool {
        let mut hit = false;
        for pattern in &self.patterns {
            let Some(toks) = pattern.resolve(ctx) else {
                return false;
            };
            hit |= inputs.iter().any(|input| wildcard_match(&toks, input));
        }
        hit != self.negated
    }
}

/// `Principal`/`NotPrincipal`.
#[derive(Clone, Debug)]
struct PrincipalElement {
    negated: bool,
    everyone: bool,
    users: Vec<String>,
}

impl PrincipalElement {
    fn parse(negated: bool, v: &Value) -> Result<PrincipalElement, String> {
        let mut element = PrincipalElement {
            negated,
            everyone: false,
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

    /// Records one `AWS` principal: `*`, a user ARN or a plain user name.
    /// Other ARNs (roles, account roots) name nobody this server knows.
    fn add(&mut self, id: &str) {
        if id == "*" {
            self.everyone = true;
        } else if !id.starts_with("arn:") {
            self.users.push(id.to_owned());
        } else if let Some(name) = iam_user_name(id) {
            self.users.push(name.to_owned());
        }
    }

    fn matches(&self, who: Principal) -> bool {
        let hit = self.everyone
            || matches!(who, Principal::User(name) if self.users.iter().any(|u| u == name));
        hit != self.negated
    }
}

/// The user name in `arn:aws:iam::<account>:user/[path/]NAME`.
fn iam_user_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", _, _, resource] => {
            let path = resource.strip_prefix("user/")?;
            path.rsplit('/').next().filter(|name| !name.is_empty())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Patterns and policy variables
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters, including `/`.
    Star,
    /// `?`: exactly one character.
    One,
}

#[derive(Clone, Debug)]
enum Part {
    Tok(Tok),
    Var(String),
}

/// A policy string with its wildcards and `${...}` variables identified.
#[derive(Clone, Debug)]
struct Template(Vec<Part>);

impl Template {
    fn compile(s: &str, substitute: bool) -> Template {
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
    fn resolve(&self, ctx: &Context) -> Option<Vec<Tok>> {
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

/// Parses a `${name}` at the start of `s`; `${*}`, `${?}` and `${$}` escape
/// the literal characters.
fn variable(s: &str) -> Option<(Part, &str)> {
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
fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

fn wildcard_match(pattern: &[Tok], input: &str) -> bool {
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
    pattern[p..].iter().all(|t| *t == Tok::Star)
}

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Condition {
    key: String,
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    /// `Null`: each value says whether the key is expected to be absent.
    Null(Vec<bool>),
    Match(Matcher, Vec<Template>),
}

#[derive(Clone, Copy, Debug)]
struct Matcher {
    kind: Kind,
    negated: bool,
    qualifier: Qualifier,
    if_exists: bool,
}

#[derive(Clone, Copy, Debug)]
enum Qualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Ip,
    Arn,
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Base operator name, value kind, and whether it is a negated ("Not") operator.
/// AWS gives ArnEquals the same wildcard semantics as ArnLike.
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::String, false),
    ("StringNotEquals", Kind::String, true),
    ("StringEqualsIgnoreCase", Kind::StringIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Kind::StringIgnoreCase, true),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Kind::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Kind::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Kind::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Kind::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Kind::Numeric(Cmp::Ge), false),
    ("DateEquals", Kind::Date(Cmp::Eq), false),
    ("DateNotEquals", Kind::Date(Cmp::Eq), true),
    ("DateLessThan", Kind::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Kind::Date(Cmp::Le), false),
    ("DateGreaterThan", Kind::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Kind::Date(Cmp::Ge), false),
    ("Bool", Kind::Bool, false),
    ("IpAddress", Kind::Ip, false),
    ("NotIpAddress", Kind::Ip, true),
    ("ArnEquals", Kind::Arn, false),
    ("ArnLike", Kind::Arn, false),
    ("ArnNotEquals", Kind::Arn, true),
    ("ArnNotLike", Kind::Arn, true),
];

/// A parsed operator name: `Null`, or a matcher still waiting for its values.
enum Operator {
    Null,
    Match(Matcher),
}

fn parse_operator(name: &str) -> Result<Operator, String> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, rest)
    } else {
        (Qualifier::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    if base == "Null" {
        return match (qualifier, if_exists) {
            (Qualifier::Single, false) => Ok(Operator::Null),
            _ => Err(format!(
                "condition operator {name:?}: Null takes neither IfExists nor a set qualifier"
            )),
        };
    }
    let &(_, kind, negated) = OPERATORS
        .iter()
        .find(|(op, _, _)| *op == base)
        .ok_or_else(|| format!("unknown condition operator {name:?}"))?;
    Ok(Operator::Match(Matcher {
        kind,
        negated,
        qualifier,
        if_exists,
    }))
}

fn parse_conditions(v: &Value, substitute: bool) -> Result<Vec<Condition>, String> {
    let operators = v.as_object().ok_or("Condition must be a JSON object")?;
    let mut conditions = Vec::new();
    for (name, keys) in operators {
        let operator = parse_operator(name)?;
        let keys = keys
            .as_object()
            .ok_or_else(|| format!("Condition {name} must be an object of condition keys"))?;
        for (key, values) in keys {
            let values = condition_values(values)
                .and_then(|values| build_test(&operator, &values, substitute))
                .map_err(|e| format!("Condition {name} {key:?}: {e}"))?;
            conditions.push(Condition {
                key: key.clone(),
                test: values,
            });
        }
    }
    Ok(conditions)
}

/// Condition values may be strings, numbers or booleans, alone or in a
/// non-empty array; all are compared as strings.
fn condition_values(v: &Value) -> Result<Vec<String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("values must be strings, numbers or booleans".to_owned()),
    };
    match v {
        Value::Array(items) if items.is_empty() => Err("values must not be empty".into()),
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn build_test(operator: &Operator, values: &[String], substitute: bool) -> Result<Test, String> {
    match operator {
        Operator::Null => values
            .iter()
            .map(|v| {
                parse_bool(v).ok_or_else(|| format!("invalid value {v:?} (expected true or false)"))
            })
            .collect::<Result<_, _>>()
            .map(Test::Null),
        Operator::Match(matcher) => {
            let templates: Vec<Template> = values
                .iter()
                .map(|v| Template::compile(v, substitute))
                .collect();
            for (template, raw) in templates.iter().zip(values) {
                // Values with variables can only be checked once substituted.
                let fixed = template.resolve(&Context::default());
                if fixed.is_some_and(|toks| !matcher.kind.accepts(&literal(&toks))) {
                    return Err(format!("invalid value {raw:?}"));
                }
            }
            Ok(Test::Match(*matcher, templates))
        }
    }
}

impl Condition {
    fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.get(&self.key).filter(|values| !values.is_empty());
        match &self.test {
            Test::Null(expect_absent) => expect_absent.contains(&present.is_none()),
            Test::Match(matcher, templates) => matcher.holds(templates, present, ctx),
        }
    }
}

impl Matcher {
    fn holds(&self, templates: &[Template], present: Option<&[String]>, ctx: &Context) -> bool {
        let Some(request_values) = present else {
            return self.if_exists
                || match self.qualifier {
                    // Vacuously true over the empty set.
                    Qualifier::ForAllValues => true,
                    Qualifier::ForAnyValue => false,
                    // AWS: negated operators hold when the key is missing.
                    Qualifier::Single => self.negated,
                };
        };
        let Some(patterns) = templates
            .iter()
            .map(|t| t.resolve(ctx))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        // Several policy values OR together; negated operators hold when none matches.
        let value_ok =
            |v: &String| patterns.iter().any(|p| self.kind.compare(p, v)) != self.negated;
        match self.qualifier {
            Qualifier::ForAllValues => request_values.iter().all(value_ok),
            Qualifier::Single | Qualifier::ForAnyValue => request_values.iter().any(value_ok),
        }
    }
}

impl Kind {
    /// Whether `policy_value` is well-formed for this kind of operator.
    fn accepts(self, policy_value: &str) -> bool {
        match self {
            Kind::String | Kind::StringIgnoreCase | Kind::StringLike | Kind::Arn => true,
            Kind::Numeric(_) => parse_number(policy_value).is_some(),
            Kind::Date(_) => parse_date(policy_value).is_some(),
            Kind::Bool => parse_bool(policy_value).is_some(),
            Kind::Ip => parse_cidr(policy_value).is_some(),
        }
    }

    /// The positive sense of the operator: does request `value` match `pattern`?
    fn compare(self, pattern: &[Tok], value: &str) -> bool {
        match self {
            Kind::String => literal(pattern) == value,
            Kind::StringIgnoreCase => literal(pattern).to_lowercase() == value.to_lowercase(),
            Kind::StringLike => wildcard_match(pattern, value),
            Kind::Numeric(cmp) => {
                both(parse_number, &literal(pattern), value).is_some_and(|(p, v)| cmp.holds(v, p))
            }
            Kind::Date(cmp) => {
                both(parse_date, &literal(pattern), value).is_some_and(|(p, v)| cmp.holds(v, p))
            }
            Kind::Bool => both(parse_bool, &literal(pattern), value).is_some_and(|(p, v)| p == v),
            Kind::Ip => match (parse_cidr(&literal(pattern)), value.parse::<IpAddr>()) {
                (Some(net), Ok(ip)) => cidr_contains(net, ip),
                _ => false,
            },
            Kind::Arn => arn_match(pattern, value),
        }
    }
}

fn both<T>(parse: fn(&str) -> Option<T>, a: &str, b: &str) -> Option<(T, T)> {
    Some((parse(a)?, parse(b)?))
}

impl Cmp {
    /// `request <op> policy`, e.g. NumericLessThan holds when request < policy.
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// ARNs compare component by component so a wildcard cannot span a `:`;
/// values that are not six-part ARNs fall back to a plain wildcard match.
fn arn_match(pattern: &[Tok], value: &str) -> bool {
    let pattern_parts: Vec<&[Tok]> = pattern.splitn(6, |t| *t == Tok::Lit(':')).collect();
    let value_parts: Vec<&str> = value.splitn(6, ':').collect();
    if pattern_parts.len() != 6 || value_parts.len() != 6 {
        return wildcard_match(pattern, value);
    }
    pattern_parts
        .iter()
        .zip(&value_parts)
        .all(|(p, v)| wildcard_match(p, v))
}

/// An address with an optional `/prefix`; a bare address is a host route.
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix.parse::<u32>().ok()?)),
        None => (s.trim(), None),
    };
    let addr = addr.parse::<IpAddr>().ok()?.to_canonical();
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some((addr, prefix))
}

fn cidr_contains((net, prefix): (IpAddr, u32), ip: IpAddr) -> bool {
    match (net, ip.to_canonical()) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/// Milliseconds since the Unix epoch, from epoch seconds or ISO 8601
/// (`YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|±hh:mm]`, UTC when no offset is given).
fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let mut c = Cursor(s);
    let days = c.date()?;
    let millis = if c.0.is_empty() {
        0
    } else {
        if !c.eat('T') && !c.eat('t') && !c.eat(' ') {
            return None;
        }
        let time = c.time()?;
        time - c.offset()?
    };
    c.0.is_empty().then_some(days * 86_400_000 + millis)
}

/// A tiny left-to-right scanner over the remaining date text.
struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// Exactly `n` ASCII digits, at most `max`.
    fn digits(&mut self, n: usize, max: i64) -> Option<i64> {
        let head = self.0.get(..n)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0 = &self.0[n..];
        head.parse::<i64>().ok().filter(|v| *v <= max)
    }

    /// `YYYY-MM-DD` as days since the epoch.
    fn date(&mut self) -> Option<i64> {
        let year = self.digits(4, 9999)?;
        self.eat('-').then_some(())?;
        let month = self.digits(2, 12).filter(|m| *m >= 1)?;
        self.eat('-').then_some(())?;
        let day = self
            .digits(2, days_in_month(year, month))
            .filter(|d| *d >= 1)?;
        Some(days_from_civil(year, month, day))
    }

    /// `hh:mm[:ss[.fraction]]` as milliseconds into the day.
    fn time(&mut self) -> Option<i64> {
        let hours = self.digits(2, 23)?;
        self.eat(':').then_some(())?;
        let minutes = self.digits(2, 59)?;
        let mut millis = (hours * 60 + minutes) * 60_000;
        if self.eat(':') {
            millis += self.digits(2, 60)? * 1000;
            if self.eat('.') {
                millis += self.fraction_millis()?;
            }
        }
        Some(millis)
    }

    fn fraction_millis(&mut self) -> Option<i64> {
        let len = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let (frac, rest) = self.0.split_at(len);
        self.0 = rest;
        // Pad or truncate to three digits: sub-millisecond precision is ignored.
        let padded: String = frac.chars().chain("00".chars()).take(3).collect();
        padded.parse().ok()
    }

    /// `Z`, `±hh:mm`, `±hhmm` or nothing (UTC), as milliseconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        if self.0.is_empty() || self.eat('Z') || self.eat('z') {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2, 23)?;
        self.eat(':');
        let minutes = self.digits(2, 59)?;
        Some(sign * (hours * 60 + minutes) * 60_000)
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// A 2012-10-17 policy with the given statements (JSON array body).
    fn statements(body: &str) -> Policy {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#
        ))
    }

    fn parse_err(json: &str) -> String {
        Policy::parse(json).expect_err(json).to_string()
    }

    fn eval_as(
        p: &Policy,
        who: Principal,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        p.evaluate(&Request {
            action,
            resource,
            principal: who,
            context: ctx,
        })
    }

    fn eval(p: &Policy, action: &str, resource: &str, ctx: &Context) -> Decision {
        eval_as(p, Principal::User("alice"), action, resource, ctx)
    }

    fn eval_plain(p: &Policy, action: &str, resource: &str) -> Decision {
        eval(p, action, resource, &Context::default())
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::default();
        for (k, v) in pairs {
            c.add(k, *v);
        }
        c
    }

    /// Policy allowing s3:GetObject on everything when `condition` holds.
    fn conditional(condition: &str) -> Policy {
        statements(&format!(
            r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{condition}}}"#
        ))
    }

    fn check(p: &Policy, c: &Context) -> Decision {
        eval(p, "s3:GetObject", "arn:aws:s3:::b/k", c)
    }

    const OBJ: &str = "arn:aws:s3:::b/k";
    use Decision::{Allow, Deny, Neither};

    #[test]
    fn explicit_deny_beats_allow_in_one_policy() {
        let p = statements(
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
               {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"}"#,
        );
        assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
        assert_eq!(eval_plain(&p, "s3:DeleteObject", OBJ), Deny);
        assert_eq!(eval_plain(&p, "s3:DeleteObject", "arn:aws:s3:::c/k"), Allow);
    }

    #[test]
    fn explicit_deny_beats_allow_across_policies() {
        let allow = canned("readwrite").unwrap();
        let deny = statements(r#"{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}"#);
        let c = Context::default();
        let req = |action| Request {
            action,
            resource: OBJ,
            principal: Principal::User("alice"),
            context: &c,
        };
        assert_eq!(evaluate_all([&allow, &deny], &req("s3:PutObject")), Deny);
        assert_eq!(evaluate_all([&deny, &allow], &req("s3:PutObject")), Deny);
        assert_eq!(evaluate_all([&allow, &deny], &req("s3:GetObject")), Allow);
        assert_eq!(evaluate_all([&deny], &req("s3:GetObject")), Neither);
        assert_eq!(evaluate_all([], &req("s3:GetObject")), Neither);
    }

    #[test]
    fn action_wildcards_are_case_insensitive() {
        let p = statements(
            r#"{"Effect":"Allow","Action":["S3:get*","s3:?utObjectTagging"],"Resource":"*"}"#,
        );
        assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
        assert_eq!(eval_plain(&p, "s3:getbucketpolicy", OBJ), Allow);
        assert_eq!(eval_plain(&p, "s3:PutObjectTagging", OBJ), Allow);
        assert_eq!(eval_plain(&p, "s3:PutObject", OBJ), Neither);
        assert_eq!(eval_plain(&p, "admin:GetUser", OBJ), Neither);
        let all = statements(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
        assert_eq!(eval_plain(&all, "admin:CreateUser", "*"), Allow);
    }

    #[test]
    fn resource_wildcards_are_case_sensitive_and_span_slashes() {
        let p = statements(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/home/alice/*","arn:aws:s3:::logs-??/*"]}"#,
        );
        let get = |r| eval_plain(&p, "s3:GetObject", r);
        assert_eq!(get("arn:aws:s3:::b/home/alice/x"), Allow);
        assert_eq!(get("arn:aws:s3:::b/home/alice/deep/er/x"), Allow);
        assert_eq!(get("arn:aws:s3:::b/home/alice"), Neither);
        assert_eq!(get("arn:aws:s3:::b/home/bob/x"), Neither);
        assert_eq!(get("arn:aws:s3:::B/home/alice/x"), Neither);
        assert_eq!(get("arn:aws:s3:::b/home/Alice/x"), Neither);
        assert_eq!(get("arn:aws:s3:::logs-01/a/b"), Allow);
        assert_eq!(get("arn:aws:s3:::logs-1/a"), Neither);
    }

    #[test]
    fn request_without_resource_needs_all_buckets() {
        let all = statements(
            r#"{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::*"}"#,
        );
        let one = statements(
            r#"{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::b*"}"#,
        );
        assert_eq!(eval_plain(&all, "s3:ListAllMyBuckets", "*"), Allow);
        assert_eq!(eval_plain(&one, "s3:ListAllMyBuckets", "*"), Neither);
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = statements(
            r#"{"Effect":"Allow","NotAction":"s3:Delete*","Resource":"*"},
               {"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::public","arn:aws:s3:::public/*"]}"#,
        );
        assert_eq!(
            eval_plain(&p, "s3:GetObject", "arn:aws:s3:::public/x"),
            Allow
        );
        assert_eq!(
            eval_plain(&p, "s3:DeleteObject", "arn:aws:s3:::public/x"),
            Neither
        );
        assert_eq!(
            eval_plain(&p, "s3:GetObject", "arn:aws:s3:::private/x"),
            Deny
        );
    }

    #[test]
    fn prefix_scoped_list_bucket() {
        let p = statements(
            r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
                "Condition":{"StringLike":{"s3:prefix":["alice/*","alice/"]}}}"#,
        );
        let list = |prefix| {
            eval(
                &p,
                "s3:ListBucket",
                "arn:aws:s3:::b",
                &ctx(&[("s3:prefix", prefix)]),
            )
        };
        assert_eq!(list("alice/"), Allow);
        assert_eq!(list("alice/x"), Allow);
        assert_eq!(list(""), Neither);
        assert_eq!(list("bob/"), Neither);
        assert_eq!(eval_plain(&p, "s3:ListBucket", "arn:aws:s3:::b"), Neither);
    }

    #[test]
    fn username_variable_substitution() {
        let home = r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}"#;
        let p = statements(home);
        let alice = ctx(&[("aws:username", "alice")]);
        assert_eq!(
            eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/alice/f", &alice),
            Allow
        );
        assert_eq!(
            eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/bob/f", &alice),
            Neither
        );
        // A missing variable makes the element not match.
        assert_eq!(
            eval_plain(&p, "s3:PutObject", "arn:aws:s3:::b/home/alice/f"),
            Neither
        );
        // Substituted values are literal: a "*" user name does not become a wildcard.
        let star = ctx(&[("aws:username", "*")]);
        assert_eq!(
            eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/bob/f", &star),
            Neither
        );
        // Version 2008-10-17 (or none) has no variables.
        let old = policy(&format!(r#"{{"Version":"2008-10-17","Statement":{home}}}"#));
        assert_eq!(
            eval(&old, "s3:PutObject", "arn:aws:s3:::b/home/alice/f", &alice),
            Neither
        );
        assert_eq!(
            eval(
                &old,
                "s3:PutObject",
                "arn:aws:s3:::b/home/${aws:username}/f",
                &alice
            ),
            Allow
        );
    }

    #[test]
    fn variable_escapes_and_condition_variables() {
        let p = statements(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${*}${?}${$}"}"#,
        );
        assert_eq!(eval_plain(&p, "s3:GetObject", "arn:aws:s3:::b/*?$"), Allow);
        assert_eq!(
            eval_plain(&p, "s3:GetObject", "arn:aws:s3:::b/xy$"),
            Neither
        );
        let c = conditional(r#"{"StringLike":{"s3:prefix":"${aws:username}/*"}}"#);
        let ok = ctx(&[("aws:username", "alice"), ("s3:prefix", "alice/x")]);
        let other = ctx(&[("aws:username", "alice"), ("s3:prefix", "bob/x")]);
        assert_eq!(check(&c, &ok), Allow);
        assert_eq!(check(&c, &other), Neither);
        assert_eq!(check(&c, &ctx(&[("s3:prefix", "alice/x")])), Neither);
    }

    #[test]
    fn ip_address_conditions() {
        let host = conditional(r#"{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#);
        let ip = |addr| ctx(&[("aws:SourceIp", addr)]);
        assert_eq!(check(&host, &ip("127.0.0.1")), Allow);
        assert_eq!(check(&host, &ip("127.0.0.2")), Neither);
        assert_eq!(check(&host, &ip("::ffff:127.0.0.1")), Allow);
        assert_eq!(check(&host, &ip("not-an-ip")), Neither);
        let net = conditional(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#);
        assert_eq!(check(&net, &ip("10.200.3.4")), Allow);
        assert_eq!(check(&net, &ip("11.0.0.1")), Neither);
        assert_eq!(check(&net, &ip("2001:db8:1::5")), Allow);
        assert_eq!(check(&net, &ip("2001:db9::5")), Neither);
        let v6 = conditional(r#"{"IpAddress":{"aws:SourceIp":"::1"}}"#);
        assert_eq!(check(&v6, &ip("::1")), Allow);
        assert_eq!(check(&v6, &ip("127.0.0.1")), Neither);
        let not = conditional(r#"{"NotIpAddress":{"aws:SourceIp":"127.0.0.1"}}"#);
        assert_eq!(check(&not, &ip("127.0.0.1")), Neither);
        assert_eq!(check(&not, &ip("127.0.0.2")), Allow);
        let any = conditional(r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#);
        assert_eq!(check(&any, &ip("192.0.2.1")), Allow);
    }

    #[test]
    fn bool_secure_transport() {
        let p = statements(
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
               {"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}"#,
        );
        assert_eq!(check(&p, &ctx(&[("aws:SecureTransport", "true")])), Allow);
        assert_eq!(check(&p, &ctx(&[("aws:SecureTransport", "false")])), Deny);
        // Missing key: the positive Bool operator does not hold.
        assert_eq!(check(&p, &Context::default()), Allow);
    }

    #[test]
    fn if_exists_and_null() {
        let p = conditional(r#"{"StringEqualsIfExists":{"s3:x-amz-acl":"private"}}"#);
        assert_eq!(check(&p, &Context::default()), Allow);
        assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
        assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "public-read")])), Neither);
        let absent = conditional(r#"{"Null":{"s3:x-amz-acl":"true"}}"#);
        assert_eq!(check(&absent, &Context::default()), Allow);
        assert_eq!(
            check(&absent, &ctx(&[("s3:x-amz-acl", "private")])),
            Neither
        );
        let present = conditional(r#"{"Null":{"s3:x-amz-acl":false}}"#);
        assert_eq!(check(&present, &Context::default()), Neither);
        assert_eq!(check(&present, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
    }

    #[test]
    fn negated_operators_on_missing_keys_and_multiple_values() {
        let p = conditional(
            r#"{"StringNotEquals":{"s3:x-amz-acl":["public-read","public-read-write"]}}"#,
        );
        assert_eq!(check(&p, &Context::default()), Allow);
        assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
        assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "public-read")])), Neither);
        assert_eq!(
            check(&p, &ctx(&[("s3:x-amz-acl", "public-read-write")])),
            Neither
        );
        let positive = conditional(r#"{"StringEquals":{"s3:x-amz-acl":["a","b"]}}"#);
        assert_eq!(check(&positive, &ctx(&[("s3:x-amz-acl", "b")])), Allow);
        assert_eq!(check(&positive, &Context::default()), Neither);
    }

    #[test]
    fn multiple_operators_and_keys_are_anded() {
        let p = conditional(
            r#"{"StringEquals":{"aws:username":"alice","s3:delimiter":"/"},
                "NumericLessThanEquals":{"s3:max-keys":100}}"#,
        );
        let all = ctx(&[
            ("aws:username", "alice"),
            ("s3:delimiter", "/"),
            ("s3:max-keys", "10"),
        ]);
        assert_eq!(check(&p, &all), Allow);
        let too_many = ctx(&[
            ("aws:username", "alice"),
            ("s3:delimiter", "/"),
            ("s3:max-keys", "1000"),
        ]);
        assert_eq!(check(&p, &too_many), Neither);
        let no_delim = ctx(&[("aws:username", "alice"), ("s3:max-keys", "10")]);
        assert_eq!(check(&p, &no_delim), Neither);
    }

    #[test]
    fn set_qualifiers() {
        let any = conditional(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#);
        let all = conditional(r#"{"ForAllValues:StringLike":{"aws:TagKeys":["env","team*"]}}"#);
        let tags = |values: &[&str]| {
            let mut c = Context::default();
            for v in values {
                c.add("aws:TagKeys", *v);
            }
            c
        };
        assert_eq!(check(&any, &tags(&["other", "team"])), Allow);
        assert_eq!(check(&any, &tags(&["other"])), Neither);
        assert_eq!(check(&any, &tags(&[])), Neither);
        assert_eq!(check(&all, &tags(&["env", "team-a"])), Allow);
        assert_eq!(check(&all, &tags(&["env", "other"])), Neither);
        // ForAllValues is vacuously true when the key is missing.
        assert_eq!(check(&all, &tags(&[])), Allow);
        let none = conditional(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}"#);
        assert_eq!(check(&none, &tags(&["a", "b"])), Allow);
        assert_eq!(check(&none, &tags(&["a", "secret"])), Neither);
    }

    #[test]
    fn string_case_numeric_date_and_arn_operators() {
        let ic = conditional(r#"{"StringEqualsIgnoreCase":{"s3:x-amz-acl":"PRIVATE"}}"#);
        assert_eq!(check(&ic, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
        let exact = conditional(r#"{"StringEquals":{"s3:x-amz-acl":"PRIVATE"}}"#);
        assert_eq!(check(&exact, &ctx(&[("s3:x-amz-acl", "private")])), Neither);
        let num = conditional(
            r#"{"NumericGreaterThan":{"s3:max-keys":"2.5"},"NumericNotEquals":{"s3:max-keys":7}}"#,
        );
        assert_eq!(check(&num, &ctx(&[("s3:max-keys", "3")])), Allow);
        assert_eq!(check(&num, &ctx(&[("s3:max-keys", "7")])), Neither);
        assert_eq!(check(&num, &ctx(&[("s3:max-keys", "2")])), Neither);
        assert_eq!(check(&num, &ctx(&[("s3:max-keys", "lots")])), Neither);
        let before = conditional(r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#);
        let at = |t| ctx(&[("aws:CurrentTime", t)]);
        assert_eq!(check(&before, &at("2025-12-31T23:59:59Z")), Allow);
        assert_eq!(check(&before, &at("2026-01-01T00:00:00Z")), Neither);
        assert_eq!(check(&before, &at("2026-01-01T00:30:00+01:00")), Allow);
        assert_eq!(check(&before, &at("1767225599")), Allow);
        let arn = conditional(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::logs-*"}}"#);
        assert_eq!(
            check(&arn, &ctx(&[("aws:SourceArn", "arn:aws:s3:::logs-1")])),
            Allow
        );
        assert_eq!(
            check(&arn, &ctx(&[("aws:SourceArn", "arn:aws:s3:::data")])),
            Neither
        );
        let not_arn =
            conditional(r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:iam::*:user/bob"}}"#);
        assert_eq!(
            check(
                &not_arn,
                &ctx(&[("aws:SourceArn", "arn:aws:iam::1:user/bob")])
            ),
            Neither
        );
        assert_eq!(
            check(
                &not_arn,
                &ctx(&[("aws:SourceArn", "arn:aws:iam::1:user/eve")])
            ),
            Allow
        );
    }

    #[test]
    fn arn_wildcards_do_not_cross_components() {
        let pattern: Vec<Tok> = Template::compile("arn:aws:s3:*:1:b", false)
            .resolve(&Context::default())
            .unwrap();
        assert!(arn_match(&pattern, "arn:aws:s3:us-east-1:1:b"));
        assert!(!arn_match(&pattern, "arn:aws:s3:x:y:1:b"));
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("86400"), Some(86_400_000));
        assert_eq!(parse_date("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            parse_date("2024-02-29T12:00:00.250Z"),
            Some(1_709_208_000_250)
        );
        assert_eq!(
            parse_date("2026-01-01T01:00:00+01:00"),
            parse_date("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_date("2026-01-01T00:00-0130"), Some(1_767_231_000_000));
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1000));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-01-01T24:00:00Z",
            "2026-01-01X",
            "yesterday",
            "2026-01-01T00:00:00Zjunk",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn principals() {
        let p = statements(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"},
               {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/alice","bob"]},"Action":"s3:PutObject","Resource":"*"},
               {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:user/carol"},"Action":"s3:DeleteBucket","Resource":"*"}"#,
        );
        let c = Context::default();
        let pub_obj = "arn:aws:s3:::pub/x";
        assert_eq!(
            eval_as(&p, Principal::Anonymous, "s3:GetObject", pub_obj, &c),
            Allow
        );
        assert_eq!(
            eval_as(&p, Principal::Root, "s3:GetObject", pub_obj, &c),
            Allow
        );
        assert_eq!(
            eval_as(&p, Principal::User("alice"), "s3:PutObject", OBJ, &c),
            Allow
        );
        assert_eq!(
            eval_as(&p, Principal::User("bob"), "s3:PutObject", OBJ, &c),
            Allow
        );
        assert_eq!(
            eval_as(&p, Principal::User("eve"), "s3:PutObject", OBJ, &c),
            Neither
        );
        assert_eq!(
            eval_as(&p, Principal::Anonymous, "s3:PutObject", OBJ, &c),
            Neither
        );
        assert_eq!(
            eval_as(&p, Principal::Root, "s3:PutObject", OBJ, &c),
            Neither
        );
        assert_eq!(
            eval_as(&p, Principal::User("carol"), "s3:DeleteBucket", OBJ, &c),
            Neither
        );
        assert_eq!(
            eval_as(&p, Principal::User("alice"), "s3:DeleteBucket", OBJ, &c),
            Deny
        );
        let aws_star = statements(
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"*"}"#,
        );
        assert_eq!(
            eval_as(&aws_star, Principal::Anonymous, "s3:GetObject", OBJ, &c),
            Allow
        );
        // Identity policies (no Principal) apply to whoever they are attached to.
        let identity = statements(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
        assert_eq!(
            eval_as(&identity, Principal::Anonymous, "s3:GetObject", OBJ, &c),
            Allow
        );
    }

    #[test]
    fn iam_user_names() {
        assert_eq!(iam_user_name("arn:aws:iam::1:user/alice"), Some("alice"));
        assert_eq!(
            iam_user_name("arn:aws:iam::1:user/team/alice"),
            Some("alice")
        );
        assert_eq!(iam_user_name("arn:aws:iam::1:root"), None);
        assert_eq!(iam_user_name("arn:aws:s3:::b"), None);
    }

    #[test]
    fn canned_policies() {
        for name in CANNED {
            assert!(canned(name).is_some(), "{name}");
        }
        assert!(canned("superuser").is_none());
        let ro = canned("readonly").unwrap();
        assert_eq!(eval_plain(&ro, "s3:GetObject", OBJ), Allow);
        assert_eq!(eval_plain(&ro, "s3:ListBucket", "arn:aws:s3:::b"), Allow);
        assert_eq!(eval_plain(&ro, "s3:ListAllMyBuckets", "*"), Allow);
        assert_eq!(eval_plain(&ro, "s3:PutObject", OBJ), Neither);
        assert_eq!(eval_plain(&ro, "s3:DeleteObject", OBJ), Neither);
        let wo = canned("writeonly").unwrap();
        assert_eq!(eval_plain(&wo, "s3:PutObject", OBJ), Allow);
        assert_eq!(eval_plain(&wo, "s3:GetObject", OBJ), Neither);
        assert_eq!(eval_plain(&wo, "s3:ListBucket", "arn:aws:s3:::b"), Neither);
        let rw = canned("readwrite").unwrap();
        assert_eq!(eval_plain(&rw, "s3:DeleteObject", OBJ), Allow);
        assert_eq!(
            eval_plain(&rw, "s3:PutBucketPolicy", "arn:aws:s3:::b"),
            Allow
        );
        assert_eq!(eval_plain(&rw, "admin:CreateUser", "*"), Neither);
        let admin = canned("admin").unwrap();
        assert_eq!(eval_plain(&admin, "admin:CreateUser", "*"), Allow);
        assert_eq!(
            eval_plain(&admin, "s3:DeleteBucket", "arn:aws:s3:::b"),
            Allow
        );
    }

    #[test]
    fn document_text_and_shapes() {
        let text = r#"{ "Id": "x", "Statement": {"Sid":"one","Effect":"Allow","Action":"s3:GetObject","Resource":"*"} }"#;
        let p = policy(text);
        assert_eq!(p.to_json(), text);
        assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
    }

    #[test]
    fn context_keys_are_case_insensitive() {
        let mut c = Context::default();
        c.set("AWS:SourceIp", "127.0.0.1");
        assert_eq!(c.get("aws:sourceip"), Some(&["127.0.0.1".to_owned()][..]));
        c.add("aws:SOURCEIP", "::1");
        assert_eq!(c.get("aws:SourceIp").map(<[String]>::len), Some(2));
        c.set("aws:sourceip", "10.0.0.1");
        assert_eq!(c.get("aws:SourceIp").map(<[String]>::len), Some(1));
        assert_eq!(c.get("s3:prefix"), None);
    }

    #[test]
    fn malformed_documents_are_rejected() {
        let cases = [
            (r#"{"Statement":"#, "not valid JSON"),
            (r#"[]"#, "must be a JSON object"),
            (r#"{"Version":"2012-10-17"}"#, "missing Statement"),
            (r#"{"Statement":[]}"#, "Statement must not be empty"),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                "unsupported Version",
            ),
            (r#"{"Statment":[]}"#, "unknown field \"Statment\""),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Alow","Action":"s3:*","Resource":"*"}]}"#,
                "Statement 2: unknown Effect \"Alow\"",
            ),
            (
                r#"{"Statement":[{"Sid":"Read","Effect":"Allow","Resource":"*"}]}"#,
                "Statement 1 (Sid \"Read\"): missing Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}]}"#,
                "Statement 1: both Action and NotAction",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                "missing Resource",
            ),
            (
                r#"{"Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
                "missing Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":7,"Resource":"*"}]}"#,
                "Action must be a string",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
                "Action must not be empty",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
                "invalid action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Extra":1}]}"#,
                "unknown field \"Extra\"",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}]}"#,
                "unknown condition operator \"StringEqualz\"",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}]}"#,
                "Null takes neither IfExists",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"300.0.0.1"}}}]}"#,
                "invalid value \"300.0.0.1\"",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}]}"#,
                "invalid value",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"k":null}}}]}"#,
                "values must be strings",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:*","Resource":"*"}]}"#,
                "unsupported Principal type",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"alice","Action":"s3:*","Resource":"*"}]}"#,
                "Principal must be",
            ),
        ];
        for (json, expected) in cases {
            let err = parse_err(json);
            assert!(
                err.contains(expected),
                "{json}: got {err:?}, want {expected:?}"
            );
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn action_for_representative_ops() {
        let cases = [
            ("GetObject", false, "s3:GetObject"),
            ("GetObject", true, "s3:GetObjectVersion"),
            ("HeadObject", true, "s3:GetObjectVersion"),
            ("GetObjectAttributes", true, "s3:GetObjectVersionAttributes"),
            ("ListObjectsV2", false, "s3:ListBucket"),
            ("ListObjects", false, "s3:ListBucket"),
            ("HeadBucket", false, "s3:ListBucket"),
            ("ListObjectVersions", false, "s3:ListBucketVersions"),
            ("ListBuckets", false, "s3:ListAllMyBuckets"),
            ("CopyObject", false, "s3:PutObject"),
            ("UploadPartCopy", false, "s3:PutObject"),
            ("CompleteMultipartUpload", false, "s3:PutObject"),
            ("AbortMultipartUpload", false, "s3:AbortMultipartUpload"),
            ("ListParts", false, "s3:ListMultipartUploadParts"),
            (
                "ListMultipartUploads",
                false,
                "s3:ListBucketMultipartUploads",
            ),
            ("DeleteObject", true, "s3:DeleteObjectVersion"),
            ("DeleteObjects", false, "s3:DeleteObject"),
            ("PutObjectTagging", true, "s3:PutObjectVersionTagging"),
            ("DeleteObjectTagging", false, "s3:DeleteObjectTagging"),
            ("DeleteBucketTagging", false, "s3:PutBucketTagging"),
            ("DeleteBucketCors", false, "s3:PutBucketCORS"),
            (
                "GetBucketLifecycleConfiguration",
                false,
                "s3:GetLifecycleConfiguration",
            ),
            (
                "PutBucketEncryption",
                false,
                "s3:PutEncryptionConfiguration",
            ),
            (
                "GetObjectLockConfiguration",
                false,
                "s3:GetBucketObjectLockConfiguration",
            ),
            (
                "PutBucketNotificationConfiguration",
                false,
                "s3:PutBucketNotification",
            ),
            ("GetBucketPolicyStatus", false, "s3:GetBucketPolicyStatus"),
            ("PutBucketVersioning", false, "s3:PutBucketVersioning"),
            ("Frobnicate", false, UNKNOWN_ACTION),
        ];
        for (op, versioned, expected) in cases {
            assert_eq!(action_for(op, versioned), expected, "{op} {versioned}");
        }
    }

    /// Every operation s3s 0.14.1 defines (`S3Operation::name()`).
    const S3S_OPERATIONS: &[&str] = &[
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateBucket",
        "CreateBucketMetadataTableConfiguration",
        "CreateMultipartUpload",
        "CreateSession",
        "DeleteBucket",
        "DeleteBucketAnalyticsConfiguration",
        "DeleteBucketCors",
        "DeleteBucketEncryption",
        "DeleteBucketIntelligentTieringConfiguration",
        "DeleteBucketInventoryConfiguration",
        "DeleteBucketLifecycle",
        "DeleteBucketMetadataTableConfiguration",
        "DeleteBucketMetricsConfiguration",
        "DeleteBucketOwnershipControls",
        "DeleteBucketPolicy",
        "DeleteBucketReplication",
        "DeleteBucketTagging",
        "DeleteBucketWebsite",
        "DeleteObject",
        "DeleteObjectTagging",
        "DeleteObjects",
        "DeletePublicAccessBlock",
        "GetBucketAccelerateConfiguration",
        "GetBucketAcl",
        "GetBucketAnalyticsConfiguration",
        "GetBucketCors",
        "GetBucketEncryption",
        "GetBucketIntelligentTieringConfiguration",
        "GetBucketInventoryConfiguration",
        "GetBucketLifecycleConfiguration",
        "GetBucketLocation",
        "GetBucketLogging",
        "GetBucketMetadataTableConfiguration",
        "GetBucketMetricsConfiguration",
        "GetBucketNotificationConfiguration",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        "GetBucketReplication",
        "GetBucketRequestPayment",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketWebsite",
        "GetObject",
        "GetObjectAcl",
        "GetObjectAttributes",
        "GetObjectLegalHold",
        "GetObjectLockConfiguration",
        "GetObjectRetention",
        "GetObjectTagging",
        "GetObjectTorrent",
        "GetPublicAccessBlock",
        "HeadBucket",
        "HeadObject",
        "ListBucketAnalyticsConfigurations",
        "ListBucketIntelligentTieringConfigurations",
        "ListBucketInventoryConfigurations",
        "ListBucketMetricsConfigurations",
        "ListBuckets",
        "ListDirectoryBuckets",
        "ListMultipartUploads",
        "ListObjectVersions",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "PutBucketAccelerateConfiguration",
        "PutBucketAcl",
        "PutBucketAnalyticsConfiguration",
        "PutBucketCors",
        "PutBucketEncryption",
        "PutBucketIntelligentTieringConfiguration",
        "PutBucketInventoryConfiguration",
        "PutBucketLifecycleConfiguration",
        "PutBucketLogging",
        "PutBucketMetricsConfiguration",
        "PutBucketNotificationConfiguration",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
        "PutBucketReplication",
        "PutBucketRequestPayment",
        "PutBucketTagging",
        "PutBucketVersioning",
        "PutBucketWebsite",
        "PutObject",
        "PutObjectAcl",
        "PutObjectLegalHold",
        "PutObjectLockConfiguration",
        "PutObjectRetention",
        "PutObjectTagging",
        "PutPublicAccessBlock",
        "RestoreObject",
        "SelectObjectContent",
        "UploadPart",
        "UploadPartCopy",
        "WriteGetObjectResponse",
        "PostObject",
    ];

    #[test]
    fn action_for_covers_every_s3s_operation() {
        assert_eq!(S3S_OPERATIONS.len(), 99);
        for op in S3S_OPERATIONS {
            for versioned in [false, true] {
                let action = action_for(op, versioned);
                assert_ne!(action, UNKNOWN_ACTION, "{op}");
                validate_action(action).unwrap();
            }
        }
    }

    #[test]
    fn wildcard_matcher_backtracks() {
        let pattern = |s| {
            Template::compile(s, false)
                .resolve(&Context::default())
                .unwrap()
        };
        assert!(wildcard_match(&pattern("a*b*c"), "aXbYbZc"));
        assert!(wildcard_match(&pattern("*"), ""));
        assert!(wildcard_match(&pattern("**a"), "bba"));
        assert!(!wildcard_match(&pattern("a*b"), "aXbY"));
        assert!(!wildcard_match(&pattern("?"), ""));
        assert!(wildcard_match(&pattern("é?"), "éü"));
    }

    #[test]
    fn bucket_policies_need_principals_and_their_own_bucket() {
        let ok = policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
                "Resource":["arn:aws:s3:::site","arn:aws:s3:::site/*"]}]}"#,
        );
        assert!(ok.check_bucket_policy("site").is_ok());
        assert!(ok.is_public());
        let e = ok.check_bucket_policy("sit").unwrap_err();
        assert!(e.0.contains("invalid resource"), "{e}");
        let e = ok.check_bucket_policy("site2").unwrap_err();
        assert!(e.0.contains("invalid resource"), "{e}");
        let no_principal = policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#,
        );
        let e = no_principal.check_bucket_policy("site").unwrap_err();
        assert!(e.0.contains("Principal"), "{e}");
        assert!(!no_principal.is_public());
        let conditioned = policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
                "Resource":"arn:aws:s3:::site/*",
                "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        );
        assert!(!conditioned.is_public());
    }
}
