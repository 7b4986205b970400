//! Put/GetBucketNotificationConfiguration: AWS's XML (QueueConfiguration,
//! TopicConfiguration, CloudFunctionConfiguration) checked and kept as the engine's
//! typed rules (`engine::NotifyConfig`), which the engine matches inside each commit.

use super::targets::Targets;
use crate::ctx::{blocking, Cybs3};
use engine::{NotifyConfig, NotifyRule};
use s3s::dto::*;
use s3s::{s3_error, S3Result};

/// The event names a configuration may name (AWS's list).
const EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
];

/// One configuration element before its target is looked up.
struct Asked {
    kind: &'static str,
    id: Option<String>,
    arn: String,
    events: Vec<Event>,
    filter: Option<NotificationConfigurationFilter>,
}

pub(crate) async fn put(
    s: &Cybs3,
    input: PutBucketNotificationConfigurationInput,
) -> S3Result<PutBucketNotificationConfigurationOutput> {
    let c = input.notification_configuration;
    if c.event_bridge_configuration.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "EventBridge is not available here: name a target of `cybs3 admin notify list`"
        ));
    }
    let mut asked = Vec::new();
    for q in c.queue_configurations.unwrap_or_default() {
        asked.push(Asked {
            kind: "Queue",
            id: q.id,
            arn: q.queue_arn,
            events: q.events,
            filter: q.filter,
        });
    }
    for t in c.topic_configurations.unwrap_or_default() {
        asked.push(Asked {
            kind: "Topic",
            id: t.id,
            arn: t.topic_arn,
            events: t.events,
            filter: t.filter,
        });
    }
    for l in c.lambda_function_configurations.unwrap_or_default() {
        asked.push(Asked {
            kind: "CloudFunction",
            id: l.id,
            arn: l.lambda_function_arn,
            events: l.events,
            filter: l.filter,
        });
    }
    let (store, targets, bucket) = (s.store.clone(), s.notify.clone(), input.bucket);
    let config = tokio::task::spawn_blocking(move || rules(&targets, asked))
        .await
        .map_err(|_| {
            crate::errors::internal("We encountered an internal error. Please try again.")
        })??;
    blocking(move || store.set_notification(&bucket, Some(&config))).await?;
    Ok(PutBucketNotificationConfigurationOutput {})
}

fn rules(targets: &Targets, asked: Vec<Asked>) -> S3Result<NotifyConfig> {
    let mut rules: Vec<NotifyRule> = Vec::new();
    for (i, a) in asked.into_iter().enumerate() {
        let target = targets
            .by_arn(&a.arn)
            .map_err(|e| {
                tracing::error!("notification targets unreadable: {e}");
                crate::errors::internal("We encountered an internal error. Please try again.")
            })?
            .ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "Unable to validate the following destination configurations: {} (no such target; see `cybs3 admin notify list`)",
                    a.arn
                )
            })?;
        if a.events.is_empty() {
            return Err(s3_error!(
                InvalidArgument,
                "A notification configuration needs at least one event"
            ));
        }
        let events: Vec<String> = a.events.iter().map(|e| e.as_ref().to_string()).collect();
        if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(s3_error!(
                InvalidArgument,
                "The event is not supported for notifications: {bad}"
            ));
        }
        let (prefix, suffix) = key_filter(a.filter)?;
        let rule = NotifyRule {
            id: a
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("cybs3-notification-{}", i + 1)),
            target,
            arn: a.arn,
            kind: a.kind.to_string(),
            events,
            prefix,
            suffix,
        };
        if rules.iter().any(|r| r.id == rule.id) {
            return Err(s3_error!(
                InvalidArgument,
                "Two notification configurations have the id {}",
                rule.id
            ));
        }
        if rules.iter().any(|r| overlap(r, &rule)) {
            return Err(s3_error!(
                InvalidArgument,
                "Configurations overlap. Configurations on the same bucket cannot share a common event type."
            ));
        }
        rules.push(rule);
    }
    Ok(NotifyConfig { rules })
}

