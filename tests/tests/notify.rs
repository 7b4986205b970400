//! Bucket notifications end to end: real brokers (RabbitMQ, Mosquitto, NATS, Redis,
//! PostgreSQL, from their Debian packages) and a webhook receiver that checks the HMAC
//! each receive AWS's event JSON for PUT, COPY, multipart, DELETE and delete-marker
//! changes made with aws-sdk-s3 and through the mount; filters select; a target down for
//! 30 s, and a SIGKILL of the server meanwhile, lose no event and keep each key's order.
//! Tagging, ACL and restore changes raise their own events.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::webhook::Receiver;
use cybs3_tests::{brokers, Server};
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

const SECRET: &str = "hook-secret";

/// `admin notify add NAME --type T --url U [flags] --json`: the target's ARN.
fn add_target(srv: &Server, name: &str, kind: &str, url: &str, flags: &[&str]) -> String {
    let mut args = vec!["admin", "notify", "add", name, "--type", kind, "--url", url];
    args.extend_from_slice(flags);
    args.push("--json");
    let v = admin(srv, &args);
    assert_eq!(v["name"], name);
    assert_eq!(v["type"], kind);
    v["arn"].as_str().unwrap().to_string()
}

fn rule(id: &str, arn: &str, events: &[&str], prefix: &str, suffix: &str) -> QueueConfiguration {
    let mut filters = Vec::new();
    for (name, value) in [
        (FilterRuleName::Prefix, prefix),
        (FilterRuleName::Suffix, suffix),
    ] {
        if !value.is_empty() {
            filters.push(FilterRule::builder().name(name).value(value).build());
        }
    }
    let mut q = QueueConfiguration::builder().id(id).queue_arn(arn);
    for e in events {
        q = q.events(Event::from(*e));
    }
    if !filters.is_empty() {
        q = q.filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .set_filter_rules(Some(filters))
                        .build(),
                )
                .build(),
        );
    }
    q.build().unwrap()
}

async fn configure(c: &Client, bucket: &str, rules: Vec<QueueConfiguration>) {
    c.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_queue_configurations(Some(rules))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("configure {bucket}: {e:?}"));
}

/// The changes every target is shown: PUT, COPY, multipart, a delete marker and a
/// version's delete. Returns the (event name, key) pairs they must raise, in order.
async fn changes(c: &Client, b: &str) -> Vec<(String, String)> {
    bucket(c, b).await;
    set_versioning(c, b, BucketVersioningStatus::Enabled).await;
    let a = "docs/a b.txt";
    let put = c
        .put_object()
        .bucket(b)
        .key(a)
        .body(ByteStream::from_static(b"hello events"))
        .send()
        .await
        .unwrap();
    c.copy_object()
        .bucket(b)
        .key("docs/copy.txt")
        .copy_source(format!("{b}/docs/a%20b.txt"))
        .send()
        .await
        .unwrap();
    put_multipart(
        c,
        b,
        "docs/big.bin",
        vec![vec![1u8; 5 << 20], vec![2u8; 1000]],
    )
    .await;
    c.delete_object()
        .bucket(b)
        .key("docs/copy.txt")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket(b)
        .key(a)
        .version_id(put.version_id().unwrap())
        .send()
        .await
        .unwrap();
    [
        ("ObjectCreated:Put", "docs/a+b.txt"),
        ("ObjectCreated:Copy", "docs/copy.txt"),
        ("ObjectCreated:CompleteMultipartUpload", "docs/big.bin"),
        ("ObjectRemoved:DeleteMarkerCreated", "docs/copy.txt"),
        ("ObjectRemoved:Delete", "docs/a+b.txt"),
    ]
    .iter()
    .map(|(n, k)| (n.to_string(), k.to_string()))
    .collect()
}

/// The one record of an S3 event message.
fn record(m: &Value) -> &Value {
    assert_eq!(m["Records"].as_array().map(Vec::len), Some(1), "{m}");
    &m["Records"][0]
}

