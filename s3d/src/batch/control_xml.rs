//! S3 Control's XML for jobs: a CreateJob request read into a job file's terms, and a
//! job written as DescribeJob and ListJobs show it.

use super::job::{
    CopyOp, Empty, Generate, Job, JobSpec, LegalHoldOp, ManifestFormat, ManifestSpec, Operation,
    ReportSpec, RestoreOp, RetentionOp, TagsOp, WebhookOp,
};
use super::JobView;
use crate::notify::event_time;
use crate::xml::escape;
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::fmt::Write;

/// An element: its local name, its text and its children.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub(crate) fn parse(xml: &str) -> Result<Node, String> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack: Vec<Node> = vec![Node::default()];
        loop {
            let event = reader.read_event().map_err(|e| e.to_string())?;
            let top = stack.last_mut().expect("the document node stays");
            match event {
                Event::Start(e) => stack.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                }),
                Event::Empty(e) => top.children.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                }),
                Event::Text(t) => top
                    .text
                    .push_str(&t.xml10_content().map_err(|e| e.to_string())?),
                Event::CData(t) => top.text.push_str(&String::from_utf8_lossy(&t)),
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c,
                        None => match r.decode().map_err(|e| e.to_string())?.as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    top.text.push(c);
                }
                Event::End(_) => {
                    let done = stack.pop().expect("an element was open");
                    stack
                        .last_mut()
                        .ok_or("unbalanced XML")?
                        .children
                        .push(done);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut doc = stack
            .pop()
            .filter(|_| stack.is_empty())
            .ok_or("unclosed XML")?;
        doc.children
            .pop()
            .ok_or_else(|| "an empty document".to_string())
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, p| n.child(p))
    }

    fn text_at(&self, path: &[&str]) -> Option<String> {
        self.at(path).map(|n| n.text.trim().to_string())
    }
}

/// `arn:aws:s3:::BUCKET[/KEY]` (or a bare bucket name).
fn arn_path(arn: &str) -> &str {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.splitn(5, ':').nth(4))
        .unwrap_or(arn)
}

/// A CreateJob request as a job file.
pub(crate) fn spec_of(req: &Node) -> Result<JobSpec, String> {
    let manifest = match (
        req.child("Manifest"),
        req.at(&["ManifestGenerator", "S3JobManifestGenerator"]),
    ) {
        (Some(m), None) => {
            let format = match m.text_at(&["Spec", "Format"]).as_deref() {
                Some("S3BatchOperations_CSV_20180820") => ManifestFormat::Csv,
                Some("S3InventoryReport_CSV_20161130") => ManifestFormat::Inventory,
                other => return Err(format!("manifest format {other:?} is not supported")),
            };
            let arn = m
                .text_at(&["Location", "ObjectArn"])
                .ok_or("Manifest.Location.ObjectArn is required")?;
            let (bucket, key) = arn_path(&arn)
                .split_once('/')
                .ok_or("the manifest's ObjectArn names no key")?;
            ManifestSpec {
                bucket: Some(bucket.to_string()),
                key: Some(key.to_string()),
                format: Some(format),
                generate: None,
            }
        }
        (None, Some(g)) => ManifestSpec {
            bucket: None,
            key: None,
            format: None,
            generate: Some(generator(g)?),
        },
        _ => return Err("a job has a Manifest or a ManifestGenerator".into()),
    };
    let op = req
        .child("Operation")
        .and_then(|o| o.children.first())
        .ok_or("Operation is required")?;
    let report = match req.child("Report") {
        Some(r) if r.text_at(&["Enabled"]).as_deref() == Some("true") => Some(ReportSpec {
            bucket: arn_path(&r.text_at(&["Bucket"]).ok_or("Report.Bucket is required")?)
                .to_string(),
            prefix: r.text_at(&["Prefix"]).unwrap_or_default(),
        }),
        _ => None,
    };
    let priority = match req.text_at(&["Priority"]) {
        Some(p) => p.parse().map_err(|_| "Priority is an integer")?,
        None => 0,
    };
    let spec = JobSpec {
        manifest,
        operation: operation(op)?,
        report,
        priority,
        concurrency: None,
    };
    spec.validate()?;
    Ok(spec)
}

