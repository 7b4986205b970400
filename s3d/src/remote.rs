//! The S3 client of remote tiers (`engine::RemoteStore`): aws-sdk-s3 at its default
//! settings against any S3 endpoint, called from the engine's blocking threads and run
//! on the server's runtime. Tier secrets are kept sealed in the index under the
//! server's key ([`seal_secret`]) and opened here when a client is built.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use bytes::Bytes;
use engine::{RemoteStore, RemoteTier};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// Objects up to this size go up in one PutObject; larger ones in parts of this size,
/// one in memory at a time.
const PART: usize = 16 << 20;
/// Binds a sealed secret to its use.
pub(crate) const AAD: &[u8] = b"cybs3 remote tier secret";

/// Seals a remote tier's secret key under the server's key, for the index.
pub fn seal_secret(server_key: &[u8; 32], secret: &str) -> Vec<u8> {
    crate::sealed::seal(server_key, AAD, secret)
}

/// A client of `endpoint` with these keys: aws-sdk-s3 at its default settings, path
/// style, trusting the system's CAs and those in `ca_pem`.
pub(crate) fn client(
    endpoint: &str,
    region: &str,
    (access_key, secret): (&str, &str),
    ca_pem: Option<&str>,
) -> Client {
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "cybs3-remote",
        ))
        .force_path_style(true);
    if let Some(roots) = ca_pem.and_then(|pem| trust_store(pem).ok()) {
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(roots)
            .build_https();
        config = config.http_client(https);
    }
    Client::from_conf(config.build())
}

/// What an SDK error says: the service's code and message, or, with no answer at all,
/// the chain of causes (the SDK appends its debug dump, which says nothing more).
pub(crate) fn error_text<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match (e.code(), e.message()) {
        (Some(code), message) => format!("{code}: {}", message.unwrap_or("")),
        _ => {
            let all = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
            let dump = format!(" ({e:?})");
            all.strip_suffix(&dump).unwrap_or(&all).to_string()
        }
    }
}

/// Whether an error is the SDK's failure to parse a success: the answer was 2xx and is
/// no S3 error document.
pub(crate) fn answered_ok<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    let Some(raw) = e.raw_response() else {
        return false;
    };
    let body = raw.body().bytes().unwrap_or_default();
    raw.status().is_success() && !String::from_utf8_lossy(body).contains("<Error>")
}

/// The TLS context trusting the system's CAs and the certificates in `pem`.
pub(crate) fn trust_store(pem: &str) -> Result<TlsContext, String> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("the CA file holds no PEM certificate".into());
    }
    let mut roots = TrustStore::default();
    roots.add_pem_certificate(pem.as_bytes());
    TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .map_err(|e| format!("the CA file cannot be used: {e}"))
}

/// What a cached client is for: endpoint, access key, region and the CA it trusts.
type ClientId = (String, String, String, Option<String>);

/// The remote tiers' clients, one per endpoint and key, built on first use.
pub(crate) struct Remote {
    rt: Handle,
    server_key: [u8; 32],
    /// The registered remotes, for the CA an endpoint is trusted through.
    remotes: crate::remotes::Remotes,
    clients: Mutex<HashMap<ClientId, Client>>,
}

