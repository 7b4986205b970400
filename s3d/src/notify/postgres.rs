//! PostgreSQL targets: each event a row of the target's table (made if missing):
//! `(id bigserial, event_time timestamptz, event_name text, bucket text, key text,
//! event jsonb)`.

use super::deliver::Message;
use super::targets::{is_identifier, Target};
use super::Failed;
use tokio_postgres::{Client, NoTls};

pub(crate) struct Postgres {
    client: Client,
    insert: String,
}

impl Postgres {
    pub(crate) async fn connect(target: &Target) -> Result<Postgres, Failed> {
        let fail = |e: tokio_postgres::Error| Failed(format!("PostgreSQL {}: {e}", target.name));
        let table = target
            .options
            .table
            .clone()
            .unwrap_or_else(|| target.name.clone());
        // Checked when the target was added; checked again since it is spliced into SQL.
        if !is_identifier(&table) {
            return Err(Failed(format!(
                "table name {table:?} is not a plain identifier"
            )));
        }
        let (client, conn) = tokio_postgres::connect(&target.url, NoTls)
            .await
            .map_err(fail)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("PostgreSQL notification connection ended: {e}");
            }
        });
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, \
                 event_time timestamptz NOT NULL, event_name text NOT NULL, \
                 bucket text NOT NULL, key text NOT NULL, event jsonb NOT NULL)"
            ))
            .await
            .map_err(fail)?;
        Ok(Postgres {
            client,
            insert: format!(
                "INSERT INTO {table} (event_time, event_name, bucket, key, event) \
                 VALUES (to_timestamp($1::float8), $2, $3, $4, $5::text::jsonb)"
            ),
        })
    }

    pub(crate) async fn send(&self, m: &Message<'_>) -> Result<(), Failed> {
        let json = std::str::from_utf8(m.body)
            .map_err(|_| Failed("the message is not JSON text".into()))?;
        let secs = m.time_ns as f64 / 1e9;
        self.client
            .execute(&self.insert, &[&secs, &m.name, &m.bucket, &m.key, &json])
            .await
            .map(drop)
            .map_err(|e| Failed(format!("PostgreSQL insert: {e}")))
    }
}
