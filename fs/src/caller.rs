//! Who asks the mount for a change, and Linux's rules for what they may change of a
//! file's owner, mode and times: chown(2), chmod(2) and utimensat(2), as the kernel's
//! `setattr_prepare` applies them. The core applies them itself on a mount shared with
//! other users (`--allow-other`); a private mount has one user, who owns everything.

use crate::R;
use fuser::Errno;
use std::sync::OnceLock;

/// Set-user-ID, set-group-ID, and group-execute (which makes set-group-ID mean
/// "set-group-ID on execution" rather than mandatory locking).
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o010;

/// A request's user, with its groups.
#[derive(Debug)]
pub(crate) struct Caller {
    pub uid: u32,
    pub gid: u32,
    pid: u32,
    /// Supplementary groups, read from `/proc` when a rule needs them.
    groups: OnceLock<Vec<u32>>,
}

impl Caller {
    /// Process `pid`, acting as `uid`/`gid`.
    pub(crate) fn new(uid: u32, gid: u32, pid: u32) -> Caller {
        Caller {
            uid,
            gid,
            pid,
            groups: OnceLock::new(),
        }
    }

    /// A caller whose supplementary groups are known.
    #[cfg(test)]
    pub(crate) fn with_groups(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller {
            groups: OnceLock::from(groups.to_vec()),
            ..Caller::new(uid, gid, 0)
        }
    }

