//! Notification targets: where bucket events go (`cybs3 admin notify add|list|remove|
//! status`), kept as server records (`notify` namespace) with their credentials sealed
//! under the server's key. A target is named in bucket configurations by its ARN,
//! `arn:cybs3:sqs:REGION:NAME:TYPE`.

use crate::sealed;
use engine::{LaneStatus, Store};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The server records' namespace.
const NS: &str = "notify";
/// Binds a sealed target URL or secret to its use.
const AAD: &[u8] = b"cybs3 notification target";

/// The protocols a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Amqp,
    Mqtt,
    Nats,
    Redis,
    Postgres,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Webhook,
        Kind::Amqp,
        Kind::Mqtt,
        Kind::Nats,
        Kind::Redis,
        Kind::Postgres,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Amqp => "amqp",
            Kind::Mqtt => "mqtt",
            Kind::Nats => "nats",
            Kind::Redis => "redis",
            Kind::Postgres => "postgres",
        }
    }

    /// The URL schemes the kind accepts.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Kind::Webhook => &["http", "https"],
            Kind::Amqp => &["amqp", "amqps"],
            Kind::Mqtt => &["tcp", "mqtt", "mqtts", "ssl"],
            Kind::Nats => &["nats", "tls"],
            Kind::Redis => &["redis", "rediss"],
            Kind::Postgres => &["postgres", "postgresql"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Kind, TargetError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| TargetError::Invalid(format!("unknown target type {s:?}: use one of webhook, amqp, mqtt, nats, redis or postgres")))
    }
}

/// The options a target type takes (the others must be absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// webhook: signs each POST with HMAC-SHA256 (`X-Cybs3-Signature`).
    pub secret: Option<String>,
    /// amqp: the exchange (default: the default exchange).
    pub exchange: Option<String>,
    /// amqp: the routing key (default: the target's name).
    pub routing_key: Option<String>,
    /// mqtt: the topic (default: the target's name).
    pub topic: Option<String>,
    /// mqtt: 0, 1 (default) or 2.
    pub qos: Option<u8>,
    /// nats: the subject (default: the target's name).
    pub subject: Option<String>,
    /// redis: the key (default: the target's name).
    pub key: Option<String>,
    /// redis: `list` (RPUSH, default) or `stream` (XADD).
    pub key_type: Option<String>,
    /// postgres: the table (default: the target's name), made if missing.
    pub table: Option<String>,
}

/// What `notify add` asks for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewTarget {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    #[serde(default)]
    pub options: Options,
}

/// A target as stored: its URL and secret sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub name: String,
    pub kind: Kind,
    /// The URL with any password taken out, for listings.
    pub shown_url: String,
    pub sealed_url: Vec<u8>,
    pub sealed_secret: Option<Vec<u8>>,
    pub options: Options,
    /// When it was added (Unix ns): a target added again under the same name gets new
    /// connections.
    pub added_ns: u64,
}

/// A target opened for delivery: its URL and secret in clear, in memory only.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub secret: Option<String>,
    pub options: Options,
    pub added_ns: u64,
}

/// A target as `notify list` shows it: never a secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub arn: String,
    pub url: String,
    pub options: Options,
}

/// A target's delivery counters, as `notify status` shows them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub arn: String,
    #[serde(flatten)]
    pub status: LaneStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Invalid(String),
    #[error("no notification target named {0:?}: see `cybs3 admin notify list`")]
    NoSuchTarget(String),
    #[error("a notification target named {0:?} exists: remove it first")]
    Exists(String),
    #[error("notification target {name:?} is named by the notification configuration of bucket {bucket:?}: change that first")]
    InUse { name: String, bucket: String },
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

/// The management calls of targets, as the management socket takes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum NotifyCall {
    Add(Box<NewTarget>),
    List,
    Remove { name: String },
    Status,
}

/// The targets of one server.
#[derive(Clone)]
pub struct Targets {
    store: Store,
    server_key: [u8; 32],
    region: String,
}

impl Targets {
    pub fn new(store: Store, server_key: &[u8; 32], region: &str) -> Targets {
        Targets {
            store,
            server_key: *server_key,
            region: region.to_string(),
        }
    }

    /// Answers one management call (JSON out).
    pub fn apply(&self, call: NotifyCall) -> Result<serde_json::Value, TargetError> {
        let json = |v: serde_json::Result<serde_json::Value>| v.unwrap_or_default();
        Ok(match call {
            NotifyCall::Add(new) => json(serde_json::to_value(self.add(*new)?)),
            NotifyCall::List => json(serde_json::to_value(self.list()?)),
            NotifyCall::Remove { name } => {
                self.remove(&name)?;
                serde_json::json!({ "removed": name })
            }
            NotifyCall::Status => json(serde_json::to_value(self.status()?)),
        })
    }

