//! Redis targets: each event appended to a list (`RPUSH`, the default) or a stream
//! (`XADD key * event JSON`).

use super::targets::Target;
use super::Failed;
use redis::aio::MultiplexedConnection;

pub(crate) struct Redis {
    conn: MultiplexedConnection,
    key: String,
    stream: bool,
}

impl Redis {
    pub(crate) async fn connect(target: &Target) -> Result<Redis, Failed> {
        let fail = |e: redis::RedisError| Failed(format!("Redis {}: {e}", target.name));
        let client = redis::Client::open(target.url.as_str()).map_err(fail)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(fail)?;
        let o = &target.options;
        Ok(Redis {
            conn,
            key: o.key.clone().unwrap_or_else(|| target.name.clone()),
            stream: o.key_type.as_deref() == Some("stream"),
        })
    }

    pub(crate) async fn send(&self, body: &[u8]) -> Result<(), Failed> {
        let mut conn = self.conn.clone();
        let cmd = match self.stream {
            true => redis::cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("event")
                .arg(body)
                .to_owned(),
            false => redis::cmd("RPUSH").arg(&self.key).arg(body).to_owned(),
        };
        cmd.query_async::<redis::Value>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| Failed(format!("Redis: {e}")))
    }
}
