//! Anomaly detection: a baseline per user, access key and bucket learned online from the
//! request stream, and alerts when a window of requests is far above it: ransomware-like
//! mass overwrites and deletes, exfiltration-like reads, a key used from a new network,
//! and password or key guessing from one source. Plain statistics, so every alert can
//! say what it saw and what it compared it with.
//!
//! - [`baseline`]: the learned figures and the bar a window must pass.
//! - [`entropy`]: what the first bytes of a write say (incompressible, or a vault's).
//! - [`alert`]: the alert, and where alerts are kept.
//! - [`freeze`]: the optional freeze of a flagged user's deletes and overwrites.
//! - [`ops`]: what the S3 operations tell the detector and ask it.
//! - [`ship`]: alerts into the audit log and to a notification target.
//!
//! Time: a window is a minute of a day (`--lifecycle-day-secs` shortens days, and so
//! windows, for tests; at least a second), and baselines are kept per hour of that
//! day. Requests only add to counters of the current window (one lock, a few map
//! lookups); a task closes each window, teaches the baselines and saves them to the
//! index every [`SAVE_EVERY`], so they survive restarts. A crossing is noticed by the
//! request that makes it, so an alert is raised within that request, not at the end
//! of the window.

pub mod alert;
pub mod baseline;
pub mod entropy;
pub mod freeze;
pub(crate) mod ops;
mod ship;
#[cfg(test)]
mod tests;

use crate::trail::{Api, Record};
use alert::{Alert, Kind, Severity};
use baseline::{Baseline, Measure, Usual, MEASURES};
use freeze::{Flag, Flags};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use ship::run as ship;

/// The server records' namespace for baselines (name: the subject).
const BASELINE_NS: &str = "anomaly";
/// How often learned baselines are written to the index.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// Windows an alert stays quiet for after it is raised (the same subject and kind).
const MUTE_WINDOWS: u64 = 10;
/// Failed logins or signatures from one source, within [`GUESS_SPAN`], that make a
/// guessing alert.
pub const GUESS_LIMIT: usize = 20;
const GUESS_SPAN: Duration = Duration::from_secs(300);
/// Requests and age a key needs before a new network is news: a new key's first
/// networks are just where it is used.
const KNOWN_REQUESTS: u64 = 100;
const KNOWN_DAYS: u64 = 1;
/// Networks remembered per key.
const MAX_NETWORKS: usize = 64;
/// Subjects tracked at once; the least recently active are forgotten past it (their
/// baselines stay saved, and are read back when they return).
const MAX_SUBJECTS: usize = 100_000;

/// What a request changed, as the anomaly detector counts it (set by the operations
/// into the request's [`Record`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Changes {
    /// Objects written.
    pub written: u32,
    /// Objects that replaced a current object, or were deleted (or hidden by a marker).
    pub destroyed: u32,
    /// Overwrites whose new first bytes are incompressible (not counting vault objects).
    pub incompressible: u32,
    /// Writes of age files (vault objects), which the entropy test exempts.
    pub sealed: u32,
}

/// Who a baseline is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subject {
    User(Arc<str>),
    Key(String),
    Bucket(String),
}

impl Subject {
    fn name(&self) -> String {
        match self {
            Subject::User(u) => format!("user:{u}"),
            Subject::Key(k) => format!("key:{k}"),
            Subject::Bucket(b) => format!("bucket:{b}"),
        }
    }
}

/// What is saved of a subject: its baseline, and for a key, where it has been used from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Saved {
    baseline: Baseline,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    requests: u64,
    #[serde(default)]
    first_ns: u64,
}

/// A subject being tracked.
struct Tracked {
    saved: Saved,
    counts: [f64; MEASURES],
    /// What is usual in the current window's hour (set when the window opens).
    usual: [Usual; MEASURES],
    /// Per measure: the window before which no new alert of it is raised.
    muted_until: [u64; MEASURES],
    /// Vault objects written in the current window (exempt from the entropy test).
    sealed: u32,
    /// For a key: the network of its last request ([`network_id`]).
    last_net: Option<u64>,
    last_window: u64,
    dirty: bool,
}

/// The clock: how long a window and a day are.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub day_secs: u64,
    pub window: Duration,
}

