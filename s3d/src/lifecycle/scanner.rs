//! The lifecycle scanner: a background pass every interval over the buckets that have
//! rules, applying expirations and transitions and aborting old multipart uploads.
//!
//! - Incremental and bounded: versions are read a page at a time in key order, and only
//!   one key's state is held across pages, whatever the bucket holds.
//! - Resumable: after each page the pass records the last key it finished (a server
//!   record), so a restart picks up there instead of starting over; a stopping server
//!   ends a pass at its next page instead of waiting for it.
//! - Safe against races: each expiration goes to the engine as "this version, if it is
//!   still where the scan saw it" (`engine::Expiry`), inside the commit, where object
//!   lock is enforced too: a locked version is never removed. A transition
//!   (`Store::transition`) copies the version's data into its class's pool and swaps it
//!   in with one commit that checks the version still holds that data and is not locked.
//! - Everything it does goes through one hook, [`Scan::acted`], which the events
//!   (LifecycleExpiration) attach to.

use super::load;
use super::rules::{due, Rule};
use crate::ctx;
use engine::{Expiry, Store, VersionEntry, VersionQuery};
use s3s::S3Error;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Versions or uploads read per page.
const PAGE: usize = 1000;
/// Where the pass records its progress (a server record).
const CURSOR_NS: &str = "lifecycle";
const CURSOR_NAME: &str = "cursor";

/// How the scanner runs (`server start --lifecycle-day-secs`, `--lifecycle-interval-secs`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A lifecycle day in seconds: 86,400, or less so tests see days pass in seconds.
    pub day_secs: u64,
    /// Time between the starts of two passes.
    pub interval: Duration,
}

impl Settings {
    /// Real days, and a pass every hour (or every day, if a day is shorter).
    pub fn new(day_secs: u64, interval: Option<Duration>) -> Settings {
        let day_secs = day_secs.max(1);
        Settings {
            day_secs,
            interval: interval.unwrap_or(Duration::from_secs(day_secs.min(3600))),
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::new(super::rules::DAY_SECS, None)
    }
}

/// Where an interrupted pass resumes: after this key of this bucket.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Cursor {
    bucket: String,
    after_key: Option<String>,
}

/// What one pass did.
#[derive(Debug, Default)]
struct Report {
    expired: u64,
    noncurrent: u64,
    markers: u64,
    uploads: u64,
    transitioned: u64,
    kept_locked: u64,
}

/// Set when the task running the passes is dropped (the server is stopping): a pass on
/// its blocking thread then stops at its next page, and the next start resumes it.
struct Stopping(Arc<AtomicBool>);

impl Drop for Stopping {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Run passes until the runtime stops.
/// The interval comes from `live` (`server config set lifecycle-interval-secs`) at each
/// wait, and a change ends the wait under way.
pub(crate) async fn run(store: Store, settings: Settings, live: crate::Live) {
    let stop = Arc::new(AtomicBool::new(false));
    let _stopping = Stopping(stop.clone());
    loop {
        let (store, stop) = (store.clone(), stop.clone());
        let started = Instant::now();
        match ctx::spawn(move || pass(&store, settings.day_secs, &stop)).await {
            // Passes that only found locked versions again are not news.
            Ok(Ok(r)) if r.is_empty() => {
                tracing::debug!(target: "cybs3::lifecycle", kept_by_object_lock = r.kept_locked, "lifecycle pass")
            }
            Ok(Ok(r)) => tracing::info!(
                target: "cybs3::lifecycle",
                expired = r.expired,
                noncurrent_removed = r.noncurrent,
                delete_markers_removed = r.markers,
                uploads_aborted = r.uploads,
                transitioned = r.transitioned,
                kept_by_object_lock = r.kept_locked,
                ms = started.elapsed().as_millis() as u64,
                "lifecycle pass"
            ),
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(target: "cybs3::lifecycle", "lifecycle pass stopped: {e}; the next one resumes")
            }
        }
        loop {
            let every = live.lifecycle_interval().unwrap_or(settings.interval);
            tokio::select! {
                () = tokio::time::sleep_until((started + every).into()) => break,
                () = live.changed() => {}
            }
        }
    }
}

