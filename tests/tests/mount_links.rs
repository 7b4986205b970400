//! Hard links through a real `cybs3 mount`, on a plain and an encrypted vault: link
//! counts and one inode number for both names, ctimes changed by link and unlink,
//! writes through one name read through the other, unlink and rename of linked names,
//! link(2)'s errors, what a remount shows, and what `cybs3 ls`, `cp`, `sync` and a plain
//! S3 listing see: real files under every name for cybs3, link records and one inode
//! object for other S3 tools, and a plain object again once one name is left. Needs
//! root and /dev/fuse.

use cybs3_tests::mount::{errno, plain_vault, rt, s3, Mounted};
use cybs3_tests::LocalVault;
use std::collections::HashMap;
use std::fs::{hard_link, metadata, read, remove_file, rename, write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Longer than a second: ctimes are Last-Modified times, which HTTP gives in seconds.
const TICK: Duration = Duration::from_millis(1100);

/// Every object of `bucket` under `prefix`: key, size, and user metadata.
fn objects(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, i64, HashMap<String, String>)> {
    rt().block_on(async {
        let listed = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for o in listed.contents() {
            let key = o.key().unwrap().to_string();
            let head = c.head_object().bucket(bucket).key(&key).send().await;
            let meta = head.unwrap().metadata().cloned().unwrap_or_default();
            out.push((key, o.size().unwrap(), meta));
        }
        out
    })
}

/// `cybs3 ls -r --json` of the vault: path and size of each file.
fn listed(v: &LocalVault, vault: &str) -> Vec<(String, u64)> {
    let ls = v.ok(&["ls", "-r", "--json", &format!("{vault}:")]);
    let entries: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let mut out: Vec<(String, u64)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let path = e["path"].as_str().unwrap().to_string();
            (path, e["size"].as_u64().unwrap())
        })
        .collect();
    out.sort();
    out
}

