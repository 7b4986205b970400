//! Server-side encryption a vault asks for on every upload (`vaults add --sse`): the
//! server then encrypts what it stores as well, on top of an encrypted vault's own age
//! layer (double encryption), or alone for a plain vault.
//!
//! The headers are added to every PutObject, CopyObject and CreateMultipartUpload the
//! vault's client sends, by one interceptor, so no upload path can leave them out. Parts
//! of a multipart upload carry none: S3 encrypts them as their upload says.

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use serde::{Deserialize, Serialize};

/// The server-side encryption a vault asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sse {
    /// `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
    pub algorithm: String,
    /// The KMS key of `aws:kms` (the server's default key when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl Sse {
    /// Checks what `vaults add --sse` was given.
    pub fn new(algorithm: &str, kms_key: Option<String>) -> Result<Sse, String> {
        match algorithm {
            "AES256" if kms_key.is_some() => {
                Err("--sse-kms-key goes with --sse aws:kms".to_string())
            }
            "AES256" | "aws:kms" => Ok(Sse {
                algorithm: algorithm.to_string(),
                kms_key,
            }),
            other => Err(format!("--sse {other}: use AES256 or aws:kms")),
        }
    }
}

/// Adds the vault's SSE headers to the requests that store an object.
#[derive(Debug)]
pub(crate) struct SseHeaders(pub Sse);

/// Whether a request stores a new object (its query says which operation it is).
fn stores_an_object(method: &str, query: &str) -> bool {
    let has = |p: &str| query.split('&').any(|kv| kv == p);
    match method {
        "PUT" => has("x-id=PutObject") || has("x-id=CopyObject"),
        "POST" => has("uploads"),
        _ => false,
    }
}

impl Intercept for SseHeaders {
    fn name(&self) -> &'static str {
        "cybs3-sse-headers"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        let query = req.uri().split_once('?').map_or("", |(_, q)| q).to_string();
        if !stores_an_object(req.method(), &query) {
            return Ok(());
        }
        let headers = req.headers_mut();
        headers.insert("x-amz-server-side-encryption", self.0.algorithm.clone());
        if let Some(key) = &self.0.kms_key {
            headers.insert("x-amz-server-side-encryption-aws-kms-key-id", key.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_store_an_object_carry_the_headers() {
        assert!(stores_an_object("PUT", "x-id=PutObject"));
        assert!(stores_an_object("PUT", "x-id=CopyObject"));
        assert!(stores_an_object("POST", "uploads"));
        assert!(!stores_an_object(
            "PUT",
            "partNumber=1&uploadId=u&x-id=UploadPart"
        ));
        assert!(!stores_an_object("GET", "uploads"));
        assert!(!stores_an_object("PUT", "tagging"));
        assert!(!stores_an_object("POST", "uploadId=u"));
    }

    #[test]
    fn only_known_algorithms_are_taken() {
        assert!(Sse::new("aws:kms", Some("k".into())).is_ok());
        assert!(Sse::new("AES256", Some("k".into())).is_err());
        assert!(Sse::new("aes", None).is_err());
    }
}
