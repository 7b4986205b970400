//! Write-back: a file open for writing is a local copy in the cache directory, shared by
//! every handle on its path, marked dirty by each change, and uploaded whole on `fsync`
//! and on every `close` after a change (so a `close` that succeeded means the content is
//! in the store). The last close drops the copy, unless its upload failed: then it is
//! kept in `unsaved/` for the user to recover, and the log says where.
//!
//! Each copy is unlinked as soon as it is open (it is made 0600 under a `open-PID-N`
//! name and removed from the directory at once, before anything is downloaded into
//! it): the kernel frees it when the mount's last descriptor goes, so even a `kill -9`
//! leaves no copy behind. What a crash can leave is an empty copy between its creation
//! and its unlink (or, from versions that unlinked after the download, a download in
//! progress): [`clean_leftovers`] removes those at the next mount.
//!
//! Every access to a copy goes through [`CacheFile`]: reads, writes, the download into
//! it and the upload from it. For an encrypted vault the copy is sealed under the
//! mount's own random key ([`crate::sealed`]), so its disk blocks never hold plaintext,
//! not even after a crash; and a copy kept in `unsaved/` is written as an age file to the
//! vault's recipient ([`Store::kept_form`]).

use crate::dircache::Ent;
use crate::errno::{errno, io_errno};
use crate::filesystem::Core;
use crate::sealed::CacheFile;
use crate::store::{Store, UploadAttrs};
use crate::{lock, R};
use fuser::Errno;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use vault::vault::Meta;

/// A file open for writing: its local copy, shared by every handle on the path. The
/// copy's own inode holds the file's mode and mtime until the upload states them
/// ([`Core::upload_attrs`]).
pub(crate) struct Local {
    /// The file's path (renames move it): where it is uploaded, unless `link` says.
    pub path: Mutex<String>,
    /// The id of the file's inode object when it has several names: the content is
    /// uploaded there (see [`crate::links`]).
    pub link: Mutex<Option<String>>,
    /// The copy: unlinked, reachable through this descriptor only.
    pub file: Arc<CacheFile>,
    pub state: Mutex<LocalState>,
    /// Extended attributes as stored, uploaded with the content.
    pub xattrs: Mutex<Option<String>>,
    /// The file's uid and gid, uploaded with the content.
    pub owner: Mutex<(u32, u32)>,
}

/// A file being created: its mode (after the umask) and owner.
pub(crate) struct New {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub(crate) struct LocalState {
    /// Changed since the last upload.
    pub dirty: bool,
    /// Handles (and holds) on this copy.
    pub refs: usize,
    /// Unlinked while open: still readable and writable through its handles (POSIX),
    /// never uploaded again.
    pub unlinked: bool,
}

impl Local {
    /// The copy's inode: its mode and mtime are the file's (its length is not: see
    /// [`Local::len`]).
    pub(crate) fn metadata(&self) -> R<std::fs::Metadata> {
        self.file
            .file()
            .metadata()
            .map_err(|e| io_errno("stat cache file", &e))
    }

    /// The file's length.
    pub(crate) fn len(&self) -> R<u64> {
        self.file.len().map_err(|e| io_errno("stat cache file", &e))
    }

    /// Runs `change` on the copy under the state lock and marks it dirty if it worked.
    pub(crate) fn change<T>(&self, change: impl FnOnce(&CacheFile) -> R<T>) -> R<T> {
        let mut st = lock(&self.state);
        let v = change(&self.file)?;
        st.dirty = true;
        Ok(v)
    }
}

impl<S: Store> Core<S> {
    /// The local copy of `path`, if it is open for writing.
    pub(crate) fn local(&self, path: &str) -> Option<Arc<Local>> {
        lock(&self.locals).get(path).cloned()
    }

    /// A fresh name for a copy until it is unlinked: see [`clean_leftovers`].
    fn new_cache_path(&self) -> PathBuf {
        let n = self.next_cache.fetch_add(1, Ordering::Relaxed);
        self.opts
            .cache_dir
            .join(format!("{OPEN_PREFIX}{}-{n}", std::process::id()))
    }