fn generator(g: &Node) -> Result<Generate, String> {
    let bucket = arn_path(
        &g.text_at(&["SourceBucket"])
            .ok_or("SourceBucket is required")?,
    )
    .to_string();
    let mut out = Generate {
        bucket,
        prefix: String::new(),
        older_than_days: None,
        created_after: None,
        created_before: None,
        tag: BTreeMap::new(),
        storage_class: None,
        min_size: None,
        max_size: None,
    };
    let Some(filter) = g.child("Filter") else {
        return Ok(out);
    };
    for f in &filter.children {
        let text = f.text.trim();
        let bytes = || {
            text.parse::<u64>()
                .map_err(|_| format!("{} is a number", f.name))
        };
        match f.name.as_str() {
            "KeyNameConstraint" => {
                let prefixes = f
                    .child("MatchAnyPrefix")
                    .map_or(&[][..], |p| &p.children[..]);
                match (prefixes, f.children.len()) {
                    ([one], 1) => out.prefix = one.text.trim().to_string(),
                    _ => return Err("KeyNameConstraint: one MatchAnyPrefix is supported".into()),
                }
            }
            "CreatedAfter" => out.created_after = Some(text.to_string()),
            "CreatedBefore" => out.created_before = Some(text.to_string()),
            "ObjectSizeGreaterThanBytes" => out.min_size = Some(bytes()?.saturating_add(1)),
            "ObjectSizeLessThanBytes" => out.max_size = Some(bytes()?.saturating_sub(1)),
            "MatchAnyStorageClass" => match f.children.as_slice() {
                [one] => out.storage_class = Some(one.text.trim().to_string()),
                _ => return Err("MatchAnyStorageClass: one class is supported".into()),
            },
            other => return Err(format!("the manifest filter {other} is not supported")),
        }
    }
    Ok(out)
}

fn operation(op: &Node) -> Result<Operation, String> {
    let text = |path: &[&str]| op.text_at(path);
    Ok(match op.name.as_str() {
        "S3PutObjectCopy" => Operation::Copy(copy(op)?),
        "S3PutObjectTagging" => {
            let mut tags = BTreeMap::new();
            for t in op.child("TagSet").map_or(&[][..], |s| &s.children[..]) {
                let (Some(k), Some(v)) = (t.text_at(&["Key"]), t.text_at(&["Value"])) else {
                    return Err("a tag has a Key and a Value".into());
                };
                tags.insert(k, v);
            }
            Operation::ReplaceTags(TagsOp { tags })
        }
        "S3DeleteObjectTagging" => Operation::DeleteTags(Empty {}),
        "S3DeleteObject" => Operation::Delete(Empty {}),
        "S3PutObjectRetention" => Operation::Retention(RetentionOp {
            mode: text(&["Retention", "Mode"]).ok_or("Retention.Mode is required")?,
            until: text(&["Retention", "RetainUntilDate"])
                .ok_or("Retention.RetainUntilDate is required")?,
        }),
        "S3PutObjectLegalHold" => Operation::LegalHold(LegalHoldOp {
            status: text(&["LegalHold", "Status"]).ok_or("LegalHold.Status is required")?,
        }),
        "S3InitiateRestoreObject" => Operation::Restore(RestoreOp {
            days: text(&["ExpirationInDays"])
                .and_then(|d| d.parse().ok())
                .ok_or("ExpirationInDays is required")?,
        }),
        "S3ReplicateObject" => Operation::Replicate(Empty {}),
        // A notification target stands for the function: its name, or its ARN
        // (`arn:cybs3:sqs:REGION:NAME:TYPE`).
        "LambdaInvoke" => {
            let arn = text(&["FunctionArn"]).ok_or("FunctionArn is required")?;
            let parts: Vec<&str> = arn.split(':').collect();
            let target = match parts.as_slice() {
                [_, _, _, _, name, _] => name.to_string(),
                _ => arn.clone(),
            };
            Operation::Webhook(WebhookOp { target })
        }
        other => return Err(format!("the operation {other} is not supported")),
    })
}

