//! Lifecycle rules: a bucket's configuration checked as AWS checks it, and when each
//! rule is due for a version or an upload. No store here, so the scanner's decisions
//! are unit-tested in this file.

use s3s::dto::{self, BucketLifecycleConfiguration, LifecycleRule, Timestamp, TimestampFormat};
use s3s::{s3_error, S3Error, S3Result};

/// AWS's limits on a configuration.
const MAX_RULES: usize = 1000;
const MAX_ID_CHARS: usize = 255;
const MAX_NEWER_NONCURRENT: i32 = 100;

const NS: u64 = 1_000_000_000;
/// A real day, in seconds.
pub(crate) const DAY_SECS: u64 = 86_400;

/// One rule, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    /// `Expiration` by Days or Date: the current version expires.
    pub expire: Option<When>,
    /// `ExpiredObjectDeleteMarker`: a delete marker left alone is removed.
    pub expired_markers: bool,
    /// `NoncurrentVersionExpiration`.
    pub noncurrent: Option<Noncurrent>,
    /// `AbortIncompleteMultipartUpload`: days after initiation.
    pub abort_after_days: Option<u64>,
    /// `Transition`s of the current version to other storage classes.
    pub transitions: Vec<(When, String)>,
    /// `NoncurrentVersionTransition`s.
    pub noncurrent_transitions: Vec<(Noncurrent, String)>,
}

/// Which objects a rule applies to (all conditions must hold).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Filter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum When {
    /// Days after the version was written.
    Days(u64),
    /// From this time on (Unix nanoseconds, a midnight UTC).
    Date(u64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Noncurrent {
    /// Days after the version stopped being current.
    pub days: u64,
    /// How many of the newest noncurrent versions are kept whatever their age.
    pub keep_newer: u64,
}

impl Filter {
    /// Whether an object version with these tags and size is in the rule's scope.
    pub(crate) fn matches(&self, key: &str, tags: &[(String, String)], size: u64) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }

    /// Whether a delete marker is in scope: markers have no tags and no size, so only
    /// rules that filter by neither reach them.
    pub(crate) fn matches_marker(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.is_empty()
            && self.size_greater_than.is_none()
            && self.size_less_than.is_none()
    }
}

/// When something that started at `start_ns` is `days` days old. With real days AWS
/// rounds up to the next midnight UTC; a shortened test day is not rounded.
pub(crate) fn due(start_ns: u64, days: u64, day_secs: u64) -> u64 {
    let at = start_ns.saturating_add(days.saturating_mul(day_secs).saturating_mul(NS));
    if day_secs != DAY_SECS {
        return at;
    }
    let day_ns = DAY_SECS * NS;
    at.div_ceil(day_ns).saturating_mul(day_ns)
}

impl Rule {
    /// Whether the rule moves or removes object versions (not only uploads).
    pub(crate) fn acts_on_versions(&self) -> bool {
        self.expire.is_some()
            || self.expired_markers
            || self.noncurrent.is_some()
            || !self.transitions.is_empty()
            || !self.noncurrent_transitions.is_empty()
    }

    /// The storage classes the rule moves versions to.
    pub(crate) fn classes(&self) -> impl Iterator<Item = &str> {
        let current = self.transitions.iter().map(|(_, c)| c.as_str());
        current.chain(self.noncurrent_transitions.iter().map(|(_, c)| c.as_str()))
    }

    /// The class the current version written at `mtime_ns` belongs in by `now` under this
    /// rule's transitions (the latest one due), and when that was due.
    pub(crate) fn transition_due(
        &self,
        mtime_ns: u64,
        now: u64,
        day_secs: u64,
    ) -> Option<(u64, &str)> {
        self.transitions
            .iter()
            .map(|(when, class)| (when.at(mtime_ns, day_secs), class.as_str()))
            .filter(|(at, _)| *at <= now)
            .max_by_key(|(at, _)| *at)
    }

    /// The same for a noncurrent version, noncurrent since `since_ns` with `newer`
    /// noncurrent versions newer than it.
    pub(crate) fn noncurrent_transition_due(
        &self,
        since_ns: u64,
        newer: u64,
        now: u64,
        day_secs: u64,
    ) -> Option<(u64, &str)> {
        self.noncurrent_transitions
            .iter()
            .filter(|(n, _)| newer >= n.keep_newer)
            .map(|(n, class)| (due(since_ns, n.days, day_secs), class.as_str()))
            .filter(|(at, _)| *at <= now)
            .max_by_key(|(at, _)| *at)
    }

