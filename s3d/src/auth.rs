//! The secret keys s3s verifies signatures with.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

/// The root credentials: the only identity until users and policies exist.
pub(crate) struct RootAuth {
    access_key: String,
    secret_key: String,
}

impl RootAuth {
    pub(crate) fn new(access_key: &str, secret_key: &str) -> RootAuth {
        RootAuth {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(SecretKey::from(self.secret_key.as_str()))
        } else {
            // What AWS answers for a key it does not know (s3s' SimpleAuth says NotSignedUp).
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}
