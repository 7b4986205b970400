//! The engine's [`engine::Notifier`]: called on the work queue's thread for each event,
//! it formats AWS's message and sends it with the target's protocol, on the server's
//! runtime. Connections are opened on first use and kept; a failed send drops the
//! target's connection, so the retry connects again.

use super::amqp::Amqp;
use super::message;
use super::mqtt::Mqtt;
use super::nats::Nats;
use super::postgres::Postgres;
use super::redis::Redis;
use super::targets::{Kind, Target, Targets};
use super::webhook::Webhooks;
use super::Failed;
use engine::{Chain, Sent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;

/// Chains sent at once: a few connections per target keep up with loopback and LAN
/// latencies, where one per chain would cost each side a connection, a thread or a task.
const IN_FLIGHT: usize = 8;

/// The longest a connection or a send may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What is sent: a body, and what PostgreSQL's columns and the webhook's event header
/// show of it.
pub(crate) struct Message<'a> {
    pub name: &'a str,
    pub time_ns: u64,
    pub bucket: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
}

/// A target's open connection.
enum Conn {
    Webhook,
    Amqp(Box<Amqp>),
    Mqtt(Box<Mqtt>),
    Nats(Nats),
    Redis(Redis),
    Postgres(Postgres),
}

pub(crate) struct Deliverer {
    rt: Handle,
    targets: Targets,
    region: String,
    webhooks: Webhooks,
    /// Open connections by target name, with the target's `added_ns` (a target removed
    /// and added again gets a new one).
    conns: Mutex<HashMap<String, (u64, Arc<Conn>)>>,
}

impl Deliverer {
    pub(crate) fn targets(&self) -> &Targets {
        &self.targets
    }

    pub(crate) fn new(
        rt: Handle,
        targets: Targets,
        region: &str,
    ) -> Result<Arc<Deliverer>, Failed> {
        Ok(Arc::new(Deliverer {
            rt,
            targets,
            region: region.to_string(),
            webhooks: Webhooks::new()?,
            conns: Mutex::new(HashMap::new()),
        }))
    }

    async fn connect(target: &Target) -> Result<Conn, Failed> {
        Ok(match target.kind {
            Kind::Webhook => Conn::Webhook,
            Kind::Amqp => Conn::Amqp(Box::new(Amqp::connect(target).await?)),
            Kind::Mqtt => Conn::Mqtt(Box::new(Mqtt::connect(target)?)),
            Kind::Nats => Conn::Nats(Nats::connect(target).await?),
            Kind::Redis => Conn::Redis(Redis::connect(target).await?),
            Kind::Postgres => Conn::Postgres(Postgres::connect(target).await?),
        })
    }

    /// Sends one message to `target`, connecting first if it has no open connection; a
    /// failure drops the connection, so the next try connects again.
    pub(crate) async fn send(&self, target: &Target, m: &Message<'_>) -> Result<(), Failed> {
        let sent = tokio::time::timeout(TIMEOUT, self.send_on(target, m))
            .await
            .unwrap_or_else(|_| {
                Err(Failed(format!(
                    "{} did not answer within {TIMEOUT:?}",
                    target.name
                )))
            });
        if sent.is_err() {
            self.conns.lock().unwrap().remove(&target.name);
        }
        sent
    }

    async fn send_on(&self, target: &Target, m: &Message<'_>) -> Result<(), Failed> {
        let kept = self
            .conns
            .lock()
            .unwrap()
            .get(&target.name)
            .filter(|(added, _)| *added == target.added_ns)
            .map(|(_, c)| c.clone());
        let conn = match kept {
            Some(c) => c,
            None => {
                let c = Arc::new(Self::connect(target).await?);
                let entry = (target.added_ns, c.clone());
                self.conns
                    .lock()
                    .unwrap()
                    .insert(target.name.clone(), entry);
                c
            }
        };
        match &*conn {
            Conn::Webhook => self.webhooks.send(target, m.name, m.body).await,
            Conn::Amqp(c) => c.send(m.body).await,
            Conn::Mqtt(c) => c.send(m.body).await,
            Conn::Nats(c) => c.send(m.body).await,
            Conn::Redis(c) => c.send(m.body).await,
            Conn::Postgres(c) => c.send(m).await,
        }
    }
}

impl Deliverer {
    /// Sends one chain's events in order, stopping at the first failure.
    async fn chain(&self, chain: &Chain<'_>) -> Sent {
        let mut delivered = 0;
        let target = match self.targets.open(chain.target) {
            Ok(t) => t,
            Err(e) => {
                let error = Some(e.to_string());
                return Sent { delivered, error };
            }
        };
        for event in &chain.events {
            let body = message::body(event, &self.region);
            let m = Message {
                name: &event.name,
                time_ns: event.time_ns,
                bucket: &event.bucket,
                key: &event.key,
                body: &body,
            };
            if let Err(f) = self.send(&target, &m).await {
                let error = Some(f.0);
                return Sent { delivered, error };
            }
            delivered += 1;
        }
        Sent {
            delivered,
            error: None,
        }
    }
}

impl engine::Notifier for Deliverer {
    fn deliver(&self, chains: &[Chain<'_>]) -> Vec<Sent> {
        use futures::StreamExt;
        let sends = futures::stream::iter(chains.iter().map(|c| self.chain(c)))
            .buffered(IN_FLIGHT)
            .collect();
        self.rt.block_on(sends)
    }
}