impl Clock {
    /// Windows of a minute of the day (`day_secs / 1440`), kept between 1 s and 60 s.
    pub fn of_day(day_secs: u64) -> Clock {
        let window = Duration::from_secs_f64((day_secs as f64 / 1440.0).clamp(1.0, 60.0));
        Clock { day_secs, window }
    }

    fn window_of(&self, now_ns: u64) -> u64 {
        now_ns / self.window.as_nanos().max(1) as u64
    }

    /// The hour of the day (0–23) a window is in.
    fn hour_of(&self, window: u64) -> usize {
        let secs = window as f64 * self.window.as_secs_f64();
        let day = self.day_secs.max(1) as f64;
        ((secs % day) / (day / 24.0)) as usize % 24
    }

    /// The floor of a measure: the least a window must hold to be news, whatever the
    /// baseline (a quiet user starting work is not an attack).
    fn floor(&self, m: Measure) -> f64 {
        let secs = self.window.as_secs_f64();
        match m {
            // At least 20 in a window, and one a second in long windows.
            Measure::Destructive | Measure::Writes => secs.max(20.0),
            Measure::Incompressible => secs.max(20.0) / 2.0,
            // 64 MiB, and 4 MiB a second in long windows.
            Measure::ReadBytes => (secs * 4.0 * 1048576.0).max(64.0 * 1048576.0),
        }
    }
}

struct State {
    window: u64,
    subjects: HashMap<Subject, Tracked>,
    /// Failed logins and signatures per source: their times, and who they claimed.
    failures: HashMap<IpAddr, (VecDeque<u64>, Vec<String>, u64)>,
    /// Alerts raised and not yet stored and shipped.
    pending: Vec<Alert>,
    seq: u64,
}

/// The detector; clones share it.
#[derive(Clone)]
pub struct Anomalies(Arc<Inner>);

struct Inner {
    store: engine::Store,
    clock: Clock,
    state: Mutex<State>,
    flags: Flags,
    /// Wakes the shipper when alerts are pending.
    raised: tokio::sync::Notify,
}

impl std::fmt::Debug for Anomalies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anomalies")
            .field("clock", &self.0.clock)
            .finish_non_exhaustive()
    }
}

impl Anomalies {
    /// The detector of `store`, with windows of `clock` (flags are read back now;
    /// baselines as their subjects come back).
    pub fn open(store: engine::Store, clock: Clock) -> engine::Result<Anomalies> {
        let flags = Flags::load(&store)?;
        Ok(Anomalies(Arc::new(Inner {
            clock,
            state: Mutex::new(State {
                window: 0,
                subjects: HashMap::new(),
                failures: HashMap::new(),
                pending: Vec::new(),
                seq: 0,
            }),
            flags,
            store,
            raised: tokio::sync::Notify::new(),
        })))
    }

    pub fn clock(&self) -> Clock {
        self.0.clock
    }

    /// Count one finished request.
    pub fn observe(&self, r: &Record) {
        self.observe_at(r, crate::ctx::now_ns());
    }

    fn observe_at(&self, r: &Record, now_ns: u64) {
        // A bad signature or an unknown key, or a directory login refused.
        let failed_login = r.status == 403
            && (r.api == Api::Sts
                || matches!(
                    r.error.as_deref(),
                    Some("SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidClientTokenId")
                ));
        let mut raised = Vec::new();
        {
            let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            self.roll(&mut st, now_ns);
            if failed_login {
                if let Some(src) = r.source {
                    raised.extend(self.failure(&mut st, src, r, now_ns));
                }
            }
            if (200..300).contains(&r.status) {
                self.success(&mut st, r, now_ns, &mut raised);
            }
            for a in &mut raised {
                st.seq += 1;
                a.id = format!("{now_ns:020}-{:04}", st.seq % 10_000);
                a.time_ns = now_ns;
            }
            st.pending.extend(raised.iter().cloned());
        }
        if !raised.is_empty() {
            // Rare: the flag is written to the index on the request's own thread, so that
            // the very next request of the user meets it.
            for a in &raised {
                tracing::warn!(target: "cybs3::anomaly", alert = %a.id, "{}", a.summary());
                if a.kind == Kind::Ransomware {
                    self.flag(a);
                }
            }
            self.0.raised.notify_one();
        }
    }

