//! Put/Get/DeleteBucketReplication: AWS's XML checked and kept as the engine's typed
//! rules (`engine::ReplicationConfig`), which the engine matches inside each commit.
//! A destination is a bucket on a registered remote: `arn:cybs3:s3:::REMOTE/BUCKET`.

use crate::ctx::{blocking, Cybs3};
use engine::{FilterForm, ReplRule, ReplicationConfig};
use s3s::dto::*;
use s3s::{s3_error, S3Result};
use std::time::Duration;

/// AWS's limit on rules per configuration.
const MAX_RULES: usize = 1000;
/// How long the destination has to say that its versioning is enabled.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn put(
    s: &Cybs3,
    input: PutBucketReplicationInput,
) -> S3Result<PutBucketReplicationOutput> {
    let c = input.replication_configuration;
    let (store, bucket) = (s.store.clone(), input.bucket.clone());
    let versioning = blocking(move || store.bucket(&bucket)).await?.versioning;
    // Checked again inside the commit that sets the rules (a suspend may race this).
    if versioning != engine::Versioning::Enabled {
        return Err(s3_error!(
            InvalidRequest,
            "Versioning must be 'Enabled' on the bucket to apply a replication configuration"
        ));
    }
    let config = ReplicationConfig {
        role: c.role,
        rules: rules(c.rules)?,
    };
    for (remote, bucket) in destinations(&config) {
        s.remotes
            .versioned(remote, bucket, CHECK_TIMEOUT)
            .await
            .map_err(|e| s3_error!(InvalidRequest, "{e}"))?;
    }
    let (store, bucket) = (s.store.clone(), input.bucket);
    let existing = config.rules.iter().any(|r| r.enabled && r.existing);
    let b = bucket.clone();
    blocking(move || store.set_replication(&b, Some(&config))).await?;
    if existing {
        // ExistingObjectReplication: what was there before the rule goes too.
        let store = s.store.clone();
        tokio::task::spawn_blocking(move || match store.resync_replication(&bucket) {
            Ok(n) => tracing::info!(
                bucket,
                queued = n,
                "existing objects queued for replication"
            ),
            Err(e) => tracing::warn!(bucket, "existing objects not queued for replication: {e}"),
        });
    }
    Ok(PutBucketReplicationOutput::default())
}

/// Each destination (remote, bucket) once.
fn destinations(config: &ReplicationConfig) -> Vec<(&str, &str)> {
    let mut all: Vec<(&str, &str)> = Vec::new();
    for r in &config.rules {
        if !all.contains(&(r.remote.as_str(), r.bucket.as_str())) {
            all.push((&r.remote, &r.bucket));
        }
    }
    all
}

fn enabled(s: &str) -> bool {
    s == "Enabled"
}

fn rules(asked: Vec<ReplicationRule>) -> S3Result<Vec<ReplRule>> {
    if asked.is_empty() || asked.len() > MAX_RULES {
        return Err(s3_error!(
            MalformedXML,
            "A replication configuration holds 1 to {MAX_RULES} rules"
        ));
    }
    let mut rules: Vec<ReplRule> = Vec::new();
    for (i, r) in asked.into_iter().enumerate() {
        let (filter, prefix, tags) = filter_of(r.prefix, r.filter)?;
        let delete_markers = r.delete_marker_replication.as_ref();
        let delete_markers = delete_markers.and_then(|d| d.status.as_ref());
        if filter != FilterForm::RulePrefix && (r.priority.is_none() || delete_markers.is_none()) {
            return Err(s3_error!(
                InvalidRequest,
                "Priority and DeleteMarkerReplication must be specified for this version of the Cross Region Replication configuration schema."
            ));
        }
        let delete_markers = delete_markers.is_some_and(|s| enabled(s.as_str()));
        if delete_markers && !tags.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "Delete marker replication is not supported if any Tag filter is specified."
            ));
        }
        let d = &r.destination;
        if d.replication_time.is_some() || d.metrics.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Replication Time Control and replication metrics are not available: `cybs3 admin replication status` shows each destination's lag"
            ));
        }
        if d.access_control_translation.is_some() || d.account.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Destination Account and AccessControlTranslation are not available: a replica is owned by the remote's key"
            ));
        }
        let (remote, bucket) = destination(&d.bucket)?;
        let criteria = r.source_selection_criteria.as_ref();
        let sse_kms = criteria
            .and_then(|c| c.sse_kms_encrypted_objects.as_ref())
            .is_some_and(|k| enabled(k.status.as_str()));
        let replica_key =
            (d.encryption_configuration.as_ref()).and_then(|e| e.replica_kms_key_id.clone());
        if sse_kms && replica_key.is_none() {
            return Err(s3_error!(
                InvalidRequest,
                "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present."
            ));
        }
        let rule = ReplRule {
            id: r
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("cybs3-replication-{}", i + 1)),
            priority: r.priority.unwrap_or(0),
            enabled: enabled(r.status.as_str()),
            filter,
            prefix,
            tags,
            delete_markers,
            existing: r
                .existing_object_replication
                .is_some_and(|e| enabled(e.status.as_str())),
            replica_modifications: criteria
                .and_then(|c| c.replica_modifications.as_ref())
                .is_some_and(|m| enabled(m.status.as_str())),
            remote,
            bucket,
            storage_class: r.destination.storage_class.map(|c| c.as_str().to_string()),
            sse_kms: replica_key.filter(|_| sse_kms),
            site: false,
        };
        if rules.iter().any(|o| o.id == rule.id) {
            return Err(s3_error!(
                InvalidRequest,
                "Rule Id must be unique: {} is given twice",
                rule.id
            ));
        }
        let same_priority = rules.iter().any(|o| {
            o.priority == rule.priority && o.remote == rule.remote && o.bucket == rule.bucket
        });
        if filter != FilterForm::RulePrefix && same_priority {
            return Err(s3_error!(
                InvalidRequest,
                "Found duplicate priority {} for rules with the same destination",
                rule.priority
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// How a rule's filter is written, its prefix and its tags.
type Filter = (FilterForm, String, Vec<(String, String)>);

fn filter_of(
    rule_prefix: Option<String>,
    filter: Option<ReplicationRuleFilter>,
) -> S3Result<Filter> {
    let tag = |t: Tag| (t.key.unwrap_or_default(), t.value.unwrap_or_default());
    Ok(match (rule_prefix, filter) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                MalformedXML,
                "A rule gives either a Prefix or a Filter, not both"
            ))
        }
        (Some(prefix), None) => (FilterForm::RulePrefix, prefix, Vec::new()),
        (None, None) => (FilterForm::Prefix, String::new(), Vec::new()),
        (None, Some(f)) => match (f.prefix, f.tag, f.and) {
            (p, None, None) => (FilterForm::Prefix, p.unwrap_or_default(), Vec::new()),
            (None, Some(t), None) => (FilterForm::Tag, String::new(), vec![tag(t)]),
            (None, None, Some(and)) => (
                FilterForm::And,
                and.prefix.unwrap_or_default(),
                and.tags.unwrap_or_default().into_iter().map(tag).collect(),
            ),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "A Filter holds one of Prefix, Tag or And"
                ))
            }
        },
    })
}

