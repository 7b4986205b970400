//! An in-memory [`Store`] for the unit tests: objects in a map, directory markers beside
//! them, a version per object so that readers see replacements as a real store's
//! `If-Match` does, a count of calls by method (what the caches save), an error to
//! answer on demand (the errno table, seen through the core), and a pause between a
//! call's answer and its return (races with what the mount does meanwhile). Hard links
//! are kept as the vault keeps them: link records naming inode objects, followed by
//! reads, stats and attribute changes, and inode objects left out of listings.

use super::{Error, Result, Store, UploadAttrs};
use crate::names::child;
use crate::sealed::CacheFile;
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::mpsc;
use vault::attrs::{AttrChange, Kind, Xattrs, XATTRS_MAX};
use vault::transfer::Source;
use vault::vault::{inode_path, is_internal, Entry, Meta};

/// A regular file's kind bits (`S_IFREG`) and a symbolic link's.
pub(crate) const REGULAR: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;
/// What [`Store::stream_at`] sends at a time: small, so tests cross batches.
const BATCH: usize = 4096;

/// One stored object.
#[derive(Clone, Debug)]
pub(crate) struct Obj {
    pub data: Bytes,
    pub mode: u32,
    pub mtime: SystemTime,
    pub xattrs: Option<String>,
    /// As uploaded or changed; `None` for objects stored otherwise.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    /// A device's number, as [`Store::put_node`] stored it.
    pub rdev: Option<u64>,
    /// A link record's inode object id.
    pub link: Option<String>,
    /// An inode object's names.
    pub names: Vec<String>,
    /// When it was stored: its ctime.
    stored: SystemTime,
    version: u64,
}

impl Obj {
    /// An object stored by another client: no owner, no access time.
    fn new(data: Bytes, mode: u32, mtime: SystemTime) -> Obj {
        Obj {
            data,
            mode,
            mtime,
            xattrs: None,
            uid: None,
            gid: None,
            atime: None,
            rdev: None,
            link: None,
            names: Vec::new(),
            stored: SystemTime::now(),
            version: 0,
        }
    }

    fn meta(&self) -> Meta {
        Meta {
            mtime: Some(self.mtime),
            mode: Some(self.mode),
            uid: self.uid,
            gid: self.gid,
            ctime: Some(self.stored),
            atime: self.atime,
            xattrs: self.xattrs.clone(),
            rdev: self.rdev,
            link: self.link.clone(),
            names: self.names.clone(),
            ..Meta::sized(self.data.len() as u64)
        }
    }
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Obj>,
    markers: BTreeMap<String, Obj>,
    version: u64,
}

impl State {
    fn put(&mut self, path: &str, mut obj: Obj) {
        self.version += 1;
        obj.version = self.version;
        obj.stored = SystemTime::now();
        self.files.insert(path.to_string(), obj);
    }

    fn file(&self, path: &str) -> Result<&Obj> {
        self.files
            .get(path)
            .ok_or_else(|| Error::NotFound(format!("{path:?} does not exist")))
    }

    /// Where `path`'s content and attributes are: its own object, or a link record's
    /// inode object.
    fn followed(&self, path: &str) -> String {
        match self.files.get(path).and_then(|o| o.link.as_deref()) {
            Some(id) => inode_path(id),
            None => path.to_string(),
        }
    }

    /// `path`'s attributes, a link record's being its inode object's.
    fn meta(&self, path: &str) -> Option<Meta> {
        let own = self.files.get(path)?;
        match self.files.get(&self.followed(path)) {
            Some(o) if own.link.is_some() => Some(Meta {
                link: own.link.clone(),
                ..o.meta()
            }),
            _ => Some(own.meta()),
        }
    }
}

/// What [`Memory::pause_after`] runs.
type Pause = Box<dyn FnOnce() + Send>;

/// An object opened for reads: its bytes and version as they were.
pub(crate) struct MemReader {
    path: String,
    version: u64,
    etag: String,
    data: Bytes,
}

/// An object's ETag: its version, quoted as S3 quotes them.
fn etag_of(version: u64) -> String {
    format!("\"{version}\"")
}

#[derive(Default)]
pub(crate) struct Memory {
    state: Mutex<State>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
    fail: Mutex<Option<fn() -> Error>>,
    /// Run once by the next call of that name, after its answer is taken.
    pauses: Mutex<Vec<(&'static str, Pause)>>,
    /// Whether listings carry each file's attributes (else each costs a stat).
    pub lists_meta: bool,
    /// Whether it answers as an encrypted store, so the core seals its copies.
    pub encrypted: bool,
}

impl Memory {
    pub(crate) fn new() -> Memory {
        Memory {
            lists_meta: true,
            ..Memory::default()
        }
    }