    fn success(&self, st: &mut State, r: &Record, now_ns: u64, raised: &mut Vec<Alert>) {
        let read = match r.action.as_deref() {
            Some("GetObject") => r.bytes_out as f64,
            _ => 0.0,
        };
        let c = r.changes.unwrap_or_default();
        let counts = [
            c.written as f64,
            c.destroyed as f64,
            c.incompressible as f64,
            read,
        ];
        let mut subjects = Vec::with_capacity(3);
        if let Some(u) = &r.user {
            subjects.push(Subject::User(u.clone()));
        }
        if let Some(b) = &r.bucket {
            subjects.push(Subject::Bucket(b.clone()));
        }
        if let Some(k) = &r.access_key {
            subjects.push(Subject::Key(k.clone()));
        }
        for s in subjects {
            let window = st.window;
            let t = self.tracked(st, &s, now_ns);
            for m in Measure::ALL {
                let i = m as usize;
                t.counts[i] += counts[i];
            }
            t.sealed += c.sealed;
            t.dirty = true;
            if let Subject::Key(k) = &s {
                raised.extend(self.network(t, k, r, now_ns));
                // Keys are watched for networks; their rates are their user's.
                continue;
            }
            for m in [Measure::Destructive, Measure::ReadBytes] {
                let i = m as usize;
                if counts[i] == 0.0 || window < t.muted_until[i] {
                    continue;
                }
                let limit = t.usual[i].limit(self.0.clock.floor(m));
                if t.counts[i] > limit {
                    t.muted_until[i] = window + MUTE_WINDOWS;
                    raised.push(self.describe(&s, t, m, limit, r));
                }
            }
        }
    }

    /// The alert of a window of `s` past `limit` in measure `m`.
    fn describe(&self, s: &Subject, t: &Tracked, m: Measure, limit: f64, r: &Record) -> Alert {
        let i = m as usize;
        let secs = self.0.clock.window.as_secs_f64();
        let u = t.usual[i];
        let per = format!("per {secs:.0} s window");
        let whence = if u.hourly {
            format!("at this hour, learned from {} windows", u.windows)
        } else if u.windows == 0 {
            "nothing learned yet: only the floor applies".to_string()
        } else {
            format!("over all hours, learned from {} windows", u.windows)
        };
        let (user, bucket) = match s {
            Subject::User(u) => (Some(u.to_string()), r.bucket.clone()),
            Subject::Bucket(b) => (None, Some(b.clone())),
            Subject::Key(_) => (None, None),
        };
        let mut a = Alert {
            id: String::new(),
            time_ns: 0,
            kind: Kind::Ransomware,
            severity: Severity::Warning,
            subject: s.name(),
            user,
            bucket,
            access_key: r.access_key.clone(),
            source: r.source.map(|s| s.to_string()),
            saw: String::new(),
            usual: format!(
                "usually {:.1} ± {:.1} {per} ({whence}); the limit is {limit:.0}",
                u.mean, u.sd
            ),
            observed: t.counts[i],
            mean: u.mean,
            sd: u.sd,
            limit,
            window_secs: secs,
            suggestion: String::new(),
            froze: Vec::new(),
        };
        match m {
            Measure::Destructive => {
                let inc = t.counts[Measure::Incompressible as usize];
                let writes = t.counts[Measure::Writes as usize];
                a.saw = format!(
                    "{:.0} overwrites and deletes in this window; of its {writes:.0} writes, {inc:.0} overwrites wrote incompressible data (≥ {} bits per byte in their first KiB) and {} were vault objects, which are encrypted by design and exempt from that test",
                    t.counts[i],
                    entropy::INCOMPRESSIBLE_BITS,
                    t.sealed
                );
                // Most of the burst turning data incompressible is what encryption does.
                if inc * 2.0 >= t.counts[i] {
                    a.severity = Severity::Critical;
                }
                a.suggestion = match (&a.user, &a.bucket) {
                    (Some(u), Some(b)) => format!(
                        "check what {u} is doing; turn on versioning or object lock for bucket {b} (`cybs3 admin alerts protect {b} --freeze-minutes 60` freezes a flagged user's deletes and overwrites), and disable {u}'s keys if this is not them"
                    ),
                    (_, Some(b)) => format!(
                        "turn on versioning or object lock for bucket {b}, and find who is changing it in the audit log (`cybs3 admin audit report --bucket {b}`)"
                    ),
                    _ => "turn on versioning or object lock for the buckets involved".into(),
                };
            }
            _ => {
                a.kind = Kind::Exfiltration;
                a.saw = format!("{} read in this window", human_bytes(t.counts[i]));
                a.usual = format!(
                    "usually {} ± {} {per} ({whence}); the limit is {}",
                    human_bytes(u.mean),
                    human_bytes(u.sd),
                    human_bytes(limit)
                );
                a.suggestion = match &r.access_key {
                    Some(k) => format!(
                        "check whether {} should read this much; if not, disable key {k} (`cybs3 admin user remove` or `cybs3 admin key remove`)",
                        a.subject
                    ),
                    None => format!("check whether {} should read this much", a.subject),
                };
            }
        }
        a
    }

