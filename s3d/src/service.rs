//! The s3s service: configuration, and the `S3` trait as a thin dispatch to the
//! operation modules. Operations not listed answer NotImplemented (s3s' default).

use crate::acl::object_acl_requested;
use crate::archive;
use crate::config::ServerConfig;
use crate::ctx::Cybs3;
use crate::identity::auth::{Caller, Identities};
use crate::identity::iam::Iam;
use crate::identity::{bucket_policy, sts};
use crate::ignored_range::IgnoredRange;
use crate::notify;
use crate::replication;
use crate::routes::Routes;
use crate::site::proxy::{self, Asked};
use crate::vhost::Domains;
use crate::{
    acl, attributes, bucket_config, buckets, copy, cors, delete, inventory, lifecycle, list,
    multipart, object_lock, objects, ownership, post, public_access, select, sse, tagging,
    versioning,
};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Request, S3Response, S3Result, S3};

pub(crate) fn build(
    cfg: &ServerConfig,
    store: engine::Store,
    domains: &Domains,
) -> anyhow::Result<S3Service> {
    let iam = Iam::new(store.clone(), &cfg.server_key);
    let identities = Identities::new(
        &cfg.access_key,
        &cfg.secret_key,
        iam.clone(),
        cfg.live.clone(),
    );
    let remotes = crate::remotes::Remotes::new(store.clone(), &cfg.server_key);
    let ctx = Cybs3 {
        notify: crate::notify::Targets::new(store.clone(), &cfg.server_key, &cfg.region),
        remotes: remotes.clone(),
        peers: proxy::Peers::new(store.clone(), remotes.clone()),
        store: store.clone(),
        region: cfg.region.clone(),
        iam,
        lifecycle_day_secs: cfg.lifecycle.day_secs,
        anomalies: cfg.anomalies.clone(),
    };
    crate::batch::spawn(crate::batch::Exec {
        deliverer: crate::notify::Deliverer::new(
            tokio::runtime::Handle::current(),
            ctx.notify.clone(),
            &cfg.region,
        )
        .map_err(|e| anyhow::anyhow!("cannot start batch jobs' webhooks: {}", e.0))?,
        ctx: ctx.clone(),
        identities: identities.clone(),
    });
    // The same service without routes serves GET/HEAD again once an unusable Range is gone.
    let plain = builder(ctx.clone(), domains, &identities).build();
    let control = crate::batch::Control {
        identities: identities.clone(),
        targets: ctx.notify.clone(),
    };
    let mut b = builder(ctx, domains, &identities);
    b.set_route(Routes {
        control,
        sts: sts::Sts {
            identities,
            live: cfg.live.clone(),
            min_duration: cfg.sts_min_duration,
            allow_insecure_login: cfg.allow_insecure_login,
        },
        range: IgnoredRange { plain },
        site: crate::site::api::SiteApi {
            sites: crate::site::Sites::new(
                store,
                &cfg.server_key,
                (cfg.access_key.clone(), cfg.secret_key.clone()),
                &cfg.region,
                (cfg.listen, cfg.tls.is_some()),
            ),
        },
    });
    Ok(b.build())
}

fn builder(ctx: Cybs3, domains: &Domains, identities: &Identities) -> S3ServiceBuilder {
    let mut b = S3ServiceBuilder::new(ctx);
    // s3s reads a POST form's file whole into memory before our handler runs, so
    // browser-form uploads are capped; larger objects go through PUT or multipart.
    let mut config = s3s::config::S3Config::default();
    config.post_object_max_file_size = post::MAX_FILE_SIZE;
    b.set_config(std::sync::Arc::new(s3s::config::StaticConfigProvider::new(
        std::sync::Arc::new(config),
    )));
    // Anonymous requests get only what a bucket policy or an ACL grants everyone.
    b.set_auth(identities.clone());
    b.set_access(identities.clone());
    // Without domains s3s stays path-style only.
    if !domains.is_empty() {
        b.set_host(domains.clone());
    }
    b
}

type Res<T> = S3Result<S3Response<T>>;

/// The owner and ACL a write gives the new version, from its headers.
async fn object_acl(
    s: &Cybs3,
    extensions: &hyper::http::Extensions,
    bucket: &str,
    asked: acl::AclRequest,
) -> S3Result<engine::Acl> {
    acl::for_new_object(s, extensions, bucket, &asked).await
}