    /// When the current version written at `mtime_ns` expires under this rule, if it does.
    pub(crate) fn expires_at(&self, mtime_ns: u64, day_secs: u64) -> Option<u64> {
        Some(self.expire?.at(mtime_ns, day_secs))
    }
}

impl When {
    /// When it comes for a version written at `mtime_ns`.
    fn at(self, mtime_ns: u64, day_secs: u64) -> u64 {
        match self {
            When::Days(d) => due(mtime_ns, d, day_secs),
            When::Date(at) => at,
        }
    }
}

/// The `x-amz-expiration` header for a current version: the earliest expiration of the
/// enabled rules in whose scope it is (`expiry-date="…", rule-id="…"`), as AWS sends it.
pub(crate) fn expiration_header(
    rules: &[Rule],
    key: &str,
    tags: &[(String, String)],
    size: u64,
    mtime_ns: u64,
    day_secs: u64,
) -> Option<String> {
    let (at, rule) = rules
        .iter()
        .filter(|r| r.enabled && r.filter.matches(key, tags, size))
        .filter_map(|r| Some((r.expires_at(mtime_ns, day_secs)?, r)))
        .min_by_key(|(at, _)| *at)?;
    let time = Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(at));
    let mut date = Vec::new();
    time.format(TimestampFormat::HttpDate, &mut date).ok()?;
    Some(format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        String::from_utf8_lossy(&date),
        rule.id
    ))
}

fn malformed() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// A configuration's rules, checked as AWS checks them.
pub(crate) fn check(cfg: &BucketLifecycleConfiguration) -> S3Result<Vec<Rule>> {
    if cfg.rules.is_empty() || cfg.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(cfg.rules.len());
    for (i, r) in cfg.rules.iter().enumerate() {
        let rule = check_rule(r, i)?;
        if rules.iter().any(|other| other.id == rule.id) {
            return Err(s3_error!(
                InvalidArgument,
                "Rule ID must be unique. Found same ID for more than one rule"
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// `NewerNoncurrentVersions`: how many of the newest noncurrent versions a rule keeps.
fn newer_noncurrent(n: Option<i32>) -> S3Result<u64> {
    match n {
        None => Ok(0),
        Some(k) if (1..=MAX_NEWER_NONCURRENT).contains(&k) => Ok(k as u64),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "NewerNoncurrentVersions must be between 1 and 100"
        )),
    }
}

fn positive(days: Option<i32>, what: &str) -> S3Result<u64> {
    match days {
        Some(d) if d > 0 => Ok(d as u64),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "{what} must be a positive integer"
        )),
        None => Err(malformed()),
    }
}

fn check_rule(r: &LifecycleRule, index: usize) -> S3Result<Rule> {
    let id = match &r.id {
        Some(id) if id.chars().count() > MAX_ID_CHARS => {
            return Err(s3_error!(
                InvalidArgument,
                "ID length should not exceed allowed limit of 255"
            ))
        }
        Some(id) if !id.is_empty() => id.clone(),
        // AWS makes up an id for a rule without one.
        _ => format!("rule-{}", index + 1),
    };
    let enabled = match r.status.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        _ => return Err(malformed()),
    };
    let filter = check_filter(r)?;
    let (expire, expired_markers) = match &r.expiration {
        None => (None, false),
        Some(e) => check_expiration(e, &filter)?,
    };
    let transitions = check_transitions(r.transitions.as_deref().unwrap_or_default(), expire)?;
    let noncurrent_transitions = check_noncurrent_transitions(
        r.noncurrent_version_transitions
            .as_deref()
            .unwrap_or_default(),
    )?;
    let noncurrent = match &r.noncurrent_version_expiration {
        None => None,
        Some(n) => {
            let days = positive(
                n.noncurrent_days,
                "'NoncurrentDays' for NoncurrentVersionExpiration action",
            )?;
            let keep_newer = newer_noncurrent(n.newer_noncurrent_versions)?;
            Some(Noncurrent { days, keep_newer })
        }
    };
    let abort_after_days = match &r.abort_incomplete_multipart_upload {
        None => None,
        Some(a) => {
            if !filter.tags.is_empty()
                || filter.size_greater_than.is_some()
                || filter.size_less_than.is_some()
            {
                return Err(s3_error!(
                    InvalidRequest,
                    "AbortIncompleteMultipartUpload cannot be specified with tags or object size filters"
                ));
            }
            Some(positive(
                a.days_after_initiation,
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action",
            )?)
        }
    };
    if expire.is_none()
        && !expired_markers
        && noncurrent.is_none()
        && abort_after_days.is_none()
        && transitions.is_empty()
        && noncurrent_transitions.is_empty()
    {
        return Err(s3_error!(
            InvalidRequest,
            "At least one action needs to be specified in a rule"
        ));
    }
    Ok(Rule {
        id,
        enabled,
        filter,
        expire,
        expired_markers,
        noncurrent,
        abort_after_days,
        transitions,
        noncurrent_transitions,
    })
}

