//! S3 ACLs: Get/Put{Bucket,Object}Acl, canned ACLs and `x-amz-grant-*` headers, the
//! owner and ACL new buckets and objects get, and their XML form. What is stored and
//! how grants decide requests is `identity::grants`.

use crate::ctx::{blocking, spawn, Cybs3};
use crate::identity::auth::{store_failed, Caller};
use crate::identity::grants::{self, BucketAccess, Ownership};
use crate::identity::owners;
use engine::{Acl, CanonicalUser, Grant, Grantee, Permission};
use hyper::http::Extensions;
use s3s::dto::{self, *};
use s3s::{s3_error, S3Error, S3Result};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// What a request says about an ACL: a canned ACL (`x-amz-acl`) and grant headers
/// (`x-amz-grant-*`), as sent.
#[derive(Default)]
pub(crate) struct AclRequest {
    canned: Option<String>,
    headers: Vec<(Permission, String)>,
}

impl AclRequest {
    pub(crate) fn new<'a>(
        canned: Option<&str>,
        headers: impl IntoIterator<Item = (Permission, Option<&'a String>)>,
    ) -> AclRequest {
        AclRequest {
            canned: canned.map(str::to_string),
            headers: headers
                .into_iter()
                .filter_map(|(p, v)| v.map(|v| (p, v.clone())))
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.canned.is_none() && self.headers.is_empty()
    }
}

/// The ACL an object write asks for (`x-amz-acl`, `x-amz-grant-*`): PutObject,
/// CopyObject, CreateMultipartUpload and POST forms share these fields.
macro_rules! object_acl_requested {
    ($input:expr) => {
        $crate::acl::AclRequest::new(
            $input.acl.as_ref().map(|a| a.as_str()),
            [
                (
                    engine::Permission::FullControl,
                    $input.grant_full_control.as_ref(),
                ),
                (engine::Permission::Read, $input.grant_read.as_ref()),
                (engine::Permission::ReadAcp, $input.grant_read_acp.as_ref()),
                (
                    engine::Permission::WriteAcp,
                    $input.grant_write_acp.as_ref(),
                ),
            ],
        )
    };
}
pub(crate) use object_acl_requested;

/// Bucket requests also have `x-amz-grant-write`.
fn bucket_acl_requested(
    canned: Option<&BucketCannedACL>,
    full: Option<&String>,
    read: Option<&String>,
    read_acp: Option<&String>,
    write: Option<&String>,
    write_acp: Option<&String>,
) -> AclRequest {
    AclRequest::new(
        canned.map(|c| c.as_str()),
        [
            (Permission::FullControl, full),
            (Permission::Read, read),
            (Permission::ReadAcp, read_acp),
            (Permission::Write, write),
            (Permission::WriteAcp, write_acp),
        ],
    )
}

/// The canonical user a caller acts as: bucket keys act for their bucket's owner.
pub(crate) fn acting_as(caller: &Caller, bucket_owner: &CanonicalUser) -> CanonicalUser {
    match caller {
        Caller::Root => owners::root(),
        Caller::User { name, .. } => owners::user(name),
        Caller::Bucket(_) => bucket_owner.clone(),
        Caller::Anonymous => owners::anonymous(),
    }
}

pub(crate) async fn load(s: &Cybs3, bucket: &str) -> S3Result<BucketAccess> {
    let (store, bucket) = (s.store.clone(), bucket.to_string());
    blocking(move || BucketAccess::load(&store, &bucket)).await
}

/// Names every grantee a request gave by an id alone, as the server knows them. An id
/// nobody has is refused with AWS's 400 InvalidArgument, before anything is stored.
pub(crate) async fn name_grantees(s: &Cybs3, mut acl: Acl) -> S3Result<Acl> {
    let unnamed: Vec<String> = acl
        .grants
        .iter()
        .filter_map(|g| match &g.grantee {
            Grantee::User(u) if u.display_name.is_empty() => Some(u.id.clone()),
            _ => None,
        })
        .collect();
    if unnamed.is_empty() {
        return Ok(acl);
    }
    let iam = s.iam.clone();
    let known = spawn(move || {
        unnamed
            .into_iter()
            .map(|id| iam.canonical_user(&id).map(|u| (id, u)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?
    .map_err(store_failed)?;
    for grant in &mut acl.grants {
        let Grantee::User(u) = &mut grant.grantee else {
            continue;
        };
        if !u.display_name.is_empty() {
            continue;
        }
        match known.iter().find(|(id, _)| *id == u.id) {
            Some((_, Some(found))) => *u = found.clone(),
            _ => return Err(s3_error!(InvalidArgument, "Invalid id")),
        }
    }
    Ok(acl)
}

/// The owner and ACL of an object the caller is writing into `bucket`, as its bucket's
/// object ownership decides: with ACLs disabled only private (or the bucket owner's
/// full control) is accepted and the bucket owner owns it; with BucketOwnerPreferred
/// `bucket-owner-full-control` hands it to the bucket owner; else the writer owns it.
pub(crate) async fn for_new_object(
    s: &Cybs3,
    extensions: &Extensions,
    bucket: &str,
    req: &AclRequest,
) -> S3Result<Acl> {
    let caller = Caller::of(extensions)?.clone();
    let access = load(s, bucket).await?;
    let writer = acting_as(&caller, access.owner());
    name_grantees(s, new_object_acl(&access, writer, req)?).await
}

fn new_object_acl(access: &BucketAccess, writer: CanonicalUser, req: &AclRequest) -> S3Result<Acl> {
    let bucket_owner = access.owner().clone();
    if !access.acls_enabled() {
        let asked = requested(req, &bucket_owner, &bucket_owner, false)?;
        if asked.as_ref().is_some_and(|a| !grants::is_private(a)) {
            return Err(acls_disabled());
        }
        return Ok(grants::private(bucket_owner));
    }
    let hand_over = access.ownership == Some(Ownership::BucketOwnerPreferred)
        && req.canned.as_deref() == Some(ObjectCannedACL::BUCKET_OWNER_FULL_CONTROL);
    let owner = if hand_over {
        bucket_owner.clone()
    } else {
        writer
    };
    let acl =
        requested(req, &owner, &bucket_owner, false)?.unwrap_or_else(|| grants::private(owner));
    check_public(access, &acl)?;
    Ok(acl)
}

/// BlockPublicAcls: writes of a public ACL are refused.
fn check_public(access: &BucketAccess, acl: &Acl) -> S3Result<()> {
    if access.block().block_public_acls && grants::is_public(acl) {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(())
}

fn acls_disabled() -> S3Error {
    s3_error!(
        AccessControlListNotSupported,
        "The bucket does not allow ACLs"
    )
}

/// The ACL a request asks for, owned by `owner` in a bucket owned by `bucket_owner`;
/// `None` when it asks for none.
fn requested(
    req: &AclRequest,
    owner: &CanonicalUser,
    bucket_owner: &CanonicalUser,
    for_bucket: bool,
) -> S3Result<Option<Acl>> {
    if req.canned.is_some() && !req.headers.is_empty() {
        return Err(s3_error!(
            InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed"
        ));
    }
    if let Some(canned) = &req.canned {
        return canned_acl(canned, owner, bucket_owner, for_bucket).map(Some);
    }
    if req.headers.is_empty() {
        return Ok(None);
    }
    let mut acl = Acl {
        owner: owner.clone(),
        grants: Vec::new(),
    };
    for (permission, value) in &req.headers {
        for grantee in parse_grantees(value)? {
            acl.grants.push(Grant {
                grantee: named(grantee, owner, bucket_owner),
                permission: *permission,
            });
        }
    }
    Ok(Some(acl))
}

/// A canned ACL's grants (S3's table of them).
fn canned_acl(
    canned: &str,
    owner: &CanonicalUser,
    bucket_owner: &CanonicalUser,
    for_bucket: bool,
) -> S3Result<Acl> {
    let mut acl = grants::private(owner.clone());
    let mut add = |grantee, permission| {
        acl.grants.push(Grant {
            grantee,
            permission,
        })
    };
    let bucket_owner_too = !for_bucket && bucket_owner != owner;
    match canned {
        "private" => {}
        "public-read" => add(Grantee::AllUsers, Permission::Read),
        "public-read-write" => {
            add(Grantee::AllUsers, Permission::Read);
            add(Grantee::AllUsers, Permission::Write);
        }
        "authenticated-read" => add(Grantee::AuthenticatedUsers, Permission::Read),
        "bucket-owner-read" if bucket_owner_too => {
            add(Grantee::User(bucket_owner.clone()), Permission::Read)
        }
        "bucket-owner-full-control" if bucket_owner_too => {
            add(Grantee::User(bucket_owner.clone()), Permission::FullControl)
        }
        "bucket-owner-read" | "bucket-owner-full-control" | "aws-exec-read" => {}
        "log-delivery-write" if for_bucket => {
            add(Grantee::LogDelivery, Permission::Write);
            add(Grantee::LogDelivery, Permission::ReadAcp);
        }
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "The canned ACL {canned} is not valid"
            ))
        }
    }
    Ok(acl)
}

/// A grantee as the grant headers and the XML name it, before display names.
#[derive(Debug, PartialEq)]
enum Named {
    Id(String),
    Group(Grantee),
}

/// Canonical users get the display name the server knows for them (owners).
fn named(n: Named, owner: &CanonicalUser, bucket_owner: &CanonicalUser) -> Grantee {
    match n {
        Named::Group(g) => g,
        Named::Id(id) => Grantee::User(match [owner, bucket_owner].iter().find(|u| u.id == id) {
            Some(known) => (*known).clone(),
            None => CanonicalUser {
                id,
                display_name: String::new(),
            },
        }),
    }
}

/// `id="…", uri="…", emailAddress="…"`, comma separated (one grant header's value).
fn parse_grantees(value: &str) -> S3Result<Vec<Named>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (kind, v) = part.split_once('=').ok_or_else(bad_grant_header)?;
            let v = v.trim().trim_matches('"');
            match kind.trim().to_ascii_lowercase().as_str() {
                "id" if !v.is_empty() => Ok(Named::Id(v.to_string())),
                "uri" => group(v).map(Named::Group),
                "emailaddress" => Err(by_email()),
                _ => Err(bad_grant_header()),
            }
        })
        .collect()
}