fn links(vault: &str) {
    let v = LocalVault::new();
    let bucket = match vault {
        "plainv" => plain_vault(&v),
        _ => v.vault_json(vault)["bucket"].as_str().unwrap().to_string(),
    };
    let prefix = match vault {
        "plainv" => "pm/",
        _ => "",
    };
    let c = s3(&v);
    let m = Mounted::new(&v, vault, &[]);
    std::fs::create_dir(m.p("d")).unwrap();
    write(m.p("a"), b"hello").unwrap();
    let before = metadata(m.p("a")).unwrap();
    assert_eq!(before.nlink(), 1, "{vault}");

    std::thread::sleep(TICK);
    hard_link(m.p("a"), m.p("d/b")).unwrap();
    let (a, b) = (metadata(m.p("a")).unwrap(), metadata(m.p("d/b")).unwrap());
    assert_eq!((a.nlink(), b.nlink()), (2, 2), "{vault}: link counts");
    assert_eq!((a.ino(), b.ino()), (before.ino(), before.ino()), "{vault}");
    assert!(
        a.ctime() > before.ctime(),
        "{vault}: link changes the ctime"
    );
    assert_eq!(read(m.p("d/b")).unwrap(), b"hello", "{vault}");

    // Writes through one name are the other's content.
    write(m.p("d/b"), b"new content").unwrap();
    assert_eq!(read(m.p("a")).unwrap(), b"new content", "{vault}");
    assert_eq!(metadata(m.p("a")).unwrap().len(), 11, "{vault}");

    // What other tools see while the file has two names: cybs3 the real file under
    // both, a plain S3 listing two empty link records and one inode object.
    assert_eq!(
        listed(&v, vault),
        [("a".to_string(), 11), ("d/b".to_string(), 11)],
        "{vault}: cybs3 ls"
    );
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("got");
    v.ok(&["cp", &format!("{vault}:d/b"), got.to_str().unwrap()]);
    assert_eq!(read(&got).unwrap(), b"new content", "{vault}: cybs3 cp");
    let synced = out.path().join("synced");
    v.ok(&["sync", &format!("{vault}:"), synced.to_str().unwrap()]);
    assert_eq!(read(synced.join("a")).unwrap(), b"new content", "{vault}");
    assert_eq!(read(synced.join("d/b")).unwrap(), b"new content", "{vault}");
    assert!(
        !synced.join(".cybs3").exists(),
        "{vault}: no inode area synced"
    );
    let stored = objects(&c, &bucket, prefix);
    let records: Vec<_> = stored
        .iter()
        .filter(|(_, size, meta)| *size == 0 && meta.contains_key("cybs3-link"))
        .collect();
    assert_eq!(records.len(), 2, "{vault}: {stored:?}");
    assert_eq!(records[0].2["cybs3-link"], records[1].2["cybs3-link"]);
    let inodes: Vec<_> = stored
        .iter()
        .filter(|(_, _, meta)| meta.contains_key("cybs3-names"))
        .collect();
    assert_eq!(inodes.len(), 1, "{vault}: {stored:?}");
    if vault == "plainv" {
        let keys: Vec<&str> = stored.iter().map(|(k, ..)| k.as_str()).collect();
        let id = &records[0].2["cybs3-link"];
        let inode = format!("pm/.cybs3/inodes/{id}");
        // `pm/d/` is the directory's marker.
        assert_eq!(keys, [inode.as_str(), "pm/a", "pm/d/", "pm/d/b"]);
        assert_eq!(inodes[0].0, inode);
        assert_eq!(
            cybs3_tests::mount::get(&c, &bucket, &inode).unwrap(),
            b"new content"
        );
    }

    // Unlinking one name keeps the other, back to one link.
    std::thread::sleep(TICK);
    let ctime = metadata(m.p("d/b")).unwrap().ctime();
    remove_file(m.p("a")).unwrap();
    assert_eq!(errno(metadata(m.p("a"))), libc::ENOENT, "{vault}");
    let b = metadata(m.p("d/b")).unwrap();
    assert_eq!((b.nlink(), b.ino()), (1, before.ino()), "{vault}");
    assert!(b.ctime() > ctime, "{vault}: unlink changes the ctime");
    assert_eq!(read(m.p("d/b")).unwrap(), b"new content", "{vault}");
    // Other S3 tools see a real file again, and no inode object.
    let stored = objects(&c, &bucket, prefix);
    assert!(
        stored
            .iter()
            .all(|(_, _, meta)| !meta.contains_key("cybs3-link")
                && !meta.contains_key("cybs3-names")),
        "{vault}: {stored:?}"
    );
    if vault == "plainv" {
        let keys: Vec<&str> = stored.iter().map(|(k, ..)| k.as_str()).collect();
        assert_eq!(keys, ["pm/d/", "pm/d/b"], "{vault}");
        assert_eq!(
            cybs3_tests::mount::get(&c, &bucket, "pm/d/b").unwrap(),
            b"new content"
        );
    }

    // A linked name renames; the names stay one file.
    hard_link(m.p("d/b"), m.p("c")).unwrap();
    rename(m.p("c"), m.p("e")).unwrap();
    let (b, e) = (metadata(m.p("d/b")).unwrap(), metadata(m.p("e")).unwrap());
    assert_eq!((b.nlink(), e.nlink()), (2, 2), "{vault}: after rename");
    assert_eq!(e.ino(), b.ino(), "{vault}");
    assert_eq!(read(m.p("e")).unwrap(), b"new content", "{vault}");
    assert_eq!(errno(metadata(m.p("c"))), libc::ENOENT, "{vault}");

    // link(2)'s errors.
    assert_eq!(errno(hard_link(m.p("d"), m.p("x"))), libc::EPERM, "{vault}");
    assert_eq!(
        errno(hard_link(m.p("e"), m.p("d/b"))),
        libc::EEXIST,
        "{vault}"
    );
    assert_eq!(
        errno(hard_link(m.p("missing"), m.p("y"))),
        libc::ENOENT,
        "{vault}"
    );

    // A fresh mount shows the same links.
    drop(m);
    let m = Mounted::new(&v, vault, &[]);
    let (b, e) = (metadata(m.p("d/b")).unwrap(), metadata(m.p("e")).unwrap());
    assert_eq!((b.nlink(), e.nlink(), b.ino()), (2, 2, e.ino()), "{vault}");
    remove_file(m.p("d/b")).unwrap();
    assert_eq!(metadata(m.p("e")).unwrap().nlink(), 1, "{vault}");
    assert_eq!(read(m.p("e")).unwrap(), b"new content", "{vault}");
    assert_eq!(
        listed(&v, vault),
        [("e".to_string(), 11)],
        "{vault}: cybs3 ls"
    );

    // An encrypted vault's records are bound to their names: one copied over another
    // name by an S3 client (without the vault's key) is refused, never followed.
    if vault == "local" {
        hard_link(m.p("e"), m.p("f")).unwrap();
        let stored = objects(&c, &bucket, prefix);
        let records: Vec<&str> = stored
            .iter()
            .filter(|(_, _, meta)| meta.contains_key("cybs3-link"))
            .map(|(k, ..)| k.as_str())
            .collect();
        assert_eq!(records.len(), 2, "{stored:?}");
        rt().block_on(async {
            c.copy_object()
                .bucket(&bucket)
                .key(records[1])
                .copy_source(format!("{bucket}/{}", records[0]))
                .send()
                .await
                .unwrap()
        });
        let cat = |name: &str| {
            let out = cybs3_tests::cybs3(&v.home, &["cat", &format!("local:{name}")]);
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (e, f) = (cat("e"), cat("f"));
        assert!(e.0 != f.0, "exactly one name is refused: {e:?} {f:?}");
        let refused = if e.0 { f.1 } else { e.1 };
        assert!(refused.contains("not bound to its path"), "{refused}");
    }
}

#[test]
fn links_plain() {
    links("plainv")
}

#[test]
fn links_encrypted() {
    links("local")
}