/// `key`/`value` pairs: a map (`<entry><key>…</key><value>…</value></entry>`, as boto3
/// writes `UserMetadata`) or a tag set (`<member><Key>…</Key><Value>…</Value></member>`).
fn pairs(n: &Node, key: &str, value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for e in &n.children {
        let (Some(k), Some(v)) = (e.text_at(&[key]), e.text_at(&[value])) else {
            return Err(format!("each of {} has a {key} and a {value}", n.name));
        };
        out.insert(k, v);
    }
    Ok(out)
}

/// S3PutObjectCopy: the target, and the encryption, metadata and tags of the copies.
fn copy(op: &Node) -> Result<CopyOp, String> {
    let text = |path: &[&str]| op.text_at(path);
    let meta = op.child("NewObjectMetadata");
    // S3 Control names SSE-KMS `KMS`; a key id alone asks for it too, as in AWS.
    let key_id = text(&["SSEAwsKmsKeyId"]).filter(|k| !k.is_empty());
    let sse = match meta.and_then(|m| m.text_at(&["SSEAlgorithm"])).as_deref() {
        Some("AES256") => Some("AES256".to_string()),
        Some("KMS" | "aws:kms") => Some("aws:kms".to_string()),
        Some(other) => return Err(format!("SSEAlgorithm {other:?} is AES256 or KMS")),
        None => key_id.as_ref().map(|_| "aws:kms".to_string()),
    };
    let bucket_key_enabled = match text(&["BucketKeyEnabled"]).as_deref() {
        Some("true") => Some(true),
        Some("false") | None => None,
        Some(other) => return Err(format!("BucketKeyEnabled {other:?} is true or false")),
    };
    // Bucket keys are KMS's: with AES256 the flag says nothing, as in S3.
    let bucket_key_enabled = bucket_key_enabled.filter(|_| sse.as_deref() == Some("aws:kms"));
    let replace = text(&["MetadataDirective"]).as_deref() == Some("REPLACE");
    let metadata = match meta.and_then(|m| m.child("UserMetadata")) {
        Some(m) => Some(pairs(m, "key", "value")?),
        None => replace.then(BTreeMap::new),
    };
    let tags = match op.child("NewObjectTagging") {
        Some(t) => Some(pairs(t, "Key", "Value")?),
        None => None,
    };
    Ok(CopyOp {
        bucket: arn_path(&text(&["TargetResource"]).ok_or("TargetResource is required")?)
            .to_string(),
        prefix: text(&["TargetKeyPrefix"]).unwrap_or_default(),
        storage_class: text(&["StorageClass"]),
        sse,
        sse_kms_key_id: key_id,
        bucket_key_enabled,
        metadata,
        content_type: meta.and_then(|m| m.text_at(&["ContentType"])),
        tags,
    })
}

/// The S3 Control name of a job's operation.
fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Copy(_) => "S3PutObjectCopy",
        Operation::ReplaceTags(_) => "S3PutObjectTagging",
        Operation::DeleteTags(_) => "S3DeleteObjectTagging",
        Operation::Delete(_) => "S3DeleteObject",
        Operation::Retention(_) => "S3PutObjectRetention",
        Operation::LegalHold(_) => "S3PutObjectLegalHold",
        Operation::Restore(_) => "S3InitiateRestoreObject",
        Operation::Replicate(_) => "S3ReplicateObject",
        Operation::Webhook(_) => "LambdaInvoke",
    }
}

fn progress(v: &JobView) -> String {
    format!(
        "<ProgressSummary><TotalNumberOfTasks>{}</TotalNumberOfTasks><NumberOfTasksSucceeded>{}</NumberOfTasksSucceeded><NumberOfTasksFailed>{}</NumberOfTasksFailed></ProgressSummary>",
        v.counts.total, v.counts.succeeded, v.counts.failed
    )
}

