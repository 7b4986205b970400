//! Resource-side access: each bucket's owner and ACL, its object ownership setting
//! and its public access block, as stored in bucket attributes, and how ACL grants
//! (the bucket's, an object version's) decide what no policy decided.
//!
//! Buckets that predate owners belong to root with a private ACL and, as AWS treated
//! buckets that predate ownership controls, have none (ACLs enabled, writers own
//! their objects). New buckets are created with `BucketOwnerEnforced`.

use engine::{Acl, CanonicalUser, Grant, Grantee, Permission, Store};
use serde::{Deserialize, Serialize};

use super::owners;

/// Bucket attributes: the owner and ACL (JSON of [`Acl`]), the object ownership
/// setting (its S3 name) and the public access block (JSON).
pub(crate) const ATTR_ACL: &str = "acl";
pub(crate) const ATTR_OWNERSHIP: &str = "ownership";
pub(crate) const ATTR_PUBLIC_ACCESS_BLOCK: &str = "public-access-block";

/// A bucket's object ownership setting (S3's ownership controls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// ACLs are disabled: the bucket owner owns every object.
    BucketOwnerEnforced,
    /// Writers own their objects unless they hand them over with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::ObjectWriter => "ObjectWriter",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Ownership> {
        [
            Ownership::BucketOwnerEnforced,
            Ownership::BucketOwnerPreferred,
            Ownership::ObjectWriter,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A bucket's public access block; every setting off when there is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// A bucket's access settings, read together.
pub(crate) struct BucketAccess {
    /// The bucket's owner and ACL.
    pub acl: Acl,
    /// `None`: no ownership controls (as `ObjectWriter`).
    pub ownership: Option<Ownership>,
    /// `None`: no public access block.
    pub block: Option<PublicAccessBlock>,
}

impl BucketAccess {
    /// Read a bucket's settings (NoSuchBucket when it is not there).
    pub(crate) fn load(store: &Store, bucket: &str) -> engine::Result<BucketAccess> {
        store.bucket(bucket)?;
        let acl = match store.bucket_attr(bucket, ATTR_ACL)? {
            Some(bytes) => decode(&bytes)?,
            None => private(owners::root()),
        };
        let ownership = match store.bucket_attr(bucket, ATTR_OWNERSHIP)? {
            Some(bytes) => Some(
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(Ownership::parse)
                    .ok_or_else(|| damaged("object ownership"))?,
            ),
            None => None,
        };
        let block = match store.bucket_attr(bucket, ATTR_PUBLIC_ACCESS_BLOCK)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|_| damaged("block"))?),
            None => None,
        };
        Ok(BucketAccess {
            acl,
            ownership,
            block,
        })
    }

    pub(crate) fn owner(&self) -> &CanonicalUser {
        &self.acl.owner
    }

    pub(crate) fn acls_enabled(&self) -> bool {
        self.ownership != Some(Ownership::BucketOwnerEnforced)
    }

    pub(crate) fn block(&self) -> PublicAccessBlock {
        self.block.unwrap_or_default()
    }

    /// Who owns an object version stored with `stored` (see [`Self::object_acl`]).
    pub(crate) fn object_owner<'a>(&'a self, stored: Option<&'a Acl>) -> &'a CanonicalUser {
        match stored {
            Some(acl) if self.acls_enabled() => &acl.owner,
            _ => self.owner(),
        }
    }

    /// The owner and ACL that hold for an object version stored with `stored`: with
    /// ACLs disabled, and for objects from before ACLs, the bucket owner's, private.
    pub(crate) fn object_acl(&self, stored: Option<&Acl>) -> Acl {
        match stored {
            Some(acl) if self.acls_enabled() => acl.clone(),
            _ => private(self.owner().clone()),
        }
    }
}

/// Full control for the owner and nobody else: S3's `private`.
pub(crate) fn private(owner: CanonicalUser) -> Acl {
    Acl {
        grants: vec![Grant {
            grantee: Grantee::User(owner.clone()),
            permission: Permission::FullControl,
        }],
        owner,
    }
}

