//! The global namespace: a GET or HEAD of an object this site does not have (yet) is
//! answered by a peer that has it, through this site, so one endpoint is enough for a
//! client of the group. Site affinity: an object found here is always served here, and a
//! delete marker here is an answer too (it is this site's newest knowledge of the key).
//!
//! The peer is asked with its root keys, the request's range, part and conditional
//! headers, and [`PROXIED`], which makes the peer answer from its own data only: a miss
//! never travels on, so proxying cannot loop. The body streams through, and the answer
//! names the peer ([`SERVED_BY`]).

use crate::remotes::Remotes;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use bytes::Bytes;
use engine::{remote_name, Store};
use hyper::HeaderMap;
use s3s::dto::{
    ETag, GetObjectOutput, HeadObjectOutput, Metadata, StorageClass, StreamingBlob, Timestamp,
};
use s3s::{S3Error, S3ErrorCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header that marks a site's request of another for the global namespace.
pub(crate) const PROXIED: &str = "x-cybs3-proxied";
/// The header of an answer that came from a peer: the peer's name.
pub(crate) const SERVED_BY: &str = "x-cybs3-served-by";
/// How long a peer may take to start answering.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The request headers that go with a proxied read.
const FORWARDED: &[&str] = &[
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// A read to ask of the peers.
pub(crate) struct Asked {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub part_number: Option<i32>,
    headers: Vec<(String, String)>,
    /// A peer's proxied read, or one whose key is the client's (SSE-C): answered here.
    local_only: bool,
}

impl Asked {
    pub(crate) fn new(
        headers: &HeaderMap,
        (bucket, key): (&str, &str),
        version_id: Option<&str>,
        part_number: Option<i32>,
    ) -> Asked {
        let forwarded = FORWARDED
            .iter()
            .filter_map(|h| {
                let v = headers.get(*h)?.to_str().ok()?;
                Some((h.to_string(), v.to_string()))
            })
            .collect();
        let sse_c = headers.contains_key("x-amz-server-side-encryption-customer-key");
        Asked {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            part_number,
            headers: forwarded,
            local_only: headers.contains_key(PROXIED) || sse_c,
        }
    }
}

/// Whether a read's error is a miss a peer may fill: no such bucket, key or version
/// here, and no delete marker either.
pub(crate) fn missed(e: &S3Error) -> bool {
    let marker = e
        .headers()
        .is_some_and(|h| h.contains_key("x-amz-delete-marker"));
    !marker
        && matches!(
            e.code(),
            S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchBucket | S3ErrorCode::NoSuchVersion
        )
}

/// The peers' clients, made once each.
#[derive(Clone)]
pub(crate) struct Peers {
    store: Store,
    remotes: Remotes,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl Peers {
    pub(crate) fn new(store: Store, remotes: Remotes) -> Peers {
        Peers {
            store,
            remotes,
            clients: Arc::default(),
        }
    }

    /// This site's peers with their clients, if it is in a group.
    fn clients(&self) -> Vec<(String, Client)> {
        let Ok(Some(group)) = self.store.site_group() else {
            return Vec::new();
        };
        let mut cache = self.clients.lock().expect("the peers' clients");
        group
            .peers
            .into_iter()
            .filter_map(|peer| {
                if let Some(c) = cache.get(&peer) {
                    return Some((peer, c.clone()));
                }
                let r = self.remotes.opened(&remote_name(&peer)).ok()?;
                let c = crate::remote::client(
                    &r.endpoint,
                    &r.region,
                    (&r.access_key, &r.secret_key),
                    r.ca_pem.as_deref(),
                );
                cache.insert(peer.clone(), c.clone());
                Some((peer, c))
            })
            .collect()
    }

    /// The first answer of a peer to `ask`, and that peer.
    async fn first<T, E, F>(&self, asked: &Asked, ask: impl Fn(Client) -> F) -> Option<(String, T)>
    where
        F: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if asked.local_only {
            return None;
        }
        for (peer, c) in self.clients() {
            match tokio::time::timeout(TIMEOUT, ask(c)).await {
                Ok(Ok(out)) => {
                    tracing::debug!(
                        peer,
                        bucket = asked.bucket,
                        key = asked.key,
                        "read through a peer"
                    );
                    return Some((peer, out));
                }
                Ok(Err(e)) => {
                    tracing::debug!(
                        peer,
                        "not from this peer: {}",
                        crate::remote::error_text(&e)
                    )
                }
                Err(_) => tracing::debug!(peer, "no answer within {TIMEOUT:?}"),
            }
        }
        None
    }

    /// The object from the first peer that has it, and that peer.
    pub(crate) async fn get(&self, asked: &Asked) -> Option<(String, GetObjectOutput)> {
        let (peer, out) = self
            .first(asked, |c| {
                c.get_object()
                    .bucket(&asked.bucket)
                    .key(&asked.key)
                    .set_version_id(asked.version_id.clone())
                    .set_part_number(asked.part_number)
                    .customize()
                    .mutate_request(forwarding(asked))
                    .send()
            })
            .await?;
        let shown = Shown {
            e_tag: out.e_tag.clone(),
            last_modified: out.last_modified,
            version_id: out.version_id.clone(),
            storage_class: out.storage_class.as_ref().map(|c| c.as_str().to_string()),
        };
        let out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(streamed(out.body))),
            content_length: out.content_length,
            content_range: out.content_range,
            content_type: out.content_type,
            cache_control: out.cache_control,
            content_disposition: out.content_disposition,
            content_encoding: out.content_encoding,
            content_language: out.content_language,
            accept_ranges: out.accept_ranges,
            metadata: out.metadata.map(Metadata::from_iter),
            parts_count: out.parts_count,
            tag_count: out.tag_count,
            e_tag: shown.e_tag(),
            last_modified: shown.last_modified(),
            version_id: shown.version_id,
            storage_class: shown.storage_class.map(StorageClass::from),
            ..Default::default()
        };
        Some((peer, out))
    }

    /// The object's headers from the first peer that has it, and that peer.
    pub(crate) async fn head(&self, asked: &Asked) -> Option<(String, HeadObjectOutput)> {
        let (peer, out) = self
            .first(asked, |c| {
                c.head_object()
                    .bucket(&asked.bucket)
                    .key(&asked.key)
                    .set_version_id(asked.version_id.clone())
                    .set_part_number(asked.part_number)
                    .customize()
                    .mutate_request(forwarding(asked))
                    .send()
            })
            .await?;
        let shown = Shown {
            e_tag: out.e_tag.clone(),
            last_modified: out.last_modified,
            version_id: out.version_id.clone(),
            storage_class: out.storage_class.as_ref().map(|c| c.as_str().to_string()),
        };
        let out = HeadObjectOutput {
            content_length: out.content_length,
            content_range: out.content_range,
            content_type: out.content_type,
            cache_control: out.cache_control,
            content_disposition: out.content_disposition,
            content_encoding: out.content_encoding,
            content_language: out.content_language,
            accept_ranges: out.accept_ranges,
            metadata: out.metadata.map(Metadata::from_iter),
            parts_count: out.parts_count,
            e_tag: shown.e_tag(),
            last_modified: shown.last_modified(),
            version_id: shown.version_id,
            storage_class: shown.storage_class.map(StorageClass::from),
            ..Default::default()
        };
        Some((peer, out))
    }
}