/// The transition's class: any but STANDARD, which holds what was never moved (whether
/// the server has it is asked when the configuration is put, `lifecycle::put`).
fn transition_class(class: Option<&dto::TransitionStorageClass>) -> S3Result<String> {
    match class.map(|c| c.as_str()) {
        Some("STANDARD") => Err(s3_error!(
            InvalidStorageClass,
            "The storage class you specified is not valid: objects cannot transition to STANDARD"
        )),
        Some(c) => Ok(c.to_string()),
        None => Err(malformed()),
    }
}

fn check_transitions(
    ts: &[dto::Transition],
    expire: Option<When>,
) -> S3Result<Vec<(When, String)>> {
    let mut out: Vec<(When, String)> = Vec::new();
    for t in ts {
        let when = match (t.days, &t.date) {
            (Some(d), None) if d >= 0 => When::Days(d as u64),
            (Some(_), None) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "'Days' in Transition action must be nonnegative"
                ))
            }
            (None, Some(date)) => When::Date(midnight(date)?),
            _ => return Err(malformed()),
        };
        let class = transition_class(t.storage_class.as_ref())?;
        if out.iter().any(|(_, c)| *c == class) {
            return Err(s3_error!(
                InvalidArgument,
                "'StorageClass' must be different for 'Transition' actions in same 'Rule'"
            ));
        }
        if out.iter().any(|(w, _)| {
            matches!(
                (w, when),
                (When::Days(_), When::Date(_)) | (When::Date(_), When::Days(_))
            )
        }) {
            return Err(s3_error!(
                InvalidRequest,
                "Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule"
            ));
        }
        if let (Some(When::Days(e)), When::Days(d)) = (expire, when) {
            if d >= e {
                return Err(s3_error!(
                    InvalidArgument,
                    "'Days' in the Expiration action must be greater than 'Days' in the Transition action"
                ));
            }
        }
        out.push((when, class));
    }
    Ok(out)
}

fn check_noncurrent_transitions(
    ts: &[dto::NoncurrentVersionTransition],
) -> S3Result<Vec<(Noncurrent, String)>> {
    let mut out: Vec<(Noncurrent, String)> = Vec::new();
    for t in ts {
        let days = match t.noncurrent_days {
            Some(d) if d >= 0 => d as u64,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "'NoncurrentDays' in NoncurrentVersionTransition action must be nonnegative"
                ))
            }
            None => return Err(malformed()),
        };
        let keep_newer = newer_noncurrent(t.newer_noncurrent_versions)?;
        let class = transition_class(t.storage_class.as_ref())?;
        if out.iter().any(|(_, c)| *c == class) {
            return Err(s3_error!(
                InvalidArgument,
                "'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same 'Rule'"
            ));
        }
        out.push((Noncurrent { days, keep_newer }, class));
    }
    Ok(out)
}

fn check_expiration(
    e: &dto::LifecycleExpiration,
    filter: &Filter,
) -> S3Result<(Option<When>, bool)> {
    let markers = e.expired_object_delete_marker == Some(true);
    let when = match (e.days, &e.date) {
        (Some(_), Some(_)) => return Err(malformed()),
        (Some(d), None) => Some(When::Days(positive(
            Some(d),
            "'Days' for Expiration action",
        )?)),
        (None, Some(date)) => Some(When::Date(midnight(date)?)),
        (None, None) => None,
    };
    if when.is_some() && e.expired_object_delete_marker.is_some() {
        return Err(s3_error!(
            InvalidArgument,
            "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy."
        ));
    }
    if markers && !filter.tags.is_empty() {
        return Err(s3_error!(
            InvalidRequest,
            "ExpiredObjectDeleteMarker cannot be specified with object tags"
        ));
    }
    if when.is_none() && !markers {
        return Err(malformed());
    }
    Ok((when, markers))
}