/// The prefix and suffix of an S3Key filter: at most one of each.
fn key_filter(filter: Option<NotificationConfigurationFilter>) -> S3Result<(String, String)> {
    let (mut prefix, mut suffix) = (None, None);
    let rules = filter
        .and_then(|f| f.key)
        .and_then(|k| k.filter_rules)
        .unwrap_or_default();
    for r in rules {
        let name = r.name.as_ref().map(|n| n.as_str().to_ascii_lowercase());
        let slot = match name.as_deref() {
            Some("prefix") => &mut prefix,
            Some("suffix") => &mut suffix,
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "filter rule name must be either prefix or suffix"
                ))
            }
        };
        if slot.replace(r.value.unwrap_or_default()).is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Cannot specify more than one prefix or suffix rule in a filter."
            ));
        }
    }
    Ok((prefix.unwrap_or_default(), suffix.unwrap_or_default()))
}

/// Two rules overlap when one event, on one key, could match both (AWS refuses that).
fn overlap(a: &NotifyRule, b: &NotifyRule) -> bool {
    let events = a.events.iter().any(|x| {
        b.events.iter().any(|y| {
            engine::event_matches(x, y.trim_start_matches("s3:").trim_end_matches('*'))
                || engine::event_matches(y, x.trim_start_matches("s3:").trim_end_matches('*'))
        })
    });
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    events && prefixes && suffixes
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetBucketNotificationConfigurationInput,
) -> S3Result<GetBucketNotificationConfigurationOutput> {
    let (store, bucket) = (s.store.clone(), input.bucket);
    let config = blocking(move || store.notification(&bucket)).await?;
    let mut out = GetBucketNotificationConfigurationOutput::default();
    for r in config.map(|c| c.rules).unwrap_or_default() {
        let filter = filter_of(&r);
        let events = r.events.into_iter().map(Event::from).collect();
        let id = Some(r.id);
        match r.kind.as_str() {
            "Topic" => out
                .topic_configurations
                .get_or_insert_default()
                .push(TopicConfiguration {
                    events,
                    filter,
                    id,
                    topic_arn: r.arn,
                }),
            "CloudFunction" => out
                .lambda_function_configurations
                .get_or_insert_default()
                .push(LambdaFunctionConfiguration {
                    events,
                    filter,
                    id,
                    lambda_function_arn: r.arn,
                }),
            _ => out
                .queue_configurations
                .get_or_insert_default()
                .push(QueueConfiguration {
                    events,
                    filter,
                    id,
                    queue_arn: r.arn,
                }),
        }
    }
    Ok(out)
}

fn filter_of(r: &NotifyRule) -> Option<NotificationConfigurationFilter> {
    let mut rules = Vec::new();
    for (name, value) in [
        (FilterRuleName::PREFIX, &r.prefix),
        (FilterRuleName::SUFFIX, &r.suffix),
    ] {
        if !value.is_empty() {
            rules.push(FilterRule {
                name: Some(FilterRuleName::from_static(name)),
                value: Some(value.clone()),
            });
        }
    }
    if rules.is_empty() {
        return None;
    }
    Some(NotificationConfigurationFilter {
        key: Some(S3KeyFilter {
            filter_rules: Some(rules),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(events: &[&str], prefix: &str, suffix: &str) -> NotifyRule {
        NotifyRule {
            id: "r".into(),
            target: "t".into(),
            arn: String::new(),
            kind: "Queue".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn rules_overlap_on_a_shared_event_and_key() {
        let all = rule(&["s3:ObjectCreated:*"], "", "");
        let put = rule(&["s3:ObjectCreated:Put"], "a/", "");
        let del = rule(&["s3:ObjectRemoved:*"], "", "");
        assert!(overlap(&all, &put));
        assert!(overlap(&put, &all));
        assert!(!overlap(&all, &del));
        let jpg = rule(&["s3:ObjectCreated:Put"], "a/", ".jpg");
        let png = rule(&["s3:ObjectCreated:Put"], "a/", ".png");
        assert!(!overlap(&jpg, &png));
        let other_dir = rule(&["s3:ObjectCreated:Put"], "b/", "");
        assert!(!overlap(&put, &other_dir));
    }
}
