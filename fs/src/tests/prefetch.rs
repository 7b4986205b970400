//! The learned prefetch and the read cache through the core: what the store is asked
//! (its call counts), what is held, and what a read answers.

use super::{fx, Fx, Setup};
use std::time::{Duration, Instant};

/// `n` files `d/pNNN` of `len` bytes each, every file's bytes its own.
fn files(fx: &Fx, n: usize, len: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let path = format!("d/p{i:03}");
            fx.store().put_file(&path, &content(i, len));
            path
        })
        .collect()
}

fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|b| (i * 31 + b) as u8).collect()
}

/// Waits for the prefetches under way to land.
fn settle(fx: &Fx) {
    let warm = fx.core.warm.as_ref().expect("learning is on");
    let t = Instant::now();
    while warm.fetching() > 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "prefetches hang");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Store reads made: each fetch, a prefetch's or a read's, opens a reader.
fn fetched(fx: &Fx) -> usize {
    fx.store().calls("reader")
}

/// Reads a file whole in 4 KiB reads, as `cat` does, and checks it.
fn cat(fx: &Fx, path: &str, want: &[u8]) {
    let fh = fx.open(path, libc::O_RDONLY).unwrap();
    let mut got = Vec::new();
    loop {
        let b = fx.read(fh, got.len() as u64, 4096).unwrap();
        if b.is_empty() {
            break;
        }
        got.extend(b);
    }
    fx.close(fh).unwrap();
    assert!(got == want, "{path} read back with other content");
}

#[test]
fn reading_in_order_fetches_the_next_files_before_they_are_opened() {
    let fx = fx();
    let paths = files(&fx, 10, 20_000);
    for (i, p) in paths.iter().enumerate().take(3) {
        cat(&fx, p, &content(i, 20_000));
    }
    settle(&fx);
    let warm = fx.core.warm.as_ref().unwrap();
    for p in &paths[3..6] {
        assert!(warm.holds(p), "{p} was fetched before it was opened");
    }
    let before = (
        fetched(&fx),
        fx.store().calls("read_at"),
        fx.store().calls("stream_at"),
    );
    for (i, p) in paths.iter().enumerate().skip(3) {
        cat(&fx, p, &content(i, 20_000));
        settle(&fx);
    }
    let reads = fx.store().calls("read_at") - before.1;
    assert_eq!(
        reads, 4,
        "the four files not fetched yet, each by one prefetch"
    );
    assert_eq!(fetched(&fx) - before.0, 4, "one reader each");
    assert_eq!(
        fx.store().calls("stream_at"),
        before.2,
        "none streamed by a handle"
    );
}

#[test]
fn an_order_seen_before_is_prefetched_the_second_time() {
    let fx = fx();
    let paths = files(&fx, 12, 3000);
    // A build's order: not the names' order.
    let order = [7, 2, 9, 0, 11, 4, 1, 8, 3, 10, 5, 6];
    let pass = || {
        for i in order {
            cat(&fx, &paths[i], &content(i, 3000));
            settle(&fx);
        }
    };
    pass();
    assert_eq!(fetched(&fx), 12, "the first pass: each file by its handle");
    let warm = fx.core.warm.as_ref().unwrap();
    assert_eq!(warm.prefetches(), 0, "no guess was made in the first pass");
    // The files are gone from the cache (as after eviction): what is learned remains.
    warm.clear_cache();
    pass();
    assert_eq!(fetched(&fx), 24, "each file fetched once more");
    assert_eq!(warm.prefetches(), 11, "all but the first by a prefetch");
}

#[test]
fn random_access_makes_no_prefetch_storm() {
    let fx = fx();
    let paths = files(&fx, 100, 2000);
    let mut x: u64 = 12345;
    let opens = 300;
    for _ in 0..opens {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = (x >> 33) as usize % paths.len();
        let fh = fx.open(&paths[i], libc::O_RDONLY).unwrap();
        assert_eq!(fx.read(fh, 0, 4096).unwrap(), content(i, 2000));
        fx.close(fh).unwrap();
        settle(&fx);
    }
    let prefetches = fx.core.warm.as_ref().unwrap().prefetches();
    assert!(
        prefetches <= opens / 20,
        "{prefetches} prefetches for {opens} random opens"
    );
}

#[test]
fn the_read_cache_never_exceeds_its_bound() {
    let bound = 64 * 1024;
    let fx = Setup {
        cache_size: Some(bound),
        ..Setup::default()
    }
    .build();
    let paths = files(&fx, 40, 7000);
    let warm = fx.core.warm.as_ref().unwrap();
    for _ in 0..2 {
        for (i, p) in paths.iter().enumerate() {
            cat(&fx, p, &content(i, 7000));
            assert!(warm.held() <= bound, "{} held", warm.held());
        }
    }
    settle(&fx);
    assert!(warm.held() <= bound, "{} held", warm.held());
    assert!(warm.held() > bound / 2, "and it is used");
}

#[test]
fn a_changed_object_is_not_served_from_the_cache() {
    let fx = Setup {
        ttl: Duration::ZERO,
        ..Setup::default()
    }
    .build();
    fx.store().put_file("d/f", b"first");
    assert_eq!(fx.get("d/f").unwrap(), b"first");
    let readers = fetched(&fx);
    assert_eq!(fx.get("d/f").unwrap(), b"first");
    assert_eq!(fetched(&fx), readers, "read again from the cache");
    // Changed by another client: the listing names another object.
    fx.store().put_file("d/f", b"other");
    assert_eq!(fx.get("d/f").unwrap(), b"other");
    // Changed through the mount, under a listing trusted for a minute.
    let fx = super::fx();
    fx.store().put_file("d/f", b"first");
    assert_eq!(fx.get("d/f").unwrap(), b"first");
    fx.put("d/f", b"mine!").unwrap();
    assert_eq!(fx.get("d/f").unwrap(), b"mine!");
}

#[test]
fn eviction_lets_never_read_prefetches_go_first() {
    // Room for eight files.
    let bound = 64 * 1024;
    let fx = Setup {
        cache_size: Some(bound),
        ..Setup::default()
    }
    .build();
    let len = 8000;
    let paths = files(&fx, 6, len);
    let others: Vec<String> = (0..4).map(|i| format!("o{i}/f")).collect();
    for (i, o) in others.iter().enumerate() {
        fx.store().put_file(o, &content(i, len));
    }
    // Three read in order: the next three are prefetched, and never read.
    for (i, p) in paths.iter().enumerate().take(3) {
        assert_eq!(fx.get(p).unwrap(), content(i, len));
    }
    settle(&fx);
    let warm = fx.core.warm.as_ref().unwrap();
    for p in &paths[3..] {
        assert!(warm.holds(p), "{p} prefetched");
    }
    // Four files read elsewhere need room for two.
    for o in &others {
        fx.get(o).unwrap();
        assert!(warm.holds(o));
    }
    for p in &paths[..3] {
        assert!(warm.holds(p), "{p} was read: kept");
    }
    let unread = paths[3..].iter().filter(|p| warm.holds(p)).count();
    assert_eq!(unread, 1, "two unread prefetches made room");
}
