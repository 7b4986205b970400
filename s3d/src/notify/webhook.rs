//! Webhook targets: the event JSON POSTed over HTTP(S), signed with HMAC-SHA256 when
//! the target has a secret (`X-Cybs3-Signature: sha256=<hex>` over the body), so the
//! receiver can tell it came from this server. Any 2xx is a delivery.
//!
//! A function endpoint (Lambda-style trigger) is a webhook: it runs on each POST.

use super::targets::Target;
use super::Failed;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

/// The signature header.
pub(crate) const SIGNATURE: &str = "x-cybs3-signature";

/// One HTTP(S) client for every webhook target (it pools connections per host).
pub(crate) struct Webhooks {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Webhooks {
    pub(crate) fn new() -> Result<Webhooks, Failed> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Failed(format!("no TLS roots for webhooks: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Webhooks {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub(crate) async fn send(
        &self,
        target: &Target,
        event: &str,
        body: &[u8],
    ) -> Result<(), Failed> {
        let mut req = hyper::Request::post(&target.url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-cybs3-event", event);
        if let Some(secret) = &target.secret {
            req = req.header(SIGNATURE, format!("sha256={}", sign(secret, body)));
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| Failed(format!("bad webhook request: {e}")))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| Failed(format!("POST {}: {e}", target.url)))?;
        match resp.status().is_success() {
            true => Ok(()),
            false => Err(Failed(format!(
                "POST {}: HTTP {}",
                target.url,
                resp.status()
            ))),
        }
    }
}

/// The hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_match_rfc_4231_case_2() {
        assert_eq!(
            super::sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
