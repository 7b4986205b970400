//! The local side of `cybs3 sync`: walking a directory into what it holds (files,
//! symbolic links, FIFOs, devices, sockets), and making links and special files again on
//! the way down.

use super::*;

/// What a listing says about one local file.
#[derive(Clone, Debug)]
pub(super) struct LocalFile {
    pub(super) size: u64,
    pub(super) mtime: SystemTime,
    /// A symbolic link's target.
    pub(super) link: Option<PathBuf>,
    /// A FIFO's, device's or socket's mode and number.
    pub(super) node: Option<Node>,
}

/// A file that holds no data (FIFO, device, socket): its `st_mode`, kind included, and
/// its device number (0 but for devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) mode: u32,
    pub(super) rdev: u64,
}

impl Node {
    pub(super) fn kind(self) -> Kind {
        Kind::of(Some(self.mode))
    }
}

/// Regular files, symbolic links, FIFOs, devices and sockets below `root` by
/// '/'-separated relative path, filtered. Unreadable directories and files are errors
/// (they also keep `--delete` from running); so are names that are not UTF-8 on the
/// source side, where they cannot become vault paths (on the destination side they cannot
/// be vault files either, so they are left alone).
pub(super) fn walk(
    root: &Path,
    filters: &Filters,
    source: bool,
    report: &mut Report,
) -> BTreeMap<String, LocalFile> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let shown = |name: &str| match rel_dir.as_str() {
            "" => name.to_string(),
            d => format!("{d}/{name}"),
        };
        let this_dir = if rel_dir.is_empty() {
            "."
        } else {
            rel_dir.as_str()
        };
        // The directory, or one of its entries, cannot be read.
        let unlistable = |report: &mut Report, e: std::io::Error| {
            report.error(
                this_dir,
                &anyhow!(e).context(format!("cannot list {}", dir.display())),
            )
        };
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                unlistable(report, e);
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    unlistable(report, e);
                    continue;
                }
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                let lossy = shown(&name.to_string_lossy());
                if source {
                    report.error(
                        &lossy,
                        &anyhow!("the name is not UTF-8, which vault paths must be"),
                    );
                } else {
                    report.note(&format!("leaving {lossy} alone: the name is not UTF-8"));
                }
                continue;
            };
            let rel = shown(name);
            // `entry.metadata()` does not follow symlinks (lstat).
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) => {
                    report.error(
                        &rel,
                        &anyhow!(e).context(format!("cannot read {}", entry.path().display())),
                    );
                    continue;
                }
            };
            if md.is_dir() {
                stack.push((entry.path(), rel));
            } else if is_partial_download(name) || !filters.allows(&rel) {
                // Our own half-written downloads are never part of the tree.
            } else if md.is_file() || md.file_type().is_symlink() {
                let link = match md.file_type().is_symlink() {
                    true => match fs::read_link(entry.path()) {
                        Ok(target) => Some(target),
                        Err(e) => {
                            let e = anyhow!(e)
                                .context(format!("cannot read {}", entry.path().display()));
                            report.error(&rel, &e);
                            continue;
                        }
                    },
                    false => None,
                };
                let size = link
                    .as_ref()
                    .map_or(md.len(), |t| t.as_os_str().len() as u64);
                let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.insert(
                    rel,
                    LocalFile {
                        size,
                        mtime,
                        link,
                        node: None,
                    },
                );
            } else {
                // Whatever else lstat shows is a FIFO, a device or a socket.
                let node = Node {
                    mode: md.mode(),
                    rdev: md.rdev(),
                };
                let local = LocalFile {
                    size: 0,
                    mtime: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    link: None,
                    node: Some(node),
                };
                out.insert(rel, local);
            }
        }
    }
    out
}

/// Refuses a destination that lies under a symbolic link: whatever made the link (this
/// sync, or anyone before), writing through it could reach outside the destination tree.
pub(super) fn outside_links(root: &Path, path: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut dirs = rel.components().collect::<Vec<_>>();
    dirs.pop();
    for c in dirs {
        at.push(c);
        if fs::symlink_metadata(&at).is_ok_and(|md| md.file_type().is_symlink()) {
            bail!(
                "refusing to write {}: {} is a symbolic link",
                path.display(),
                at.display()
            );
        }
    }
    Ok(())
}

/// Makes `path` a symbolic link to `target`, replacing a file or link there at once (a
/// link made beside it, then renamed over it).
pub(super) fn make_link(path: &Path, target: &[u8]) -> Result<()> {
    let failed = || format!("cannot make the link {}", path.display());
    let name = path.file_name().with_context(failed)?;
    let tmp = path.with_file_name(format!(".{}.cybs3-part", name.to_string_lossy()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(failed)?;
    }
    let _ = fs::remove_file(&tmp);
    let target = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target);
    std::os::unix::fs::symlink(target, &tmp).with_context(failed)?;
    fs::rename(&tmp, path).or_else(|e| {
        let _ = fs::remove_file(&tmp);
        Err(e).with_context(failed)
    })
}

/// Makes `path` the FIFO, device or socket `node` (mode as stored, mtime as given),
/// replacing a file there at once (made beside it, then renamed over it).
pub(super) fn make_node(path: &Path, node: Node, mtime: Option<SystemTime>) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let failed = || format!("cannot make {}", path.display());
    let name = path.file_name().with_context(failed)?;
    let tmp = path.with_file_name(format!(".{}.cybs3-part", name.to_string_lossy()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(failed)?;
    }
    let _ = fs::remove_file(&tmp);
    let c_tmp = std::ffi::CString::new(tmp.as_os_str().as_bytes()).with_context(failed)?;
    let kind = node.mode & libc::S_IFMT;
    // SAFETY: c_tmp is a NUL-terminated path that outlives the call.
    let made = unsafe { libc::mknod(c_tmp.as_ptr(), kind | 0o600, node.rdev as libc::dev_t) };
    if made != 0 {
        return Err(std::io::Error::last_os_error()).with_context(failed);
    }
    let finish = || -> std::io::Result<()> {
        // chmod after mknod: the umask has no say in a stored mode.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(node.mode & 0o7777))?;
        if let Some(t) = mtime {
            set_mtime(&c_tmp, t)?;
        }
        fs::rename(&tmp, path)
    };
    finish().or_else(|e| {
        let _ = fs::remove_file(&tmp);
        Err(e).with_context(failed)
    })
}

/// Sets the mtime of `path` without opening it (opening a FIFO would wait for a writer).
pub(super) fn set_mtime(path: &std::ffi::CStr, t: SystemTime) -> std::io::Result<()> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos().into(),
        },
    ];
    // SAFETY: path is NUL-terminated and times holds the two entries utimensat reads.
    match unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// `Vault::download` writes `.NAME.cybs3-part` beside the target, then renames it.
pub(super) fn is_partial_download(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".cybs3-part")
}