    /// Counts a call of `name` and answers the set error, if any.
    fn enter(&self, name: &'static str) -> Result<MutexGuard<'_, State>> {
        *crate::lock(&self.calls).entry(name).or_default() += 1;
        if let Some(fail) = *crate::lock(&self.fail) {
            return Err(fail());
        }
        Ok(crate::lock(&self.state))
    }

    /// Makes the next call of `name` run `pause` after it has taken its answer and
    /// before it returns it: as a slow network would hold an answer that is already
    /// out of date.
    pub(crate) fn pause_after(&self, name: &'static str, pause: impl FnOnce() + Send + 'static) {
        crate::lock(&self.pauses).push((name, Box::new(pause)));
    }

    /// Runs the pause set for `name`, if any.
    fn paused(&self, name: &'static str) {
        let mut pauses = crate::lock(&self.pauses);
        let Some(i) = pauses.iter().position(|(n, _)| *n == name) else {
            return;
        };
        let (_, pause) = pauses.remove(i);
        drop(pauses);
        pause();
    }

    /// How often `name` was called.
    pub(crate) fn calls(&self, name: &str) -> usize {
        crate::lock(&self.calls).get(name).copied().unwrap_or(0)
    }

    /// Makes every call fail with `fail()` from now on (`None`: succeed again).
    pub(crate) fn fail_with(&self, fail: Option<fn() -> Error>) {
        *crate::lock(&self.fail) = fail;
    }

    /// Stores `data` at `path` as another client would (mode 0644).
    pub(crate) fn put_file(&self, path: &str, data: &[u8]) {
        let obj = Obj::new(
            Bytes::copy_from_slice(data),
            REGULAR | 0o644,
            SystemTime::now(),
        );
        crate::lock(&self.state).put(path, obj);
    }

    pub(crate) fn file(&self, path: &str) -> Option<Obj> {
        crate::lock(&self.state).files.get(path).cloned()
    }

    /// The extended attributes on directory `path`'s marker (`None`: no marker).
    pub(crate) fn marker(&self, path: &str) -> Option<Xattrs> {
        let st = crate::lock(&self.state);
        let stored = st.markers.get(path)?.xattrs.clone();
        Some(
            self.decode_xattrs(stored.as_deref())
                .expect("stored by encode_xattrs"),
        )
    }

    /// Every directory marker's path.
    pub(crate) fn markers(&self) -> Vec<String> {
        crate::lock(&self.state).markers.keys().cloned().collect()
    }

    /// Every file's path.
    pub(crate) fn paths(&self) -> Vec<String> {
        crate::lock(&self.state).files.keys().cloned().collect()
    }

    fn check(&self, r: &MemReader) -> Result<()> {
        match crate::lock(&self.state).files.get(&r.path) {
            Some(o) if o.version == r.version => Ok(()),
            _ => Err(Error::PreconditionFailed(format!("{:?} changed", r.path))),
        }
    }
}

fn slice(data: &Bytes, offset: u64, len: u64) -> Bytes {
    let start = (offset as usize).min(data.len());
    let end = (offset.saturating_add(len) as usize).min(data.len());
    data.slice(start..end)
}

/// The first name of `rest`, when there is a directory level below it.
fn subdir(rest: &str) -> Option<&str> {
    rest.split_once('/').map(|(d, _)| d)
}

impl Store for Memory {
    type Reader = MemReader;