impl Remote {
    pub(crate) fn new(
        rt: Handle,
        server_key: &[u8; 32],
        remotes: crate::remotes::Remotes,
    ) -> Arc<Remote> {
        Arc::new(Remote {
            rt,
            server_key: *server_key,
            remotes,
            clients: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn client(&self, tier: &RemoteTier) -> io::Result<Client> {
        // The CA is part of the key: a remote registered (or removed) with its own CA
        // after a client was built gets a client that trusts it (or no longer does).
        let ca = self.remotes.ca_for(&tier.endpoint);
        let id = (
            tier.endpoint.clone(),
            tier.access_key.clone(),
            tier.region.clone(),
            ca.clone(),
        );
        if let Some(c) = self.clients.lock().unwrap().get(&id) {
            return Ok(c.clone());
        }
        let secret =
            crate::sealed::open(&self.server_key, AAD, &tier.sealed_secret).ok_or_else(|| {
                io::Error::other("the tier's secret cannot be opened with this server's key")
            })?;
        let client = client(
            &tier.endpoint,
            &tier.region,
            (&tier.access_key, &secret),
            ca.as_deref(),
        );
        self.clients.lock().unwrap().insert(id, client.clone());
        Ok(client)
    }

    fn put_multipart(
        &self,
        c: &Client,
        tier: &RemoteTier,
        name: &str,
        meta: &[(String, String)],
        body: &mut dyn Read,
    ) -> io::Result<()> {
        let (content_type, user) = split_meta(meta);
        let up = self
            .rt
            .block_on(
                c.create_multipart_upload()
                    .bucket(&tier.bucket)
                    .key(name)
                    .set_content_type(content_type)
                    .set_metadata(Some(user))
                    .send(),
            )
            .map_err(io::Error::other)?;
        let upload_id = up.upload_id().unwrap_or_default().to_string();
        let parts = (|| -> io::Result<Vec<CompletedPart>> {
            let mut parts = Vec::new();
            let mut buf = vec![0; PART];
            loop {
                let n = read_full(body, &mut buf)?;
                if n == 0 {
                    return Ok(parts);
                }
                let number = parts.len() as i32 + 1;
                let done = self
                    .rt
                    .block_on(
                        c.upload_part()
                            .bucket(&tier.bucket)
                            .key(name)
                            .upload_id(&upload_id)
                            .part_number(number)
                            .body(ByteStream::from(buf[..n].to_vec()))
                            .send(),
                    )
                    .map_err(io::Error::other)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_string))
                        .build(),
                );
            }
        })();
        let completed = parts.and_then(|parts| {
            self.rt
                .block_on(
                    c.complete_multipart_upload()
                        .bucket(&tier.bucket)
                        .key(name)
                        .upload_id(&upload_id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(parts))
                                .build(),
                        )
                        .send(),
                )
                .map(drop)
                .map_err(io::Error::other)
        });
        if completed.is_err() {
            let abort = c
                .abort_multipart_upload()
                .bucket(&tier.bucket)
                .key(name)
                .upload_id(&upload_id)
                .send();
            let _ = self.rt.block_on(abort);
        }
        completed
    }
}

impl RemoteStore for Remote {
    fn get(
        &self,
        tier: &RemoteTier,
        name: &str,
        start: u64,
        end: u64,
    ) -> io::Result<Box<dyn Read + Send>> {
        if start >= end {
            return Ok(Box::new(io::empty()));
        }
        let c = self.client(tier)?;
        let resp = self
            .rt
            .block_on(
                c.get_object()
                    .bucket(&tier.bucket)
                    .key(name)
                    .range(format!("bytes={start}-{}", end - 1))
                    .send(),
            )
            .map_err(io::Error::other)?;
        Ok(Box::new(BodyRead {
            rt: self.rt.clone(),
            body: resp.body,
            chunk: Bytes::new(),
        }))
    }

    fn put(
        &self,
        tier: &RemoteTier,
        name: &str,
        meta: &[(String, String)],
        size: u64,
        body: &mut dyn Read,
    ) -> io::Result<()> {
        let c = self.client(tier)?;
        if size > PART as u64 {
            return self.put_multipart(&c, tier, name, meta, body);
        }
        let mut bytes = Vec::with_capacity(size as usize);
        body.read_to_end(&mut bytes)?;
        let (content_type, user) = split_meta(meta);
        self.rt
            .block_on(
                c.put_object()
                    .bucket(&tier.bucket)
                    .key(name)
                    .set_content_type(content_type)
                    .set_metadata(Some(user))
                    .body(ByteStream::from(bytes))
                    .send(),
            )
            .map(drop)
            .map_err(io::Error::other)
    }

    /// The object, and any upload of it a crash cut off (whose parts the remote keeps).
    fn delete(&self, tier: &RemoteTier, name: &str) -> io::Result<()> {
        let c = self.client(tier)?;
        let uploads = self
            .rt
            .block_on(
                c.list_multipart_uploads()
                    .bucket(&tier.bucket)
                    .prefix(name)
                    .send(),
            )
            .map_err(io::Error::other)?;
        for u in uploads.uploads() {
            if u.key() != Some(name) {
                continue;
            }
            let abort = c
                .abort_multipart_upload()
                .bucket(&tier.bucket)
                .key(name)
                .upload_id(u.upload_id().unwrap_or_default())
                .send();
            self.rt.block_on(abort).map_err(io::Error::other)?;
        }
        self.rt
            .block_on(c.delete_object().bucket(&tier.bucket).key(name).send())
            .map(drop)
            .map_err(io::Error::other)
    }
}

/// The content type, and the rest as user metadata (`x-amz-meta-*`).
fn split_meta(meta: &[(String, String)]) -> (Option<String>, HashMap<String, String>) {
    let mut content_type = None;
    let mut user = HashMap::new();
    for (k, v) in meta {
        match k.as_str() {
            "content-type" => content_type = Some(v.clone()),
            _ => {
                user.insert(k.clone(), v.clone());
            }
        }
    }
    (content_type, user)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A response body read from a blocking thread, a chunk at a time.
struct BodyRead {
    rt: Handle,
    body: ByteStream,
    chunk: Bytes,
}

impl Read for BodyRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.body.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
