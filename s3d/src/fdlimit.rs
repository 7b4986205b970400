//! The process's file descriptor budget: raised to the hard limit at start, and how
//! many of its descriptors client connections may take.

/// Descriptors kept out of the connection cap whatever the limit: the store's drives
/// (LMDB, locks, directories), the admin socket and its clients, log files, and the
/// one accept that lets a health probe in while idle connections are shed.
const RESERVE: u64 = 512;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit and return the limit now in force.
/// Distributions start services at a soft limit of 1024, which a few hundred idle
/// clients exhaust, while the hard limit is usually far higher.
pub(crate) fn raise() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        } else {
            tracing::warn!(
                "cannot raise the open file limit from {} to {}: {}",
                lim.rlim_cur,
                lim.rlim_max,
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(lim.rlim_cur)
}

/// The most client connections a process with `limit` descriptors may hold open: half
/// of what the reserve leaves, since each busy request also opens shard files.
pub(crate) fn max_connections(limit: u64) -> usize {
    (limit.saturating_sub(RESERVE) / 2).max(1) as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cap_leaves_the_reserve_and_room_for_shard_files() {
        assert_eq!(super::max_connections(1024), 256);
        assert_eq!(super::max_connections(20_000), 9_744);
        assert_eq!(super::max_connections(100), 1);
    }

    fn current() -> libc::rlimit {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        lim
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let hard = current().rlim_max;
        let lowered = libc::rlimit {
            rlim_cur: hard / 2,
            rlim_max: hard,
        };
        // SAFETY: `lowered` is a valid rlimit; the call only reads it.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        assert_eq!(super::raise().unwrap(), hard);
        assert_eq!(current().rlim_cur, hard);
    }
}
