"""S3 Batch Operations through boto3's s3control client against a running cybs3.

Usage: s3_control.py ENDPOINT ACCESS_KEY SECRET_KEY SLOW_TARGET KMS_KEY

CreateJob (a CSV manifest, S3PutObjectTagging, a report), DescribeJob until it
completes, the tags and the report checked, ListJobs; an S3PutObjectCopy job whose
copies are encrypted with the server's KMS key KMS_KEY, with new metadata and tags
(HeadObject shows them, the bytes are the source's); a job over a generated manifest
with CreatedBefore and CreatedAfter; then a LambdaInvoke job on
SLOW_TARGET (a notification target that never answers, so the job stays active) whose
priority is changed (UpdateJobPriority) and which is cancelled (UpdateJobStatus).
Prints one line per check; exits non-zero on the first failure.
"""

import json
import sys
import time
import urllib.parse

import boto3
from botocore.config import Config

endpoint, access_key, secret_key, slow_target, kms_key = sys.argv[1:6]
creds = dict(
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
)
s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}), **creds)
ctl = boto3.client(
    "s3control",
    config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    **creds,
)
ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/batch"


def drop_account_host(request, **_):
    """botocore's endpoint rules for S3 Control put the account id in front of the host
    (ACCOUNT.127.0.0.1) even with inject_host_prefix=False; a name that does not resolve
    here. The request goes to the endpoint itself, signed for it."""
    url = urllib.parse.urlsplit(request.url)
    if url.netloc.startswith(f"{ACCOUNT}."):
        request.url = urllib.parse.urlunsplit(url._replace(netloc=url.netloc[len(ACCOUNT) + 1 :]))


ctl.meta.events.register("before-sign.s3-control", drop_account_host)

for b in ("ctl", "man", "rep"):
    s3.create_bucket(Bucket=b)
keys = [f"k/{i:03} x" for i in range(50)]
for k in keys:
    s3.put_object(Bucket="ctl", Key=k, Body=k.encode())
manifest = "".join(f"ctl,{k.replace(' ', '+')}\n" for k in keys)
s3.put_object(Bucket="man", Key="m.csv", Body=manifest.encode())
etag = s3.head_object(Bucket="man", Key="m.csv")["ETag"]


def wait(job_id):
    deadline = time.time() + 120
    while True:
        job = ctl.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]
        if job["Status"] in ("Complete", "Failed", "Cancelled"):
            return job
        assert time.time() < deadline, job
        time.sleep(0.1)


made = ctl.create_job(
    AccountId=ACCOUNT,
    ConfirmationRequired=False,
    Operation={"S3PutObjectTagging": {"TagSet": [{"Key": "via", "Value": "s3control"}]}},
    Report={
        "Bucket": "arn:aws:s3:::rep",
        "Format": "Report_CSV_20180820",
        "Enabled": True,
        "Prefix": "ctl",
        "ReportScope": "AllTasks",
    },
    Manifest={
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": "arn:aws:s3:::man/m.csv", "ETag": etag},
    },
    Priority=10,
    RoleArn=ROLE,
)
job_id = made["JobId"]
print("CreateJob", job_id)
job = wait(job_id)
assert job["Status"] == "Complete", job
assert job["Operation"] == {"S3PutObjectTagging": {}} or "S3PutObjectTagging" in job["Operation"], job
progress = job["ProgressSummary"]
assert progress["TotalNumberOfTasks"] == 50, progress
assert progress["NumberOfTasksSucceeded"] == 50, progress
assert progress["NumberOfTasksFailed"] == 0, progress
print("DescribeJob Complete", progress)
for k in keys:
    tags = s3.get_object_tagging(Bucket="ctl", Key=k)["TagSet"]
    assert tags == [{"Key": "via", "Value": "s3control"}], (k, tags)
print("tags set on", len(keys), "objects")
summary = json.loads(
    s3.get_object(Bucket="rep", Key=f"ctl/job-{job_id}/summary.json")["Body"].read()
)
assert summary["succeeded"] == 50 and summary["status"] == "Complete", summary
print("report summary", summary["status"])
jobs = ctl.list_jobs(AccountId=ACCOUNT)["Jobs"]
assert any(j["JobId"] == job_id and j["Operation"] == "S3PutObjectTagging" for j in jobs), jobs
print("ListJobs", len(jobs))