    /// A key seen from a network it was never used from, once it is known.
    fn network(&self, t: &mut Tracked, key: &str, r: &Record, now_ns: u64) -> Option<Alert> {
        let ip = r.source?;
        let saved = &mut t.saved;
        saved.requests += 1;
        if saved.first_ns == 0 {
            saved.first_ns = now_ns;
        }
        // A key's requests mostly come from where its last one did: no formatting then.
        if t.last_net == Some(network_id(ip)) {
            return None;
        }
        t.last_net = Some(network_id(ip));
        let net = network(ip);
        if saved.networks.contains(&net) {
            return None;
        }
        let day_ns = self.0.clock.day_secs.saturating_mul(1_000_000_000);
        let known = saved.requests > KNOWN_REQUESTS
            && now_ns.saturating_sub(saved.first_ns) >= KNOWN_DAYS * day_ns
            && !saved.networks.is_empty();
        let before = saved.networks.join(", ");
        if saved.networks.len() >= MAX_NETWORKS {
            saved.networks.remove(0);
        }
        saved.networks.push(net.clone());
        known.then(|| Alert {
            id: String::new(),
            time_ns: 0,
            kind: Kind::NewNetwork,
            severity: Severity::Warning,
            subject: format!("key:{key}"),
            user: r.user.as_ref().map(|u| u.to_string()),
            bucket: r.bucket.clone(),
            access_key: Some(key.to_string()),
            source: r.source.map(|s| s.to_string()),
            saw: format!("key {key} used from network {net}"),
            usual: format!(
                "it was used only from {before} in {} requests",
                saved.requests - 1
            ),
            observed: 1.0,
            mean: 0.0,
            sd: 0.0,
            limit: 0.0,
            window_secs: self.0.clock.window.as_secs_f64(),
            suggestion: format!(
                "confirm with the key's owner that they use it from {net}; if not, disable key {key}"
            ),
            froze: Vec::new(),
        })
    }