/// Whether an ACL is exactly its owner's full control (what ACLs-disabled buckets allow).
pub(crate) fn is_private(acl: &Acl) -> bool {
    acl.grants.iter().all(|g| {
        matches!(&g.grantee, Grantee::User(u) if u.id == acl.owner.id)
            && g.permission == Permission::FullControl
    })
}

/// Whether any grant reaches everyone or every signed caller (AWS's "public" ACL).
pub(crate) fn is_public(acl: &Acl) -> bool {
    acl.grants.iter().any(|g| public_grantee(&g.grantee))
}

/// Whether a grantee is everyone or every signed caller.
pub(crate) fn public_grantee(g: &Grantee) -> bool {
    matches!(g, Grantee::AllUsers | Grantee::AuthenticatedUsers)
}

pub(crate) fn encode(acl: &Acl) -> Vec<u8> {
    serde_json::to_vec(acl).expect("an ACL serializes")
}

fn decode(bytes: &[u8]) -> engine::Result<Acl> {
    serde_json::from_slice(bytes).map_err(|_| damaged("ACL"))
}

fn damaged(what: &str) -> engine::Error {
    engine::Error::Meta(format!("stored bucket {what} does not parse"))
}

/// Who asks, as ACL grants see it.
pub(crate) enum Requester {
    Anonymous,
    Signed(CanonicalUser),
}

/// Where an operation's ACL permission is looked up, and which permission it needs
/// (AWS's mapping of ACL permissions to operations). `None`: no ACL grants it.
fn needed(op: &str) -> Option<(bool, Permission)> {
    const OBJECT: bool = true;
    const BUCKET: bool = false;
    Some(match op {
        "ListObjects"
        | "ListObjectsV2"
        | "ListObjectVersions"
        | "ListMultipartUploads"
        | "HeadBucket" => (BUCKET, Permission::Read),
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts" => (BUCKET, Permission::Write),
        "GetBucketAcl" => (BUCKET, Permission::ReadAcp),
        "PutBucketAcl" => (BUCKET, Permission::WriteAcp),
        "GetObject" | "HeadObject" | "GetObjectAttributes" => (OBJECT, Permission::Read),
        "GetObjectAcl" => (OBJECT, Permission::ReadAcp),
        "PutObjectAcl" => (OBJECT, Permission::WriteAcp),
        _ => return None,
    })
}

