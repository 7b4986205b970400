//! Canonical users: the stable id (64 hex digits, as S3 shows them) and display name
//! of every caller that can own buckets and objects, and whom ACLs grant to.
//!
//! An id is the SHA-256 of the caller's kind and name under a fixed domain tag, so it
//! is the same on every server and after every restart, and needs nothing stored.

use engine::CanonicalUser;
use sha2::{Digest, Sha256};

/// Keeps these hashes apart from any other hash of the same names.
const DOMAIN: &[u8] = b"cybs3 canonical user v1";

fn canonical(kind: &str, name: &str) -> CanonicalUser {
    let mut h = Sha256::new();
    for part in [DOMAIN, kind.as_bytes(), name.as_bytes()] {
        h.update(part);
        h.update([0]);
    }
    CanonicalUser {
        id: hex::encode(h.finalize()),
        display_name: name.to_string(),
    }
}

/// The root credentials: the owner of every bucket that predates owners.
pub(crate) fn root() -> CanonicalUser {
    canonical("root", "root")
}

/// A local or directory user, by name (sessions act as the user they were issued to).
pub(crate) fn user(name: &str) -> CanonicalUser {
    canonical("user", name)
}

/// Objects written anonymously (into a bucket whose ACL lets everyone write) belong
/// to S3's anonymous user, with the id AWS gives it.
pub(crate) fn anonymous() -> CanonicalUser {
    CanonicalUser {
        id: "65a011a29cdf8ec533ec3d1ccaae921c".into(),
        display_name: "anonymous".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_canonical_shaped() {
        assert_eq!(user("alice"), user("alice"));
        assert_ne!(user("alice").id, user("bob").id);
        // A user called "root" is not the root credentials.
        assert_ne!(user("root").id, root().id);
        for u in [root(), user("alice")] {
            assert_eq!(u.id.len(), 64);
            assert!(u.id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(user("alice").display_name, "alice");
    }
}