/// A job as DescribeJob shows it.
pub(crate) fn job_xml(job: &Job, v: &JobView) -> String {
    let mut s = format!(
        "<Job><JobId>{}</JobId><ConfirmationRequired>false</ConfirmationRequired><Operation><{op}/></Operation><Priority>{}</Priority>{}<Status>{:?}</Status><CreationTime>{}</CreationTime>",
        escape(&v.id),
        v.priority,
        progress(v),
        v.status,
        event_time(v.created_ns),
        op = operation_name(&job.spec.operation),
    );
    if let Some(t) = v.finished_ns {
        let _ = write!(s, "<TerminationDate>{}</TerminationDate>", event_time(t));
    }
    if let Some(r) = &v.reason {
        let _ = write!(
            s,
            "<FailureReasons><JobFailure><FailureCode>{:?}</FailureCode><FailureReason>{}</FailureReason></JobFailure></FailureReasons>",
            v.status,
            escape(r)
        );
    }
    if let Some(r) = &job.spec.report {
        let _ = write!(
            s,
            "<Report><Bucket>arn:aws:s3:::{}</Bucket><Format>Report_CSV_20180820</Format><Enabled>true</Enabled><Prefix>{}</Prefix><ReportScope>AllTasks</ReportScope></Report>",
            escape(&r.bucket),
            escape(&r.prefix)
        );
    }
    s.push_str("</Job>");
    s
}

/// Jobs as ListJobs shows them.
pub(crate) fn list_xml(jobs: impl Iterator<Item = JobView>) -> String {
    let mut s = String::from("<Jobs>");
    for v in jobs {
        let _ = write!(
            s,
            "<member><JobId>{}</JobId><Operation>{}</Operation><Priority>{}</Priority><Status>{:?}</Status><CreationTime>{}</CreationTime>{}</member>",
            escape(&v.id),
            control_name(&v.operation),
            v.priority,
            v.status,
            event_time(v.created_ns),
            progress(&v)
        );
    }
    s.push_str("</Jobs>");
    s
}

