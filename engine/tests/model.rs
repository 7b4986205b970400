//! Model-based test: random operation sequences against an unversioned bucket on a
//! 3-drive 2+1 store must answer exactly like an in-memory `BTreeMap`.

mod common;

use common::*;
use cybs3_engine::{Deleted, Error, Store};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BUCKET: &str = "model";
const BLOCK: u32 = 4096;
const KEYS: &[&str] = &["a", "a/b", "a/c", "a/b/c", "b", "b/x", "b/x/y", "c", "c/"];
const PREFIXES: &[&str] = &["", "a", "a/", "a/b", "b", "b/", "b/x/", "c", "c/", "d"];

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: usize,
        size: usize,
        seed: u64,
        chunk: usize,
    },
    Delete {
        key: usize,
    },
    Get {
        key: usize,
    },
    Head {
        key: usize,
    },
    Range {
        key: usize,
        a: u64,
        b: u64,
    },
    List {
        prefix: usize,
        delimiter: bool,
        max: usize,
    },
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..2_000,
        1 => 0usize..200_000,
        2 => prop::sample::select(vec![
            0usize, 1, 4095, 4096, 4097, 8192, 65_535, 65_536, 65_537, 69_632, 200_000,
        ]),
    ]
}

fn chunk() -> impl Strategy<Value = usize> {
    // usize::MAX: one write call; the others cross the inline/sharded switch mid-stream.
    prop::sample::select(vec![
        usize::MAX,
        usize::MAX,
        777,
        4096,
        5_000,
        65_536,
        65_537,
    ])
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), size(), any::<u64>(), chunk())
            .prop_map(|(key, size, seed, chunk)| Op::Put { key, size, seed, chunk }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        2 => key.clone().prop_map(|key| Op::Get { key }),
        1 => key.clone().prop_map(|key| Op::Head { key }),
        1 => (key, any::<u64>(), any::<u64>()).prop_map(|(key, a, b)| Op::Range { key, a, b }),
        2 => (0..PREFIXES.len(), any::<bool>(), 1usize..5)
            .prop_map(|(prefix, delimiter, max)| Op::List { prefix, delimiter, max }),
    ]
}

type Model = BTreeMap<String, Vec<u8>>;

fn expected_listing(
    model: &Model,
    prefix: &str,
    delimiter: bool,
) -> (Vec<(String, u64)>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes = BTreeSet::new();
    for (k, v) in model.iter().filter(|(k, _)| k.starts_with(prefix)) {
        if delimiter {
            if let Some(pos) = k[prefix.len()..].find('/') {
                prefixes.insert(k[..prefix.len() + pos + 1].to_string());
                continue;
            }
        }
        objects.push((k.clone(), v.len() as u64));
    }
    (objects, prefixes.into_iter().collect())
}

fn assert_missing<T: std::fmt::Debug>(r: Result<T, Error>, key: &str) {
    match r {
        Err(Error::NoSuchKey(k)) => assert_eq!(k, key),
        other => panic!("{key}: expected NoSuchKey, got {other:?}"),
    }
}