/// A rule's date, which AWS wants at midnight UTC, in Unix nanoseconds.
fn midnight(date: &Timestamp) -> S3Result<u64> {
    let at = time::OffsetDateTime::from(date.clone());
    if at.time() != time::Time::MIDNIGHT || at.offset() != time::UtcOffset::UTC {
        return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT"));
    }
    Ok(u64::try_from(at.unix_timestamp_nanos()).unwrap_or(0))
}

/// The rule's scope: the old top-level `Prefix`, or a `Filter` with at most one of
/// Prefix, Tag, ObjectSize… or And.
fn check_filter(r: &LifecycleRule) -> S3Result<Filter> {
    let Some(f) = &r.filter else {
        return Ok(Filter {
            prefix: r.prefix.clone().unwrap_or_default(),
            ..Filter::default()
        });
    };
    if r.prefix.is_some() {
        return Err(malformed());
    }
    let given = [
        f.prefix.is_some(),
        f.tag.is_some(),
        f.and.is_some(),
        f.object_size_greater_than.is_some() || f.object_size_less_than.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(malformed());
    }
    let tag = |t: &dto::Tag| -> S3Result<(String, String)> {
        match (&t.key, &t.value) {
            (Some(k), Some(v)) if !k.is_empty() => Ok((k.clone(), v.clone())),
            _ => Err(malformed()),
        }
    };
    let mut filter = Filter {
        prefix: f.prefix.clone().unwrap_or_default(),
        size_greater_than: size(f.object_size_greater_than)?,
        size_less_than: size(f.object_size_less_than)?,
        ..Filter::default()
    };
    if let Some(t) = &f.tag {
        filter.tags.push(tag(t)?);
    }
    if let Some(and) = &f.and {
        filter.prefix = and.prefix.clone().unwrap_or_default();
        filter.size_greater_than = size(and.object_size_greater_than)?;
        filter.size_less_than = size(and.object_size_less_than)?;
        for t in and.tags.iter().flatten() {
            let t = tag(t)?;
            if filter.tags.iter().any(|(k, _)| *k == t.0) {
                return Err(s3_error!(
                    InvalidArgument,
                    "Duplicate Tag Keys are not allowed."
                ));
            }
            filter.tags.push(t);
        }
    }
    if let (Some(gt), Some(lt)) = (filter.size_greater_than, filter.size_less_than) {
        if gt >= lt {
            return Err(s3_error!(
                InvalidArgument,
                "ObjectSizeGreaterThan must be less than ObjectSizeLessThan"
            ));
        }
    }
    Ok(filter)
}

fn size(n: Option<i64>) -> S3Result<Option<u64>> {
    match n {
        None => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Object size filters must be non-negative"
        )),
    }
}

