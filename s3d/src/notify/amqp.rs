//! AMQP 0-9-1 targets (RabbitMQ): each event published to the exchange with the routing
//! key, persistent, with publisher confirms: a delivery is the broker's ack.

use super::targets::Target;
use super::Failed;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

pub(crate) struct Amqp {
    /// Kept open: the channel lives as long as its connection.
    _conn: Connection,
    channel: Channel,
    exchange: String,
    routing_key: String,
}

impl Amqp {
    pub(crate) async fn connect(target: &Target) -> Result<Amqp, Failed> {
        let fail = |e: lapin::Error| Failed(format!("AMQP {}: {e}", target.name));
        let conn = Connection::connect(&target.url, ConnectionProperties::default())
            .await
            .map_err(fail)?;
        let channel = conn.create_channel().await.map_err(fail)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(fail)?;
        let o = &target.options;
        Ok(Amqp {
            _conn: conn,
            channel,
            exchange: o.exchange.clone().unwrap_or_default(),
            routing_key: o.routing_key.clone().unwrap_or_else(|| target.name.clone()),
        })
    }

    pub(crate) async fn send(&self, body: &[u8]) -> Result<(), Failed> {
        let fail = |e: lapin::Error| Failed(format!("AMQP publish: {e}"));
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                self.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .map_err(fail)?
            .await
            .map_err(fail)?;
        match confirm {
            Confirmation::Ack(_) => Ok(()),
            other => Err(Failed(format!(
                "AMQP broker did not take the event: {other:?}"
            ))),
        }
    }
}
