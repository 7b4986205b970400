//! `cybs3 admin notify add|list|remove|status`: the targets bucket notifications go to
//! (webhooks, AMQP, MQTT, NATS, Redis, PostgreSQL), asked of the running server, which
//! seals their credentials and delivers the events.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use hyper::Method;
use s3d::notify::{Kind, NewTarget, NotifyCall, Options, TargetInfo, TargetStatus};

#[derive(clap::Subcommand, Debug)]
pub enum NotifyCmd {
    /// Add a target; prints its ARN (arn:cybs3:sqs:REGION:NAME:TYPE), which bucket
    /// notification configurations name
    Add(Box<AddArgs>),
    /// List the targets (never their passwords or secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a target no bucket configuration names; its undelivered events become
    /// dead letters
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Per target: events queued, delivered, failed tries, the last error, and the dead
    /// letters (events set aside when the backlog was full)
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The target's name (letters, digits, '-', '_', '.')
    name: String,
    /// The protocol
    #[arg(long = "type", value_name = "TYPE", value_parser = ["webhook", "amqp", "mqtt", "nats", "redis", "postgres"])]
    kind: String,
    /// http(s)://… (webhook), amqp(s)://… , tcp://HOST:PORT or mqtt(s)://… , nats://… ,
    /// redis(s)://… , postgres://…
    #[arg(long)]
    url: String,
    /// webhook: sign each POST with HMAC-SHA256 of the body under this secret, in the
    /// X-Cybs3-Signature header (sha256=HEX)
    #[arg(long, env = "CYBS3_NOTIFY_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// amqp: the exchange [default: the default exchange]
    #[arg(long)]
    exchange: Option<String>,
    /// amqp: the routing key [default: the target's name]
    #[arg(long)]
    routing_key: Option<String>,
    /// mqtt: the topic [default: the target's name]
    #[arg(long)]
    topic: Option<String>,
    /// mqtt: 0, 1 or 2 [default: 1]
    #[arg(long)]
    qos: Option<u8>,
    /// nats: the subject [default: the target's name]
    #[arg(long)]
    subject: Option<String>,
    /// redis: the key [default: the target's name]
    #[arg(long)]
    key: Option<String>,
    /// redis: list (RPUSH) or stream (XADD) [default: list]
    #[arg(long, value_parser = ["list", "stream"])]
    key_type: Option<String>,
    /// postgres: the table, made if missing [default: the target's name]
    #[arg(long)]
    table: Option<String>,
    #[arg(long)]
    json: bool,
}

fn ask(dir: &crate::storedir::StoreDir, call: &NotifyCall) -> Result<serde_json::Value> {
    let body = serde_json::to_value(call)?;
    crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/notify",
        Some(body),
    ))
}

pub fn run(cmd: NotifyCmd, data: DataArg) -> Result<()> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("notification targets are managed through the running server, which delivers the events: start it with `cybs3 server start`");
    }
    match cmd {
        NotifyCmd::Add(a) => {
            let kind: Kind = a.kind.parse()?;
            let call = NotifyCall::Add(Box::new(NewTarget {
                name: a.name,
                kind,
                url: a.url,
                options: Options {
                    secret: a.secret,
                    exchange: a.exchange,
                    routing_key: a.routing_key,
                    topic: a.topic,
                    qos: a.qos,
                    subject: a.subject,
                    key: a.key,
                    key_type: a.key_type,
                    table: a.table,
                },
            }));
            let info: TargetInfo = serde_json::from_value(ask(&dir, &call)?)?;
            match a.json {
                true => println!("{}", serde_json::to_string(&info)?),
                false => println!("{}", info.arn),
            }
        }
        NotifyCmd::List { json } => {
            let targets: Vec<TargetInfo> = serde_json::from_value(ask(&dir, &NotifyCall::List)?)?;
            if json {
                println!("{}", serde_json::to_string(&targets)?);
            } else if targets.is_empty() {
                println!("no notification target: add one with `cybs3 admin notify add NAME --type TYPE --url URL`");
            }
            for t in targets.iter().filter(|_| !json) {
                println!("{}  {}  {}  {}", t.name, t.kind, t.url, t.arn);
            }
        }
        NotifyCmd::Remove { name, json } => {
            let out = ask(&dir, &NotifyCall::Remove { name: name.clone() })?;
            match json {
                true => println!("{out}"),
                false => println!("removed notification target {name}"),
            }
        }
        NotifyCmd::Status { json } => {
            let all: Vec<TargetStatus> = serde_json::from_value(ask(&dir, &NotifyCall::Status)?)?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
                return Ok(());
            }
            for t in all {
                let s = &t.status.stats;
                println!(
                    "{}  queued {}  delivered {}  failed tries {}  dead letters {}{}",
                    t.name,
                    s.queued,
                    s.delivered,
                    s.failed,
                    s.dead,
                    if s.full { "  BACKLOG FULL" } else { "" }
                );
                if let Some(e) = &s.last_error {
                    println!("  last error: {e}");
                }
                for d in &t.status.dead_letters {
                    println!(
                        "  dead letter {}: {} ({})",
                        d.seq,
                        d.what,
                        d.error.as_deref().unwrap_or("no error kept")
                    );
                }
            }
        }
    }
    Ok(())
}