fn check_all(s: &Store, model: &Model) {
    for key in KEYS {
        match model.get(*key) {
            Some(want) => assert!(
                get(s, BUCKET, key).unwrap() == *want,
                "{key}: content differs"
            ),
            None => assert_missing(get(s, BUCKET, key), key),
        }
    }
    let (objects, prefixes) = list_all(s, BUCKET, "", None, 1000);
    assert_eq!(objects, expected_listing(model, "", false).0);
    assert!(prefixes.is_empty());
    let stats = s.bucket_stats(BUCKET).unwrap();
    assert_eq!(stats.objects, model.len() as u64, "object count in stats");
    assert_eq!(
        stats.bytes,
        model.values().map(|v| v.len() as u64).sum::<u64>(),
        "byte count in stats"
    );
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), 3);
    let s = open(dir.path(), 3, None, BLOCK);
    assert_eq!(s.ec().to_string(), "2+1");
    s.create_bucket(BUCKET).unwrap();
    let mut model = Model::new();

    for op in &ops {
        match *op {
            Op::Put {
                key,
                size,
                seed,
                chunk,
            } => {
                let key = KEYS[key];
                let data = bytes(seed, size);
                let v = put_chunked(&s, BUCKET, key, &data, chunk).unwrap();
                assert_eq!(v.key, key);
                assert_eq!(v.size, size as u64);
                assert_eq!(
                    v.version_id, "null",
                    "unversioned writes are the null version"
                );
                assert!(!v.delete_marker);
                assert_eq!(
                    sharded_id(&v).is_some(),
                    size > cybs3_engine::INLINE_MAX,
                    "{size} bytes: inline up to INLINE_MAX, sharded above"
                );
                model.insert(key.to_string(), data);
            }
            Op::Delete { key } => {
                let key = KEYS[key];
                let d = s.delete(BUCKET, key, None, false).unwrap();
                assert_eq!(
                    d,
                    Deleted {
                        version_id: None,
                        delete_marker: false
                    }
                );
                model.remove(key);
            }
            Op::Get { key } => {
                let key = KEYS[key];
                match model.get(key) {
                    Some(want) => {
                        let got = get(&s, BUCKET, key).unwrap();
                        assert_eq!(got.len(), want.len(), "{key}: length");
                        assert!(got == *want, "{key}: content differs");
                    }
                    None => assert_missing(get(&s, BUCKET, key), key),
                }
            }
            Op::Head { key } => {
                let key = KEYS[key];
                match model.get(key) {
                    Some(want) => {
                        let v = s.head(BUCKET, key, None).unwrap();
                        assert_eq!(v.key, key);
                        assert_eq!(v.size, want.len() as u64);
                        assert_eq!(v.meta.etag, etag_of(want));
                    }
                    None => assert_missing(s.head(BUCKET, key, None), key),
                }
            }
            Op::Range { key, a, b } => {
                let key = KEYS[key];
                match model.get(key) {
                    Some(want) => {
                        let len = want.len() as u64;
                        let start = a % (len + 1);
                        let end = start + b % (len - start + 1);
                        let got = get_range(&s, BUCKET, key, start, end).unwrap();
                        assert!(
                            got == want[start as usize..end as usize],
                            "{key}: range {start}..{end} of {len} differs"
                        );
                        let past = s.open_object(BUCKET, key, None).unwrap().range(0, len + 1);
                        assert!(matches!(past, Err(Error::InvalidRange)));
                    }
                    None => assert_missing(s.open_object(BUCKET, key, None).map(drop), key),
                }
            }
            Op::List {
                prefix,
                delimiter,
                max,
            } => {
                let prefix = PREFIXES[prefix];
                let delim = delimiter.then_some("/");
                let got = list_all(&s, BUCKET, prefix, delim, max);
                let want = expected_listing(&model, prefix, delimiter);
                assert_eq!(
                    got, want,
                    "list prefix={prefix:?} delimiter={delim:?} max={max}"
                );
            }
        }
    }

    check_all(&s, &model);
    let report = s.check().unwrap();
    assert!(report.clean(), "check after the run: {report:?}");
    // Replaced and deleted data is reclaimed: only live objects keep shard files.
    let live = model
        .values()
        .filter(|v| v.len() > cybs3_engine::INLINE_MAX)
        .count();
    assert!(
        eventually(Duration::from_secs(2), || count_shards(&drives) == 3 * live),
        "{} shard files on the drives, {} live sharded objects",
        count_shards(&drives),
        live
    );

    // Everything survives a restart.
    drop(s);
    let s = open(dir.path(), 3, None, BLOCK);
    check_all(&s, &model);
}

proptest! {
    #![proptest_config(Config {
        cases: 24,
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    })]

    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..36)) {
        run(ops);
    }
}

/// The switch from inline to sharded happens mid-stream when bytes come in small writes.
#[test]
fn small_writes_cross_the_inline_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 3, None, BLOCK);
    s.create_bucket(BUCKET).unwrap();
    for (i, &(size, chunk)) in [
        (65_537usize, 1000usize),
        (65_537, 65_536),
        (100_000, 4_095),
        (100_000, 60_000),
        (65_536, 1),
    ]
    .iter()
    .enumerate()
    {
        let data = bytes(i as u64, size);
        let key = format!("k{i}");
        let v = put_chunked(&s, BUCKET, &key, &data, chunk).unwrap();
        assert_eq!(v.size, size as u64);
        assert!(
            get(&s, BUCKET, &key).unwrap() == data,
            "{size} bytes in {chunk}-byte writes"
        );
    }
}
