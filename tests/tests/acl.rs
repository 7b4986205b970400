//! ACLs, object ownership and public access blocks, through aws-sdk-s3 (and curl for
//! anonymous requests): bucket owners and BucketAlreadyExists, canned ACLs and grants,
//! ownership controls, owners in listings, anonymous access through ACLs and its
//! blocking by the public access block.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart,
    ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule, Permission,
    PublicAccessBlockConfiguration, Type,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::Server;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// A client signing as a new user with these `admin user add` flags.
fn user(srv: &Server, name: &str, flags: &[&str]) -> Client {
    let (ak, sk) = add_user(srv, name, flags);
    srv.client_as(&ak, &sk)
}

/// A stored policy allowing only these actions on everything.
fn policy(srv: &Server, name: &str, actions: &[&str]) {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": actions, "Resource": "arn:aws:s3:::*"}]});
    add_policy(srv, name, &doc);
}

/// The canonical id the caller is known by (the Owner of its ListBuckets).
async fn canonical_id(c: &Client) -> String {
    let out = c.list_buckets().send().await.unwrap();
    out.owner().unwrap().id().unwrap().to_string()
}

async fn ownership(c: &Client, bucket: &str, o: ObjectOwnership) {
    c.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(o)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// An anonymous request (curl, unsigned): its status and S3 error code.
fn anonymous(srv: &Server, method: &str, path: &str) -> (u16, Option<String>) {
    let url = format!("{}/{path}", srv.endpoint());
    let r = match method {
        "PUT" => curl(&["-X", "PUT", "--data-binary", "anon", &url]),
        _ => curl(&["-X", method, &url]),
    };
    (r.status, r.code())
}

#[tokio::test]
async fn buckets_have_owners_and_names_taken_by_others_are_refused() {
    let (_tmp, srv, root) = setup();
    policy(&srv, "make", &["s3:CreateBucket", "s3:ListAllMyBuckets"]);
    let alice = user(&srv, "alice", &["--policy", "make"]);
    let bob = user(&srv, "bob", &["--policy", "readwrite"]);
    let (alice_id, root_id) = (canonical_id(&alice).await, canonical_id(&root).await);
    assert_eq!(alice_id.len(), 64, "canonical ids are 64 hex digits");
    assert!(alice_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(alice_id, root_id);
    assert_eq!(alice_id, canonical_id(&alice).await, "stable");
    let dave = admin(
        &srv,
        &["admin", "user", "add", "dave", "--json", "--policy", "make"],
    );
    let dave_client = srv.client_as(
        dave["access_key"].as_str().unwrap(),
        dave["secret_key"].as_str().unwrap(),
    );
    assert_eq!(
        dave["canonical_id"].as_str(),
        Some(canonical_id(&dave_client).await.as_str()),
        "`admin user add` tells the id grants name the user by"
    );

    alice.create_bucket().bucket("alices").send().await.unwrap();
    bucket(&root, "roots").await;
    // Another owner's name: 409 BucketAlreadyExists, both ways.
    let (st, code) = fails(bob.create_bucket().bucket("alices").send().await);
    assert_eq!((st, code.as_str()), (409, "BucketAlreadyExists"));
    let (st, code) = fails(alice.create_bucket().bucket("roots").send().await);
    assert_eq!((st, code.as_str()), (409, "BucketAlreadyExists"));
    // One's own, in us-east-1: 200, AWS's legacy.
    alice.create_bucket().bucket("alices").send().await.unwrap();

    let acl = root.get_bucket_acl().bucket("alices").send().await.unwrap();
    let owner = acl.owner().unwrap();
    assert_eq!(
        (owner.id(), owner.display_name()),
        (Some(alice_id.as_str()), Some("alice"))
    );
    let grants = acl.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].permission(), Some(&Permission::FullControl));
    assert_eq!(grants[0].grantee().unwrap().id(), Some(alice_id.as_str()));
    let listed = alice.list_buckets().send().await.unwrap();
    assert_eq!(listed.owner().unwrap().display_name(), Some("alice"));

    // New buckets enforce their owner's ownership, as AWS creates them.
    let controls = root
        .get_bucket_ownership_controls()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    let rule = &controls.ownership_controls().unwrap().rules()[0];
    assert_eq!(
        rule.object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );

    // Alice has no IAM permission for objects; owning the bucket (its ACL) is enough.
    alice
        .put_object()
        .bucket("alices")
        .key("k")
        .body(ByteStream::from_static(b"mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&alice, "alices", "k").await, b"mine");
    // Bob may by policy; nobody without either may (carol may only list her buckets).
    policy(&srv, "whoami", &["s3:ListAllMyBuckets"]);
    let carol = user(&srv, "carol", &["--policy", "whoami"]);
    assert_eq!(get(&bob, "alices", "k").await, b"mine");
    let (st, _) = fails(carol.get_object().bucket("alices").key("k").send().await);
    assert_eq!(st, 403);
    // The ACL grants what it names: READ on the bucket lets carol list, not write.
    let carol_grant = format!("id=\"{}\"", canonical_id(&carol).await);
    // Root may change any bucket's settings: ACLs enabled, then a grant for carol.
    ownership(&root, "alices", ObjectOwnership::ObjectWriter).await;
    root.put_bucket_acl()
        .bucket("alices")
        .grant_read(&carol_grant)
        .send()
        .await
        .unwrap();
    let listed = carol
        .list_objects_v2()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    let (st, _) = fails(
        carol
            .put_object()
            .bucket("alices")
            .key("c")
            .body(ByteStream::from_static(b"c"))
            .send()
            .await,
    );
    assert_eq!(st, 403);

    // ListBuckets shows each user what they own or may list: alice her own, bob (who
    // may list everything) both, carol the one her grant lets her list, root all.
    bucket(&root, "hidden").await;
    assert_eq!(bucket_names(&alice).await, ["alices"]);
    assert_eq!(bucket_names(&bob).await, ["alices", "hidden", "roots"]);
    assert_eq!(bucket_names(&carol).await, ["alices"]);
    assert_eq!(bucket_names(&root).await, ["alices", "hidden", "roots"]);
    // Pages count only what is shown.
    let page = bob.list_buckets().max_buckets(1).send().await.unwrap();
    assert_eq!(page.buckets()[0].name(), Some("alices"));
    let token = page.continuation_token().unwrap().to_string();
    let next = bob
        .list_buckets()
        .max_buckets(1)
        .continuation_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.buckets()[0].name(), Some("hidden"));
    let page = carol.list_buckets().max_buckets(1).send().await.unwrap();
    assert_eq!(page.buckets().len(), 1);
    assert!(
        page.continuation_token().is_none(),
        "nothing more for carol"
    );

    // A grant naming an id nobody has is refused, as AWS refuses it; the ACL stays.
    let (st, code) = fails(
        root.put_bucket_acl()
            .bucket("alices")
            .grant_read(format!("id=\"{}\"", "0".repeat(64)))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidArgument"));
    let acl = root.get_bucket_acl().bucket("alices").send().await.unwrap();
    let named: Vec<_> = acl
        .grants()
        .iter()
        .filter_map(|g| g.grantee().and_then(|g| g.display_name()))
        .collect();
    assert_eq!(named, ["carol"], "grants by id show the user's name");
    let (st, code) = fails(
        root.put_object()
            .bucket("alices")
            .key("g")
            .grant_read("id=\"nobody\"")
            .body(ByteStream::from_static(b"g"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidArgument"));
    let (st, _) = fails(root.head_object().bucket("alices").key("g").send().await);
    assert_eq!(st, 404, "nothing stored");
}

/// The names ListBuckets shows this client.
async fn bucket_names(c: &Client) -> Vec<String> {
    let out = c.list_buckets().send().await.unwrap();
    out.buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn ownership_controls_decide_whether_acls_apply() {
    let (_tmp, _srv, root) = setup();
    bucket(&root, "enforced").await;
    let put = |key: &'static str, acl: Option<ObjectCannedAcl>| {
        root.put_object()
            .bucket("enforced")
            .key(key)
            .set_acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    // ACLs disabled: only private forms are accepted.
    let (st, code) = fails(put("a", Some(ObjectCannedAcl::PublicRead)).await);
    assert_eq!((st, code.as_str()), (400, "AccessControlListNotSupported"));
    put("b", Some(ObjectCannedAcl::BucketOwnerFullControl))
        .await
        .unwrap();
    put("c", Some(ObjectCannedAcl::Private)).await.unwrap();
    put("d", None).await.unwrap();
    let (st, code) = fails(
        root.put_bucket_acl()
            .bucket("enforced")
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "AccessControlListNotSupported"));
    root.put_bucket_acl()
        .bucket("enforced")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    let (st, code) = fails(
        root.create_bucket()
            .bucket("born-public")
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "InvalidBucketAclWithObjectOwnership")
    );
    // Created with ObjectWriter, a public bucket ACL is fine.
    root.create_bucket()
        .bucket("born-public")
        .object_ownership(ObjectOwnership::ObjectWriter)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = root
        .get_bucket_acl()
        .bucket("born-public")
        .send()
        .await
        .unwrap();
    let public = acl.grants().iter().any(|g| {
        g.grantee().and_then(|g| g.uri()) == Some(ALL_USERS)
            && g.permission() == Some(&Permission::Read)
            && g.grantee().map(|g| g.r#type()) == Some(&Type::Group)
    });
    assert!(public, "{acl:?}");

    // Once ACLs are enabled, canned ACLs and grants are kept and shown.
    ownership(&root, "enforced", ObjectOwnership::ObjectWriter).await;
    put("e", Some(ObjectCannedAcl::AuthenticatedRead))
        .await
        .unwrap();
    let got = root
        .get_object_acl()
        .bucket("enforced")
        .key("e")
        .send()
        .await
        .unwrap();
    assert_eq!(got.grants().len(), 2);
    assert_eq!(
        got.grants()[1].grantee().unwrap().uri(),
        Some("http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
    );
    // Grants by e-mail are AWS's clear error; canned and grant headers together too.
    let (st, code) = fails(
        root.put_object_acl()
            .bucket("enforced")
            .key("e")
            .grant_read("emailAddress=\"someone@example.com\"")
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "UnresolvableGrantByEmailAddress")
    );
    let (st, code) = fails(
        root.put_object_acl()
            .bucket("enforced")
            .key("e")
            .acl(ObjectCannedAcl::PublicRead)
            .grant_read(format!("uri=\"{ALL_USERS}\""))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidRequest"));

    // Disabling ACLs again needs a private bucket ACL; objects fall back to the owner's.
    let controls = root
        .get_bucket_ownership_controls()
        .bucket("enforced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        controls.ownership_controls().unwrap().rules()[0].object_ownership(),
        &ObjectOwnership::ObjectWriter
    );
    root.delete_bucket_ownership_controls()
        .bucket("enforced")
        .send()
        .await
        .unwrap();
    let (st, code) = fails(
        root.get_bucket_ownership_controls()
            .bucket("enforced")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "OwnershipControlsNotFoundError"));
    ownership(&root, "enforced", ObjectOwnership::BucketOwnerEnforced).await;
    let got = root
        .get_object_acl()
        .bucket("enforced")
        .key("e")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.grants().len(),
        1,
        "ACLs disabled: the owner's full control only"
    );
}

#[tokio::test]
async fn object_acls_per_version_and_owners_in_listings() {
    let (tmp, srv, root) = setup();
    bucket(&root, "shared").await;
    ownership(&root, "shared", ObjectOwnership::ObjectWriter).await;
    set_versioning(&root, "shared", BucketVersioningStatus::Enabled).await;
    let alice = user(&srv, "alice", &["--policy", "readwrite"]);
    let (alice_id, root_id) = (canonical_id(&alice).await, canonical_id(&root).await);

    let v1 = alice
        .put_object()
        .bucket("shared")
        .key("doc")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let v1 = v1.version_id().unwrap().to_string();
    put(&alice, "shared", "doc", b"two".to_vec()).await;
    root.put_object_acl()
        .bucket("shared")
        .key("doc")
        .version_id(&v1)
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl_of = |v: Option<String>| {
        root.get_object_acl()
            .bucket("shared")
            .key("doc")
            .set_version_id(v)
            .send()
    };
    let first = acl_of(Some(v1.clone())).await.unwrap();
    assert_eq!(first.owner().unwrap().id(), Some(alice_id.as_str()));
    assert_eq!(first.grants().len(), 2, "public-read on the first version");
    assert_eq!(
        acl_of(None).await.unwrap().grants().len(),
        1,
        "the current one is private"
    );
    assert_eq!(
        anonymous(&srv, "GET", &format!("shared/doc?versionId={v1}")).0,
        200
    );
    assert_eq!(anonymous(&srv, "GET", "shared/doc").0, 403);

    // BucketOwnerPreferred: bucket-owner-full-control hands the object to the bucket owner.
    ownership(&root, "shared", ObjectOwnership::BucketOwnerPreferred).await;
    alice
        .put_object()
        .bucket("shared")
        .key("given")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(ByteStream::from_static(b"g"))
        .send()
        .await
        .unwrap();
    let up = alice
        .create_multipart_upload()
        .bucket("shared")
        .key("mp")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap();
    let part = alice
        .upload_part()
        .bucket("shared")
        .key("mp")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();

    // Owners as listings show them.
    let v2 = root
        .list_objects_v2()
        .bucket("shared")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner_of = |key: &str| {
        v2.contents()
            .iter()
            .find(|o| o.key() == Some(key))
            .and_then(|o| o.owner())
            .and_then(|o| o.id())
            .map(str::to_string)
    };
    assert_eq!(owner_of("doc").as_deref(), Some(alice_id.as_str()));
    assert_eq!(owner_of("given").as_deref(), Some(root_id.as_str()));
    let v1_list = root.list_objects().bucket("shared").send().await.unwrap();
    let doc = v1_list.contents().iter().find(|o| o.key() == Some("doc"));
    assert_eq!(
        doc.and_then(|o| o.owner()).and_then(|o| o.display_name()),
        Some("alice")
    );
    let versions = root
        .list_object_versions()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let docs: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| v.key() == Some("doc"))
        .map(|v| v.owner().and_then(|o| o.id()).unwrap_or_default())
        .collect();
    assert_eq!(docs, vec![alice_id.as_str(); 2]);
    let uploads = root
        .list_multipart_uploads()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let u = &uploads.uploads()[0];
    assert_eq!(u.owner().and_then(|o| o.id()), Some(alice_id.as_str()));
    assert_eq!(u.initiator().and_then(|o| o.id()), Some(alice_id.as_str()));
    let parts = root
        .list_parts()
        .bucket("shared")
        .key("mp")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.owner().and_then(|o| o.id()), Some(alice_id.as_str()));
    alice
        .complete_multipart_upload()
        .bucket("shared")
        .key("mp")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mp = root
        .get_object_acl()
        .bucket("shared")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        mp.owner().unwrap().id(),
        Some(alice_id.as_str()),
        "kept with the upload"
    );
    drop(tmp);
}

#[tokio::test]
async fn anonymous_access_through_acls_and_the_public_access_block() {
    let (_tmp, srv, root) = setup();
    root.create_bucket()
        .bucket("pub")
        .object_ownership(ObjectOwnership::ObjectWriter)
        .send()
        .await
        .unwrap();
    let put_acl = |key: &'static str, acl: ObjectCannedAcl| {
        root.put_object()
            .bucket("pub")
            .key(key)
            .acl(acl)
            .body(ByteStream::from_static(b"hello"))
            .send()
    };
    put_acl("open", ObjectCannedAcl::PublicRead).await.unwrap();
    put_acl("closed", ObjectCannedAcl::Private).await.unwrap();
    assert_eq!(anonymous(&srv, "GET", "pub/open").0, 200);
    assert_eq!(anonymous(&srv, "GET", "pub/closed").0, 403);
    assert_eq!(
        anonymous(&srv, "GET", "pub").0,
        403,
        "the bucket is not listable"
    );
    // Without list permission a missing key is 403; with it (public-read bucket), 404.
    assert_eq!(anonymous(&srv, "GET", "pub/missing").0, 403);

    let (st, code) = fails(root.get_public_access_block().bucket("pub").send().await);
    assert_eq!(
        (st, code.as_str()),
        (404, "NoSuchPublicAccessBlockConfiguration")
    );
    let block = |acls: bool, ignore: bool, policy: bool, restrict: bool| {
        root.put_public_access_block()
            .bucket("pub")
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(acls)
                    .ignore_public_acls(ignore)
                    .block_public_policy(policy)
                    .restrict_public_buckets(restrict)
                    .build(),
            )
            .send()
    };
    // IgnorePublicAcls: public grants stop counting, and count again once lifted.
    block(false, true, false, false).await.unwrap();
    let got = root
        .get_public_access_block()
        .bucket("pub")
        .send()
        .await
        .unwrap();
    let c = got.public_access_block_configuration().unwrap();
    assert_eq!(
        (c.block_public_acls(), c.ignore_public_acls()),
        (Some(false), Some(true))
    );
    assert_eq!(anonymous(&srv, "GET", "pub/open").0, 403);
    root.delete_public_access_block()
        .bucket("pub")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous(&srv, "GET", "pub/open").0, 200);

    // public-read-write: anyone lists and writes.
    root.put_bucket_acl()
        .bucket("pub")
        .acl(BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous(&srv, "GET", "pub").0, 200);
    assert_eq!(anonymous(&srv, "GET", "pub/missing").0, 404);
    assert_eq!(anonymous(&srv, "PUT", "pub/dropped").0, 200);
    assert_eq!(keys(&root, "pub").await, ["closed", "dropped", "open"]);

    // BlockPublicAcls: public ACLs are refused on every write, private ones are fine.
    block(true, false, false, false).await.unwrap();
    let (st, code) = fails(put_acl("new", ObjectCannedAcl::PublicRead).await);
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));
    put_acl("new", ObjectCannedAcl::Private).await.unwrap();
    let (st, _) = fails(
        root.put_bucket_acl()
            .bucket("pub")
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
    );
    assert_eq!(st, 403);
    let (st, _) = fails(
        root.put_object_acl()
            .bucket("pub")
            .key("closed")
            .grant_read(format!("uri=\"{ALL_USERS}\""))
            .send()
            .await,
    );
    assert_eq!(st, 403);
    // Existing public ACLs still work (that is IgnorePublicAcls' job).
    assert_eq!(anonymous(&srv, "GET", "pub/open").0, 200);

    // Explicit deny in a bucket policy beats an ACL's grant.
    let deny = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::pub/open"}]});
    root.put_bucket_policy()
        .bucket("pub")
        .policy(deny.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous(&srv, "GET", "pub/open").0, 403);

    // A public policy: BlockPublicPolicy refuses it; RestrictPublicBuckets stops it
    // granting anonymous callers anything.
    let public = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::pub/closed"}]});
    block(false, false, true, false).await.unwrap();
    let (st, code) = fails(
        root.put_bucket_policy()
            .bucket("pub")
            .policy(public.to_string())
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));
    block(false, false, false, false).await.unwrap();
    root.put_bucket_policy()
        .bucket("pub")
        .policy(public.to_string())
        .send()
        .await
        .unwrap();
    let status = root
        .get_bucket_policy_status()
        .bucket("pub")
        .send()
        .await
        .unwrap();
    assert_eq!(status.policy_status().unwrap().is_public(), Some(true));
    assert_eq!(anonymous(&srv, "GET", "pub/closed").0, 200);
    block(false, false, false, true).await.unwrap();
    assert_eq!(anonymous(&srv, "GET", "pub/closed").0, 403);
}

/// Outside us-east-1 re-creating your own bucket is 409 BucketAlreadyOwnedByYou (the
/// 200 answer is us-east-1's legacy alone).
#[tokio::test]
async fn outside_us_east_1_your_own_bucket_is_already_owned_by_you() {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--region=eu-west-1".into()];
    srv.start();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(srv.endpoint())
        .credentials_provider(Credentials::new(
            &srv.access_key,
            &srv.secret_key,
            None,
            None,
            "cybs3-tests",
        ))
        .force_path_style(true)
        .build();
    let c = Client::from_conf(config);
    let create = || {
        c.create_bucket()
            .bucket("mine")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
    };
    create().await.unwrap();
    let (st, code) = fails(create().await);
    assert_eq!((st, code.as_str()), (409, "BucketAlreadyOwnedByYou"));
}
