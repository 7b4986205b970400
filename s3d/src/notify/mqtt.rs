//! MQTT targets (Mosquitto and others): each event published on the topic at the
//! target's QoS (1 by default); a delivery is the broker's PUBACK (QoS 1) or PUBCOMP
//! (QoS 2), or the packet written (QoS 0).

use super::targets::Target;
use super::Failed;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::Mutex;

pub(crate) struct Mqtt {
    client: AsyncClient,
    /// Polled only while a publish waits for its acknowledgement (one at a time).
    events: Mutex<EventLoop>,
    topic: String,
    qos: QoS,
}

impl Mqtt {
    pub(crate) fn connect(target: &Target) -> Result<Mqtt, Failed> {
        let mut url = target.url.clone();
        if !url.contains("client_id=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}client_id=cybs3-{}", target.name);
        }
        let options = MqttOptions::parse_url(url)
            .map_err(|e| Failed(format!("MQTT URL of {}: {e}", target.name)))?;
        let (client, events) = AsyncClient::new(options, 16);
        let o = &target.options;
        Ok(Mqtt {
            client,
            events: Mutex::new(events),
            topic: o.topic.clone().unwrap_or_else(|| target.name.clone()),
            qos: match o.qos.unwrap_or(1) {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
        })
    }

    pub(crate) async fn send(&self, body: &[u8]) -> Result<(), Failed> {
        let mut events = self.events.lock().await;
        self.client
            .publish(&self.topic, self.qos, false, body.to_vec())
            .await
            .map_err(|e| Failed(format!("MQTT publish: {e}")))?;
        loop {
            let event = events
                .poll()
                .await
                .map_err(|e| Failed(format!("MQTT: {e}")))?;
            let done = matches!(
                (self.qos, event),
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                    | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_)))
                    | (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_)))
            );
            if done {
                return Ok(());
            }
        }
    }
}