    async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let st = self.enter("list")?;
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: BTreeMap<String, Entry> = BTreeMap::new();
        let mut add_dir = |path: String| {
            out.entry(path.clone()).or_insert(Entry {
                path,
                size: 0,
                stored: None,
                is_dir: true,
                meta: None,
                etag: None,
            });
        };
        // A directory's own marker is not listed, as in S3 under `dir/`.
        for m in st.markers.keys() {
            if let Some(rest) = m.strip_prefix(&prefix).filter(|r| !r.is_empty()) {
                add_dir(child(dir, subdir(rest).unwrap_or(rest)));
            }
        }
        for p in st.files.keys() {
            if let Some(d) = p.strip_prefix(&prefix).and_then(subdir) {
                add_dir(child(dir, d));
            }
        }
        for (p, o) in &st.files {
            if p.strip_prefix(&prefix).is_some_and(|r| !r.contains('/')) {
                // A record lists with its file's size, as the vault resolves it.
                let meta = st.meta(p).unwrap_or_else(|| o.meta());
                out.insert(
                    p.clone(),
                    Entry {
                        path: p.clone(),
                        size: meta.size,
                        stored: Some(o.stored),
                        is_dir: false,
                        meta: (self.lists_meta || o.link.is_some()).then_some(meta),
                        // A record's content is its inode object's: no ETag of it, as
                        // the vault lists them.
                        etag: o.link.is_none().then(|| etag_of(o.version)),
                    },
                );
            }
        }
        // As the vault does: a `dir` that names a file lists that file.
        if out.is_empty() && !dir.is_empty() {
            if let Some(o) = st.files.get(dir) {
                out.insert(
                    dir.to_string(),
                    Entry {
                        path: dir.to_string(),
                        size: o.data.len() as u64,
                        stored: None,
                        is_dir: false,
                        meta: Some(o.meta()),
                        etag: None,
                    },
                );
            }
        }
        drop(st);
        self.paused("list");
        out.retain(|p, _| !is_internal(p));
        Ok(out.into_values().collect())
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        let meta = self.enter("stat")?.meta(path);
        self.paused("stat");
        Ok(meta)
    }

    fn encrypted(&self) -> bool {
        self.encrypted
    }

    async fn download(&self, path: &str, into: &Arc<CacheFile>) -> Result<Meta> {
        let st = self.enter("download")?;
        let data = st.file(&st.followed(path))?.data.clone();
        let meta = st.meta(path).expect("the file was found");
        drop(st);
        into.write_at(0, &data)?;
        Ok(meta)
    }

    async fn upload(&self, from: &Arc<CacheFile>, path: &str, attrs: &UploadAttrs) -> Result<()> {
        let mut st = self.enter("upload")?;
        let source = from.snapshot()?;
        let mut data = vec![0; source.len() as usize];
        source.read_at(0, &mut data)?;
        let obj = Obj {
            xattrs: attrs.xattrs.clone(),
            uid: attrs.uid,
            gid: attrs.gid,
            atime: attrs.atime,
            ..Obj::new(data.into(), attrs.mode, attrs.mtime)
        };
        st.put(path, obj);
        Ok(())
    }

    /// There is no recipient here: what is kept is the bytes, encrypted or not.
    fn kept_form(&self, copy: &Arc<CacheFile>) -> Result<Box<dyn Source>> {
        Ok(Box::new(copy.snapshot()?))
    }

    async fn reader(&self, path: &str) -> Result<Option<MemReader>> {
        let st = self.enter("reader")?;
        let path = st.followed(path);
        Ok(st.files.get(&path).map(|o| MemReader {
            path: path.clone(),
            version: o.version,
            etag: etag_of(o.version),
            data: o.data.clone(),
        }))
    }