fn group(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        LOG_DELIVERY => Ok(Grantee::LogDelivery),
        _ => Err(s3_error!(InvalidArgument, "Invalid group uri")),
    }
}

fn bad_grant_header() -> S3Error {
    s3_error!(InvalidArgument, "Invalid grant header")
}

fn by_email() -> S3Error {
    s3_error!(
        UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record."
    )
}

fn malformed() -> S3Error {
    s3_error!(
        MalformedACLError,
        "The XML you provided was not well-formed or did not validate against our published schema."
    )
}

/// The grants of an `AccessControlPolicy` document.
fn from_document(doc: &AccessControlPolicy) -> S3Result<Vec<(Named, Permission)>> {
    let mut out = Vec::new();
    for g in doc.grants.iter().flatten() {
        let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
            return Err(malformed());
        };
        let permission = match permission.as_str() {
            dto::Permission::FULL_CONTROL => Permission::FullControl,
            dto::Permission::READ => Permission::Read,
            dto::Permission::WRITE => Permission::Write,
            dto::Permission::READ_ACP => Permission::ReadAcp,
            dto::Permission::WRITE_ACP => Permission::WriteAcp,
            _ => return Err(malformed()),
        };
        let named = match grantee.type_.as_str() {
            Type::CANONICAL_USER => match grantee.id.as_deref() {
                Some(id) if !id.is_empty() => Named::Id(id.to_string()),
                _ => return Err(s3_error!(InvalidArgument, "Invalid id")),
            },
            Type::GROUP => Named::Group(group(grantee.uri.as_deref().unwrap_or_default())?),
            Type::AMAZON_CUSTOMER_BY_EMAIL => return Err(by_email()),
            _ => return Err(malformed()),
        };
        out.push((named, permission));
    }
    Ok(out)
}

