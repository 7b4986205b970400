//! The s3s service: configuration, and the `S3` trait as a thin dispatch to the
//! operation modules. Operations not listed answer NotImplemented (s3s' default).

use crate::{auth::RootAuth, buckets, errors, list, objects, ServerConfig};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

/// What every operation needs: the store and the server's region.
#[derive(Clone)]
pub(crate) struct Cybs3 {
    pub store: engine::Store,
    pub region: String,
}

pub(crate) fn build(cfg: &ServerConfig, store: engine::Store) -> S3Service {
    let mut b = S3ServiceBuilder::new(Cybs3 {
        store,
        region: cfg.region.clone(),
    });
    // With auth set and no access policy, s3s refuses anonymous requests (AccessDenied).
    b.set_auth(RootAuth::new(&cfg.access_key, &cfg.secret_key));
    b.build()
}

/// Run a synchronous engine call on a blocking thread and map its error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> engine::Result<T> + Send + 'static,
) -> S3Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(errors::from_engine),
        Err(e) => {
            tracing::error!("engine task failed: {e}");
            Err(errors::internal(
                "We encountered an internal error. Please try again.",
            ))
        }
    }
}

type Res<T> = S3Result<S3Response<T>>;

#[async_trait::async_trait]
impl S3 for Cybs3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> Res<CreateBucketOutput> {
        buckets::create(self, req.input).await.map(S3Response::new)
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> Res<DeleteBucketOutput> {
        buckets::delete(self, req.input).await.map(S3Response::new)
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> Res<HeadBucketOutput> {
        buckets::head(self, req.input).await.map(S3Response::new)
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> Res<ListBucketsOutput> {
        buckets::list(self).await.map(S3Response::new)
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
        objects::put(self, req.input, trailers)
            .await
            .map(S3Response::new)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> Res<GetObjectOutput> {
        objects::get(self, req.input).await.map(S3Response::new)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> Res<HeadObjectOutput> {
        objects::head(self, req.input).await.map(S3Response::new)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> Res<DeleteObjectOutput> {
        objects::delete(self, req.input).await.map(S3Response::new)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> Res<ListObjectsV2Output> {
        list::objects_v2(self, req.input).await.map(S3Response::new)
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> Res<ListObjectsOutput> {
        list::objects_v1(self, req.input).await.map(S3Response::new)
    }

    /// Browser form uploads (POST policy) stay off until they are checked end to end;
    /// s3s would otherwise route them into `put_object` by default.
    async fn post_object(&self, _req: S3Request<PostObjectInput>) -> Res<PostObjectOutput> {
        Err(s3_error!(
            NotImplemented,
            "POST object uploads are not supported yet"
        ))
    }
}
