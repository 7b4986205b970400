//! The audit record of the request being served: set around each request by the server
//! (a task-local), filled in as the request goes (the access check says who called and
//! what was decided, the end of the request its status and sizes), then handed to the
//! audit log ([`crate::audit`]). [`current`] gives the facts other features need about
//! the request being served (its id, caller, source address and operation).

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// Which endpoint a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    S3,
    Sts,
    /// The management socket (`cybs3 admin …`).
    Admin,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::S3 => "s3",
            Api::Sts => "sts",
            Api::Admin => "admin",
        }
    }
}

/// An access decision and what made it: the policy (`policy:NAME`, `bucket-policy`),
/// the ACL, root, a bucket key; or the reason a caller was refused before any policy
/// was asked (an unknown key, an expired token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub by: String,
}

/// Everything the audit log keeps about one request.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: Arc<str>,
    pub time: SystemTime,
    pub api: Api,
    pub access_key: Option<String>,
    /// `root`, a user's name, `bucket:NAME` for a bucket key, `anonymous`; on the
    /// management socket, the local account (`uid:N`).
    pub user: Option<Arc<str>>,
    /// Whether the access key is a temporary (STS) session's.
    pub session: bool,
    pub source: Option<IpAddr>,
    /// The S3 operation (`PutObject`), STS action (`sts:AssumeRole`) or management call
    /// (`iam:CreateUser`, `admin:KmsKeyCreate`).
    pub action: Option<Arc<str>>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version: Option<String>,
    /// What a management call acts on: a user, group, policy, key or pool.
    pub target: Option<String>,
    pub decision: Option<Decision>,
    pub status: u16,
    /// The S3 (or STS, or management) error code of a failed request.
    pub error: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub micros: u64,
    /// What the request changed, for the anomaly detector (writes and deletes set it).
    pub changes: Option<crate::anomaly::Changes>,
}

impl Record {
    /// A record for a request that starts now, with its request id chosen.
    pub fn new(api: Api, source: Option<IpAddr>) -> Record {
        Record {
            id: crate::messages::new_request_id().into(),
            time: SystemTime::now(),
            api,
            access_key: None,
            user: None,
            session: false,
            source,
            action: None,
            bucket: None,
            key: None,
            version: None,
            target: None,
            decision: None,
            status: 0,
            error: None,
            bytes_in: 0,
            bytes_out: 0,
            micros: 0,
            changes: None,
        }
    }

    /// Keep a decision: a refusal outranks an allow (a copy is refused when its source
    /// may not be read, whatever the target's check said), and the first allow stays
    /// (the operation's own, not a later side question).
    pub fn decided(&mut self, allowed: bool, by: impl Into<String>) {
        let keep = match &self.decision {
            None => true,
            Some(d) => d.allowed && !allowed,
        };
        if keep {
            self.decision = Some(Decision {
                allowed,
                by: by.into(),
            });
        }
    }
}

/// A shared handle on the current request's record, which access checks carry to the
/// blocking threads they run on.
#[derive(Clone, Debug)]
pub(crate) struct Trail(Arc<Mutex<Record>>);

impl Trail {
    pub(crate) fn new(record: Record) -> Trail {
        Trail(Arc::new(Mutex::new(record)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding the lock leaves a record that is still worth writing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

tokio::task_local! {
    static TRAIL: Trail;
}

/// Serve one request with `trail` as its record.
pub(crate) async fn request_scope<F: Future>(trail: Trail, f: F) -> F::Output {
    TRAIL.scope(trail, f).await
}

/// The current request's record (`None` outside a request, e.g. on a blocking thread).
pub(crate) fn handle() -> Option<Trail> {
    TRAIL.try_with(Trail::clone).ok()
}

/// Change the current request's record, if there is one.
pub(crate) fn update(f: impl FnOnce(&mut Record)) {
    let _ = TRAIL.try_with(|t| f(&mut t.lock()));
}

/// Add to what the current request changed (the anomaly detector's counts).
pub(crate) fn changed(f: impl FnOnce(&mut crate::anomaly::Changes)) {
    update(|r| f(r.changes.get_or_insert_with(Default::default)));
}

/// The current request's id, or a new one outside a request.
pub(crate) fn request_id() -> Arc<str> {
    TRAIL
        .try_with(|t| t.lock().id.clone())
        .unwrap_or_else(|_| crate::messages::new_request_id().into())
}

/// What is known of the request being served, cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Equal to the response's `x-amz-request-id`.
    pub request_id: Arc<str>,
    /// The caller, as [`Record::user`] names it (`None` before the access check).
    pub principal: Option<Arc<str>>,
    pub source: Option<IpAddr>,
    /// The operation, as [`Record::action`] names it.
    pub operation: Option<Arc<str>>,
}

/// The request being served, when called within one (the task that serves it, not a
/// blocking thread it started: take the snapshot before spawning).
pub fn current() -> Option<Snapshot> {
    TRAIL
        .try_with(|t| {
            let r = t.lock();
            Snapshot {
                request_id: r.id.clone(),
                principal: r.user.clone(),
                source: r.source,
                operation: r.action.clone(),
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_snapshot_is_the_requests_and_a_refusal_outranks_an_allow() {
        assert!(current().is_none());
        let trail = Trail::new(Record::new(Api::S3, Some([10, 0, 0, 1].into())));
        let id = trail.lock().id.clone();
        request_scope(trail.clone(), async {
            update(|r| {
                r.user = Some("alice".into());
                r.action = Some("GetObject".into());
                r.decided(true, "policy:readonly");
                r.decided(true, "acl");
                r.decided(false, "implicit deny");
                r.decided(true, "root");
            });
            let s = current().unwrap();
            assert_eq!(s.request_id, id);
            assert_eq!(request_id(), id);
            assert_eq!(
                (s.principal.as_deref(), s.operation.as_deref()),
                (Some("alice"), Some("GetObject"))
            );
        })
        .await;
        let d = trail.lock().decision.clone().unwrap();
        assert_eq!((d.allowed, d.by.as_str()), (false, "implicit deny"));
    }
}