    /// The local copy of `path` for writing, downloaded unless `truncate`; one more
    /// reference to it. `create`: a new file.
    pub(crate) fn acquire_local(
        &self,
        path: &str,
        truncate: bool,
        create: Option<New>,
    ) -> R<Arc<Local>> {
        if let Some(l) = self.hold_local(path) {
            if truncate || create.is_some() {
                l.change(|f| self.budget.set_len(f, 0))?;
            }
            return Ok(l);
        }
        let cache_path = self.new_cache_path();
        let (mode, fetch, xattrs, owner, link) = match create {
            Some(new) => (new.mode, false, None, (new.uid, new.gid), None),
            None => {
                let m = self.meta(path)?.ok_or(Errno::ENOENT)?;
                let mode = m.mode.map(|m| m & 0o7777).unwrap_or(0o644);
                let owner = (m.uid.unwrap_or(self.uid), m.gid.unwrap_or(self.gid));
                (mode, !truncate, m.xattrs, owner, m.link)
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&cache_path)
            .map_err(|e| io_errno("open cache file", &e));
        let _ = std::fs::remove_file(&cache_path);
        let file = Arc::new(match &self.seal {
            Some(key) => CacheFile::sealed(file?, key.clone()),
            None => CacheFile::plain(file?),
        });
        if fetch {
            let meta = self
                .block_on(self.store.download(path, &file))
                .map_err(|e| errno(&format!("download of {path:?}"), e))?;
            if let Some(mtime) = meta.mtime {
                let times = std::fs::FileTimes::new().set_modified(mtime);
                let _ = file.file().set_times(times);
            }
        }
        let len = file.len().map_err(|e| io_errno("stat cache file", &e))?;
        self.budget.reserve(len)?;
        // The unlinked copy's inode keeps the file's mode until the upload states it; no
        // name leads to it, so the mode opens it to no one.
        let _ = file
            .file()
            .set_permissions(std::fs::Permissions::from_mode(mode));
        let local = Arc::new(Local {
            path: Mutex::new(path.to_string()),
            link: Mutex::new(link),
            file,
            state: Mutex::new(LocalState {
                dirty: !fetch,
                refs: 1,
                unlinked: false,
            }),
            xattrs: Mutex::new(xattrs),
            owner: Mutex::new(owner),
        });
        let mut locals = lock(&self.locals);
        if let Some(other) = locals.get(path).cloned() {
            // Opened concurrently: use the first copy.
            drop(locals);
            self.budget.release(len);
            lock(&other.state).refs += 1;
            return Ok(other);
        }
        locals.insert(path.to_string(), local.clone());
        Ok(local)
    }

    /// What an upload of `local` says of the file besides its bytes.
    pub(crate) fn upload_attrs(&self, local: &Local) -> R<UploadAttrs> {
        let md = local.metadata()?;
        let (uid, gid) = *lock(&local.owner);
        Ok(UploadAttrs {
            mode: md.mode(),
            mtime: md.modified().unwrap_or(UNIX_EPOCH),
            xattrs: lock(&local.xattrs).clone(),
            uid: Some(uid),
            gid: Some(gid),
            atime: None,
        })
    }

    /// Uploads the local copy if it changed since the last upload.
    pub(crate) fn upload_local(&self, local: &Local) -> R<()> {
        // The state lock is held through the upload, so that no write lands between
        // what is uploaded and `dirty = false`: a write racing the upload would
        // otherwise be marked clean without being in the store, and lost at the last
        // close. It also makes concurrent flushes of one file upload once, in turn.
        let mut st = lock(&local.state);
        if !st.dirty || st.unlinked {
            return Ok(());
        }
        let path = lock(&local.path).clone();
        let path = path.as_str();
        let attrs = self.upload_attrs(local)?;
        let link = lock(&local.link).clone();
        match &link {
            Some(id) => self.upload_linked(&local.file, id, &attrs),
            None => self.block_on(self.store.upload(&local.file, path, &attrs)),
        }
        .map_err(|e| errno(&format!("upload of {path:?}"), e))?;
        st.dirty = false;
        drop(st);
        self.reset_readers(path);
        if link.is_some() {
            self.file_changed(path);
            return Ok(());
        }
        // What was uploaded is what the listing would now say.
        let meta = local.len().ok().map(|size| Meta {
            mtime: Some(attrs.mtime),
            mode: Some(attrs.mode),
            uid: attrs.uid,
            gid: attrs.gid,
            ctime: Some(SystemTime::now()),
            xattrs: attrs.xattrs,
            ..Meta::sized(size)
        });
        self.cache
            .set(path, Some(Ent::file(SystemTime::now(), meta)));
        Ok(())
    }

    /// Drops one reference to the local copy; the last one uploads it and removes it.
    pub(crate) fn release_local(&self, local: &Arc<Local>) -> R<()> {
        let uploaded = self.upload_local(local);
        let mut locals = lock(&self.locals);
        let path = lock(&local.path).clone();
        let path = path.as_str();
        let mut st = lock(&local.state);
        st.refs = st.refs.saturating_sub(1);
        if st.refs == 0 {
            if locals.get(path).is_some_and(|l| Arc::ptr_eq(l, local)) {
                locals.remove(path);
            }
            if st.unlinked {
                lock(&self.orphans).retain(|_, l| !Arc::ptr_eq(l, local));
            }
            drop(st);
            drop(locals);
            self.budget.release(local.len().unwrap_or(0));
            if uploaded.is_err() {
                self.keep_unsaved(path, local);
            }
        }
        uploaded
    }

    /// Copies what could not be uploaded into `unsaved/` (0600), and says where: for an
    /// encrypted vault as an age file to its recipient (the copy's own key dies with the
    /// mount), else the bytes themselves.
    fn keep_unsaved(&self, path: &str, local: &Local) {
        let dir = self.opts.cache_dir.join(UNSAVED);
        let n = self.next_cache.fetch_add(1, Ordering::Relaxed);
        let suffix = if self.seal.is_some() { ".age" } else { "" };
        let kept = dir.join(format!("{}-{n}{suffix}", std::process::id()));
        let copied = vault::config::private_dir(&dir)
            .map_err(std::io::Error::other)
            .and_then(|()| {
                let from = self
                    .store
                    .kept_form(&local.file)
                    .map_err(std::io::Error::other)?;
                let mut to = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&kept)?;
                let mut buf = vec![0u8; 1 << 20];
                let (len, mut at) = (from.len(), 0);
                while at < len {
                    let piece = &mut buf[..(len - at).min(1 << 20) as usize];
                    from.read_at(at, piece)?;
                    to.write_all(piece)?;
                    at += piece.len() as u64;
                }
                to.sync_all()
            });
        match copied {
            Ok(()) if self.seal.is_some() => tracing::error!(
                "{path:?} was not uploaded; its content is kept, encrypted to the vault's \
                 recipient, in {0} (read it with: age -d -i <(cybs3 keys export) {0})",
                kept.display()
            ),
            Ok(()) => tracing::error!(
                "{path:?} was not uploaded; its content is kept in {}",
                kept.display()
            ),
            Err(e) => tracing::error!("{path:?} was not uploaded, and keeping a copy failed: {e}"),
        }
    }