/// What a peer's answer says of the version, as the SDK gives it.
struct Shown {
    e_tag: Option<String>,
    last_modified: Option<aws_sdk_s3::primitives::DateTime>,
    version_id: Option<String>,
    storage_class: Option<String>,
}

impl Shown {
    fn e_tag(&self) -> Option<ETag> {
        let tag = self.e_tag.as_deref()?;
        Some(ETag::Strong(tag.trim_matches('"').to_string()))
    }

    fn last_modified(&self) -> Option<Timestamp> {
        let t = self.last_modified?;
        let at = time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()?;
        Some(Timestamp::from(at))
    }
}

/// The request's forwarded headers and [`PROXIED`], added to a peer's request.
fn forwarding(
    asked: &Asked,
) -> impl Fn(&mut aws_sdk_s3::config::http::HttpRequest) + Send + Sync + 'static {
    let headers = asked.headers.clone();
    move |req| {
        for (k, v) in &headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        req.headers_mut().insert(PROXIED, "1");
    }
}

/// A peer's body as a stream for s3s, read ahead a little on its own task.
fn streamed(mut body: aws_sdk_s3::primitives::ByteStream) -> crate::objects::ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let item: Result<Bytes, std::io::Error> = match body.try_next().await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => return,
                Err(e) => Err(std::io::Error::other(e)),
            };
            let failed = item.is_err();
            // A closed channel means the client went away: stop reading.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    crate::objects::ChunkStream(rx)
}

/// `out` as the answer, naming the peer it came from.
pub(crate) fn answer<T>((peer, out): (String, T)) -> s3s::S3Response<T> {
    let mut resp = s3s::S3Response::new(out);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&peer) {
        resp.headers.insert(SERVED_BY, v);
    }
    resp
}