    /// Count a failed login or signature from `src`; the guessing alert once there are
    /// [`GUESS_LIMIT`] within [`GUESS_SPAN`].
    fn failure(&self, st: &mut State, src: IpAddr, r: &Record, now_ns: u64) -> Option<Alert> {
        let span = GUESS_SPAN.as_nanos() as u64;
        let (times, names, muted_until) = st.failures.entry(src).or_default();
        times.push_back(now_ns);
        while times
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) > span)
        {
            times.pop_front();
        }
        // A signature claims a key; a directory login a user (`ldap:NAME`).
        let claimed = (r.access_key.clone())
            .or_else(|| r.user.as_ref().map(|u| u.to_string()))
            .unwrap_or_else(|| "unknown".into());
        if !names.contains(&claimed) && names.len() < 10 {
            names.push(claimed);
        }
        if times.len() < GUESS_LIMIT || now_ns < *muted_until {
            return None;
        }
        *muted_until = now_ns + span;
        let a = Alert {
            id: String::new(),
            time_ns: 0,
            kind: Kind::Guessing,
            severity: Severity::Critical,
            subject: format!("source:{src}"),
            user: None,
            bucket: None,
            access_key: None,
            source: Some(src.to_string()),
            saw: format!(
                "{} failed logins or signatures from {src} within {} s, for {}",
                times.len(),
                GUESS_SPAN.as_secs(),
                names.join(", ")
            ),
            usual: format!(
                "a source that knows its credentials fails rarely; the limit is {GUESS_LIMIT} in {} s",
                GUESS_SPAN.as_secs()
            ),
            observed: times.len() as f64,
            mean: 0.0,
            sd: 0.0,
            limit: GUESS_LIMIT as f64,
            window_secs: GUESS_SPAN.as_secs_f64(),
            suggestion: format!(
                "block {src} at the firewall if it is not yours, and rotate the passwords or keys it tried"
            ),
            froze: Vec::new(),
        };
        times.clear();
        Some(a)
    }

    /// The subject's tracking, read back from the index the first time it is seen.
    fn tracked<'a>(&self, st: &'a mut State, s: &Subject, now_ns: u64) -> &'a mut Tracked {
        if !st.subjects.contains_key(s) {
            if st.subjects.len() >= MAX_SUBJECTS {
                forget_idle(&self.0.store, &mut st.subjects);
            }
            let saved: Saved = (self.0.store.server_record(BASELINE_NS, &s.name()).ok())
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| Saved {
                    first_ns: now_ns,
                    ..Saved::default()
                });
            let hour = self.0.clock.hour_of(st.window);
            let usual = Measure::ALL.map(|m| saved.baseline.usual(hour, m));
            st.subjects.insert(
                s.clone(),
                Tracked {
                    saved,
                    counts: [0.0; MEASURES],
                    usual,
                    muted_until: [0; MEASURES],
                    sealed: 0,
                    last_net: None,
                    last_window: st.window,
                    dirty: false,
                },
            );
        }
        let t = st.subjects.get_mut(s).expect("inserted above");
        t.last_window = st.window;
        t
    }

    /// Close every window up to now: each subject learns its counts (and zeros for
    /// windows it was quiet in), and the new window's usual figures are set.
    fn roll(&self, st: &mut State, now_ns: u64) {
        let now = self.0.clock.window_of(now_ns);
        if st.window == 0 {
            // The first request: nothing to close yet.
            st.window = now;
            return;
        }
        if now <= st.window {
            return;
        }
        // After a long pause only the last day's worth of quiet windows are learned:
        // older ones would teach the same zeros again.
        let windows_per_day =
            (self.0.clock.day_secs as f64 / self.0.clock.window.as_secs_f64()).ceil() as u64;
        let first_quiet = (st.window + 1).max(now.saturating_sub(windows_per_day));
        for t in st.subjects.values_mut() {
            let closing = self.0.clock.hour_of(st.window);
            t.saved.baseline.learn(closing, &t.counts);
            for w in first_quiet..now {
                t.saved
                    .baseline
                    .learn(self.0.clock.hour_of(w), &[0.0; MEASURES]);
            }
            t.counts = [0.0; MEASURES];
            t.sealed = 0;
            let hour = self.0.clock.hour_of(now);
            t.usual = Measure::ALL.map(|m| t.saved.baseline.usual(hour, m));
            t.dirty = true;
        }
        st.window = now;
    }

    /// Close windows that ended with no request in them, then write the baselines that
    /// changed; run every window by [`ship`]'s task.
    pub(crate) fn tick(&self, save: bool) -> engine::Result<()> {
        self.tick_at(save, crate::ctx::now_ns())
    }

    fn tick_at(&self, save: bool, now_ns: u64) -> engine::Result<()> {
        let dirty: Vec<(String, Vec<u8>)> = {
            let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            self.roll(&mut st, now_ns);
            if !save {
                return Ok(());
            }
            st.subjects
                .iter_mut()
                .filter(|(_, t)| t.dirty)
                .map(|(s, t)| {
                    t.dirty = false;
                    (
                        s.name(),
                        serde_json::to_vec(&t.saved).expect("a baseline serializes"),
                    )
                })
                .collect()
        };
        for (name, bytes) in dirty {
            self.0
                .store
                .set_server_record(BASELINE_NS, &name, Some(bytes))?;
        }
        Ok(())
    }

    /// Flag the user of a ransomware-like alert, and say in the alert which buckets
    /// that freezes them in.
    fn flag(&self, a: &Alert) {
        let Some(user) = &a.user else { return };
        let flag = Flag {
            since_ns: a.time_ns,
            alert: a.id.clone(),
        };
        if let Err(e) = self.0.flags.raise(&self.0.store, user, flag) {
            tracing::error!("cannot flag {user} after alert {}: {e}", a.id);
        }
    }

    /// The refusal of a delete or an overwrite by the current request's caller in
    /// `bucket`, when a flag and the bucket's setting freeze them.
    pub(crate) fn frozen(&self, bucket: &str) -> Option<String> {
        let user = crate::trail::current()?.principal?;
        let flag = self.0.flags.get(&user)?;
        let minutes = freeze::protection(&self.0.store, bucket).ok()??;
        freeze::holds(flag.since_ns, minutes, crate::ctx::now_ns()).then(|| {
            format!(
                "{user}'s deletes and overwrites in {bucket} are frozen after alert {}; an admin lifts it with `cybs3 admin alerts clear {user}`",
                flag.alert
            )
        })
    }

    /// Take the alerts raised since the last call, for the shipper.
    pub(crate) fn take_pending(&self) -> Vec<Alert> {
        std::mem::take(
            &mut self
                .0
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending,
        )
    }

    pub(crate) async fn wait_raised(&self) {
        self.0.raised.notified().await;
    }

    pub(crate) fn store(&self) -> &engine::Store {
        &self.0.store
    }

    /// One management call (`cybs3 admin alerts …`).
    pub fn apply(&self, call: AlertCall) -> Result<serde_json::Value, AnomalyError> {
        let store = &self.0.store;
        Ok(match call {
            AlertCall::List => {
                let flags: Vec<_> = (self.0.flags.all().into_iter())
                    .map(|(user, f)| serde_json::json!({"user": user, "since_ns": f.since_ns, "alert": f.alert}))
                    .collect();
                serde_json::json!({
                    "alerts": alert::list(store)?,
                    "flagged": flags,
                    "target": ship::target(store)?,
                    "window_secs": self.0.clock.window.as_secs_f64(),
                })
            }
            AlertCall::Clear { user } => {
                let had = self.0.flags.clear(store, &user)?;
                serde_json::json!({"user": user, "was_flagged": had})
            }
            AlertCall::Protect { bucket, minutes } => {
                freeze::set_protection(store, &bucket, minutes)?;
                serde_json::json!({"bucket": bucket, "freeze_minutes": minutes})
            }
            AlertCall::Target { name } => {
                ship::set_target(store, name.as_deref())?;
                serde_json::json!({"target": name})
            }
        })
    }
}

