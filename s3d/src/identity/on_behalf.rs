//! Requests the server makes on a user's behalf: a batch job's tasks run with the rights
//! of the job's creator, decided by the same evaluation as the creator's own requests
//! (identity policies, bucket policy, ACLs).

use crate::identity::auth::{store_failed, Ask, Caller, Identities};
use crate::identity::decide::request_keys;
use s3s::S3Result;
use std::net::{IpAddr, Ipv4Addr};

impl Identities {
    /// The caller a job's creator stands for now (`root`, or a local user with the
    /// policies it holds now); `None` once the user is gone.
    pub(crate) fn caller_named(&self, user: &str) -> S3Result<Option<Caller>> {
        if user == "root" {
            return Ok(Some(Caller::Root));
        }
        let policies = self.iam.user_policies(user).map_err(store_failed)?;
        Ok(policies.map(|policies| Caller::User {
            name: user.to_string(),
            policies,
            session: false,
        }))
    }

    /// Whether `caller` may make request `op` (an S3 operation name) on `bucket`/`key`
    /// (and `version`) with `headers` (their condition keys, such as the encryption a
    /// copy asks for, are set as the creator's own request would set them). The server
    /// makes the request, so `aws:SourceIp` is loopback and `aws:SecureTransport` false;
    /// the decision is logged like a request's.
    pub(crate) fn allows(
        &self,
        caller: &Caller,
        op: &str,
        (bucket, key, version): (&str, Option<&str>, Option<&str>),
        headers: &hyper::HeaderMap,
    ) -> S3Result<bool> {
        let ask = Ask {
            op: op.to_string(),
            bucket: Some(bucket.to_string()),
            key: key.map(str::to_string),
            query: version
                .map(|v| vec![("versionId".to_string(), v.to_string())])
                .unwrap_or_default(),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secure: false,
            keys: request_keys(op, headers),
            trail: None,
        };
        Ok(self.may(caller, &ask)?.allowed)
    }
}

impl Identities {
    /// Who signed an S3 Control request (its signature verified by s3s): the user a job
    /// it makes runs as. Root, local users and their sessions make jobs; bucket keys,
    /// directory logins (whose policies live only in their session) and anonymous
    /// callers do not.
    pub(crate) async fn job_creator(
        &self,
        access_key: Option<&str>,
        headers: &hyper::HeaderMap,
        uri: &hyper::Uri,
    ) -> S3Result<String> {
        use crate::identity::auth::Signer;
        use crate::identity::keys::Owner;
        let refused = |who: &str| {
            s3s::s3_error!(
                AccessDenied,
                "batch jobs are made by root or local users, not by {who}"
            )
        };
        match self.signer(access_key, headers, uri).await? {
            Signer::Root => Ok("root".into()),
            Signer::Key(Owner::User(name)) => Ok(name),
            Signer::Key(Owner::Session(s)) => match s.local_user() {
                Some(u) => Ok(u.to_string()),
                None => Err(refused("directory logins")),
            },
            Signer::Key(Owner::Bucket(_)) => Err(refused("bucket keys")),
            Signer::Anonymous => Err(refused("anonymous callers")),
        }
    }
}