/// The S3 Control name of an operation named as in job files.
fn control_name(name: &str) -> &'static str {
    match name {
        "copy" => "S3PutObjectCopy",
        "replace_tags" => "S3PutObjectTagging",
        "delete_tags" => "S3DeleteObjectTagging",
        "delete" => "S3DeleteObject",
        "retention" => "S3PutObjectRetention",
        "legal_hold" => "S3PutObjectLegalHold",
        "restore" => "S3InitiateRestoreObject",
        "replicate" => "S3ReplicateObject",
        _ => "LambdaInvoke",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_job_request_becomes_a_job_file() {
        let req = Node::parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateJobRequest xmlns="http://awss3control.amazonaws.com/doc/2018-08-20/">
  <ConfirmationRequired>false</ConfirmationRequired>
  <Operation><S3PutObjectTagging><TagSet><member><Key>k</Key><Value>a &amp; b</Value></member></TagSet></S3PutObjectTagging></Operation>
  <Report><Bucket>arn:aws:s3:::rep</Bucket><Format>Report_CSV_20180820</Format><Enabled>true</Enabled><Prefix>r</Prefix><ReportScope>AllTasks</ReportScope></Report>
  <ClientRequestToken>t</ClientRequestToken>
  <Manifest><Spec><Format>S3BatchOperations_CSV_20180820</Format><Fields><member>Bucket</member><member>Key</member></Fields></Spec>
    <Location><ObjectArn>arn:aws:s3:::man/lists/m.csv</ObjectArn><ETag>x</ETag></Location></Manifest>
  <Priority>7</Priority><RoleArn>arn:aws:iam::1:role/r</RoleArn>
</CreateJobRequest>"#,
        )
        .unwrap();
        let spec = spec_of(&req).unwrap();
        assert_eq!(spec.priority, 7);
        assert_eq!(spec.manifest.bucket.as_deref(), Some("man"));
        assert_eq!(spec.manifest.key.as_deref(), Some("lists/m.csv"));
        assert_eq!(spec.report.as_ref().unwrap().bucket, "rep");
        match spec.operation {
            Operation::ReplaceTags(t) => assert_eq!(t.tags["k"], "a & b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_copy_takes_encryption_metadata_and_tags() {
        let req = Node::parse(
            r#"<CreateJobRequest><Operation><S3PutObjectCopy>
  <TargetResource>arn:aws:s3:::dst</TargetResource><TargetKeyPrefix>c/</TargetKeyPrefix>
  <MetadataDirective>REPLACE</MetadataDirective>
  <NewObjectMetadata><ContentType>text/csv</ContentType><SSEAlgorithm>KMS</SSEAlgorithm>
    <UserMetadata><entry><key>team</key><value>blue</value></entry></UserMetadata></NewObjectMetadata>
  <NewObjectTagging><member><Key>t</Key><Value>1</Value></member></NewObjectTagging>
  <SSEAwsKmsKeyId>arn:cybs3:kms:us-east-1::key/team</SSEAwsKmsKeyId><BucketKeyEnabled>true</BucketKeyEnabled>
</S3PutObjectCopy></Operation><Manifest><Spec><Format>S3BatchOperations_CSV_20180820</Format></Spec><Location><ObjectArn>arn:aws:s3:::m/k</ObjectArn></Location></Manifest></CreateJobRequest>"#,
        )
        .unwrap();
        let Operation::Copy(c) = spec_of(&req).unwrap().operation else {
            panic!("not a copy")
        };
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("dst", "c/"));
        assert_eq!(c.sse.as_deref(), Some("aws:kms"));
        assert_eq!(
            c.sse_kms_key_id.as_deref(),
            Some("arn:cybs3:kms:us-east-1::key/team")
        );
        assert_eq!(c.bucket_key_enabled, Some(true));
        assert_eq!(c.metadata.unwrap()["team"], "blue");
        assert_eq!(c.content_type.as_deref(), Some("text/csv"));
        assert_eq!(c.tags.unwrap()["t"], "1");
        // AES256 alone; and an unknown algorithm is refused.
        let plain = |alg: &str| {
            Node::parse(&format!(
                "<CreateJobRequest><Operation><S3PutObjectCopy><TargetResource>arn:aws:s3:::dst</TargetResource><NewObjectMetadata><SSEAlgorithm>{alg}</SSEAlgorithm></NewObjectMetadata></S3PutObjectCopy></Operation><Manifest><Spec><Format>S3BatchOperations_CSV_20180820</Format></Spec><Location><ObjectArn>arn:aws:s3:::m/k</ObjectArn></Location></Manifest></CreateJobRequest>"
            ))
            .unwrap()
        };
        let Operation::Copy(c) = spec_of(&plain("AES256")).unwrap().operation else {
            panic!("not a copy")
        };
        assert_eq!((c.sse.as_deref(), c.metadata), (Some("AES256"), None));
        assert!(spec_of(&plain("DSSE")).unwrap_err().contains("DSSE"));
    }

    #[test]
    fn unsupported_operations_and_filters_are_refused() {
        let req = Node::parse(
            "<CreateJobRequest><Operation><S3PutObjectAcl/></Operation><Manifest><Spec><Format>S3BatchOperations_CSV_20180820</Format></Spec><Location><ObjectArn>arn:aws:s3:::m/k</ObjectArn></Location></Manifest></CreateJobRequest>",
        )
        .unwrap();
        assert!(spec_of(&req).unwrap_err().contains("S3PutObjectAcl"));
        let req = Node::parse(
            "<CreateJobRequest><Operation><S3DeleteObjectTagging/></Operation><ManifestGenerator><S3JobManifestGenerator><SourceBucket>arn:aws:s3:::b</SourceBucket><Filter><EligibleForReplication>true</EligibleForReplication></Filter></S3JobManifestGenerator></ManifestGenerator></CreateJobRequest>",
        )
        .unwrap();
        assert!(spec_of(&req)
            .unwrap_err()
            .contains("EligibleForReplication"));
    }
}
