//! Who signed a request (the secret s3s verifies against) and what they may touch.
//!
//! Two kinds of identity for now: the root credentials (everything) and per-bucket
//! access keys (their bucket's objects and settings, but not creating or deleting
//! buckets). Users and IAM policies come later on the same two hooks.

use crate::keys::Keyring;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{s3_error, S3Request, S3Result};

#[derive(Clone)]
pub(crate) struct Identities {
    root_access_key: String,
    root_secret_key: String,
    keyring: Keyring,
}

/// What an authenticated caller may reach.
pub(crate) enum Scope {
    All,
    Bucket(String),
}

impl Identities {
    pub(crate) fn new(root_access_key: &str, root_secret_key: &str, keyring: Keyring) -> Self {
        Identities {
            root_access_key: root_access_key.to_string(),
            root_secret_key: root_secret_key.to_string(),
            keyring,
        }
    }

    /// The scope of a signed request's key; `None` (deny) for anonymous or unknown keys.
    pub(crate) fn scope(&self, credentials: Option<&s3s::auth::Credentials>) -> Option<Scope> {
        let ak = &credentials?.access_key;
        if *ak == self.root_access_key {
            return Some(Scope::All);
        }
        match self.keyring.lookup(ak) {
            Ok(Some((_, bucket))) => Some(Scope::Bucket(bucket)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!("access key lookup failed: {e}");
                None
            }
        }
    }
}

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

fn unknown_key() -> s3s::S3Error {
    // What AWS answers for a key it does not know (s3s' SimpleAuth says NotSignedUp).
    s3_error!(
        InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records."
    )
}

#[async_trait::async_trait]
impl S3Auth for Identities {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root_access_key {
            return Ok(SecretKey::from(self.root_secret_key.as_str()));
        }
        match self.keyring.lookup(access_key) {
            Ok(Some((secret, _))) => Ok(SecretKey::from(secret)),
            Ok(None) => Err(unknown_key()),
            Err(e) => {
                tracing::error!("access key lookup failed: {e}");
                Err(crate::errors::internal(
                    "We encountered an internal error. Please try again.",
                ))
            }
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Identities {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        let bucket = match self.scope(cx.credentials()).ok_or_else(denied)? {
            Scope::All => return Ok(()),
            Scope::Bucket(b) => b,
        };
        let op = cx.s3_op().name();
        let allowed = match cx.s3_path() {
            // ListBuckets answers with the key's own bucket only (see service.rs).
            S3Path::Root => op == "ListBuckets",
            S3Path::Bucket { bucket: b } => {
                **b == *bucket && op != "CreateBucket" && op != "DeleteBucket"
            }
            S3Path::Object { bucket: b, .. } => **b == *bucket,
        };
        if allowed {
            Ok(())
        } else {
            Err(denied())
        }
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(req.credentials.as_ref(), &req.input.copy_source)
    }
}

impl Identities {
    /// A bucket key may copy only from its own bucket.
    fn check_copy_source(
        &self,
        credentials: Option<&s3s::auth::Credentials>,
        source: &CopySource,
    ) -> S3Result<()> {
        match (self.scope(credentials), source) {
            (Some(Scope::All), _) => Ok(()),
            (Some(Scope::Bucket(b)), CopySource::Bucket { bucket, .. }) if **bucket == *b => Ok(()),
            _ => Err(denied()),
        }
    }
}