impl Report {
    fn is_empty(&self) -> bool {
        self.expired + self.noncurrent + self.markers + self.uploads + self.transitioned == 0
    }
}

fn engine(e: engine::Error) -> S3Error {
    crate::errors::from_engine(e)
}

/// One pass over every bucket with rules, from where the last one stopped.
fn pass(store: &Store, day_secs: u64, stop: &AtomicBool) -> Result<Report, S3Error> {
    let cursor: Option<Cursor> = store
        .server_record(CURSOR_NS, CURSOR_NAME)
        .map_err(engine)?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut scan = Scan {
        store,
        day_secs,
        now: crate::ctx::now_ns(),
        report: Report::default(),
        stop,
    };
    for bucket in store.list_buckets().map_err(engine)? {
        let after_key = match &cursor {
            Some(c) if bucket.name < c.bucket => continue,
            Some(c) if bucket.name == c.bucket => c.after_key.clone(),
            _ => None,
        };
        let rules = match load(store, &bucket.name) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "cybs3::lifecycle", bucket = %bucket.name, "rules skipped: {e}");
                continue;
            }
        };
        if !rules.iter().any(|r| r.enabled) {
            continue;
        }
        match scan.bucket(&bucket.name, &rules, after_key) {
            Err(engine::Error::NoSuchBucket(_)) => continue,
            other => other.map_err(engine)?,
        }
        if scan.stopped() {
            // The cursor stays: the next start goes on from it.
            return Ok(scan.report);
        }
    }
    store
        .set_server_record(CURSOR_NS, CURSOR_NAME, None)
        .map_err(engine)?;
    Ok(scan.report)
}

struct Scan<'a> {
    store: &'a Store,
    day_secs: u64,
    /// The pass's clock: everything is judged at its start.
    now: u64,
    report: Report,
    /// The server is stopping (see [`Stopping`]).
    stop: &'a AtomicBool,
}

/// The key being walked: its versions come newest first.
struct KeyWalk {
    key: String,
    /// Versions of the key seen so far.
    seen: u64,
    /// When the version seen last was written: the one after it stopped being current then.
    newer_mtime: u64,
    /// The key's current version is a delete marker in scope of ExpiredObjectDeleteMarker;
    /// it is alone if no other version follows.
    lone_marker: Option<String>,
}