# A copy with an encryption choice, new metadata and tags (S3 Batch's S3PutObjectCopy).
s3.create_bucket(Bucket="copies")
copy = ctl.create_job(
    AccountId=ACCOUNT,
    Operation={
        "S3PutObjectCopy": {
            "TargetResource": "arn:aws:s3:::copies",
            "TargetKeyPrefix": "enc/",
            "MetadataDirective": "REPLACE",
            "NewObjectMetadata": {
                "ContentType": "text/plain",
                "UserMetadata": {"team": "blue"},
                "SSEAlgorithm": "KMS",
            },
            "NewObjectTagging": [{"Key": "copied", "Value": "yes"}],
            "SSEAwsKmsKeyId": f"arn:cybs3:kms:us-east-1::key/{kms_key}",
            "BucketKeyEnabled": True,
        }
    },
    Report={"Enabled": False},
    Manifest={
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": "arn:aws:s3:::man/m.csv", "ETag": etag},
    },
    Priority=10,
    RoleArn=ROLE,
)["JobId"]
job = wait(copy)
assert job["Status"] == "Complete", job
for k in keys:
    got = s3.get_object(Bucket="copies", Key=f"enc/{k}")
    assert got["Body"].read() == k.encode(), k
    assert got["ServerSideEncryption"] == "aws:kms", got
    assert got["SSEKMSKeyId"].endswith(f":key/{kms_key}"), got
    assert got.get("BucketKeyEnabled") is True, got
    assert got["Metadata"] == {"team": "blue"}, got
    assert got["ContentType"] == "text/plain", got
    tags = s3.get_object_tagging(Bucket="copies", Key=f"enc/{k}")["TagSet"]
    assert tags == [{"Key": "copied", "Value": "yes"}], (k, tags)
print("S3PutObjectCopy with SSE-KMS, metadata and tags on", len(keys), "objects")

# A generated manifest with S3 Control's CreatedBefore: objects written later are not in it.
before = time.time()
time.sleep(1.1)
s3.put_object(Bucket="ctl", Key="late", Body=b"late")
dated = ctl.create_job(
    AccountId=ACCOUNT,
    Operation={"S3PutObjectTagging": {"TagSet": [{"Key": "dated", "Value": "yes"}]}},
    Report={"Enabled": False},
    ManifestGenerator={
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::ctl",
            "EnableManifestOutput": False,
            "Filter": {"CreatedBefore": before, "CreatedAfter": before - 3600},
        }
    },
    Priority=10,
    RoleArn=ROLE,
)["JobId"]
job = wait(dated)
assert job["Status"] == "Complete", job
assert job["ProgressSummary"]["TotalNumberOfTasks"] == len(keys), job
assert s3.get_object_tagging(Bucket="ctl", Key="late")["TagSet"] == []
print("ManifestGenerator CreatedBefore/CreatedAfter:", len(keys), "objects")

# A job that stays active (its target never answers): priority, then cancel.
slow = ctl.create_job(
    AccountId=ACCOUNT,
    Operation={"LambdaInvoke": {"FunctionArn": slow_target}},
    Report={"Enabled": False},
    ManifestGenerator={
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::ctl",
            "EnableManifestOutput": False,
            "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["k/"]}},
        }
    },
    Priority=1,
    RoleArn=ROLE,
)["JobId"]
out = ctl.update_job_priority(AccountId=ACCOUNT, JobId=slow, Priority=42)
assert out["Priority"] == 42, out
assert ctl.describe_job(AccountId=ACCOUNT, JobId=slow)["Job"]["Priority"] == 42
print("UpdateJobPriority 42")
out = ctl.update_job_status(AccountId=ACCOUNT, JobId=slow, RequestedJobStatus="Cancelled")
assert out["Status"] in ("Cancelling", "Cancelled"), out
job = wait(slow)
assert job["Status"] == "Cancelled", job
print("UpdateJobStatus Cancelled")

# Errors are S3 Control's: an unknown job, an unsupported operation.
try:
    ctl.describe_job(AccountId=ACCOUNT, JobId="no-such-job")
    raise AssertionError("DescribeJob of an unknown job succeeded")
except ctl.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
print("DescribeJob unknown: 404")
try:
    ctl.create_job(
        AccountId=ACCOUNT,
        Operation={"S3PutObjectAcl": {}},
        Report={"Enabled": False},
        Manifest={
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": "arn:aws:s3:::man/m.csv", "ETag": etag},
        },
        Priority=1,
        RoleArn=ROLE,
    )
    raise AssertionError("an unsupported operation was accepted")
except ctl.exceptions.ClientError as e:
    assert "S3PutObjectAcl" in str(e), e
print("unsupported operation refused")
print("ok")
