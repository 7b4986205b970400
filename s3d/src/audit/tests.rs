//! The chain, verify and the writer, over real files in a temporary directory.

use super::*;
use crate::trail::{Api, Record};
use std::path::Path;
use std::time::{Duration, SystemTime};

const KEY: [u8; 32] = [9; 32];
const DAY: u64 = 86_400;

/// Noon of `day` days after tomorrow: later than the start lines (dated now), which go
/// to today's file, so that each day's requests have a file of their own.
fn noon(day: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs((now / DAY + 1 + day) * DAY + DAY / 2)
}

/// `YYYY-MM-DD` of [`noon`]`(day)`.
fn date(day: u64) -> String {
    crate::audit::line::format_time(noon(day))[..10].to_string()
}

fn record(user: &str, action: &'static str, bucket: &str, day: u64, allowed: bool) -> Record {
    let mut r = Record::new(Api::S3, Some([127, 0, 0, 1].into()));
    r.time = noon(day);
    r.user = Some(user.into());
    r.action = Some(action.into());
    r.bucket = Some(bucket.to_string());
    r.status = if allowed { 200 } else { 403 };
    r.decided(
        allowed,
        if allowed {
            "root"
        } else {
            "no policy or ACL allows it"
        },
    );
    r
}

fn settings(when_full: WhenFull) -> Settings {
    Settings {
        buffer: 64,
        when_full,
    }
}

/// A log with `per_day` lines on each of `days` days (plus the start line).
fn written(dir: &Path, days: u64, per_day: usize) {
    let log = Log::open(
        dir.to_path_buf(),
        Chain::new(&KEY),
        settings(WhenFull::Block),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for day in 0..days {
            for i in 0..per_day {
                let user = if i % 2 == 0 { "alice" } else { "bob" };
                log.append(record(user, "PutObject", "b", day, i % 3 != 2))
                    .await;
            }
        }
    });
    log.close();
}

fn check(dir: &Path) -> Verdict {
    verify(dir, &Chain::new(&KEY), false).unwrap()
}

fn kinds(v: &Verdict) -> Vec<&'static str> {
    v.problems.iter().map(|p| p.kind).collect()
}

fn file(dir: &Path, day: u64) -> std::path::PathBuf {
    dir.join(format!("{}.jsonl", date(day)))
}

fn edit_lines(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_untouched_log_is_intact_across_days_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 3, 5);
    written(tmp.path(), 1, 2);
    let v = check(tmp.path());
    assert!(v.intact, "{:?}", v.problems);
    // Two start lines (the first in today's file), 15 + 2 requests; the second run's
    // lines go to the last day's file.
    assert_eq!((v.files, v.lines), (4, 19));
    // Another key cannot verify it (nor could it have forged it).
    assert!(
        !verify(tmp.path(), &Chain::new(&[1; 32]), false)
            .unwrap()
            .intact
    );
}

#[test]
fn an_edited_line_is_found_where_its_link_breaks() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 1, 6);
    edit_lines(&file(tmp.path(), 0), |l| {
        l[3] = l[3].replace("PutObject", "GetObject")
    });
    let v = check(tmp.path());
    assert_eq!(kinds(&v), ["edited"]);
    assert_eq!(v.problems[0].line, Some(5));
    assert!(
        v.problems[0].message.contains("line 4"),
        "{}",
        v.problems[0].message
    );
}

#[test]
fn deleted_and_reordered_lines_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 1, 6);
    let path = file(tmp.path(), 0);
    let original = std::fs::read(&path).unwrap();
    edit_lines(&path, |l| {
        l.remove(2);
    });
    assert_eq!(kinds(&check(tmp.path())), ["removed"]);
    std::fs::write(&path, &original).unwrap();
    edit_lines(&path, |l| l.swap(2, 3));
    assert!(kinds(&check(tmp.path())).contains(&"reordered"));
}

#[test]
fn a_truncated_file_and_a_removed_last_file_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 2, 4);
    let last = file(tmp.path(), 1);
    let original = std::fs::read(&last).unwrap();
    // Whole lines cut off the end: only the head tells.
    edit_lines(&last, |l| l.truncate(2));
    assert_eq!(kinds(&check(tmp.path())), ["truncated"]);
    // Cut inside a line.
    std::fs::write(&last, &original[..original.len() - 10]).unwrap();
    assert!(kinds(&check(tmp.path())).contains(&"truncated"));
    // While a server writes, a last line can be half written: not a cut.
    let partial = [&original[..], b"{\"prev\":\"0"].concat();
    std::fs::write(&last, partial).unwrap();
    assert!(verify(tmp.path(), &Chain::new(&KEY), true).unwrap().intact);
    assert_eq!(kinds(&check(tmp.path())), ["truncated", "edited"]);
    std::fs::remove_file(&last).unwrap();
    assert_eq!(kinds(&check(tmp.path())), ["file_removed"]);
}

