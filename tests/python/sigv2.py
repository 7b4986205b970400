"""SigV2 as old tools speak it, through boto3's `signature_version='s3'`: header
authentication on bucket and object operations, a presigned URL, and a POST form signed
with `AWSAccessKeyId` + `signature` over the policy. Run by tests/tests/s3_protocol.rs
with the endpoint and root keys as arguments; exits non-zero on the first failure."""

import sys
import urllib.request

import boto3
import requests
from botocore.config import Config

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    config=Config(signature_version="s3", s3={"addressing_style": "path"}),
)


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")
    print(f"ok    {what}")


bucket, key = "sigv2", "dir/a file ü.txt"
s3.create_bucket(Bucket=bucket)
check("head-bucket", s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"], 200)
s3.put_object(Bucket=bucket, Key=key, Body=b"hello v2", Metadata={"m": "v"})
got = s3.get_object(Bucket=bucket, Key=key)
check("get body", got["Body"].read(), b"hello v2")
check("get metadata", got["Metadata"], {"m": "v"})
keys = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
check("list", keys, [key])
check("list v2", s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["KeyCount"], 1)

url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
check("presigned url is SigV2", "Signature=" in url and "X-Amz-" not in url, True)
check("presigned get", urllib.request.urlopen(url).read(), b"hello v2")

post = s3.generate_presigned_post(bucket, "posted.txt", ExpiresIn=300)
check("post form is SigV2", sorted(post["fields"]), ["AWSAccessKeyId", "key", "policy", "signature"])
r = requests.post(post["url"], data=post["fields"], files={"file": ("x.txt", b"posted body")})
check("post status", r.status_code, 204)
check("posted object", s3.get_object(Bucket=bucket, Key="posted.txt")["Body"].read(), b"posted body")

bad = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key="not-the-secret",
    region_name="us-east-1",
    config=Config(signature_version="s3", s3={"addressing_style": "path"}),
)
try:
    bad.list_objects(Bucket=bucket)
    sys.exit("a wrong secret was accepted")
except bad.exceptions.ClientError as e:
    check("wrong secret", e.response["Error"]["Code"], "SignatureDoesNotMatch")

s3.delete_object(Bucket=bucket, Key=key)
s3.delete_object(Bucket=bucket, Key="posted.txt")
s3.delete_bucket(Bucket=bucket)
check("bucket gone", [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] == bucket], [])