    pub fn arn(&self, name: &str, kind: Kind) -> String {
        format!("arn:cybs3:sqs:{}:{name}:{kind}", self.region)
    }

    pub fn add(&self, new: NewTarget) -> Result<TargetInfo, TargetError> {
        check_name(&new.name)?;
        check_options(&new)?;
        let shown_url = check_url(new.kind, &new.url)?;
        if self.stored(&new.name)?.is_some() {
            return Err(TargetError::Exists(new.name));
        }
        let mut options = new.options.clone();
        let secret = options.secret.take();
        let stored = Stored {
            name: new.name.clone(),
            kind: new.kind,
            shown_url,
            sealed_url: sealed::seal(&self.server_key, AAD, &new.url),
            sealed_secret: secret.map(|s| sealed::seal(&self.server_key, AAD, &s)),
            options,
            added_ns: crate::ctx::now_ns(),
        };
        let bytes = serde_json::to_vec(&stored).expect("a target serializes");
        self.store.set_server_record(NS, &new.name, Some(bytes))?;
        Ok(self.info(&stored))
    }

    pub fn list(&self) -> Result<Vec<TargetInfo>, TargetError> {
        Ok(self.all()?.iter().map(|t| self.info(t)).collect())
    }

    /// Removes a target no bucket names; its queued events become dead letters.
    pub fn remove(&self, name: &str) -> Result<(), TargetError> {
        if self.stored(name)?.is_none() {
            return Err(TargetError::NoSuchTarget(name.to_string()));
        }
        for bucket in self.store.list_buckets()? {
            if let Some(config) = self.store.notification(&bucket.name)? {
                if config.rules.iter().any(|r| r.target == name) {
                    return Err(TargetError::InUse {
                        name: name.to_string(),
                        bucket: bucket.name,
                    });
                }
            }
        }
        self.store.set_server_record(NS, name, None)?;
        self.store.drop_notify_target(name)?;
        Ok(())
    }

    pub fn status(&self) -> Result<Vec<TargetStatus>, TargetError> {
        self.all()?
            .iter()
            .map(|t| {
                Ok(TargetStatus {
                    name: t.name.clone(),
                    arn: self.arn(&t.name, t.kind),
                    status: self.store.notify_status(&t.name)?,
                })
            })
            .collect()
    }

    /// The target an ARN names, if it exists (`arn:cybs3:sqs:REGION:NAME:TYPE`).
    pub(crate) fn by_arn(&self, arn: &str) -> Result<Option<String>, TargetError> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [_, partition, _, region, name, kind] = parts[..] else {
            return Ok(None);
        };
        if parts[0] != "arn" || partition != "cybs3" || region != self.region {
            return Ok(None);
        }
        Ok(self
            .stored(name)?
            .filter(|t| t.kind.name() == kind)
            .map(|t| t.name))
    }

    /// A target with its URL and secret opened, for delivery.
    pub(crate) fn open(&self, name: &str) -> Result<Target, TargetError> {
        let t = self
            .stored(name)?
            .ok_or_else(|| TargetError::NoSuchTarget(name.to_string()))?;
        let open = |sealed: &[u8]| {
            sealed::open(&self.server_key, AAD, sealed).ok_or_else(|| {
                TargetError::Invalid(format!(
                    "the credentials of target {name:?} cannot be opened with this server's key"
                ))
            })
        };
        Ok(Target {
            url: open(&t.sealed_url)?,
            secret: t.sealed_secret.as_deref().map(open).transpose()?,
            name: t.name,
            kind: t.kind,
            options: t.options,
            added_ns: t.added_ns,
        })
    }

    fn stored(&self, name: &str) -> Result<Option<Stored>, TargetError> {
        let Some(bytes) = self.store.server_record(NS, name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TargetError::Invalid(format!("target {name:?} is damaged: {e}")))
    }

    fn all(&self) -> Result<Vec<Stored>, TargetError> {
        self.store
            .server_records(NS)?
            .into_iter()
            .map(|(name, bytes)| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| TargetError::Invalid(format!("target {name:?} is damaged: {e}")))
            })
            .collect()
    }

    fn info(&self, t: &Stored) -> TargetInfo {
        TargetInfo {
            name: t.name.clone(),
            kind: t.kind,
            arn: self.arn(&t.name, t.kind),
            url: t.shown_url.clone(),
            options: t.options.clone(),
        }
    }
}

/// Names appear in ARNs (colon-separated) and in lane keys.
fn check_name(name: &str) -> Result<(), TargetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    match ok {
        true => Ok(()),
        false => Err(TargetError::Invalid(format!(
            "target name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))),
    }
}

/// Checks the URL's scheme for `kind`; the URL with any password replaced by `***`.
fn check_url(kind: Kind, url: &str) -> Result<String, TargetError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !scheme.is_some_and(|s| kind.schemes().contains(&s)) {
        let want: Vec<String> = kind.schemes().iter().map(|s| format!("{s}://")).collect();
        return Err(TargetError::Invalid(format!(
            "a {kind} target's URL starts with {}",
            want.join(" or ")
        )));
    }
    let (scheme, rest) = url.split_once("://").expect("checked");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(TargetError::Invalid(format!("{url:?} names no host")));
    }
    Ok(match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    })
}

