//! Many writers at once go through group commit; nothing is lost, before or after a restart.

mod common;

use common::*;
use cybs3_engine::Store;
use std::collections::BTreeMap;

const B: &str = "conc";
const THREADS: usize = 16;
const PER_THREAD: usize = 50;

fn content(t: usize, i: usize) -> Vec<u8> {
    // Mostly small inline objects; every 10th is sharded.
    let size = if i % 10 == 9 {
        70_000 + t
    } else {
        100 + (t * 37 + i * 11) % 3000
    };
    bytes((t * 1000 + i) as u64, size)
}

fn verify(s: &Store, want: &BTreeMap<String, Vec<u8>>) {
    for (k, d) in want {
        assert!(get(s, B, k).unwrap() == *d, "{k}");
    }
    let (objects, _) = list_all(s, B, "", None, 1000);
    let listed: Vec<(String, u64)> = want
        .iter()
        .map(|(k, d)| (k.clone(), d.len() as u64))
        .collect();
    assert_eq!(objects, listed);
    let (objects, prefixes) = list_all(s, B, "", Some("/"), 5);
    assert!(objects.is_empty());
    assert_eq!(prefixes.len(), THREADS);
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!(stats.objects, want.len() as u64);
    assert_eq!(
        stats.bytes,
        want.values().map(|d| d.len() as u64).sum::<u64>()
    );
}

#[test]
fn concurrent_puts_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 3, None, 4096);
    s.create_bucket(B).unwrap();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let key = format!("t{t:02}/{i:03}");
                    let data = content(t, i);
                    let v = put(&s, B, &key, &data);
                    assert_eq!(v.size, data.len() as u64);
                    // Visible to its writer as soon as put returns.
                    assert!(get(&s, B, &key).unwrap() == data, "{key}");
                }
            });
        }
    });
    let want: BTreeMap<String, Vec<u8>> = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| (format!("t{t:02}/{i:03}"), content(t, i))))
        .collect();
    verify(&s, &want);
    assert!(s.check().unwrap().clean());
    drop(s);

    let s = open(dir.path(), 3, None, 4096);
    verify(&s, &want);
    let status = s.status();
    assert_eq!(status.objects, (THREADS * PER_THREAD) as u64);
    assert!(s.check().unwrap().clean());
}