    fn etag<'a>(&self, r: &'a MemReader) -> Option<&'a str> {
        Some(&r.etag)
    }

    async fn read_at(
        &self,
        r: &MemReader,
        offset: u64,
        len: u64,
        buf: &mut BytesMut,
    ) -> Result<()> {
        drop(self.enter("read_at")?);
        self.check(r)?;
        buf.clear();
        buf.extend_from_slice(&slice(&r.data, offset, len));
        Ok(())
    }

    async fn stream_at(&self, r: &MemReader, offset: u64, tx: &mpsc::Sender<Bytes>) -> Result<()> {
        drop(self.enter("stream_at")?);
        self.check(r)?;
        let rest = slice(&r.data, offset, u64::MAX);
        for at in (0..rest.len()).step_by(BATCH) {
            let batch = rest.slice(at..(at + BATCH).min(rest.len()));
            if tx.send(batch).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let st = self.enter("read_range")?;
        Ok(slice(&st.file(&st.followed(path))?.data, offset, len).to_vec())
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.enter("delete")?.files.remove(path);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let mut st = self.enter("copy")?;
        let obj = st.file(from)?.clone();
        st.put(to, obj);
        Ok(())
    }

    async fn set_attrs(&self, path: &str, change: &AttrChange) -> Result<()> {
        let mut st = self.enter("set_attrs")?;
        let path = &st.followed(path);
        let mut obj = st.file(path)?.clone();
        obj.mtime = change.mtime.unwrap_or(obj.mtime);
        obj.atime = change.atime.or(obj.atime);
        obj.uid = change.uid.or(obj.uid);
        obj.gid = change.gid.or(obj.gid);
        if let Some(m) = change.mode {
            obj.mode = (obj.mode & !0o7777) | (m & 0o7777);
        }
        // A copy onto itself: a new object, as readers opened before see.
        st.put(path, obj);
        Ok(())
    }

    async fn set_xattrs(&self, path: &str, xattrs: &Xattrs) -> Result<()> {
        let stored = self.encode_xattrs(xattrs)?;
        let mut st = self.enter("set_xattrs")?;
        let path = &st.followed(path);
        let mut obj = st.file(path)?.clone();
        obj.xattrs = stored;
        st.put(path, obj);
        Ok(())
    }

    async fn put_symlink(&self, path: &str, target: &[u8], attrs: &UploadAttrs) -> Result<()> {
        let obj = Obj {
            uid: attrs.uid,
            gid: attrs.gid,
            ..Obj::new(Bytes::copy_from_slice(target), SYMLINK | 0o777, attrs.mtime)
        };
        self.enter("put_symlink")?.put(path, obj);
        Ok(())
    }

    /// As the vault does: a device keeps its number, other kinds have none.
    async fn put_node(&self, path: &str, attrs: &UploadAttrs, rdev: u64) -> Result<()> {
        let device = matches!(
            Kind::of(Some(attrs.mode)),
            Kind::CharDevice | Kind::BlockDevice
        );
        let obj = Obj {
            uid: attrs.uid,
            gid: attrs.gid,
            rdev: device.then_some(rdev),
            ..Obj::new(Bytes::new(), attrs.mode, attrs.mtime)
        };
        self.enter("put_node")?.put(path, obj);
        Ok(())
    }

    async fn put_marker(&self, path: &str, attrs: &UploadAttrs) -> Result<()> {
        let obj = Obj {
            xattrs: attrs.xattrs.clone(),
            uid: attrs.uid,
            gid: attrs.gid,
            atime: attrs.atime,
            ..Obj::new(Bytes::new(), attrs.mode, attrs.mtime)
        };
        self.enter("put_marker")?
            .markers
            .insert(path.to_string(), obj);
        Ok(())
    }

    async fn delete_marker(&self, path: &str) -> Result<()> {
        self.enter("delete_marker")?.markers.remove(path);
        Ok(())
    }

    async fn dir_meta(&self, path: &str) -> Result<Option<Meta>> {
        let meta = self.enter("dir_meta")?.markers.get(path).map(Obj::meta);
        self.paused("dir_meta");
        Ok(meta)
    }

    /// Stored as `name=hex` pairs joined by `;`.
    fn decode_xattrs(&self, stored: Option<&str>) -> Result<Xattrs> {
        let bad = || Error::Crypto(format!("bad stored extended attributes {stored:?}"));
        let mut out = Xattrs::new();
        for pair in stored
            .unwrap_or_default()
            .split(';')
            .filter(|p| !p.is_empty())
        {
            let (name, hex) = pair.split_once('=').ok_or_else(bad)?;
            let value = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())
                })
                .collect::<Result<Vec<u8>>>()?;
            out.insert(name.to_string(), value);
        }
        Ok(out)
    }

    fn encode_xattrs(&self, xattrs: &Xattrs) -> Result<Option<String>> {
        if xattrs.is_empty() {
            return Ok(None);
        }
        let pairs: Vec<String> = xattrs
            .iter()
            .map(|(n, v)| {
                let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
                format!("{n}={hex}")
            })
            .collect();
        let s = pairs.join(";");
        if s.len() > XATTRS_MAX {
            return Err(Error::Transport(format!(
                "extended attributes take {} bytes, more than {XATTRS_MAX}",
                s.len()
            )));
        }
        Ok(Some(s))
    }

    async fn put_link(&self, path: &str, id: &str) -> Result<()> {
        let record = Obj {
            link: Some(id.to_string()),
            ..Obj::new(Bytes::new(), REGULAR | 0o644, SystemTime::now())
        };
        self.enter("put_link")?.put(path, record);
        Ok(())
    }

    async fn set_link_names(&self, id: &str, names: &[String]) -> Result<()> {
        let mut st = self.enter("set_link_names")?;
        let inode = inode_path(id);
        let mut obj = st.file(&inode)?.clone();
        obj.names = names.to_vec();
        st.put(&inode, obj);
        Ok(())
    }

    async fn unlink_last(&self, id: &str, to: &str) -> Result<()> {
        let mut st = self.enter("unlink_last")?;
        let obj = Obj {
            names: Vec::new(),
            ..st.file(&inode_path(id))?.clone()
        };
        st.put(to, obj);
        Ok(())
    }
}
