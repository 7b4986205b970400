//! What sites say to each other, and how: a signed request to `/?x-cybs3-site=KIND` on
//! the peer's S3 port, with the peer's root keys, whose body (and answer) is JSON sealed
//! with ChaCha20-Poly1305 under a key derived from the receiving site's root secret.
//! Both ends know that secret (the sender was given it by `admin site add`), so the
//! secrets the messages carry (peers' keys, users' access keys) never cross the network
//! in clear, even over plain HTTP.
//!
//! The calls go through aws-sdk-s3 (GetObject for a question, PutObject for a message)
//! with the request's path rewritten before it is signed: the same client, TLS and
//! retries as every other call to a remote.

use crate::remotes::NewRemote;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The query parameter that makes a request a site's.
pub(crate) const QUERY: &str = "x-cybs3-site";
/// Binds a sealed message to its use.
const AAD: &[u8] = b"cybs3 site message";
/// The longest one message may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Who are you? Answered with a [`Hello`].
    Hello,
    /// You are in a group with these sites: a [`Join`].
    Join,
    /// A bucket's state (`engine::BucketState`).
    Bucket,
    /// A server record's state (`engine::RecordState`).
    Record,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::Join => "join",
            Kind::Bucket => "bucket",
            Kind::Record => "record",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        [Kind::Hello, Kind::Join, Kind::Bucket, Kind::Record]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// A site's answer to `hello`: its name and peers, if it is in a group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub name: Option<String>,
    pub peers: Vec<String>,
}

/// "You are `you` in a group with `members`" (the receiver adds those it lacks).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Join {
    pub you: String,
    /// How to reach each member: a remote named after the site.
    pub members: Vec<NewRemote>,
    /// The server-record namespaces the group replicates.
    pub namespaces: Vec<String>,
}

/// The key messages to the site with this root secret are sealed under.
fn transport_key(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cybs3 site transport\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// `msg` sealed for the site whose root secret is `secret`.
pub(crate) fn seal<T: Serialize>(secret: &str, msg: &T) -> Vec<u8> {
    let json = serde_json::to_string(msg).expect("a site message serializes");
    crate::sealed::seal(&transport_key(secret), AAD, &json)
}

/// A message sealed for the site whose root secret is `secret`; `None` if it was
/// sealed for another or damaged.
pub(crate) fn open<T: DeserializeOwned>(secret: &str, body: &[u8]) -> Option<T> {
    let json = crate::sealed::open(&transport_key(secret), AAD, body)?;
    serde_json::from_str(&json).ok()
}

/// The key a transported secret (an access key's) is sealed under for the site whose
/// root secret is `secret`.
pub(crate) fn secret_key_for(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cybs3 site access keys\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Rewrites a request to `/?x-cybs3-site=KIND` on its endpoint, before it is signed.
fn to_site(kind: Kind) -> impl Fn(&mut aws_sdk_s3::config::http::HttpRequest) + Send + Sync {
    move |req| {
        let uri: hyper::Uri = req.uri().parse().expect("the SDK's URI parses");
        let scheme = uri.scheme_str().unwrap_or("http");
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let to = format!("{scheme}://{authority}/?{QUERY}={}", kind.name());
        req.set_uri(to).expect("a site URI is valid");
    }
}

/// Why a message was not delivered.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No answer, or the peer is busy: worth another try.
    Unreachable(String),
    /// The peer refused it.
    Refused(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unreachable(e) | SendError::Refused(e) => f.write_str(e),
        }
    }
}

fn sorted<E>(e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> SendError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = crate::remote::error_text(&e);
    match &e {
        aws_sdk_s3::error::SdkError::ServiceError(se) if se.raw().status().as_u16() < 500 => {
            SendError::Refused(text)
        }
        _ => SendError::Unreachable(text),
    }
}

/// Sends `msg` to the site `client` reaches, whose root secret is `secret`.
pub(crate) async fn send<T: Serialize>(
    client: &Client,
    secret: &str,
    kind: Kind,
    msg: &T,
) -> Result<(), SendError> {
    let asked = client
        .put_object()
        .bucket("site")
        .key("message")
        .body(ByteStream::from(seal(secret, msg)))
        .customize()
        .mutate_request(to_site(kind))
        .send();
    match tokio::time::timeout(TIMEOUT, asked).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(sorted(e)),
        Err(_) => Err(SendError::Unreachable(format!(
            "no answer within {TIMEOUT:?}"
        ))),
    }
}

/// Asks the site `client` reaches its [`Hello`], within `timeout`.
pub(crate) async fn hello(
    client: &Client,
    secret: &str,
    timeout: Duration,
) -> Result<Hello, SendError> {
    let asked = async {
        let out = client
            .get_object()
            .bucket("site")
            .key("hello")
            .customize()
            .mutate_request(to_site(Kind::Hello))
            .send()
            .await
            .map_err(sorted)?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| SendError::Unreachable(e.to_string()))?;
        open(secret, &body.into_bytes()).ok_or_else(|| {
            SendError::Refused("the answer is not sealed with the keys given for it".into())
        })
    };
    match tokio::time::timeout(timeout, asked).await {
        Ok(answer) => answer,
        Err(_) => Err(SendError::Unreachable(format!(
            "no answer within {timeout:?}"
        ))),
    }
}