#[async_trait::async_trait]
impl S3 for Cybs3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> Res<CreateBucketOutput> {
        let caller = Caller::of(&req.extensions)?;
        buckets::create(self, req.input, caller)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> Res<DeleteBucketOutput> {
        buckets::delete(self, req.input).await.map(S3Response::new)
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> Res<HeadBucketOutput> {
        buckets::head(self, req.input).await.map(S3Response::new)
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> Res<ListBucketsOutput> {
        buckets::list(self, req.input, &req.extensions)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> Res<GetBucketLocationOutput> {
        buckets::location(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> Res<PutObjectOutput> {
        // The trailer handle is filled by s3s only once the body has been read.
        let trailers = req.trailing_headers.clone();
        let acl = object_acl(
            self,
            &req.extensions,
            &req.input.bucket,
            object_acl_requested!(req.input),
        )
        .await?;
        let may_travel = sse::key_may_travel(&req.extensions);
        objects::put(self, req.input, trailers, acl, may_travel)
            .await
            .map(S3Response::new)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> Res<GetObjectOutput> {
        let i = &req.input;
        let asked = Asked::new(
            &req.headers,
            (&i.bucket, &i.key),
            i.version_id.as_deref(),
            i.part_number,
        );
        match objects::get(self, req.input, &req.extensions).await {
            // The global namespace: what this site lacks, a peer may have.
            Err(e) if proxy::missed(&e) => match self.peers.get(&asked).await {
                Some(found) => Ok(proxy::answer(found)),
                None => Err(e),
            },
            done => done.map(S3Response::new),
        }
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> Res<HeadObjectOutput> {
        let i = &req.input;
        let asked = Asked::new(
            &req.headers,
            (&i.bucket, &i.key),
            i.version_id.as_deref(),
            i.part_number,
        );
        // Returns the response itself: HEAD carries a header the output cannot (tag count).
        match objects::head(self, req.input, &req.extensions).await {
            Err(e) if proxy::missed(&e) => match self.peers.head(&asked).await {
                Some(found) => Ok(proxy::answer(found)),
                None => Err(e),
            },
            done => done,
        }
    }

    async fn select_object_content(
        &self,
        req: S3Request<SelectObjectContentInput>,
    ) -> Res<SelectObjectContentOutput> {
        select::select(self, req.input, &req.extensions)
            .await
            .map(S3Response::new)
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> Res<GetObjectAttributesOutput> {
        attributes::get(self, req.input).await.map(S3Response::new)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> Res<DeleteObjectOutput> {
        delete::one(self, req.input).await.map(S3Response::new)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> Res<ListObjectsV2Output> {
        let metadata = list::wants_metadata(req.uri.query());
        list::objects_v2(self, req.input, metadata).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> Res<ListObjectsOutput> {
        list::objects_v1(self, req.input).await.map(S3Response::new)
    }

    /// Browser form uploads (POST policy); s3s' default would hand them to `put_object`
    /// without our policy checks or `${filename}`.
    async fn post_object(&self, req: S3Request<PostObjectInput>) -> Res<PostObjectOutput> {
        post::object(self, req).await
    }

    // Versioning, bucket configuration.

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> Res<PutBucketVersioningOutput> {
        versioning::put_config(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> Res<GetBucketVersioningOutput> {
        versioning::get_config(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> Res<ListObjectVersionsOutput> {
        versioning::list(self, req.input).await.map(S3Response::new)
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> Res<PutBucketTaggingOutput> {
        bucket_config::put_tagging(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> Res<PutBucketPolicyOutput> {
        bucket_policy::put(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> Res<GetBucketPolicyOutput> {
        bucket_policy::get(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> Res<DeleteBucketPolicyOutput> {
        bucket_policy::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> Res<GetBucketPolicyStatusOutput> {
        bucket_policy::status(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn restore_object(&self, req: S3Request<RestoreObjectInput>) -> Res<RestoreObjectOutput> {
        archive::restore(self, req.input).await
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> Res<PutBucketLifecycleConfigurationOutput> {
        lifecycle::put(self, req.input).await.map(S3Response::new)
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> Res<GetBucketLifecycleConfigurationOutput> {
        lifecycle::get(self, req.input).await.map(S3Response::new)
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> Res<DeleteBucketLifecycleOutput> {
        lifecycle::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> Res<PutBucketNotificationConfigurationOutput> {
        notify::config::put(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> Res<GetBucketNotificationConfigurationOutput> {
        notify::config::get(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_inventory_configuration(
        &self,
        req: S3Request<PutBucketInventoryConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketInventoryConfigurationOutput>> {
        inventory::put(self, req.input).await.map(S3Response::new)
    }

    async fn get_bucket_inventory_configuration(
        &self,
        req: S3Request<GetBucketInventoryConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketInventoryConfigurationOutput>> {
        inventory::get(self, req.input).await.map(S3Response::new)
    }

    async fn list_bucket_inventory_configurations(
        &self,
        req: S3Request<ListBucketInventoryConfigurationsInput>,
    ) -> S3Result<S3Response<ListBucketInventoryConfigurationsOutput>> {
        inventory::list(self, req.input).await.map(S3Response::new)
    }

    async fn delete_bucket_inventory_configuration(
        &self,
        req: S3Request<DeleteBucketInventoryConfigurationInput>,
    ) -> S3Result<S3Response<DeleteBucketInventoryConfigurationOutput>> {
        inventory::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> Res<PutBucketReplicationOutput> {
        replication::config::put(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> Res<GetBucketReplicationOutput> {
        replication::config::get(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket_replication(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> Res<DeleteBucketReplicationOutput> {
        replication::config::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> Res<GetBucketTaggingOutput> {
        bucket_config::get_tagging(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> Res<PutBucketEncryptionOutput> {
        sse::put_bucket_encryption(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> Res<GetBucketEncryptionOutput> {
        sse::get_bucket_encryption(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> Res<DeleteBucketEncryptionOutput> {
        sse::delete_bucket_encryption(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> Res<DeleteBucketTaggingOutput> {
        bucket_config::delete_tagging(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> Res<PutBucketCorsOutput> {
        cors::put(self, req.input).await.map(S3Response::new)
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> Res<GetBucketCorsOutput> {
        cors::get(self, req.input).await.map(S3Response::new)
    }

    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> Res<GetBucketAclOutput> {
        acl::get_bucket(self, req.input).await.map(S3Response::new)
    }

    async fn put_bucket_acl(&self, req: S3Request<PutBucketAclInput>) -> Res<PutBucketAclOutput> {
        acl::put_bucket(self, req.input).await.map(S3Response::new)
    }

    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> Res<GetObjectAclOutput> {
        acl::get_object(self, req.input).await.map(S3Response::new)
    }

    async fn put_object_acl(&self, req: S3Request<PutObjectAclInput>) -> Res<PutObjectAclOutput> {
        acl::put_object(self, req.input).await.map(S3Response::new)
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> Res<PutBucketOwnershipControlsOutput> {
        ownership::put(self, req.input).await.map(S3Response::new)
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> Res<GetBucketOwnershipControlsOutput> {
        ownership::get(self, req.input).await.map(S3Response::new)
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> Res<DeleteBucketOwnershipControlsOutput> {
        ownership::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> Res<PutPublicAccessBlockOutput> {
        public_access::put(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> Res<GetPublicAccessBlockOutput> {
        public_access::get(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> Res<DeletePublicAccessBlockOutput> {
        public_access::delete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> Res<DeleteBucketCorsOutput> {
        cors::delete(self, req.input).await.map(S3Response::new)
    }

    // Multipart uploads, copies, batch deletes, object tagging.

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> Res<CreateMultipartUploadOutput> {
        let acl = object_acl(
            self,
            &req.extensions,
            &req.input.bucket,
            object_acl_requested!(req.input),
        )
        .await?;
        let may_travel = sse::key_may_travel(&req.extensions);
        multipart::create(self, req.input, acl, may_travel)
            .await
            .map(S3Response::new)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> Res<UploadPartOutput> {
        // As for PutObject: trailers are filled in only once the body has been read.
        let trailers = req.trailing_headers.clone();
        let may_travel = sse::key_may_travel(&req.extensions);
        multipart::upload_part(self, req.input, trailers, may_travel)
            .await
            .map(S3Response::new)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> Res<UploadPartCopyOutput> {
        let may_travel = sse::key_may_travel(&req.extensions);
        copy::upload_part_copy(self, req.input, may_travel)
            .await
            .map(S3Response::new)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> Res<CompleteMultipartUploadOutput> {
        let host = req
            .headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        multipart::complete(self, req.input, host)
            .await
            .map(S3Response::new)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> Res<AbortMultipartUploadOutput> {
        multipart::abort(self, req.input).await.map(S3Response::new)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> Res<ListMultipartUploadsOutput> {
        multipart::list_uploads(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> Res<ListPartsOutput> {
        multipart::list_parts(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> Res<CopyObjectOutput> {
        let acl = object_acl(
            self,
            &req.extensions,
            &req.input.bucket,
            object_acl_requested!(req.input),
        )
        .await?;
        let may_travel = sse::key_may_travel(&req.extensions);
        copy::copy_object(self, req.input, acl, may_travel)
            .await
            .map(S3Response::new)
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> Res<DeleteObjectsOutput> {
        delete::many(self, req.input, &req.headers)
            .await
            .map(S3Response::new)
    }

    // Object lock.

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> Res<PutObjectLockConfigurationOutput> {
        object_lock::put_config(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> Res<GetObjectLockConfigurationOutput> {
        object_lock::get_config(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> Res<PutObjectRetentionOutput> {
        object_lock::put_retention(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> Res<GetObjectRetentionOutput> {
        object_lock::get_retention(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> Res<PutObjectLegalHoldOutput> {
        object_lock::put_legal_hold(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> Res<GetObjectLegalHoldOutput> {
        object_lock::get_legal_hold(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> Res<PutObjectTaggingOutput> {
        tagging::put(self, req.input).await.map(S3Response::new)
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> Res<GetObjectTaggingOutput> {
        tagging::get(self, req.input).await.map(S3Response::new)
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> Res<DeleteObjectTaggingOutput> {
        tagging::delete(self, req.input).await.map(S3Response::new)
    }
}