/// The ACL a PutBucketAcl or PutObjectAcl asks for: a document, or headers (not both).
fn asked(
    doc: Option<&AccessControlPolicy>,
    req: &AclRequest,
    owner: &CanonicalUser,
    bucket_owner: &CanonicalUser,
    for_bucket: bool,
) -> S3Result<Acl> {
    match doc {
        Some(_) if !req.is_empty() => Err(s3_error!(
            UnexpectedContent,
            "This request does not support content"
        )),
        Some(doc) => Ok(Acl {
            owner: owner.clone(),
            grants: from_document(doc)?
                .into_iter()
                .map(|(n, permission)| Grant {
                    grantee: named(n, owner, bucket_owner),
                    permission,
                })
                .collect(),
        }),
        None => requested(req, owner, bucket_owner, for_bucket)?.ok_or_else(|| {
            s3_error!(
                MissingSecurityHeader,
                "Your request was missing a required header"
            )
        }),
    }
}

/// The Owner listings show for an object (version, upload) with this metadata.
pub(crate) fn object_owner(access: &BucketAccess, meta: &engine::ObjectMeta) -> Owner {
    owner_dto(access.object_owner(meta.acl.as_ref()))
}

pub(crate) fn owner_dto(u: &CanonicalUser) -> Owner {
    Owner {
        display_name: (!u.display_name.is_empty()).then(|| u.display_name.clone()),
        id: Some(u.id.clone()),
    }
}