impl Scan<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn bucket(&mut self, b: &str, rules: &[Rule], after_key: Option<String>) -> engine::Result<()> {
        let enabled: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
        if enabled.iter().any(|r| r.acts_on_versions()) {
            self.versions(b, &enabled, after_key)?;
        }
        if enabled.iter().any(|r| r.abort_after_days.is_some()) {
            self.uploads(b, &enabled)?;
        }
        Ok(())
    }

    fn versions(
        &mut self,
        b: &str,
        rules: &[&Rule],
        after_key: Option<String>,
    ) -> engine::Result<()> {
        let mut q = VersionQuery {
            key_marker: after_key,
            max: PAGE,
            ..VersionQuery::default()
        };
        let mut walk: Option<KeyWalk> = None;
        loop {
            let page = self.store.list_versions(b, &q)?;
            for e in &page.versions {
                if walk.as_ref().is_none_or(|w| w.key != e.version.key) {
                    if let Some(done) = walk.take() {
                        self.finish_key(b, done)?;
                    }
                    walk = Some(KeyWalk {
                        key: e.version.key.clone(),
                        seen: 0,
                        newer_mtime: 0,
                        lone_marker: None,
                    });
                }
                let w = walk.as_mut().expect("set above");
                self.visit(b, rules, w, e)?;
            }
            if !page.truncated {
                break;
            }
            // Resume after the last key finished: the one being walked may go on.
            let finished = page
                .versions
                .iter()
                .rev()
                .map(|e| &e.version.key)
                .find(|k| walk.as_ref().is_none_or(|w| w.key != **k));
            if let Some(k) = finished {
                let cursor = Cursor {
                    bucket: b.to_string(),
                    after_key: Some(k.clone()),
                };
                let bytes = serde_json::to_vec(&cursor).expect("cursors serialize");
                self.store
                    .set_server_record(CURSOR_NS, CURSOR_NAME, Some(bytes))?;
            }
            if self.stopped() {
                return Ok(());
            }
            q.key_marker = page.next_key;
            q.version_marker = page.next_version;
        }
        if let Some(done) = walk {
            self.finish_key(b, done)?;
        }
        Ok(())
    }

    fn visit(
        &mut self,
        b: &str,
        rules: &[&Rule],
        w: &mut KeyWalk,
        e: &VersionEntry,
    ) -> engine::Result<()> {
        let v = &e.version;
        let index = w.seen;
        w.seen += 1;
        let since = std::mem::replace(&mut w.newer_mtime, v.mtime_ns);
        if index == 0 {
            if v.delete_marker {
                let in_scope = rules
                    .iter()
                    .any(|r| r.expired_markers && r.filter.matches_marker(&v.key));
                w.lone_marker = in_scope.then(|| v.version_id.clone());
                return Ok(());
            }
            let due_rule = rules.iter().find(|r| {
                r.filter.matches(&v.key, &v.meta.tags, v.size)
                    && r.expires_at(v.mtime_ns, self.day_secs)
                        .is_some_and(|at| at <= self.now)
            });
            if let Some(rule) = due_rule {
                return self.expire(b, &v.key, &v.version_id, Expiry::Current, &rule.id);
            }
            let due_class = rules
                .iter()
                .filter(|r| r.filter.matches(&v.key, &v.meta.tags, v.size))
                .filter_map(|r| {
                    Some((
                        r.transition_due(v.mtime_ns, self.now, self.day_secs)?,
                        &r.id,
                    ))
                })
                .max_by_key(|((at, _), _)| *at);
            if let Some(((_, class), rule)) = due_class {
                self.transition(b, v, class, rule);
            }
            return Ok(());
        }
        w.lone_marker = None;
        // `index - 1` noncurrent versions are newer than this one.
        let due_rule = rules.iter().find(|r| {
            let Some(n) = r.noncurrent else {
                return false;
            };
            let in_scope = match v.delete_marker {
                true => r.filter.matches_marker(&v.key),
                false => r.filter.matches(&v.key, &v.meta.tags, v.size),
            };
            in_scope && index > n.keep_newer && due(since, n.days, self.day_secs) <= self.now
        });
        if let Some(rule) = due_rule {
            return self.expire(b, &v.key, &v.version_id, Expiry::Noncurrent, &rule.id);
        }
        if v.delete_marker {
            return Ok(());
        }
        let due_class = rules
            .iter()
            .filter(|r| r.filter.matches(&v.key, &v.meta.tags, v.size))
            .filter_map(|r| {
                let due = r.noncurrent_transition_due(since, index - 1, self.now, self.day_secs)?;
                Some((due, &r.id))
            })
            .max_by_key(|((at, _), _)| *at);
        if let Some(((_, class), rule)) = due_class {
            self.transition(b, v, class, rule);
        }
        Ok(())
    }

    /// Move `v` to storage class `class` if it is not there yet. A transition that
    /// cannot be made now (a locked version, a pool that takes no data, a failing copy)
    /// is logged and tried again by the next pass; it does not stop this one.
    fn transition(&mut self, b: &str, v: &engine::ObjectVersion, class: &str, rule: &str) {
        if v.meta.storage_class.as_deref().unwrap_or(engine::STANDARD) == class {
            return;
        }
        match self.store.transition(b, &v.key, &v.version_id, class) {
            Ok(true) => {
                self.report.transitioned += 1;
                self.acted(
                    "s3:LifecycleTransition",
                    b,
                    &v.key,
                    Some(&v.version_id),
                    rule,
                );
            }
            // Changed since the page was read: the next pass judges it again.
            Ok(false)
            | Err(engine::Error::PreconditionFailed | engine::Error::NoSuchVersion(_)) => {}
            Err(engine::Error::ObjectLocked(why)) => {
                tracing::debug!(target: "cybs3::lifecycle", bucket = b, "kept: {why}");
                self.report.kept_locked += 1;
            }
            Err(e) => tracing::warn!(
                target: "cybs3::lifecycle",
                bucket = b,
                key = %v.key,
                "transition to {class} failed: {e}; the next pass tries again"
            ),
        }
    }

    fn finish_key(&mut self, b: &str, w: KeyWalk) -> engine::Result<()> {
        if let (Some(version_id), 1) = (&w.lone_marker, w.seen) {
            self.expire(b, &w.key, version_id, Expiry::LoneDeleteMarker, "")?;
        }
        Ok(())
    }

    /// Ask the engine to expire `v`; what it did goes to [`Scan::acted`].
    fn expire(
        &mut self,
        b: &str,
        key: &str,
        version_id: &str,
        expiry: Expiry,
        rule: &str,
    ) -> engine::Result<()> {
        match self.store.expire(b, key, version_id, expiry) {
            Ok(Some(done)) => {
                let event = match (expiry, done.delete_marker) {
                    (Expiry::Current, true) => "s3:LifecycleExpiration:DeleteMarkerCreated",
                    _ => "s3:LifecycleExpiration:Delete",
                };
                let counter = match expiry {
                    Expiry::Current => &mut self.report.expired,
                    Expiry::Noncurrent => &mut self.report.noncurrent,
                    Expiry::LoneDeleteMarker => &mut self.report.markers,
                };
                *counter += 1;
                self.acted(event, b, key, done.version_id.as_deref(), rule);
                Ok(())
            }
            // The key changed since the page was read: the next pass judges it again.
            Ok(None) | Err(engine::Error::NoSuchKey(_)) => Ok(()),
            Err(engine::Error::ObjectLocked(why)) => {
                tracing::debug!(target: "cybs3::lifecycle", bucket = b, "kept: {why}");
                self.report.kept_locked += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn uploads(&mut self, b: &str, rules: &[&Rule]) -> engine::Result<()> {
        let (mut key_marker, mut upload_marker) = (None::<String>, None::<String>);
        loop {
            let (uploads, more) = self.store.list_uploads(
                b,
                "",
                key_marker.as_deref(),
                upload_marker.as_deref(),
                PAGE,
            )?;
            for u in &uploads {
                let due_rule = rules.iter().find(|r| {
                    r.abort_after_days.is_some_and(|days| {
                        u.key.starts_with(&r.filter.prefix)
                            && due(u.initiated_ns, days, self.day_secs) <= self.now
                    })
                });
                let Some(rule) = due_rule else {
                    continue;
                };
                match self.store.abort_upload(b, &u.key, &u.upload_id) {
                    Ok(()) => {
                        self.report.uploads += 1;
                        self.acted(
                            "s3:ObjectRemoved:AbortIncompleteMultipartUpload",
                            b,
                            &u.key,
                            None,
                            &rule.id,
                        );
                    }
                    // Completed or aborted since it was listed.
                    Err(engine::Error::NoSuchUpload(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let Some(last) = uploads.last().filter(|_| more) else {
                return Ok(());
            };
            key_marker = Some(last.key.clone());
            upload_marker = Some(last.upload_id.clone());
        }
    }

    /// The one hook every lifecycle action goes through: the event S3 names it by, and
    /// what it acted on.
    fn acted(&self, event: &str, bucket: &str, key: &str, version_id: Option<&str>, rule: &str) {
        tracing::debug!(
            target: "cybs3::lifecycle",
            event,
            bucket,
            key,
            version_id = version_id.unwrap_or(""),
            rule,
            "lifecycle action"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket_config::to_xml;
    use crate::lifecycle::rules::enabled_rule;
    use crate::testing::{put, store};
    use s3s::dto::{
        BucketLifecycleConfiguration, LifecycleExpiration, LifecycleRule,
        NoncurrentVersionExpiration, Timestamp,
    };
    use std::time::UNIX_EPOCH;

    fn rules(s: &Store, bucket: &str, rule: LifecycleRule) {
        let cfg = BucketLifecycleConfiguration { rules: vec![rule] };
        s.set_bucket_attr(bucket, super::super::ATTR, Some(to_xml(&cfg).unwrap()))
            .unwrap();
    }

    fn keys(s: &Store, bucket: &str) -> Vec<String> {
        let q = VersionQuery {
            max: 10_000,
            ..VersionQuery::default()
        };
        let page = s.list_versions(bucket, &q).unwrap();
        page.versions.into_iter().map(|e| e.version.key).collect()
    }

    #[test]
    fn an_interrupted_pass_resumes_after_the_last_key_it_finished() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.create_bucket("bkt").unwrap();
        for i in 0..10 {
            put(&s, "bkt", &format!("k{i}"));
        }
        // Expired since 1970: everything is due.
        let mut r = enabled_rule();
        r.expiration = Some(LifecycleExpiration {
            date: Some(Timestamp::from(UNIX_EPOCH)),
            ..Default::default()
        });
        rules(&s, "bkt", r);
        // A pass stopped after k4, as a restart would find it.
        let cursor = Cursor {
            bucket: "bkt".into(),
            after_key: Some("k4".into()),
        };
        s.set_server_record(
            CURSOR_NS,
            CURSOR_NAME,
            Some(serde_json::to_vec(&cursor).unwrap()),
        )
        .unwrap();
        let report = pass(&s, 1, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.expired, 5);
        assert_eq!(keys(&s, "bkt"), ["k0", "k1", "k2", "k3", "k4"]);
        assert_eq!(s.server_record(CURSOR_NS, CURSOR_NAME).unwrap(), None);
        // The next pass starts from the beginning.
        assert_eq!(pass(&s, 1, &AtomicBool::new(false)).unwrap().expired, 5);
        assert!(keys(&s, "bkt").is_empty());
    }

    #[test]
    fn a_stopping_server_ends_the_pass_at_a_page_and_the_next_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.create_bucket("bkt").unwrap();
        for i in 0..PAGE + 5 {
            put(&s, "bkt", &format!("k{i:04}"));
        }
        let mut r = enabled_rule();
        r.expiration = Some(LifecycleExpiration {
            date: Some(Timestamp::from(UNIX_EPOCH)),
            ..Default::default()
        });
        rules(&s, "bkt", r);
        let report = pass(&s, 1, &AtomicBool::new(true)).unwrap();
        assert_eq!(report.expired, PAGE as u64, "one page, then it stopped");
        let cursor: Cursor =
            serde_json::from_slice(&s.server_record(CURSOR_NS, CURSOR_NAME).unwrap().unwrap())
                .unwrap();
        assert_eq!(cursor.after_key.as_deref(), Some("k0998"));
        let report = pass(&s, 1, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.expired, 5);
        assert!(keys(&s, "bkt").is_empty());
    }

    #[test]
    fn noncurrent_versions_are_counted_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.create_bucket("bkt").unwrap();
        s.set_versioning("bkt", engine::Versioning::Enabled)
            .unwrap();
        // More versions of one key than a page holds, and one key after it.
        for _ in 0..PAGE + 5 {
            put(&s, "bkt", "a");
        }
        put(&s, "bkt", "z");
        let mut r = enabled_rule();
        r.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
            noncurrent_days: Some(1),
            newer_noncurrent_versions: Some(3),
        });
        rules(&s, "bkt", r);
        // One (one-second) day later.
        std::thread::sleep(Duration::from_millis(1100));
        let report = pass(&s, 1, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.noncurrent, PAGE as u64 + 5 - 4);
        // The current version and the three newest noncurrent ones stay.
        assert_eq!(keys(&s, "bkt"), ["a", "a", "a", "a", "z"]);
    }
}