/// (eventName, key) of each message for `bucket`, duplicates (same sequencer) dropped:
/// delivery is at least once.
fn seen(messages: &[Value], bucket: &str) -> Vec<(String, String)> {
    let mut sequencers = std::collections::HashSet::new();
    messages
        .iter()
        .map(record)
        .filter(|r| r["s3"]["bucket"]["name"] == bucket)
        .filter(|r| sequencers.insert(r["s3"]["object"]["sequencer"].to_string()))
        .map(|r| {
            let name = r["eventName"].as_str().unwrap().to_string();
            (name, r["s3"]["object"]["key"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Waits until `messages()` holds `want` for `bucket`; the messages.
async fn wait_for<F, Fut>(
    what: &str,
    bucket: &str,
    want: &[(String, String)],
    mut messages: F,
) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = messages().await;
        let now = seen(&got, bucket);
        if now.len() >= want.len() {
            // Order holds per key (different keys' events may pass each other).
            let by_key = |v: &[(String, String)]| {
                let mut v = v.to_vec();
                v.sort_by(|a, b| a.1.cmp(&b.1));
                v
            };
            assert_eq!(by_key(&now), by_key(want), "{what}: events differ");
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {now:?} of {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_target_type_receives_aws_events_for_each_kind_of_change() {
    // The brokers start side by side (RabbitMQ takes seconds).
    let started = std::thread::spawn(|| {
        let handles = [
            std::thread::spawn(brokers::rabbitmq),
            std::thread::spawn(brokers::mosquitto),
            std::thread::spawn(brokers::nats),
            std::thread::spawn(brokers::redis),
            std::thread::spawn(brokers::postgres),
        ];
        handles.map(|h| h.join().expect("broker start"))
    });
    let hook = Receiver::start(SECRET);
    let (_tmp, srv, c) = setup();
    let [rabbit, mosquitto, nats, redis, postgres] = started.join().unwrap();

    // Consumers first: MQTT and NATS keep nothing for subscribers that come later.
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", rabbit.port);
    let amqp = lapin::Connection::connect(&amqp_url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    channel
        .queue_declare(
            "events".into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let mqtt_got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let mut opts = rumqttc::MqttOptions::new("cybs3-test", "127.0.0.1", mosquitto.port);
    opts.set_clean_session(true);
    let (mqtt, mut mqtt_loop) = rumqttc::AsyncClient::new(opts, 64);
    mqtt.subscribe("events", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    {
        let got = mqtt_got.clone();
        tokio::spawn(async move {
            while let Ok(e) = mqtt_loop.poll().await {
                if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = e {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&p.payload).unwrap());
                }
            }
        });
    }
    // The subscription is in place once the broker acknowledged it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nats_client = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port))
        .await
        .unwrap();
    let mut nats_sub = nats_client.subscribe("events").await.unwrap();
    nats_client.flush().await.unwrap();
    let nats_got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    {
        let got = nats_got.clone();
        tokio::spawn(async move {
            while let Some(m) = nats_sub.next().await {
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&m.payload).unwrap());
            }
        });
    }

    let targets = [
        ("hook", "webhook", hook.url(), vec!["--secret", SECRET]),
        (
            "rabbit",
            "amqp",
            amqp_url.clone(),
            vec!["--routing-key", "events"],
        ),
        (
            "mosq",
            "mqtt",
            format!("tcp://127.0.0.1:{}", mosquitto.port),
            vec!["--topic", "events", "--qos", "1"],
        ),
        (
            "natsq",
            "nats",
            format!("nats://127.0.0.1:{}", nats.port),
            vec!["--subject", "events"],
        ),
        (
            "redisq",
            "redis",
            format!("redis://127.0.0.1:{}", redis.port),
            vec!["--key", "events"],
        ),
        (
            "pg",
            "postgres",
            format!("postgres://postgres@127.0.0.1:{}/postgres", postgres.port),
            vec!["--table", "events"],
        ),
    ];
    let mut want = Vec::new();
    for (name, kind, url, flags) in &targets {
        let arn = add_target(&srv, name, kind, url, flags);
        assert_eq!(arn, format!("arn:cybs3:sqs:us-east-1:{name}:{kind}"));
        let b = format!("ev-{kind}");
        bucket(&c, &b).await;
        configure(
            &c,
            &b,
            vec![rule(
                "all",
                &arn,
                &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                "",
                "",
            )],
        )
        .await;
        want = changes(&c, &b).await;
    }
    // The list shows no secret; the configuration reads back as it was given.
    let listed = admin(&srv, &["admin", "notify", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 6);
    assert!(!listed.to_string().contains(SECRET), "{listed}");
    assert!(listed.to_string().contains("guest:***@"), "{listed}");
    let back = c
        .get_bucket_notification_configuration()
        .bucket("ev-webhook")
        .send()
        .await
        .unwrap();
    let q = &back.queue_configurations()[0];
    assert_eq!(q.id(), Some("all"));
    assert_eq!(q.queue_arn(), "arn:cybs3:sqs:us-east-1:hook:webhook");
    assert_eq!(q.events().len(), 2);

    // The webhook: every field AWS sends, signed.
    let hooked = wait_for("webhook", "ev-webhook", &want, || async { hook.events() }).await;
    assert_eq!(hook.bad_signatures(), 0);
    let find = |name: &str| {
        hooked
            .iter()
            .map(record)
            .find(|r| r["eventName"] == name)
            .unwrap_or_else(|| panic!("no {name} event"))
    };
    let first = find("ObjectCreated:Put");
    assert_eq!(first["eventVersion"], "2.1");
    assert_eq!(first["eventSource"], "aws:s3");
    assert_eq!(first["awsRegion"], "us-east-1");
    assert_eq!(first["userIdentity"]["principalId"], "root");
    assert_eq!(first["requestParameters"]["sourceIPAddress"], "127.0.0.1");
    assert_eq!(first["s3"]["configurationId"], "all");
    let object = &first["s3"]["object"];
    assert_eq!(object["size"], 12);
    assert_eq!(
        object["eTag"],
        hex::encode(<md5::Md5 as md5::Digest>::digest(b"hello events"))
    );
    assert!(object["versionId"].as_str().is_some_and(|v| !v.is_empty()));
    let big = find("ObjectCreated:CompleteMultipartUpload");
    assert_eq!(big["s3"]["object"]["size"], (5 << 20) + 1000);
    let marker = find("ObjectRemoved:DeleteMarkerCreated");
    assert!(marker["s3"]["object"]["versionId"].is_string());
    assert!(marker["s3"]["object"].get("size").is_none());
    // Each key's sequencers grow in the order its events arrived.
    let mut seqs: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for r in hooked.iter().map(record) {
        let object = &r["s3"]["object"];
        seqs.entry(object["key"].as_str().unwrap())
            .or_default()
            .push(object["sequencer"].as_str().unwrap());
    }
    for (key, s) in &seqs {
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{key}: {s:?}");
    }

    // The brokers.
    wait_for("amqp", "ev-amqp", &want, || async {
        let mut got = Vec::new();
        while let Some(m) = channel
            .basic_get(
                "events".into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            got.push(serde_json::from_slice(&m.delivery.data).unwrap());
        }
        AMQP_SEEN.lock().unwrap().extend(got);
        AMQP_SEEN.lock().unwrap().clone()
    })
    .await;
    wait_for("mqtt", "ev-mqtt", &want, || async {
        mqtt_got.lock().unwrap().clone()
    })
    .await;
    wait_for("nats", "ev-nats", &want, || async {
        nats_got.lock().unwrap().clone()
    })
    .await;
    let redis_port = redis.port.to_string();
    wait_for("redis", "ev-redis", &want, || async {
        json_lines(&run(
            "redis-cli",
            &["-p", &redis_port, "LRANGE", "events", "0", "-1"],
        ))
    })
    .await;
    let pg_port = postgres.port.to_string();
    let pg_query = |sql: &str| {
        run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg_port,
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
            ],
        )
    };
    wait_for("postgres", "ev-postgres", &want, || async {
        json_lines(&pg_query("SELECT event FROM events ORDER BY id"))
    })
    .await;
    // The columns beside the JSON: the name, and the key decoded.
    assert_eq!(
        pg_query(
            "SELECT event_name || ' ' || key FROM events WHERE event_name = 'ObjectCreated:Put'"
        )
        .trim(),
        "ObjectCreated:Put docs/a b.txt"
    );

    let status = admin(&srv, &["admin", "notify", "status", "--json"]);
    for t in status.as_array().unwrap() {
        assert_eq!(t["stats"]["queued"], 0, "{t}");
        assert!(t["stats"]["delivered"].as_u64().unwrap() >= 5, "{t}");
    }

    // Filters select by prefix and suffix; another rule of the bucket by its own.
    let arn = "arn:cybs3:sqs:us-east-1:hook:webhook";
    bucket(&c, "ev-filter").await;
    configure(
        &c,
        "ev-filter",
        vec![
            rule("jpg", arn, &["s3:ObjectCreated:Put"], "img/", ".jpg"),
            rule("gone", arn, &["s3:ObjectRemoved:*"], "tmp/", ""),
        ],
    )
    .await;
    for key in [
        "img/a.jpg",
        "img/a.png",
        "doc/a.jpg",
        "img/sub/b.jpg",
        "tmp/x",
    ] {
        put(&c, "ev-filter", key, "x").await;
    }
    for key in ["img/a.jpg", "tmp/x"] {
        c.delete_object()
            .bucket("ev-filter")
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let filtered = [
        ("ObjectCreated:Put", "img/a.jpg"),
        ("ObjectCreated:Put", "img/sub/b.jpg"),
        ("ObjectRemoved:Delete", "tmp/x"),
    ]
    .map(|(n, k)| (n.to_string(), k.to_string()));
    wait_for("filters", "ev-filter", &filtered, || async {
        hook.events()
    })
    .await;

    // AWS's errors: an ARN naming no target, rules that overlap.
    let config = |rules| {
        c.put_bucket_notification_configuration()
            .bucket("ev-filter")
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(rules))
                    .build(),
            )
            .send()
    };
    let unknown = rule(
        "u",
        "arn:cybs3:sqs:us-east-1:nobody:webhook",
        &["s3:ObjectCreated:*"],
        "",
        "",
    );
    assert_eq!(
        fails(config(vec![unknown]).await),
        (400, "InvalidArgument".into())
    );
    let overlapping = vec![
        rule("a", arn, &["s3:ObjectCreated:*"], "img/", ""),
        rule("b", arn, &["s3:ObjectCreated:Put"], "img/x", ""),
    ];
    assert_eq!(
        fails(config(overlapping).await),
        (400, "InvalidArgument".into())
    );
    // A target a bucket names cannot be removed.
    let out = cybs3_tests::cybs3(&srv.home, &["admin", "notify", "remove", "hook"]);
    assert!(!out.status.success());
    drop((rabbit, mosquitto, nats, redis, postgres));
}

static AMQP_SEEN: std::sync::Mutex<Vec<Value>> = std::sync::Mutex::new(Vec::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_acl_and_restore_raise_their_events() {
    use aws_sdk_s3::types::{ObjectCannedAcl, ObjectOwnership, OwnershipControls};
    use aws_sdk_s3::types::{OwnershipControlsRule, RestoreRequest, StorageClass, Tag, Tagging};
    let hook = Receiver::start(SECRET);
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    let arn = add_target(&srv, "hook", "webhook", &hook.url(), &["--secret", SECRET]);
    // GLACIER kept on the one pool: an archive class, read only once restored.
    admin(&srv, &["admin", "tier", "add", "GLACIER", "--pool", "main"]);
    bucket(&c, "meta").await;
    let events = [
        "s3:ObjectTagging:*",
        "s3:ObjectAcl:Put",
        "s3:ObjectRestore:*",
    ];
    configure(&c, "meta", vec![rule("meta", &arn, &events, "", "")]).await;
    // Written in an archive class: not an event the rule asks for.
    c.put_object()
        .bucket("meta")
        .key("cold.txt")
        .storage_class(StorageClass::Glacier)
        .body(ByteStream::from_static(b"cold"))
        .send()
        .await
        .unwrap();
    let tags = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build().unwrap())
        .build()
        .unwrap();
    c.put_object_tagging()
        .bucket("meta")
        .key("cold.txt")
        .tagging(tags)
        .send()
        .await
        .unwrap();
    c.delete_object_tagging()
        .bucket("meta")
        .key("cold.txt")
        .send()
        .await
        .unwrap();
    // ACLs need a bucket that takes them (new buckets enforce their owner's, as in AWS).
    let writer = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::ObjectWriter)
        .build()
        .unwrap();
    c.put_bucket_ownership_controls()
        .bucket("meta")
        .ownership_controls(OwnershipControls::builder().rules(writer).build().unwrap())
        .send()
        .await
        .unwrap();
    c.put_object_acl()
        .bucket("meta")
        .key("cold.txt")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    c.restore_object()
        .bucket("meta")
        .key("cold.txt")
        .restore_request(RestoreRequest::builder().days(1).build())
        .send()
        .await
        .unwrap();
    let want: Vec<(String, String)> = [
        "ObjectTagging:Put",
        "ObjectTagging:Delete",
        "ObjectAcl:Put",
        "ObjectRestore:Post",
        "ObjectRestore:Completed",
    ]
    .iter()
    .map(|n| (n.to_string(), "cold.txt".to_string()))
    .collect();
    let got = wait_for("metadata events", "meta", &want, || async { hook.events() }).await;
    // One key: its events arrive in the order the changes were made.
    assert_eq!(seen(&got, "meta"), want);
    assert_eq!(hook.bad_signatures(), 0);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_down_for_30s_and_a_killed_server_lose_no_event() {
    let mut hook = Receiver::start(SECRET);
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    let arn = add_target(&srv, "hook", "webhook", &hook.url(), &["--secret", SECRET]);
    bucket(&c, "down").await;
    set_versioning(&c, "down", BucketVersioningStatus::Enabled).await;
    configure(
        &c,
        "down",
        vec![rule("all", &arn, &["s3:ObjectCreated:*"], "", "")],
    )
    .await;

    hook.down();
    // Two keys, written in turn: each key's versions must arrive in the order written.
    let mut written: Vec<(String, String)> = Vec::new();
    for i in 0..10 {
        let key = format!("k{}", i % 2);
        let out = c
            .put_object()
            .bucket("down")
            .key(&key)
            .body(ByteStream::from(vec![i as u8; 100]))
            .send()
            .await
            .unwrap();
        written.push((key, out.version_id().unwrap().to_string()));
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let status = admin(&srv, &["admin", "notify", "status", "--json"]);
    let stats = &status[0]["stats"];
    assert_eq!(stats["queued"], 10, "{status}");
    assert!(stats["failed"].as_u64().unwrap() >= 2, "{status}");
    assert!(
        stats["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    // SIGKILL with every event still queued; the target stays down over the restart.
    srv.kill();
    srv.start();
    tokio::time::sleep(Duration::from_secs(15)).await;
    hook.up();

    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got: Vec<(String, String)> = hook
            .events()
            .iter()
            .map(record)
            .map(|r| {
                let o = &r["s3"]["object"];
                (
                    o["key"].as_str().unwrap().into(),
                    o["versionId"].as_str().unwrap().into(),
                )
            })
            .collect();
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        if distinct.len() >= written.len() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} events",
            distinct.len(),
            written.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for key in ["k0", "k1"] {
        let sent: Vec<&String> = written
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        // Duplicates (a retry after a delivery whose answer was lost) are allowed:
        // the first arrival of each version, in order.
        let mut first = Vec::new();
        for (k, v) in &got {
            if k == key && !first.contains(&v) {
                first.push(v);
            }
        }
        assert_eq!(first, sent, "order of {key}");
    }
    assert_eq!(hook.bad_signatures(), 0);
}

#[test]
fn changes_through_the_mount_raise_the_same_events() {
    use cybs3_tests::mount::{plain_vault, s3, Mounted};
    let hook = Receiver::start(SECRET);
    let v = cybs3_tests::LocalVault::new();
    let bucket = plain_vault(&v);
    let out = v.ok(&[
        "admin",
        "notify",
        "add",
        "hook",
        "--type",
        "webhook",
        "--url",
        &hook.url(),
        "--secret",
        SECRET,
    ]);
    let arn = out.trim().to_string();
    let c = s3(&v);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(configure(
        &c,
        &bucket,
        vec![rule(
            "mnt",
            &arn,
            &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            "pm/",
            "",
        )],
    ));
    let m = Mounted::new(&v, "plainv", &[]);
    std::fs::write(m.p("from-mount.txt"), b"written through FUSE").unwrap();
    std::fs::remove_file(m.p("from-mount.txt")).unwrap();
    drop(m);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = seen(&hook.events(), &bucket);
        let created = seen
            .iter()
            .position(|(n, k)| n.starts_with("ObjectCreated:") && k == "pm/from-mount.txt");
        let removed = seen
            .iter()
            .rposition(|(n, k)| n.starts_with("ObjectRemoved:") && k == "pm/from-mount.txt");
        if let (Some(c), Some(r)) = (created, removed) {
            assert!(c < r, "{seen:?}");
            break;
        }
        assert!(Instant::now() < deadline, "mount events: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(hook.bad_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_ships_to_a_target_in_order() {
    let hook = Receiver::start(SECRET);
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    // The target is added once the server runs: shipping waits for it.
    srv.args = vec!["--audit-target".into(), "auditq".into()];
    srv.start();
    add_target(
        &srv,
        "auditq",
        "webhook",
        &hook.url(),
        &["--secret", SECRET],
    );
    let c = srv.client();
    bucket(&c, "shipped").await;
    put(&c, "shipped", "one", "1").await;
    let put_id = c
        .put_object()
        .bucket("shipped")
        .key("two")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await
        .unwrap();
    assert!(put_id.e_tag().is_some());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = hook.events();
        let puts: Vec<&str> = lines
            .iter()
            .filter(|l| l["action"] == "PutObject" && l["bucket"] == "shipped")
            .filter_map(|l| l["key"].as_str())
            .collect();
        if puts.len() >= 2 {
            assert_eq!(puts[..2], ["one", "two"]);
            let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            assert!(lines.iter().all(|l| l["prev"].is_string()));
            break;
        }
        assert!(Instant::now() < deadline, "shipped: {lines:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(hook.bad_signatures(), 0);
}
