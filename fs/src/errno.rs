//! The one table from a store's [`Error`] to the errno a FUSE caller sees, and the log
//! line that goes with it: callers get POSIX's words, the log says what happened.

use crate::store::Error;
use fuser::Errno;

/// The errno for `e`, which failed `what` (logged, at a level by how unusual it is).
pub(crate) fn errno(what: &str, e: Error) -> Errno {
    match e {
        Error::NotFound(m) => {
            tracing::debug!("{what}: {m}");
            Errno::ENOENT
        }
        Error::AccessDenied(m) => {
            tracing::warn!("{what}: access denied: {m}");
            Errno::EACCES
        }
        Error::SessionExpired(m) => {
            tracing::error!(
                "{what}: the session expired ({m}); log in again with `cybs3 login` (or mount with CYBS3_PASSWORD set)"
            );
            Errno::EACCES
        }
        // The object changed under the operation (a conditional request lost to another
        // writer). POSIX has no errno for "someone else wrote first"; ESTALE would make
        // callers think of NFS handles, so it is a plain I/O failure: the caller retries
        // or reports, and the log says why.
        Error::PreconditionFailed(m) => {
            tracing::warn!("{what}: changed concurrently: {m}");
            Errno::EIO
        }
        // The bucket or object is busy with another operation (409): EBUSY, which
        // callers know as "try again later", not EEXIST, which would say a name is taken.
        Error::Conflict(m) => {
            tracing::warn!("{what}: conflict: {m}");
            Errno::EBUSY
        }
        Error::NameTooLong(m) => {
            tracing::debug!("{what}: {m}");
            Errno::ENAMETOOLONG
        }
        Error::Transport(m) => {
            tracing::error!("{what}: {m}");
            Errno::EIO
        }
        Error::Crypto(m) => {
            tracing::error!("{what}: decryption or integrity check failed: {m}");
            Errno::EIO
        }
        Error::Local(io) => io_errno(what, &io),
    }
}

/// A local I/O error (the cache disk's): its own errno, so a full disk is ENOSPC; EIO
/// when it has none.
pub(crate) fn io_errno(what: &str, e: &std::io::Error) -> Errno {
    match e.raw_os_error() {
        Some(n) if n == libc::ENOSPC || n == libc::EDQUOT => {
            tracing::warn!("{what}: {e}");
            Errno::from_i32(n)
        }
        Some(n) if n > 0 => {
            tracing::error!("{what}: {e}");
            Errno::from_i32(n)
        }
        _ => {
            tracing::error!("{what}: {e}");
            Errno::EIO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn of(e: Error) -> Errno {
        errno("test", e)
    }

    #[test]
    fn store_errors_map_to_posix_errnos() {
        assert_eq!(of(Error::NotFound("x".into())), Errno::ENOENT);
        assert_eq!(of(Error::NameTooLong("x".into())), Errno::ENAMETOOLONG);
        assert_eq!(of(Error::AccessDenied("x".into())), Errno::EACCES);
        assert_eq!(of(Error::SessionExpired("x".into())), Errno::EACCES);
        assert_eq!(of(Error::PreconditionFailed("x".into())), Errno::EIO);
        assert_eq!(of(Error::Conflict("x".into())), Errno::EBUSY);
        assert_eq!(of(Error::Transport("x".into())), Errno::EIO);
        assert_eq!(of(Error::Crypto("x".into())), Errno::EIO);
    }

    #[test]
    fn local_errors_keep_their_errno() {
        let e = |n| Error::Local(io::Error::from_raw_os_error(n));
        assert_eq!(of(e(libc::ENOSPC)), Errno::ENOSPC);
        assert_eq!(of(e(libc::EDQUOT)), Errno::EDQUOT);
        assert_eq!(of(e(libc::EACCES)), Errno::EACCES);
        assert_eq!(of(e(libc::EROFS)), Errno::EROFS);
    }

    #[test]
    fn local_errors_without_errno_are_eio() {
        let e = Error::Local(io::Error::other("no errno"));
        assert_eq!(of(e), Errno::EIO);
        let e = Error::Local(io::ErrorKind::UnexpectedEof.into());
        assert_eq!(of(e), Errno::EIO);
    }
}