fn check_options(new: &NewTarget) -> Result<(), TargetError> {
    let o = &new.options;
    let given: [(&str, bool, Kind); 9] = [
        ("--secret", o.secret.is_some(), Kind::Webhook),
        ("--exchange", o.exchange.is_some(), Kind::Amqp),
        ("--routing-key", o.routing_key.is_some(), Kind::Amqp),
        ("--topic", o.topic.is_some(), Kind::Mqtt),
        ("--qos", o.qos.is_some(), Kind::Mqtt),
        ("--subject", o.subject.is_some(), Kind::Nats),
        ("--key", o.key.is_some(), Kind::Redis),
        ("--key-type", o.key_type.is_some(), Kind::Redis),
        ("--table", o.table.is_some(), Kind::Postgres),
    ];
    if let Some((flag, _, kind)) = given.iter().find(|(_, set, k)| *set && *k != new.kind) {
        return Err(TargetError::Invalid(format!(
            "{flag} is for {kind} targets, not {}",
            new.kind
        )));
    }
    if o.qos.is_some_and(|q| q > 2) {
        return Err(TargetError::Invalid("--qos is 0, 1 or 2".into()));
    }
    if o.key_type
        .as_deref()
        .is_some_and(|t| t != "list" && t != "stream")
    {
        return Err(TargetError::Invalid("--key-type is list or stream".into()));
    }
    let table = o.table.as_deref().unwrap_or(&new.name);
    if new.kind == Kind::Postgres && !is_identifier(table) {
        return Err(TargetError::Invalid(format!(
            "table {table:?}: use letters, digits and '_', not starting with a digit (or give --table)"
        )));
    }
    Ok(())
}

/// A plain SQL identifier (so it needs no quoting).
pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            check_url(Kind::Amqp, "amqp://guest:pw@127.0.0.1:5672/%2f").unwrap(),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            check_url(Kind::Webhook, "http://127.0.0.1:9/hook").unwrap(),
            "http://127.0.0.1:9/hook"
        );
        assert!(check_url(Kind::Webhook, "amqp://h").is_err());
        assert!(check_url(Kind::Redis, "redis://").is_err());
    }

    #[test]
    fn options_belong_to_their_type() {
        let new = |kind, options| NewTarget {
            name: "t".into(),
            kind,
            url: String::new(),
            options,
        };
        let topic = Options {
            topic: Some("x".into()),
            ..Default::default()
        };
        assert!(check_options(&new(Kind::Mqtt, topic.clone())).is_ok());
        assert!(check_options(&new(Kind::Webhook, topic)).is_err());
        let qos = Options {
            qos: Some(3),
            ..Default::default()
        };
        assert!(check_options(&new(Kind::Mqtt, qos)).is_err());
        let mut bad_table = new(Kind::Postgres, Options::default());
        bad_table.name = "1x".into();
        assert!(check_options(&bad_table).is_err());
    }

    #[test]
    fn targets_are_found_by_their_arn_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        let targets = Targets::new(store, &[3; 32], "us-east-1");
        let info = targets
            .add(NewTarget {
                name: "hook".into(),
                kind: Kind::Webhook,
                url: "http://127.0.0.1:9/h".into(),
                options: Options {
                    secret: Some("s3cret".into()),
                    ..Default::default()
                },
            })
            .unwrap();
        assert_eq!(info.arn, "arn:cybs3:sqs:us-east-1:hook:webhook");
        assert_eq!(info.options.secret, None);
        assert_eq!(targets.by_arn(&info.arn).unwrap().as_deref(), Some("hook"));
        for wrong in [
            "arn:cybs3:sqs:eu-west-1:hook:webhook",
            "arn:cybs3:sqs:us-east-1:hook:amqp",
            "arn:cybs3:sqs:us-east-1:other:webhook",
            "arn:aws:sqs:us-east-1:hook:webhook",
        ] {
            assert_eq!(targets.by_arn(wrong).unwrap(), None, "{wrong}");
        }
        assert_eq!(
            targets.open("hook").unwrap().secret.as_deref(),
            Some("s3cret")
        );
        let raw = targets.store.server_record(NS, "hook").unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("s3cret"));
        assert!(matches!(
            targets.add(NewTarget {
                name: "hook".into(),
                kind: Kind::Nats,
                url: "nats://127.0.0.1:4222".into(),
                options: Options::default(),
            }),
            Err(TargetError::Exists(_))
        ));
        targets.remove("hook").unwrap();
        assert!(targets.list().unwrap().is_empty());
    }
}