    /// The local copy of `path` if it is open for writing, with one more reference, so
    /// that a change made through the path is not lost to a concurrent last close; give
    /// it back with [`Core::release_held`].
    pub(crate) fn hold_local(&self, path: &str) -> Option<Arc<Local>> {
        let locals = lock(&self.locals);
        let l = locals.get(path).cloned()?;
        lock(&l.state).refs += 1;
        Some(l)
    }

    /// Gives back what [`Core::hold_local`] took (uploading what changed) after `r`.
    pub(crate) fn release_held<T>(&self, held: Option<Arc<Local>>, r: R<T>) -> R<T> {
        match held {
            Some(l) => {
                let released = self.release_local(&l);
                let v = r?;
                released.map(|()| v)
            }
            None => r,
        }
    }

    /// Marks `local` unlinked (its path now names something else, or nothing): its
    /// handles go on, fstat by inode `ino` still answers, and it is never uploaded.
    pub(crate) fn orphan(&self, ino: u64, local: Arc<Local>) {
        lock(&local.state).unlinked = true;
        lock(&self.orphans).insert(ino, local);
    }

    /// Uploads every file with pending writes; the number that failed.
    pub(crate) fn flush_all(&self) -> usize {
        let locals: Vec<Arc<Local>> = lock(&self.locals).values().cloned().collect();
        locals
            .iter()
            .filter(|l| self.upload_local(l).is_err())
            .count()
    }
}

/// Names of copies until they are unlinked: `open-PID-N`, and `.open-PID-N.cybs3-part`
/// while a download into one is in progress.
const OPEN_PREFIX: &str = "open-";
/// Where copies whose upload failed are kept.
pub(crate) const UNSAVED: &str = "unsaved";

/// Cleans what mounts that ended without their clean-up (a crash, `kill -9`) left in
/// `dir`: copies not yet unlinked (being created or downloaded: no write of the user's
/// is in them) are removed. Copies that cybs3 versions before unlinked copies left
/// behind (`PID-N`: open files, or uploads that failed) may hold closed data, so they
/// are moved to `unsaved/`. Files of live processes are left alone. Returns what is kept
/// in `unsaved/`, to be told to the user.
pub(crate) fn clean_leftovers(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let alive = |pid: &str| {
        pid.parse::<libc::pid_t>().is_ok_and(|pid| {
            // SAFETY: signal 0 only checks that `pid` exists; nothing is delivered.
            let sent = unsafe { libc::kill(pid, 0) } == 0;
            sent || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        })
    };
    let unsaved = dir.join(UNSAVED);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() {
            continue;
        }
        let open = name
            .trim_start_matches('.')
            .strip_prefix(OPEN_PREFIX)
            .and_then(|rest| rest.split_once('-'));
        if let Some((pid, _)) = open {
            if !alive(pid) {
                std::fs::remove_file(entry.path())?;
            }
        } else if let Some((pid, _)) = name.split_once('-').filter(|(pid, _)| !alive(pid)) {
            vault::config::private_dir(&unsaved).map_err(std::io::Error::other)?;
            let to = unsaved.join(format!("earlier-{pid}-{}", &name[pid.len() + 1..]));
            std::fs::rename(entry.path(), &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    match std::fs::read_dir(&unsaved) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