/// An enabled rule `r` over everything, with no action yet (tests add theirs).
#[cfg(test)]
pub(super) fn enabled_rule() -> LifecycleRule {
    LifecycleRule {
        abort_incomplete_multipart_upload: None,
        expiration: None,
        filter: None,
        id: Some("r".into()),
        noncurrent_version_expiration: None,
        noncurrent_version_transitions: None,
        prefix: None,
        status: dto::ExpirationStatus::from_static(dto::ExpirationStatus::ENABLED),
        transitions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::{
        AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration,
        LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration,
        NoncurrentVersionTransition, Tag, Transition, TransitionStorageClass,
    };

    fn rule() -> LifecycleRule {
        LifecycleRule {
            expiration: Some(LifecycleExpiration {
                days: Some(3),
                ..Default::default()
            }),
            ..enabled_rule()
        }
    }

    fn code(rules: Vec<LifecycleRule>) -> String {
        check(&BucketLifecycleConfiguration { rules })
            .unwrap_err()
            .code()
            .as_str()
            .to_string()
    }

    #[test]
    fn configurations_are_checked_as_aws_checks_them() {
        let ok = check(&BucketLifecycleConfiguration {
            rules: vec![rule()],
        })
        .unwrap();
        assert_eq!(ok[0].expire, Some(When::Days(3)));
        assert_eq!(code(vec![]), "MalformedXML");
        assert_eq!(
            code(vec![rule(), rule()]),
            "InvalidArgument",
            "duplicate ids"
        );
        let with = |f: &dyn Fn(&mut LifecycleRule)| {
            let mut r = rule();
            f(&mut r);
            vec![r]
        };
        assert_eq!(
            code(with(&|r| r.id = Some("x".repeat(256)))),
            "InvalidArgument"
        );
        assert_eq!(
            code(with(&|r| r.status = ExpirationStatus::from_static("On"))),
            "MalformedXML"
        );
        assert_eq!(
            code(with(&|r| r.expiration.as_mut().unwrap().days = Some(0))),
            "InvalidArgument"
        );
        assert_eq!(
            code(with(&|r| r.expiration.as_mut().unwrap().date =
                Some(Timestamp::from(std::time::UNIX_EPOCH)))),
            "MalformedXML",
            "Days and Date"
        );
        let noon = std::time::UNIX_EPOCH + std::time::Duration::from_secs(43_200);
        assert_eq!(
            code(with(&|r| {
                r.expiration = Some(LifecycleExpiration {
                    date: Some(Timestamp::from(noon)),
                    ..Default::default()
                })
            })),
            "InvalidArgument",
            "dates are midnights"
        );
        assert_eq!(
            code(with(&|r| r
                .expiration
                .as_mut()
                .unwrap()
                .expired_object_delete_marker = Some(true))),
            "InvalidArgument"
        );
        assert_eq!(
            code(with(&|r| r.expiration = None)),
            "InvalidRequest",
            "no action"
        );
        assert_eq!(
            code(with(&|r| {
                r.prefix = Some("a".into());
                r.filter = Some(LifecycleRuleFilter::default());
            })),
            "MalformedXML"
        );
        assert_eq!(
            code(with(&|r| {
                r.filter = Some(LifecycleRuleFilter {
                    prefix: Some("a".into()),
                    tag: Some(Tag {
                        key: Some("k".into()),
                        value: Some("v".into()),
                    }),
                    ..Default::default()
                })
            })),
            "MalformedXML",
            "one filter element"
        );
        assert_eq!(
            code(with(&|r| {
                r.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
                    noncurrent_days: Some(1),
                    newer_noncurrent_versions: Some(101),
                })
            })),
            "InvalidArgument"
        );
        assert_eq!(
            code(with(&|r| {
                r.filter = Some(LifecycleRuleFilter {
                    tag: Some(Tag {
                        key: Some("k".into()),
                        value: Some("v".into()),
                    }),
                    ..Default::default()
                });
                r.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
                    days_after_initiation: Some(1),
                });
            })),
            "InvalidRequest"
        );
        let moved = |days: i32, class: &str| Transition {
            days: Some(days),
            storage_class: Some(TransitionStorageClass::from(class.to_string())),
            ..Default::default()
        };
        for (transitions, want) in [
            (
                vec![Transition {
                    days: Some(1),
                    ..Default::default()
                }],
                "MalformedXML",
            ),
            (vec![moved(1, "STANDARD")], "InvalidStorageClass"),
            (vec![moved(-1, "COLD")], "InvalidArgument"),
            (vec![moved(1, "COLD"), moved(2, "COLD")], "InvalidArgument"),
            // The rule expires after 3 days: a transition must come before.
            (vec![moved(3, "COLD")], "InvalidArgument"),
        ] {
            assert_eq!(
                code(with(&|r| r.transitions = Some(transitions.clone()))),
                want
            );
        }
        let noncurrent = |days: i32, keep: Option<i32>| NoncurrentVersionTransition {
            noncurrent_days: Some(days),
            newer_noncurrent_versions: keep,
            storage_class: Some(TransitionStorageClass::from("COLD".to_string())),
        };
        assert_eq!(
            code(with(
                &|r| r.noncurrent_version_transitions = Some(vec![noncurrent(-2, None)])
            )),
            "InvalidArgument"
        );
        assert_eq!(
            code(with(
                &|r| r.noncurrent_version_transitions = Some(vec![noncurrent(1, Some(101))])
            )),
            "InvalidArgument"
        );
        let ok = check(&BucketLifecycleConfiguration {
            rules: vec![LifecycleRule {
                transitions: Some(vec![moved(0, "WARM"), moved(2, "COLD")]),
                noncurrent_version_transitions: Some(vec![noncurrent(1, Some(2))]),
                ..rule()
            }],
        })
        .unwrap();
        assert_eq!(
            ok[0].transitions,
            vec![
                (When::Days(0), "WARM".to_string()),
                (When::Days(2), "COLD".to_string())
            ]
        );
        assert_eq!(
            ok[0].classes().collect::<Vec<_>>(),
            ["WARM", "COLD", "COLD"]
        );
    }

    #[test]
    fn the_latest_transition_due_wins() {
        let rule = check(&BucketLifecycleConfiguration {
            rules: vec![LifecycleRule {
                transitions: Some(vec![
                    Transition {
                        days: Some(1),
                        storage_class: Some(TransitionStorageClass::from("WARM".to_string())),
                        ..Default::default()
                    },
                    Transition {
                        days: Some(2),
                        storage_class: Some(TransitionStorageClass::from("COLD".to_string())),
                        ..Default::default()
                    },
                ]),
                noncurrent_version_transitions: Some(vec![NoncurrentVersionTransition {
                    noncurrent_days: Some(1),
                    newer_noncurrent_versions: Some(1),
                    storage_class: Some(TransitionStorageClass::from("COLD".to_string())),
                }]),
                ..enabled_rule()
            }],
        })
        .unwrap()
        .remove(0);
        let sec = NS;
        // A one-second day: written at 0, WARM from 1 s, COLD from 2 s.
        assert_eq!(rule.transition_due(0, sec / 2, 1), None);
        assert_eq!(rule.transition_due(0, sec, 1), Some((sec, "WARM")));
        assert_eq!(rule.transition_due(0, 5 * sec, 1), Some((2 * sec, "COLD")));
        // Noncurrent since 10 s: due at 11 s, once one newer noncurrent version is kept.
        assert_eq!(
            rule.noncurrent_transition_due(10 * sec, 1, 12 * sec, 1),
            Some((11 * sec, "COLD"))
        );
        assert_eq!(
            rule.noncurrent_transition_due(10 * sec, 0, 12 * sec, 1),
            None
        );
        assert_eq!(
            rule.noncurrent_transition_due(10 * sec, 1, 10 * sec, 1),
            None
        );
    }

    #[test]
    fn filters_match_prefix_tags_and_size() {
        let mut r = rule();
        r.filter = Some(LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some("logs/".into()),
                tags: Some(vec![Tag {
                    key: Some("tmp".into()),
                    value: Some("1".into()),
                }]),
                object_size_greater_than: Some(10),
                object_size_less_than: Some(100),
            }),
            ..Default::default()
        });
        let f = &check(&BucketLifecycleConfiguration { rules: vec![r] }).unwrap()[0].filter;
        let tmp = [("tmp".to_string(), "1".to_string())];
        assert!(f.matches("logs/a", &tmp, 50));
        assert!(!f.matches("data/a", &tmp, 50));
        assert!(!f.matches("logs/a", &[], 50));
        assert!(!f.matches("logs/a", &tmp, 10));
        assert!(!f.matches("logs/a", &tmp, 100));
        assert!(!f.matches_marker("logs/a"), "markers have no tags");
        assert!(Filter::default().matches_marker("any"));
    }

    #[test]
    fn real_days_round_up_to_midnight_and_test_days_do_not() {
        let day = DAY_SECS * NS;
        // Written at 10:30 on day 10: three days later is 10:30 on day 13, due at
        // midnight starting day 14.
        let written = 10 * day + 37_800 * NS;
        assert_eq!(due(written, 3, DAY_SECS), 14 * day);
        assert_eq!(due(10 * day, 3, DAY_SECS), 13 * day, "a midnight stays");
        assert_eq!(due(written, 3, 2), written + 6 * NS);
    }

    #[test]
    fn the_expiration_header_names_the_earliest_rule() {
        let mut late = rule();
        late.id = Some("late".into());
        late.expiration.as_mut().unwrap().days = Some(30);
        let rules = check(&BucketLifecycleConfiguration {
            rules: vec![late, rule()],
        })
        .unwrap();
        let h = expiration_header(&rules, "k", &[], 1, 0, DAY_SECS).unwrap();
        assert_eq!(
            h,
            "expiry-date=\"Sun, 04 Jan 1970 00:00:00 GMT\", rule-id=\"r\""
        );
        let mut off = rules.clone();
        off[1].enabled = false;
        assert!(expiration_header(&off, "k", &[], 1, 0, DAY_SECS)
            .unwrap()
            .ends_with("rule-id=\"late\""));
    }
}
