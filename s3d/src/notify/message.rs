//! AWS's S3 event message (`eventVersion` 2.1): the JSON body every target receives.

use engine::Event;
use serde_json::json;

/// The message for one event, as AWS sends it: one record under `Records`.
pub(crate) fn body(event: &Event, region: &str) -> Vec<u8> {
    let origin = event.origin.clone().unwrap_or_default();
    // Changes the store makes itself (lifecycle) are AWS's own in AWS's messages.
    let principal = match origin.principal.is_empty() {
        true => "cybs3".to_string(),
        false => origin.principal,
    };
    let mut object = json!({
        "key": form_encode(&event.key),
        "sequencer": format!("{:016X}", event.sequencer),
    });
    let created = event.name.starts_with("ObjectCreated:");
    if created || event.name.starts_with("ObjectRestore:") || event.name == "LifecycleTransition" {
        object["size"] = json!(event.size);
        object["eTag"] = json!(event.etag.trim_matches('"'));
    }
    if let Some(v) = &event.version_id {
        object["versionId"] = json!(v);
    }
    let record = json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time(event.time_ns),
        "eventName": event.name,
        "userIdentity": { "principalId": principal },
        "requestParameters": { "sourceIPAddress": origin.source_ip },
        "responseElements": {
            "x-amz-request-id": origin.request_id,
            "x-amz-id-2": origin.request_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": event.rule,
            "bucket": {
                "name": event.bucket,
                "ownerIdentity": { "principalId": principal },
                "arn": format!("arn:aws:s3:::{}", event.bucket),
            },
            "object": object,
        },
    });
    serde_json::to_vec(&json!({ "Records": [record] })).expect("JSON serializes")
}

/// A key as AWS writes it in events: URL-encoded as a form value (a space is `+`),
/// each `/`-separated segment on its own (the slashes stay).
pub(crate) fn form_encode(key: &str) -> String {
    let segments: Vec<String> = key
        .split('/')
        .map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect())
        .collect();
    segments.join("/")
}

/// `2026-12-05T10:00:00.123Z`.
pub(crate) fn event_time(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The parsed message, for tests.
#[cfg(test)]
pub(crate) fn parse(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_reads_as_aws_writes_it() {
        let event = Event {
            name: "ObjectCreated:Put".into(),
            time_ns: 1_795_316_645_123_000_000,
            bucket: "photos".into(),
            key: "red flower/ü.jpg".into(),
            version_id: Some("v1".into()),
            size: 1024,
            etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".into(),
            sequencer: 0x55AE_D6DC_D902_81E5,
            rule: "rule1".into(),
            origin: Some(engine::Origin {
                principal: "alice".into(),
                source_ip: "127.0.0.1".into(),
                request_id: "R1".into(),
                api: "PutObject".into(),
            }),
        };
        let m = parse(&body(&event, "us-east-1"));
        let r = &m["Records"][0];
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventTime"], "2026-11-22T03:04:05.123Z");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["userIdentity"]["principalId"], "alice");
        assert_eq!(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
        assert_eq!(r["responseElements"]["x-amz-request-id"], "R1");
        let o = &r["s3"]["object"];
        assert_eq!(o["key"], "red+flower/%C3%BC.jpg");
        assert_eq!(o["size"], 1024);
        assert_eq!(o["eTag"], "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(o["versionId"], "v1");
        assert_eq!(o["sequencer"], "0055AED6DCD90281E5"[2..]);
        assert_eq!(r["s3"]["configurationId"], "rule1");
    }

    #[test]
    fn a_delete_has_no_size_or_etag() {
        let event = Event {
            name: "ObjectRemoved:Delete".into(),
            time_ns: 0,
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            size: 0,
            etag: String::new(),
            sequencer: 1,
            rule: "r".into(),
            origin: None,
        };
        let m = parse(&body(&event, "r1"));
        let o = &m["Records"][0]["s3"]["object"];
        assert!(o.get("size").is_none() && o.get("eTag").is_none() && o.get("versionId").is_none());
        assert_eq!(m["Records"][0]["userIdentity"]["principalId"], "cybs3");
    }
}