/// `cybs3 admin alerts …` as the management socket takes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum AlertCall {
    List,
    Clear {
        user: String,
    },
    Protect {
        bucket: String,
        minutes: Option<u64>,
    },
    Target {
        name: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    #[error(transparent)]
    Store(#[from] engine::Error),
}

/// [`network`] as a number, cheap to compare on every request.
fn network_id(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => 1 << 63 | u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            u64::from(s[0]) << 32 | u64::from(s[1]) << 16 | u64::from(s[2])
        }
    }
}

/// The network an address is in, as keys' networks are compared: a /24 or a /48.
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Drop the least recently active half of the tracked subjects (their baselines are
/// saved first, and read back when they return).
fn forget_idle(store: &engine::Store, subjects: &mut HashMap<Subject, Tracked>) {
    let mut by_age: Vec<_> = subjects
        .iter()
        .map(|(s, t)| (t.last_window, s.clone()))
        .collect();
    by_age.sort_by_key(|(w, _)| *w);
    for (_, s) in by_age.into_iter().take(subjects.len() / 2) {
        if let Some(t) = subjects.remove(&s) {
            let bytes = serde_json::to_vec(&t.saved).expect("a baseline serializes");
            let _ = store.set_server_record(BASELINE_NS, &s.name(), Some(bytes));
        }
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}
