//! The detector on synthetic request streams, with its clock driven by the test.

use super::*;
use crate::trail::Record;

const SEC: u64 = 1_000_000_000;

fn detector(dir: &tempfile::TempDir) -> Anomalies {
    Anomalies::open(crate::testing::store(dir), Clock::of_day(86_400)).unwrap()
}

fn put(user: &str, overwrite: bool, random: bool) -> Record {
    let mut r = Record::new(Api::S3, Some([10, 0, 0, 1].into()));
    r.user = Some(user.into());
    r.access_key = Some(format!("AK{user}"));
    r.bucket = Some("docs".into());
    r.action = Some("PutObject".into());
    r.status = 200;
    r.changes = Some(Changes {
        written: 1,
        destroyed: overwrite as u32,
        incompressible: (overwrite && random) as u32,
        sealed: 0,
    });
    r
}

fn alerts(a: &Anomalies) -> Vec<Alert> {
    a.0.state.lock().unwrap().pending.clone()
}

#[test]
fn a_burst_of_random_overwrites_after_a_quiet_day_is_a_critical_ransomware_alert() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let mut now = 1_000_000 * SEC;
    // A day of a few ordinary writes an hour.
    for _ in 0..24 * 6 {
        a.observe_at(&put("alice", true, false), now);
        now += 600 * SEC;
    }
    assert!(alerts(&a).is_empty());
    for _ in 0..500 {
        a.observe_at(&put("alice", true, true), now);
        now += SEC / 100;
    }
    let raised = alerts(&a);
    let user: Vec<_> = raised
        .iter()
        .filter(|x| x.subject == "user:alice")
        .collect();
    assert_eq!(user.len(), 1, "{raised:#?}");
    let x = user[0];
    assert_eq!((x.kind, x.severity), (Kind::Ransomware, Severity::Critical));
    assert!(x.observed > x.limit && x.limit >= 60.0, "{x:?}");
    assert!(x.saw.contains("incompressible"), "{}", x.saw);
    assert!(x.suggestion.contains("versioning or object lock"));
    // The bucket's own baseline saw it too.
    assert!(raised.iter().any(|x| x.subject == "bucket:docs"));
}

#[test]
fn the_same_writes_spread_over_a_day_raise_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let mut now = 1_000_000 * SEC;
    // 500 overwrites over a working day: busy hours and quiet ones.
    for hour in 0..24u64 {
        let n = if (9..18).contains(&hour) { 50 } else { 5 };
        for _ in 0..n {
            a.observe_at(&put("bob", true, false), now);
            now += 3600 * SEC / n;
        }
    }
    assert!(alerts(&a).is_empty(), "{:#?}", alerts(&a));
}

#[test]
fn a_heavy_users_usual_bursts_stay_below_their_learned_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let mut now = 1_000_000 * SEC;
    // Two days of 100 overwrites a minute, every minute: 100 is this user's normal.
    for _ in 0..2 * 1440 {
        for i in 0..100 {
            a.observe_at(&put("batch", true, false), now + i * SEC / 2);
        }
        now += 60 * SEC;
    }
    assert!(alerts(&a).is_empty());
    let st = a.0.state.lock().unwrap();
    let t = &st.subjects[&Subject::User("batch".into())];
    let u = t.usual[Measure::Destructive as usize];
    assert!(u.hourly && (u.mean - 100.0).abs() < 5.0, "{u:?}");
    assert!(u.limit(60.0) >= 350.0, "{u:?}");
}

#[test]
fn a_read_spike_is_an_exfiltration_alert_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let mut now = 1_000_000 * SEC;
    let get = |bytes| {
        let mut r = Record::new(Api::S3, Some([10, 0, 0, 2].into()));
        r.user = Some("carol".into());
        r.access_key = Some("AKCAROL".into());
        r.bucket = Some("photos".into());
        r.action = Some("GetObject".into());
        r.status = 200;
        r.bytes_out = bytes;
        r
    };
    for _ in 0..600 {
        a.observe_at(&get(1 << 20), now);
        now += 30 * SEC;
    }
    assert!(alerts(&a).is_empty());
    for _ in 0..400 {
        a.observe_at(&get(1 << 20), now);
        now += SEC / 20;
    }
    let raised = alerts(&a);
    let x = raised
        .iter()
        .find(|x| x.subject == "user:carol")
        .expect("an alert");
    assert_eq!(x.kind, Kind::Exfiltration);
    assert!(
        x.suggestion.contains("disable key AKCAROL"),
        "{}",
        x.suggestion
    );
    assert!(x.saw.contains("MiB read"), "{}", x.saw);
}

#[test]
fn repeated_failed_signatures_from_one_source_are_guessing() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let now = 1_000_000 * SEC;
    for i in 0..50u64 {
        let mut r = Record::new(Api::S3, Some([192, 0, 2, 9].into()));
        r.access_key = Some(format!("AKGUESS{}", i % 3));
        r.status = 403;
        r.error = Some("SignatureDoesNotMatch".into());
        a.observe_at(&r, now + i * SEC);
    }
    let raised = alerts(&a);
    assert_eq!(raised.len(), 1, "muted after the first: {raised:#?}");
    assert_eq!(raised[0].kind, Kind::Guessing);
    assert_eq!(raised[0].subject, "source:192.0.2.9");
    assert!(raised[0].saw.contains("AKGUESS1"));
}

#[test]
fn a_known_key_from_a_new_network_is_news_and_a_new_keys_first_network_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let a = detector(&dir);
    let mut now = 1_000_000 * SEC;
    let req = |ip: [u8; 4]| {
        let mut r = Record::new(Api::S3, Some(ip.into()));
        r.user = Some("dave".into());
        r.access_key = Some("AKDAVE".into());
        r.action = Some("ListBuckets".into());
        r.status = 200;
        r
    };
    for _ in 0..200 {
        a.observe_at(&req([10, 1, 1, 5]), now);
        now += 600 * SEC;
    }
    a.observe_at(&req([10, 1, 1, 77]), now);
    assert!(alerts(&a).is_empty());
    a.observe_at(&req([203, 0, 113, 4]), now);
    let raised = alerts(&a);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].kind, Kind::NewNetwork);
    assert!(raised[0].saw.contains("203.0.113.0/24"));
    assert!(raised[0].usual.contains("10.1.1.0/24"));
}

#[test]
fn baselines_and_flags_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::testing::store(&dir);
    let a = Anomalies::open(store.clone(), Clock::of_day(86_400)).unwrap();
    let mut now = 1_000_000 * SEC;
    for _ in 0..100 {
        a.observe_at(&put("erin", true, false), now);
        now += 60 * SEC;
    }
    a.tick_at(true, now).unwrap();
    a.0.flags
        .raise(
            &store,
            "erin",
            Flag {
                since_ns: now,
                alert: "x".into(),
            },
        )
        .unwrap();
    drop(a);
    let b = Anomalies::open(store, Clock::of_day(86_400)).unwrap();
    assert_eq!(b.0.flags.get("erin").unwrap().alert, "x");
    let mut st = b.0.state.lock().unwrap();
    let t = b.tracked(&mut st, &Subject::User("erin".into()), now);
    assert!(t.saved.baseline.all[Measure::Writes as usize].n >= 100);
}