fn grants_dto(acl: &Acl) -> Grants {
    acl.grants
        .iter()
        .map(|g| {
            let (type_, user, uri) = match &g.grantee {
                Grantee::User(u) => (Type::CANONICAL_USER, Some(u), None),
                Grantee::AllUsers => (Type::GROUP, None, Some(ALL_USERS)),
                Grantee::AuthenticatedUsers => (Type::GROUP, None, Some(AUTHENTICATED_USERS)),
                Grantee::LogDelivery => (Type::GROUP, None, Some(LOG_DELIVERY)),
            };
            let permission = match g.permission {
                Permission::FullControl => dto::Permission::FULL_CONTROL,
                Permission::Read => dto::Permission::READ,
                Permission::Write => dto::Permission::WRITE,
                Permission::ReadAcp => dto::Permission::READ_ACP,
                Permission::WriteAcp => dto::Permission::WRITE_ACP,
            };
            dto::Grant {
                grantee: Some(dto::Grantee {
                    display_name: user
                        .filter(|u| !u.display_name.is_empty())
                        .map(|u| u.display_name.clone()),
                    email_address: None,
                    id: user.map(|u| u.id.clone()),
                    type_: Type::from_static(type_),
                    uri: uri.map(str::to_string),
                }),
                permission: Some(dto::Permission::from_static(permission)),
            }
        })
        .collect()
}

