//! NATS targets: each event published on the subject, then a flush, so the event has
//! reached the server before it counts as delivered.

use super::targets::Target;
use super::Failed;

pub(crate) struct Nats {
    client: async_nats::Client,
    subject: String,
}

impl Nats {
    pub(crate) async fn connect(target: &Target) -> Result<Nats, Failed> {
        let client = async_nats::connect(target.url.as_str())
            .await
            .map_err(|e| Failed(format!("NATS {}: {e}", target.name)))?;
        Ok(Nats {
            client,
            subject: (target.options.subject.clone()).unwrap_or_else(|| target.name.clone()),
        })
    }

    pub(crate) async fn send(&self, body: &[u8]) -> Result<(), Failed> {
        self.client
            .publish(self.subject.clone(), bytes::Bytes::copy_from_slice(body))
            .await
            .map_err(|e| Failed(format!("NATS publish: {e}")))?;
        self.client
            .flush()
            .await
            .map_err(|e| Failed(format!("NATS flush: {e}")))
    }
}