#[test]
fn a_removed_middle_file_and_swapped_files_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 3, 3);
    let (a, b) = (file(tmp.path(), 0), file(tmp.path(), 1));
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &db).unwrap();
    std::fs::write(&b, &da).unwrap();
    let v = check(tmp.path());
    assert!(kinds(&v).contains(&"file_swapped"), "{:?}", v.problems);
    std::fs::write(&a, &da).unwrap();
    std::fs::remove_file(&b).unwrap();
    let v = check(tmp.path());
    assert_eq!(kinds(&v), ["removed"]);
    assert!(v.problems[0].message.contains("a whole file"));
}

#[test]
fn a_forged_or_missing_head_and_a_log_cut_while_stopped_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 1, 4);
    let head = tmp.path().join("HEAD");
    let text = std::fs::read_to_string(&head).unwrap();
    std::fs::write(&head, text.replace("\"lines\":4", "\"lines\":2")).unwrap();
    assert_eq!(kinds(&check(tmp.path())), ["head"]);
    std::fs::remove_file(&head).unwrap();
    assert_eq!(kinds(&check(tmp.path())), ["head"]);
    std::fs::write(&head, text).unwrap();
    // Cut while the server was stopped; the next start rewrites the head, but says so.
    edit_lines(&file(tmp.path(), 0), |l| l.truncate(3));
    written(tmp.path(), 1, 1);
    let v = check(tmp.path());
    assert_eq!(kinds(&v), ["cut_while_stopped"], "{:?}", v.problems);
}

#[tokio::test]
async fn a_full_buffer_blocks_or_counts_the_dropped_lines() {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let mut log = Log::for_tests(tx, WhenFull::Gap);
    log.append(record("a", "GetObject", "b", 0, true)).await;
    log.append(record("a", "GetObject", "b", 0, true)).await;
    assert_eq!(log.dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    log.when_full = WhenFull::Block;
    let waiting = tokio::spawn({
        let log = log.clone();
        async move { log.append(record("a", "GetObject", "b", 0, true)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "a full buffer lets block mode go on"
    );
    assert!(rx.recv().is_ok());
    waiting.await.unwrap();
    assert_eq!(log.dropped.load(std::sync::atomic::Ordering::Relaxed), 1);

    // The writer turns the count into a gap line, which verify reports (not a break).
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path().into(), Chain::new(&KEY), settings(WhenFull::Gap)).unwrap();
    log.dropped
        .fetch_add(7, std::sync::atomic::Ordering::Relaxed);
    log.append(record("a", "GetObject", "b", 0, true)).await;
    log.close();
    let v = check(tmp.path());
    assert!(v.intact);
    assert_eq!(v.gaps.iter().map(|g| g.dropped).sum::<u64>(), 7);
}

#[test]
fn a_report_filters_by_time_user_bucket_and_denial_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    written(tmp.path(), 3, 6);
    let q = |from: &str, to: &str| Query {
        from: Query::time(from, false).unwrap(),
        to: Query::time(to, true).unwrap(),
        ..Query::default()
    };
    let (first, second, last) = (date(0), date(1), date(2));
    let all = report(tmp.path(), &q(&first, &last)).unwrap();
    assert_eq!(all.totals.requests, 18);
    assert_eq!(all.totals.denied, 6);
    assert_eq!(all.totals.per_user["alice"], 9);
    assert_eq!(all.totals.per_action["PutObject"], 18);
    let day = report(tmp.path(), &q(&second, &second)).unwrap();
    assert_eq!(day.totals.requests, 6);
    let (from, to) = (
        format!("{second}T11:00:00Z"),
        format!("{second}T13:00:00+01:00"),
    );
    let hours = report(tmp.path(), &q(&from, &to)).unwrap();
    assert_eq!(hours.totals.requests, 6);
    let alice = Query {
        user: Some("alice".into()),
        denied: true,
        ..q(&first, &last)
    };
    assert_eq!(report(tmp.path(), &alice).unwrap().totals.requests, 3);
    let other = Query {
        bucket: Some("other".into()),
        ..q(&first, &last)
    };
    assert_eq!(report(tmp.path(), &other).unwrap().totals.requests, 0);
    assert!(Query::time("yesterday", false).is_err());
}
