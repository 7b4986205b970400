//! The reference-model test: random sequences of create, write, read, truncate, unlink,
//! mkdir, rmdir and rename, applied both to the core over the in-memory store and to a
//! plain map of paths to contents; every answer (value or errno) and the stored tree
//! after each step must agree. After mountpoint-s3's reftests.

use super::{Fx, Setup};
use crate::store::memory::Memory;
use crate::R;
use fuser::{Errno, FileType};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Few names, two levels: operations collide often, which is where bugs are.
const PATHS: &[&str] = &["a", "b", "c", "a/a", "a/b", "b/a", "b/c", "a/a/c"];

#[derive(Clone, Debug)]
enum Op {
    Create(&'static str),
    Write(&'static str, u64, Vec<u8>),
    Read(&'static str),
    Truncate(&'static str, u64),
    Unlink(&'static str),
    Mkdir(&'static str),
    Rmdir(&'static str),
    Rename(&'static str, &'static str),
}

fn op() -> impl Strategy<Value = Op> {
    let path = || prop::sample::select(PATHS);
    prop_oneof![
        path().prop_map(Op::Create),
        (path(), 0..40u64, prop::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(p, o, d)| Op::Write(p, o, d)),
        path().prop_map(Op::Read),
        (path(), 0..48u64).prop_map(|(p, s)| Op::Truncate(p, s)),
        path().prop_map(Op::Unlink),
        path().prop_map(Op::Mkdir),
        path().prop_map(Op::Rmdir),
        (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
    ]
}

/// What an operation answered: nothing, or the bytes read.
type Answer = R<Option<Vec<u8>>>;

#[derive(Clone, Debug, PartialEq)]
enum Node {
    File(Vec<u8>),
    Dir,
}

/// POSIX over a map; the root is implicit.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, Node>,
}

fn parent(path: &str) -> &str {
    crate::names::split(path).0
}

fn below(path: &str, top: &str) -> bool {
    crate::names::within(path, top) && path != top
}

impl Model {
    /// The kernel's walk to `path`'s directory.
    fn walk(&self, path: &str) -> R<()> {
        let dir = parent(path);
        if dir.is_empty() {
            return Ok(());
        }
        self.walk(dir)?;
        match self.nodes.get(dir) {
            None => Err(Errno::ENOENT),
            Some(Node::File(_)) => Err(Errno::ENOTDIR),
            Some(Node::Dir) => Ok(()),
        }
    }

    /// The file at `path` for opening: EISDIR for a directory.
    fn file(&mut self, path: &str) -> R<&mut Vec<u8>> {
        self.walk(path)?;
        match self.nodes.get_mut(path) {
            None => Err(Errno::ENOENT),
            Some(Node::Dir) => Err(Errno::EISDIR),
            Some(Node::File(d)) => Ok(d),
        }
    }

    fn apply(&mut self, op: &Op) -> Answer {
        match *op {
            Op::Create(p) => {
                self.walk(p)?;
                if self.nodes.get(p) == Some(&Node::Dir) {
                    return Err(Errno::EISDIR);
                }
                self.nodes.insert(p.into(), Node::File(Vec::new()));
            }
            Op::Write(p, offset, ref data) => {
                let f = self.file(p)?;
                // An empty write changes nothing, not even the size.
                if data.is_empty() {
                    return Ok(None);
                }
                let end = offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[offset as usize..end].copy_from_slice(data);
            }
            Op::Read(p) => return Ok(Some(self.file(p)?.clone())),
            Op::Truncate(p, size) => self.file(p)?.resize(size as usize, 0),
            Op::Unlink(p) => {
                self.walk(p)?;
                match self.nodes.get(p) {
                    None => return Err(Errno::ENOENT),
                    Some(Node::Dir) => return Err(Errno::EISDIR),
                    Some(Node::File(_)) => self.nodes.remove(p),
                };
            }
            Op::Mkdir(p) => {
                self.walk(p)?;
                if self.nodes.contains_key(p) {
                    return Err(Errno::EEXIST);
                }
                self.nodes.insert(p.into(), Node::Dir);
            }
            Op::Rmdir(p) => {
                self.walk(p)?;
                match self.nodes.get(p) {
                    None => return Err(Errno::ENOENT),
                    Some(Node::File(_)) => return Err(Errno::ENOTDIR),
                    Some(Node::Dir) if self.nodes.keys().any(|k| below(k, p)) => {
                        return Err(Errno::ENOTEMPTY)
                    }
                    Some(Node::Dir) => self.nodes.remove(p),
                };
            }
            Op::Rename(from, to) => {
                self.walk(from)?;
                self.walk(to)?;
                let src = self.nodes.get(from).cloned().ok_or(Errno::ENOENT)?;
                if from == to {
                    return Ok(None);
                }
                let dst = self.nodes.get(to).cloned();
                match src {
                    Node::File(_) if dst == Some(Node::Dir) => return Err(Errno::EISDIR),
                    Node::File(_) => {
                        self.nodes.remove(from);
                        self.nodes.insert(to.into(), src);
                    }
                    Node::Dir => {
                        if below(to, from) {
                            return Err(Errno::EINVAL);
                        }
                        match dst {
                            Some(Node::File(_)) => return Err(Errno::ENOTDIR),
                            Some(Node::Dir) if self.nodes.keys().any(|k| below(k, to)) => {
                                return Err(Errno::ENOTEMPTY)
                            }
                            _ => {}
                        }
                        let moving: Vec<String> = self
                            .nodes
                            .keys()
                            .filter(|k| crate::names::within(k, from))
                            .cloned()
                            .collect();
                        for k in moving {
                            let n = self.nodes.remove(&k).unwrap();
                            self.nodes.insert(crate::names::moved(&k, from, to), n);
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The same operations through the core, as the kernel would send them: it walks the
/// path first and refuses what never reaches a filesystem (opening a directory for
/// writing, reading one).
fn run(f: &Fx, op: &Op) -> Answer {
    // The kernel's walk: every directory on the way must be one.
    let walk = |p: &str| -> R<()> {
        let mut at = String::new();
        for name in parent(p).split('/').filter(|n| !n.is_empty()) {
            at = crate::names::child(&at, name);
            if f.lookup(&at)?.kind != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
        }
        Ok(())
    };
    let regular = |p: &str| -> R<()> {
        walk(p)?;
        match f.lookup(p)?.kind {
            FileType::Directory => Err(Errno::EISDIR),
            _ => Ok(()),
        }
    };
    match *op {
        Op::Create(p) => {
            walk(p)?;
            let fh = f.create(p)?;
            f.close(fh)?;
        }
        Op::Write(p, offset, ref data) => {
            regular(p)?;
            let fh = f.open(p, libc::O_WRONLY)?;
            let wrote = f.write(fh, offset, data);
            f.close(fh)?;
            wrote?;
        }
        Op::Read(p) => {
            regular(p)?;
            return f.get(p).map(Some);
        }
        Op::Truncate(p, size) => {
            regular(p)?;
            f.truncate(p, size)?;
        }
        Op::Unlink(p) => {
            walk(p)?;
            f.unlink(p)?;
        }
        Op::Mkdir(p) => {
            walk(p)?;
            f.mkdir(p)?;
        }
        Op::Rmdir(p) => {
            walk(p)?;
            f.rmdir(p)?;
        }
        Op::Rename(from, to) => {
            walk(from)?;
            walk(to)?;
            f.lookup(from)?;
            f.rename(from, to)?;
        }
    }
    Ok(None)
}

/// The store's tree in the model's terms.
fn stored(store: &Memory) -> BTreeMap<String, Node> {
    let mut out: BTreeMap<String, Node> = store
        .markers()
        .into_iter()
        .map(|m| (m, Node::Dir))
        .collect();
    for p in store.paths() {
        let data = store.file(&p).unwrap().data.to_vec();
        out.insert(p, Node::File(data));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_core_behaves_as_the_reference_model(
        ops in prop::collection::vec(op(), 1..40),
        zero_ttl in any::<bool>(),
        lists_meta in any::<bool>(),
    ) {
        let mut store = Memory::default();
        store.lists_meta = lists_meta;
        let ttl = if zero_ttl { Duration::ZERO } else { Duration::from_secs(60) };
        let f = Setup { store, ttl, ..Setup::default() }.build();
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let want = model.apply(op);
            let got = run(&f, op);
            prop_assert_eq!(&got, &want, "step {}: {:?}", i, op);
            prop_assert_eq!(stored(f.store()), model.nodes.clone(), "after step {}: {:?}", i, op);
        }
        prop_assert_eq!(f.cached_files(), 0);
    }
}