/// The remote and bucket of `arn:cybs3:s3:::REMOTE/BUCKET`.
fn destination(arn: &str) -> S3Result<(String, String)> {
    let found = arn
        .strip_prefix("arn:cybs3:s3:::")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(r, b)| !r.is_empty() && engine::validate_bucket_name(b).is_ok());
    let Some((remote, bucket)) = found else {
        return Err(s3_error!(
            InvalidArgument,
            "Invalid bucket ARN {arn:?}: a destination is arn:cybs3:s3:::REMOTE/BUCKET, REMOTE one of `cybs3 admin remote list`"
        ));
    };
    Ok((remote.to_string(), bucket.to_string()))
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetBucketReplicationInput,
) -> S3Result<GetBucketReplicationOutput> {
    let (store, bucket) = (s.store.clone(), input.bucket);
    let config = blocking(move || store.replication(&bucket))
        .await?
        .ok_or_else(not_found)?;
    let status = |on: bool| {
        match on {
            true => "Enabled",
            false => "Disabled",
        }
        .to_string()
    };
    let rules = config
        .rules
        .into_iter()
        .map(|r| {
            let tag = |(k, v): (String, String)| Tag {
                key: Some(k),
                value: Some(v),
            };
            let (prefix, filter) = match r.filter {
                FilterForm::RulePrefix => (Some(r.prefix), None),
                FilterForm::Prefix => (
                    None,
                    Some(ReplicationRuleFilter {
                        prefix: Some(r.prefix),
                        ..Default::default()
                    }),
                ),
                FilterForm::Tag => (
                    None,
                    Some(ReplicationRuleFilter {
                        tag: r.tags.into_iter().next().map(tag),
                        ..Default::default()
                    }),
                ),
                FilterForm::And => (
                    None,
                    Some(ReplicationRuleFilter {
                        and: Some(ReplicationRuleAndOperator {
                            prefix: Some(r.prefix),
                            tags: Some(r.tags.into_iter().map(tag).collect()),
                        }),
                        ..Default::default()
                    }),
                ),
            };
            let schema_v2 = filter.is_some();
            ReplicationRule {
                delete_marker_replication: schema_v2.then(|| DeleteMarkerReplication {
                    status: Some(status(r.delete_markers).into()),
                }),
                destination: Destination {
                    bucket: format!("arn:cybs3:s3:::{}/{}", r.remote, r.bucket),
                    storage_class: r.storage_class.map(StorageClass::from),
                    encryption_configuration: r.sse_kms.clone().map(|key| {
                        EncryptionConfiguration {
                            replica_kms_key_id: Some(key),
                        }
                    }),
                    ..Default::default()
                },
                existing_object_replication: r.existing.then(|| ExistingObjectReplication {
                    status: status(true).into(),
                }),
                filter,
                id: Some(r.id),
                prefix,
                priority: schema_v2.then_some(r.priority),
                source_selection_criteria: (r.replica_modifications || r.sse_kms.is_some()).then(
                    || SourceSelectionCriteria {
                        replica_modifications: r.replica_modifications.then(|| {
                            ReplicaModifications {
                                status: status(true).into(),
                            }
                        }),
                        sse_kms_encrypted_objects: r.sse_kms.is_some().then(|| {
                            SseKmsEncryptedObjects {
                                status: status(true).into(),
                            }
                        }),
                    },
                ),
                status: status(r.enabled).into(),
            }
        })
        .collect();
    Ok(GetBucketReplicationOutput {
        replication_configuration: Some(ReplicationConfiguration {
            role: config.role,
            rules,
        }),
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketReplicationInput,
) -> S3Result<DeleteBucketReplicationOutput> {
    let (store, bucket) = (s.store.clone(), input.bucket);
    blocking(move || store.set_replication(&bucket, None)).await?;
    Ok(DeleteBucketReplicationOutput::default())
}

fn not_found() -> s3s::S3Error {
    s3_error!(
        ReplicationConfigurationNotFoundError,
        "The replication configuration was not found"
    )
}