    /// The supplementary groups `/proc` lists for the process (none when it is gone:
    /// it can then gain nothing by them).
    fn groups(&self) -> &[u32] {
        self.groups.get_or_init(|| {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn is_root(&self) -> bool {
        self.uid == 0
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }

    /// Whether the mode bits `mode` of a file owned by `uid`/`gid` let the caller write.
    fn may_write(&self, uid: u32, gid: u32, mode: u32) -> bool {
        let bit = if self.uid == uid {
            0o200
        } else if self.in_group(gid) {
            0o020
        } else {
            0o002
        };
        self.is_root() || mode & bit != 0
    }
}

/// A file's owner and mode as they are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owned {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, set-ID and sticky bits included.
    pub mode: u32,
    pub is_dir: bool,
}

/// A change of attributes asked by setattr.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Asked {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    /// Times set to given values (`touch -d`, `utimensat` with times).
    pub times_given: bool,
    /// Times set to now (`touch`, `utimensat` with UTIME_NOW).
    pub times_now: bool,
}

/// Checks `asked` against Linux's rules for `caller` on a file that is `now`, and
/// returns the mode the file must end with when the change itself clears set-ID bits
/// (a chown of a non-directory; a chmod by a caller outside the file's group).
pub(crate) fn check(caller: &Caller, now: Owned, asked: &Asked) -> R<Option<u32>> {
    let owner = caller.uid == now.uid || caller.is_root();
    if asked.uid.is_some_and(|u| u != now.uid) && !caller.is_root() {
        return Err(Errno::EPERM);
    }
    if let Some(g) = asked.gid {
        let allowed =
            caller.is_root() || (caller.uid == now.uid && (g == now.gid || caller.in_group(g)));
        if !allowed {
            return Err(Errno::EPERM);
        }
    }
    // Under `default_permissions` the kernel refuses another user's chmod itself. What
    // still comes from one is the kernel clearing set-ID bits as that user writes or
    // truncates the file (`ATTR_FORCE`, sent as a plain mode change): that must pass.
    let set_id = now.mode & (S_ISUID | S_ISGID);
    let drops_set_id = set_id != 0
        && asked
            .mode
            .is_some_and(|m| m & 0o7777 == now.mode & 0o7777 & !set_id);
    if asked.mode.is_some() && !owner && !drops_set_id {
        return Err(Errno::EPERM);
    }
    if asked.times_given && !owner {
        return Err(Errno::EPERM);
    }
    if asked.times_now && !owner && !caller.may_write(now.uid, now.gid, now.mode) {
        return Err(Errno::EACCES);
    }
    let mut mode = asked.mode.unwrap_or(now.mode) & 0o7777;
    let gid = asked.gid.unwrap_or(now.gid);
    if asked.mode.is_some() && !caller.is_root() && !caller.in_group(gid) {
        mode &= !S_ISGID;
    }
    if (asked.uid.is_some() || asked.gid.is_some()) && !now.is_dir {
        mode &= !S_ISUID;
        if mode & S_IXGRP != 0 {
            mode &= !S_ISGID;
        }
    }
    Ok((asked.mode.is_some() || mode != now.mode & 0o7777).then_some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller::with_groups(uid, gid, groups)
    }

    const FILE: Owned = Owned {
        uid: 1000,
        gid: 1000,
        mode: 0o6755,
        is_dir: false,
    };

    #[test]
    fn only_root_gives_a_file_away() {
        let give = Asked {
            uid: Some(1001),
            ..Asked::default()
        };
        assert_eq!(
            check(&user(1000, 1000, &[]), FILE, &give),
            Err(Errno::EPERM)
        );
        let keep = Asked {
            uid: Some(1000),
            ..Asked::default()
        };
        assert!(check(&user(1000, 1000, &[]), FILE, &keep).is_ok());
        assert!(check(&user(0, 0, &[]), FILE, &give).is_ok());
    }

    #[test]
    fn the_owner_changes_the_group_to_one_of_its_own() {
        let to = |g| Asked {
            gid: Some(g),
            ..Asked::default()
        };
        let owner = user(1000, 1000, &[50]);
        assert!(check(&owner, FILE, &to(50)).is_ok());
        assert_eq!(check(&owner, FILE, &to(60)), Err(Errno::EPERM));
        assert_eq!(
            check(&user(1001, 50, &[]), FILE, &to(50)),
            Err(Errno::EPERM)
        );
    }

    #[test]
    fn chown_clears_set_id_bits_of_files_not_directories() {
        let chown = Asked {
            gid: Some(1000),
            ..Asked::default()
        };
        let root = user(0, 0, &[]);
        assert_eq!(check(&root, FILE, &chown), Ok(Some(0o755)));
        let no_group_exec = Owned {
            mode: 0o6745,
            ..FILE
        };
        assert_eq!(check(&root, no_group_exec, &chown), Ok(Some(0o2745)));
        let dir = Owned {
            is_dir: true,
            ..FILE
        };
        assert_eq!(check(&root, dir, &chown), Ok(None));
    }

    #[test]
    fn chmod_is_the_owners_and_drops_setgid_outside_the_group() {
        let chmod = Asked {
            mode: Some(0o2755),
            ..Asked::default()
        };
        assert_eq!(
            check(&user(1001, 1001, &[]), FILE, &chmod),
            Err(Errno::EPERM)
        );
        let other_group = Owned { gid: 50, ..FILE };
        assert_eq!(
            check(&user(1000, 1000, &[]), other_group, &chmod),
            Ok(Some(0o755))
        );
        assert_eq!(
            check(&user(1000, 1000, &[50]), other_group, &chmod),
            Ok(Some(0o2755))
        );
    }

    #[test]
    fn the_kernel_clears_set_id_bits_for_another_users_write() {
        let setuid = Owned {
            mode: 0o6777,
            ..FILE
        };
        let cleared = Asked {
            mode: Some(0o777),
            ..Asked::default()
        };
        let other = user(1001, 1001, &[]);
        assert_eq!(check(&other, setuid, &cleared), Ok(Some(0o777)));
        let more = Asked {
            mode: Some(0o666),
            ..Asked::default()
        };
        assert_eq!(check(&other, setuid, &more), Err(Errno::EPERM));
        let same = Asked {
            mode: Some(0o644),
            ..Asked::default()
        };
        assert_eq!(check(&other, FILE, &same), Err(Errno::EPERM));
    }

    #[test]
    fn times_now_need_write_access_given_times_need_ownership() {
        let now = Asked {
            times_now: true,
            ..Asked::default()
        };
        let given = Asked {
            times_given: true,
            ..Asked::default()
        };
        let writable = Owned {
            mode: 0o666,
            ..FILE
        };
        let other = user(1001, 1001, &[]);
        assert!(check(&other, writable, &now).is_ok());
        assert_eq!(check(&other, writable, &given), Err(Errno::EPERM));
        assert_eq!(check(&other, FILE, &now), Err(Errno::EACCES));
    }
}