/// The owner and ACL of a bucket the caller creates, with its object ownership
/// (BucketOwnerEnforced unless the request names another, as AWS creates buckets).
pub(crate) fn for_new_bucket(
    caller: &Caller,
    input: &CreateBucketInput,
) -> S3Result<(Acl, Ownership)> {
    let owner = acting_as(caller, &owners::root());
    let ownership = match &input.object_ownership {
        Some(o) => Ownership::parse(o.as_str())
            .ok_or_else(|| s3_error!(InvalidArgument, "Invalid x-amz-object-ownership header"))?,
        None => Ownership::BucketOwnerEnforced,
    };
    let req = bucket_acl_requested(
        input.acl.as_ref(),
        input.grant_full_control.as_ref(),
        input.grant_read.as_ref(),
        input.grant_read_acp.as_ref(),
        input.grant_write.as_ref(),
        input.grant_write_acp.as_ref(),
    );
    let acl = requested(&req, &owner, &owner, true)?.unwrap_or_else(|| grants::private(owner));
    if ownership == Ownership::BucketOwnerEnforced && !grants::is_private(&acl) {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    Ok((acl, ownership))
}

pub(crate) async fn get_bucket(
    s: &Cybs3,
    input: GetBucketAclInput,
) -> S3Result<GetBucketAclOutput> {
    let access = load(s, &input.bucket).await?;
    Ok(GetBucketAclOutput {
        grants: Some(grants_dto(&access.acl)),
        owner: Some(owner_dto(access.owner())),
    })
}

pub(crate) async fn put_bucket(
    s: &Cybs3,
    input: PutBucketAclInput,
) -> S3Result<PutBucketAclOutput> {
    let access = load(s, &input.bucket).await?;
    let owner = access.owner().clone();
    let req = bucket_acl_requested(
        input.acl.as_ref(),
        input.grant_full_control.as_ref(),
        input.grant_read.as_ref(),
        input.grant_read_acp.as_ref(),
        input.grant_write.as_ref(),
        input.grant_write_acp.as_ref(),
    );
    let acl = asked(
        input.access_control_policy.as_ref(),
        &req,
        &owner,
        &owner,
        true,
    )?;
    if !access.acls_enabled() && !grants::is_private(&acl) {
        return Err(acls_disabled());
    }
    check_public(&access, &acl)?;
    let acl = name_grantees(s, acl).await?;
    s.set_bucket_attr(&input.bucket, grants::ATTR_ACL, Some(grants::encode(&acl)))
        .await?;
    Ok(PutBucketAclOutput {})
}

pub(crate) async fn get_object(
    s: &Cybs3,
    input: GetObjectAclInput,
) -> S3Result<GetObjectAclOutput> {
    let access = load(s, &input.bucket).await?;
    let store = s.store.clone();
    let (b, k, v) = (input.bucket, input.key, input.version_id);
    let version = blocking(move || store.head(&b, &k, v.as_deref())).await?;
    let acl = access.object_acl(version.meta.acl.as_ref());
    Ok(GetObjectAclOutput {
        grants: Some(grants_dto(&acl)),
        owner: Some(owner_dto(&acl.owner)),
        ..Default::default()
    })
}

pub(crate) async fn put_object(
    s: &Cybs3,
    input: PutObjectAclInput,
) -> S3Result<PutObjectAclOutput> {
    let access = load(s, &input.bucket).await?;
    let store = s.store.clone();
    let (b, k, v) = (
        input.bucket.clone(),
        input.key.clone(),
        input.version_id.clone(),
    );
    let version = blocking(move || store.head(&b, &k, v.as_deref())).await?;
    let owner = access.object_acl(version.meta.acl.as_ref()).owner;
    let req = object_acl_requested!(input);
    let acl = asked(
        input.access_control_policy.as_ref(),
        &req,
        &owner,
        access.owner(),
        false,
    )?;
    if !access.acls_enabled() {
        // Only what ACLs-disabled buckets already hold can be set, and nothing changes.
        return match grants::is_private(&acl) {
            true => Ok(PutObjectAclOutput::default()),
            false => Err(acls_disabled()),
        };
    }
    check_public(&access, &acl)?;
    let acl = name_grantees(s, acl).await?;
    let store = s.store.clone();
    // The version found above: a PUT without versionId must not reach a newer one.
    let vid = version.version_id;
    blocking(move || store.set_acl(&input.bucket, &input.key, Some(&vid), acl)).await?;
    Ok(PutObjectAclOutput::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(canned: Option<&str>, headers: &[(Permission, &str)]) -> AclRequest {
        AclRequest {
            canned: canned.map(str::to_string),
            headers: headers.iter().map(|(p, v)| (*p, v.to_string())).collect(),
        }
    }

    fn code(e: S3Error) -> String {
        e.code().as_str().to_string()
    }

    #[test]
    fn canned_acls_grant_what_s3_lists() {
        let (alice, bob) = (owners::user("alice"), owners::user("bob"));
        let acl = |c| {
            requested(&req(Some(c), &[]), &alice, &bob, false)
                .unwrap()
                .unwrap()
        };
        assert!(grants::is_private(&acl("private")));
        assert!(grants::is_public(&acl("public-read")));
        assert_eq!(acl("public-read-write").grants.len(), 3);
        assert_eq!(
            acl("bucket-owner-full-control").grants[1],
            Grant {
                grantee: Grantee::User(bob.clone()),
                permission: Permission::FullControl
            }
        );
        assert_eq!(
            acl("bucket-owner-read").grants[1].permission,
            Permission::Read
        );
        // The bucket owner writing its own object: nothing to add.
        let own = requested(
            &req(Some("bucket-owner-full-control"), &[]),
            &bob,
            &bob,
            false,
        );
        assert!(grants::is_private(&own.unwrap().unwrap()));
        let bad = requested(&req(Some("nope"), &[]), &alice, &bob, false).unwrap_err();
        assert_eq!(code(bad), "InvalidArgument");
    }

    #[test]
    fn grant_headers_parse_as_s3_writes_them() {
        let bob = owners::user("bob");
        let header = format!("id=\"{}\", uri=\"{ALL_USERS}\"", bob.id);
        let acl = requested(
            &req(None, &[(Permission::Read, &header)]),
            &owners::user("alice"),
            &bob,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(acl.grants.len(), 2);
        // Known canonical users get their display name.
        assert_eq!(acl.grants[0].grantee, Grantee::User(bob.clone()));
        assert_eq!(acl.grants[1].grantee, Grantee::AllUsers);
        let err = |h: &str| {
            code(requested(&req(None, &[(Permission::Read, h)]), &bob, &bob, false).unwrap_err())
        };
        assert_eq!(
            err("emailAddress=\"a@b.c\""),
            "UnresolvableGrantByEmailAddress"
        );
        assert_eq!(err("uri=\"http://example.com/x\""), "InvalidArgument");
        assert_eq!(err("nonsense"), "InvalidArgument");
        let both = req(Some("private"), &[(Permission::Read, "id=\"x\"")]);
        assert_eq!(
            code(requested(&both, &bob, &bob, false).unwrap_err()),
            "InvalidRequest"
        );
    }

    #[test]
    fn documents_need_grantee_and_permission() {
        let doc =
            |grantee: Option<dto::Grantee>, permission: Option<&'static str>| AccessControlPolicy {
                grants: Some(vec![dto::Grant {
                    grantee,
                    permission: permission.map(dto::Permission::from_static),
                }]),
                owner: None,
            };
        let group = |uri: &str| dto::Grantee {
            display_name: None,
            email_address: None,
            id: None,
            type_: Type::from_static(Type::GROUP),
            uri: Some(uri.into()),
        };
        let ok = from_document(&doc(Some(group(AUTHENTICATED_USERS)), Some("READ"))).unwrap();
        assert_eq!(
            ok,
            vec![(Named::Group(Grantee::AuthenticatedUsers), Permission::Read)]
        );
        let e = |d| code(from_document(&d).unwrap_err());
        assert_eq!(e(doc(None, Some("READ"))), "MalformedACLError");
        assert_eq!(
            e(doc(Some(group(ALL_USERS)), Some("EVERYTHING"))),
            "MalformedACLError"
        );
        let email = dto::Grantee {
            type_: Type::from_static(Type::AMAZON_CUSTOMER_BY_EMAIL),
            email_address: Some("a@b.c".into()),
            ..group(ALL_USERS)
        };
        assert_eq!(
            e(doc(Some(email), Some("READ"))),
            "UnresolvableGrantByEmailAddress"
        );
    }

    fn access(ownership: Option<Ownership>, block_public_acls: bool) -> BucketAccess {
        BucketAccess {
            acl: grants::private(owners::user("owner")),
            ownership,
            block: Some(grants::PublicAccessBlock {
                block_public_acls,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn object_ownership_decides_who_owns_new_objects() {
        let writer = owners::user("writer");
        let owner = owners::user("owner");
        let write = |a: &BucketAccess, r: AclRequest| new_object_acl(a, writer.clone(), &r);
        // Enforced: the bucket owner owns it; only private forms are accepted.
        let enforced = access(Some(Ownership::BucketOwnerEnforced), false);
        assert_eq!(write(&enforced, req(None, &[])).unwrap().owner, owner);
        assert!(write(&enforced, req(Some("bucket-owner-full-control"), &[])).is_ok());
        assert!(write(&enforced, req(Some("private"), &[])).is_ok());
        let e = write(&enforced, req(Some("public-read"), &[])).unwrap_err();
        assert_eq!(code(e), "AccessControlListNotSupported");
        // Preferred: handed over with bucket-owner-full-control only.
        let preferred = access(Some(Ownership::BucketOwnerPreferred), false);
        let acl = write(&preferred, req(Some("bucket-owner-full-control"), &[])).unwrap();
        assert_eq!(acl.owner, owner);
        assert_eq!(write(&preferred, req(None, &[])).unwrap().owner, writer);
        // ObjectWriter (and no controls): the writer owns it.
        let writer_owns = access(None, false);
        let acl = write(&writer_owns, req(Some("bucket-owner-full-control"), &[])).unwrap();
        assert_eq!(acl.owner, writer);
        // BlockPublicAcls refuses public ACLs on writes.
        let blocked = access(Some(Ownership::ObjectWriter), true);
        let e = write(&blocked, req(Some("public-read"), &[])).unwrap_err();
        assert_eq!(code(e), "AccessDenied");
        assert!(write(&blocked, req(Some("private"), &[])).is_ok());
    }
}