/// Whether the ACLs that apply let `who` do `op` on the bucket (or on the object
/// version `key`/`version_id`). Public grants count only without IgnorePublicAcls. An
/// object that is not there is answered by the bucket's READ, so that a caller who
/// may list learns it is missing (404) and others do not.
pub(crate) fn allows(
    store: &Store,
    who: &Requester,
    op: &str,
    bucket: &str,
    object: Option<(&str, Option<&str>)>,
) -> engine::Result<bool> {
    let Some((on_object, mut permission)) = needed(op) else {
        return Ok(false);
    };
    let access = match BucketAccess::load(store, bucket) {
        Ok(a) => a,
        Err(engine::Error::NoSuchBucket(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let acl = match object.filter(|_| on_object) {
        Some((key, version_id)) => match store.head(bucket, key, version_id) {
            Ok(v) => access.object_acl(v.meta.acl.as_ref()),
            Err(
                engine::Error::NoSuchKey(_)
                | engine::Error::NoSuchVersion(_)
                | engine::Error::DeleteMarker { .. },
            ) => {
                permission = Permission::Read;
                access.acl.clone()
            }
            Err(e) => return Err(e),
        },
        None => access.acl.clone(),
    };
    let ignore_public = access.block().ignore_public_acls;
    Ok(acl.grants.iter().any(|g| {
        covers(g.permission, permission)
            && !(ignore_public && public_grantee(&g.grantee))
            && reaches(&g.grantee, who)
    }))
}

fn covers(granted: Permission, wanted: Permission) -> bool {
    granted == wanted || granted == Permission::FullControl
}

fn reaches(grantee: &Grantee, who: &Requester) -> bool {
    match (grantee, who) {
        (Grantee::AllUsers, _) => true,
        (Grantee::AuthenticatedUsers, Requester::Signed(_)) => true,
        (Grantee::User(u), Requester::Signed(me)) => u.id == me.id,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        (dir, store)
    }

    fn grant(grantee: Grantee, permission: Permission) -> Grant {
        Grant {
            grantee,
            permission,
        }
    }

    #[test]
    fn bucket_grants_decide_listing_for_whom_they_name() {
        let (_d, store) = store();
        let alice = owners::user("alice");
        let bob = owners::user("bob");
        let mut acl = private(alice.clone());
        acl.grants
            .push(grant(Grantee::User(bob.clone()), Permission::Read));
        store
            .create_bucket_with("bkt", false, vec![(ATTR_ACL.into(), encode(&acl))])
            .unwrap();
        let list = |who: &Requester| allows(&store, who, "ListObjectsV2", "bkt", None).unwrap();
        assert!(list(&Requester::Signed(alice.clone())));
        assert!(list(&Requester::Signed(bob.clone())));
        assert!(!list(&Requester::Signed(owners::user("carol"))));
        assert!(!list(&Requester::Anonymous));
        // READ does not grant writes, nor ACL reads; FULL_CONTROL does.
        let bob = Requester::Signed(bob);
        assert!(!allows(&store, &bob, "PutObject", "bkt", None).unwrap());
        assert!(!allows(&store, &bob, "GetBucketAcl", "bkt", None).unwrap());
        let a = Requester::Signed(alice);
        assert!(allows(&store, &a, "PutBucketAcl", "bkt", None).unwrap());
        // Operations no ACL grants.
        assert!(!allows(&store, &a, "PutBucketPolicy", "bkt", None).unwrap());
    }

    #[test]
    fn public_grants_reach_everyone_unless_ignored() {
        let (_d, store) = store();
        let mut acl = private(owners::root());
        acl.grants.push(grant(Grantee::AllUsers, Permission::Read));
        store
            .create_bucket_with("bkt", false, vec![(ATTR_ACL.into(), encode(&acl))])
            .unwrap();
        assert!(is_public(&acl) && !is_private(&acl));
        assert!(allows(&store, &Requester::Anonymous, "ListObjects", "bkt", None).unwrap());
        let block = PublicAccessBlock {
            ignore_public_acls: true,
            ..Default::default()
        };
        store
            .set_bucket_attr(
                "bkt",
                ATTR_PUBLIC_ACCESS_BLOCK,
                Some(serde_json::to_vec(&block).unwrap()),
            )
            .unwrap();
        assert!(!allows(&store, &Requester::Anonymous, "ListObjects", "bkt", None).unwrap());
    }

    #[test]
    fn object_acls_apply_unless_the_bucket_enforces_its_ownership() {
        let (_d, store) = store();
        store.create_bucket("bkt").unwrap();
        let mut acl = private(owners::user("alice"));
        acl.grants.push(grant(Grantee::AllUsers, Permission::Read));
        let mut w = store.put("bkt", "k").unwrap();
        w.write(b"x").unwrap();
        w.finish(engine::ObjectMeta {
            acl: Some(acl),
            ..Default::default()
        })
        .unwrap();
        let anon = Requester::Anonymous;
        let get = |key| allows(&store, &anon, "GetObject", "bkt", Some((key, None))).unwrap();
        // A bucket from before owners: no ownership controls, so object ACLs count.
        assert!(get("k"));
        // A missing key is the bucket's READ (private here): no probing.
        assert!(!get("missing"));
        store
            .set_bucket_attr("bkt", ATTR_OWNERSHIP, Some(b"BucketOwnerEnforced".to_vec()))
            .unwrap();
        assert!(!get("k"));
        let access = BucketAccess::load(&store, "bkt").unwrap();
        assert_eq!(access.owner(), &owners::root());
        assert_eq!(access.object_acl(None), private(owners::root()));
    }
}
