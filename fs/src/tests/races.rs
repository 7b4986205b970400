//! The caches against changes made through the mount while a fetch is on the wire: a
//! listing or a HEAD answered before a close's upload must not land in the cache after
//! it, or the next `getattr` gives the kernel the old size, and the next `O_APPEND`
//! write (at the kernel's idea of the end) overwrites what that close stored.

use super::{Fx, Setup};
use crate::store::memory::Memory;
use std::sync::mpsc;

/// Appends `line` to `path` as `echo line >> path` does: open, write at the size the
/// kernel was last told, close.
fn append(f: &Fx, path: &str, line: &[u8]) {
    let size = f.lookup(path).unwrap().size;
    let fh = f.open(path, libc::O_WRONLY | libc::O_APPEND).unwrap();
    f.write(fh, size, line).unwrap();
    f.close(fh).unwrap();
}

/// Runs `fetch` (which calls the store's `call` once) on another thread, and appends
/// a line to `d/f` while the store holds that call's answer, already out of date.
fn append_during(f: &Fx, call: &'static str, fetch: impl FnOnce() + Send) {
    let (held, hold) = (mpsc::channel(), mpsc::channel::<()>());
    let (held_tx, held_rx) = held;
    let (go_tx, go_rx) = hold;
    f.store().pause_after(call, move || {
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    });
    std::thread::scope(|s| {
        let fetching = s.spawn(fetch);
        held_rx.recv().unwrap();
        append(f, "d/f", b"2\n");
        go_tx.send(()).unwrap();
        fetching.join().unwrap();
    });
}

fn with_file(lists_meta: bool) -> Fx {
    let mut store = Memory::new();
    store.lists_meta = lists_meta;
    let f = Setup {
        store,
        ..Setup::default()
    }
    .build();
    f.mkdir("d").unwrap();
    f.put("d/f", b"1\n").unwrap();
    f
}

#[test]
fn a_listing_taken_before_an_upload_does_not_hide_it() {
    let f = with_file(true);
    append_during(&f, "list", || f.core.refresh("d").unwrap());
    assert_eq!(f.lookup("d/f").unwrap().size, 4, "the listing's old size");
    append(&f, "d/f", b"3\n");
    assert_eq!(&f.store().file("d/f").unwrap().data[..], b"1\n2\n3\n");
}

#[test]
fn attributes_fetched_before_an_upload_do_not_hide_it() {
    let f = with_file(false);
    f.core.cache.forget_meta("d/f");
    append_during(&f, "stat", || {
        f.core.meta("d/f").unwrap();
    });
    // A listing without attributes, as an encrypted vault's: the HEAD's answer counts.
    f.core.refresh("d").unwrap();
    assert_eq!(f.lookup("d/f").unwrap().size, 4, "the HEAD's old size");
    append(&f, "d/f", b"3\n");
    assert_eq!(&f.store().file("d/f").unwrap().data[..], b"1\n2\n3\n");
}
