"""S3 Select against a running cybs3, checked against DuckDB over the same files.

Usage: s3_select.py ENDPOINT ACCESS_KEY SECRET_KEY WORKDIR

Writes CSV, JSON (lines and one document) and Parquet files into WORKDIR (plain, gzip
and bzip2), uploads them, runs each query through boto3's select_object_content and the
equivalent query through DuckDB over the local file, and compares the rows (numbers
compared as numbers, since CSV fields come back as text). Also: ScanRange windows
that together give every record once, AWS's error codes, Progress and Stats events,
and an SSE-C object. Prints one line per check; exits non-zero on the first failure.
"""

import bz2
import datetime
import gzip
import json
import os
import random
import sys

import boto3
import botocore.exceptions
import duckdb
from botocore.config import Config

endpoint, access_key, secret_key, work = sys.argv[1:5]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 1}),
)
BUCKET = "select"
s3.create_bucket(Bucket=BUCKET)
db = duckdb.connect()

# The data: one table, written in every format.
random.seed(23)
CITIES = ["Oslo", "Rome", "Lima", "Kyiv", "Pune"]
NAMES = ["Ann", "Bob", "Cy, Jr", "Dee \"D\"", "Eve", "Abe", "Zoe"]
rows = []
for i in range(1, 3001):
    rows.append(
        {
            "id": i,
            "name": random.choice(NAMES),
            "city": random.choice(CITIES),
            "amount": round(random.uniform(0, 1000), 2),
            "ts": f"2021-{random.randint(1, 12):02d}-{random.randint(1, 28):02d}T0{random.randint(0, 9)}:30:00Z",
        }
    )


def csv_field(v):
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def write(name, data):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


csv_text = "id,name,city,amount,ts\n" + "".join(
    ",".join(csv_field(r[k]) for k in ("id", "name", "city", "amount", "ts")) + "\n" for r in rows
)
lines_text = "".join(
    json.dumps({**r, "tags": [r["city"].lower(), str(r["id"] % 7)], "nested": {"x": r["id"] * 2}}) + "\n"
    for r in rows
)
doc_text = json.dumps({"rows": [{"id": r["id"], "city": r["city"], "amount": r["amount"]} for r in rows]}, indent=1)
files = {
    "people.csv": write("people.csv", csv_text.encode()),
    "people.csv.gz": write("people.csv.gz", gzip.compress(csv_text.encode())),
    "people.csv.bz2": write("people.csv.bz2", bz2.compress(csv_text.encode())),
    "people.jsonl": write("people.jsonl", lines_text.encode()),
    "people.jsonl.gz": write("people.jsonl.gz", gzip.compress(lines_text.encode())),
    "people.jsonl.bz2": write("people.jsonl.bz2", bz2.compress(lines_text.encode())),
    "doc.json": write("doc.json", doc_text.encode()),
    "semi.csv": write("semi.csv", csv_text.replace(",", ";").encode()),
}
csv_path = files["people.csv"]
for name, codec in [("people.parquet", "snappy"), ("people-gzip.parquet", "gzip"), ("people-plain.parquet", "uncompressed")]:
    path = os.path.join(work, name)
    # Small row groups: a query reads many, one at a time.
    db.execute(
        f"COPY (SELECT id, name, city, amount FROM read_csv('{csv_path}', header=true)) "
        f"TO '{path}' (FORMAT parquet, CODEC '{codec}', ROW_GROUP_SIZE 500)"
    )
    files[name] = path
for key, path in files.items():
    with open(path, "rb") as f:
        s3.put_object(Bucket=BUCKET, Key=key, Body=f.read())

CSV_IN = {"CSV": {"FileHeaderInfo": "USE"}}
LINES_IN = {"JSON": {"Type": "LINES"}}
JSON_OUT = {"JSON": {"RecordDelimiter": "\n"}}


def select(key, sql, inp, out=None, scan=None, progress=False, extra=None):
    """Rows (parsed JSON objects, or raw text for CSV output), the events' kinds, stats."""
    args = dict(
        Bucket=BUCKET,
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=inp,
        OutputSerialization=out or JSON_OUT,
    )
    if scan:
        args["ScanRange"] = scan
    if progress:
        args["RequestProgress"] = {"Enabled": True}
    args.update(extra or {})
    resp = s3.select_object_content(**args)
    text, kinds, stats = b"", [], None
    for ev in resp["Payload"]:
        kind = next(iter(ev))
        kinds.append(kind)
        if kind == "Records":
            text += ev["Records"]["Payload"]
        elif kind == "Stats":
            stats = ev["Stats"]["Details"]
    assert kinds and kinds[-1] == "End", kinds
    if "CSV" in (out or JSON_OUT):
        return text.decode(), kinds, stats
    return [json.loads(l) for l in text.decode().splitlines() if l], kinds, stats


def norm(v):
    """Numbers (and text that is one) as rounded floats; structures recursively."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, (int, float)):
        return round(float(v), 4)
    if isinstance(v, str):
        try:
            return round(float(v), 4)
        except ValueError:
            return v
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return str(v)


def duck(sql, path, reader):
    rel = db.sql(sql.format(t=f"{reader}('{path}')"))
    names = [d[0] for d in rel.description]
    return names, rel.fetchall()


checks = 0


def check(label, got, want):
    global checks
    checks += 1
    if got != want:
        print(f"FAIL {label}\n  got  {str(got)[:600]}\n  want {str(want)[:600]}")
        sys.exit(1)
    print(f"ok   {label}")


def same(label, key, sql, inp, dsql, path, reader, star=False):
    got, _, _ = select(key, sql, inp)
    names, want = duck(dsql, path, reader)
    if star:
        check(label, [norm(r) for r in got], [norm(dict(zip(names, r))) for r in want])
    else:
        check(label, [norm(list(r.values())) for r in got], [norm(list(r)) for r in want])


READ_CSV = "read_csv"
CSV_CASES = [
    ("star", "SELECT * FROM S3Object", "SELECT id, name, city, amount, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') FROM {t}", False),
    (
        "where and alias",
        "SELECT s.name, s.amount FROM S3Object s WHERE CAST(s.amount AS FLOAT) > 500 AND s.city = 'Oslo'",
        "SELECT name, amount FROM {t} WHERE amount > 500 AND city = 'Oslo'",
        False,
    ),
    (
        "aggregates",
        "SELECT COUNT(*), SUM(CAST(amount AS FLOAT)), AVG(CAST(amount AS FLOAT)), MIN(CAST(amount AS FLOAT)), MAX(CAST(id AS INT)) FROM S3Object",
        "SELECT count(*), sum(amount), avg(amount), min(amount), max(id) FROM {t}",
        False,
    ),
    (
        "aggregates with a filter",
        "SELECT COUNT(*) AS n, AVG(CAST(amount AS FLOAT)) FROM S3Object WHERE city IN ('Rome', 'Lima') AND name LIKE 'A%'",
        "SELECT count(*), avg(amount) FROM {t} WHERE city IN ('Rome', 'Lima') AND name LIKE 'A%'",
        False,
    ),
    (
        "string functions",
        "SELECT UPPER(name), LOWER(city), CHAR_LENGTH(name), SUBSTRING(city, 2, 2), TRIM(LEADING 'O' FROM city), name || '/' || city FROM S3Object WHERE NOT (city = 'Pune' OR city = 'Kyiv')",
        "SELECT upper(name), lower(city), length(name), substring(city, 2, 2), ltrim(city, 'O'), name || '/' || city FROM {t} WHERE NOT (city = 'Pune' OR city = 'Kyiv')",
        False,
    ),
    (
        "positions, BETWEEN and LIMIT",
        "SELECT _1, _3 FROM S3Object WHERE CAST(_1 AS INT) BETWEEN 100 AND 200 LIMIT 7",
        "SELECT id, city FROM {t} WHERE id BETWEEN 100 AND 200 LIMIT 7",
        False,
    ),
    (
        "CASE, COALESCE, NULLIF",
        "SELECT CASE WHEN CAST(amount AS FLOAT) > 500 THEN 'big' ELSE 'small' END, COALESCE(NULLIF(city, 'Oslo'), 'home') FROM S3Object",
        "SELECT CASE WHEN amount > 500 THEN 'big' ELSE 'small' END, coalesce(nullif(city, 'Oslo'), 'home') FROM {t}",
        False,
    ),
    (
        "dates",
        "SELECT EXTRACT(MONTH FROM TO_TIMESTAMP(ts)), EXTRACT(HOUR FROM CAST(ts AS TIMESTAMP)), DATE_DIFF(day, TO_TIMESTAMP('2021-01-01T'), TO_TIMESTAMP(ts)) FROM S3Object WHERE TO_TIMESTAMP(ts) < TO_TIMESTAMP('2021-06-01T')",
        "SELECT month(ts), hour(ts), date_diff('day', TIMESTAMP '2021-01-01', ts::TIMESTAMP) FROM {t} WHERE ts < TIMESTAMP '2021-06-01'",
        False,
    ),
]
for key in ["people.csv", "people.csv.gz", "people.csv.bz2"]:
    comp = {"people.csv": "NONE", "people.csv.gz": "GZIP", "people.csv.bz2": "BZIP2"}[key]
    inp = {**CSV_IN, "CompressionType": comp}
    for label, sql, dsql, star in CSV_CASES:
        if comp != "NONE" and label not in ("star", "aggregates"):
            continue
        same(f"csv {comp} {label}", key, sql, inp, dsql, csv_path, READ_CSV, star)

# CSV settings: another delimiter, and no header (columns by position).
same(
    "csv FieldDelimiter ';'",
    "semi.csv",
    "SELECT s._2, s._4 FROM S3Object s WHERE s._3 = 'Rome'",
    {"CSV": {"FileHeaderInfo": "IGNORE", "FieldDelimiter": ";"}},
    "SELECT replace(name, ',', ';'), amount FROM {t} WHERE city = 'Rome'",
    csv_path,
    READ_CSV,
)
text, _, _ = select(
    "people.csv",
    "SELECT name, city FROM S3Object WHERE CAST(id AS INT) <= 3",
    CSV_IN,
    out={"CSV": {"FieldDelimiter": "|", "RecordDelimiter": "\r\n", "QuoteFields": "ALWAYS"}},
)
want = "".join(f'"{r["name"]}"|"{r["city"]}"\r\n'.replace('"D"', '""D""') for r in rows[:3])
check("csv output settings", text, want)

LINES_CASES = [
    ("star", "SELECT * FROM S3Object[*] s WHERE s.amount > 900", "SELECT * FROM {t} WHERE amount > 900", True),
    (
        "paths",
        "SELECT s.nested.x, s.tags[0], s.tags[1] FROM S3Object s WHERE s.city = 'Kyiv' AND s.id % 3 = 0",
        "SELECT nested.x, tags[1], tags[2] FROM {t} WHERE city = 'Kyiv' AND id % 3 = 0",
        False,
    ),
    (
        "aggregates",
        "SELECT COUNT(*), SUM(s.amount), MIN(s.amount), MAX(s.amount), AVG(s.id) FROM S3Object s WHERE s.name <> 'Bob'",
        "SELECT count(*), sum(amount), min(amount), max(amount), avg(id) FROM {t} WHERE name <> 'Bob'",
        False,
    ),
    (
        "IS NULL, IS MISSING",
        "SELECT s.id FROM S3Object s WHERE s.nope IS NULL AND s.nope IS MISSING AND s.id IS NOT NULL LIMIT 3",
        "SELECT id FROM {t} LIMIT 3",
        False,
    ),
]
for key in ["people.jsonl", "people.jsonl.gz", "people.jsonl.bz2"]:
    comp = {"people.jsonl": "NONE", "people.jsonl.gz": "GZIP", "people.jsonl.bz2": "BZIP2"}[key]
    for label, sql, dsql, star in LINES_CASES:
        if comp != "NONE" and label != "aggregates":
            continue
        same(f"json lines {comp} {label}", key, sql, {**LINES_IN, "CompressionType": comp}, dsql, files["people.jsonl"], "read_json_auto", star)

same(
    "json document with a path in FROM",
    "doc.json",
    "SELECT r.id, r.amount FROM S3Object[*].rows[*] r WHERE r.city = 'Lima'",
    {"JSON": {"Type": "DOCUMENT"}},
    "SELECT r.id, r.amount FROM (SELECT unnest(rows) AS r FROM {t}) WHERE r.city = 'Lima'",
    files["doc.json"],
    "read_json_auto",
)

for key in ["people.parquet", "people-gzip.parquet", "people-plain.parquet"]:
    path = files[key]
    same(f"parquet {key} star", key, "SELECT * FROM S3Object", {"Parquet": {}}, "SELECT * FROM {t}", path, "read_parquet", True)
    same(
        f"parquet {key} aggregates",
        key,
        "SELECT COUNT(*), SUM(amount), MAX(name) FROM S3Object WHERE city = 'Oslo' OR amount < 10",
        {"Parquet": {}},
        "SELECT count(*), sum(amount), max(name) FROM {t} WHERE city = 'Oslo' OR amount < 10",
        path,
        "read_parquet",
    )

# ScanRange: windows that together cover the object give each record exactly once.
for key, inp in [("people.csv", CSV_IN), ("people.jsonl", LINES_IN)]:
    size = os.path.getsize(files[key])
    step = size // 7 + 13
    ids = []
    for start in range(0, size, step):
        got, _, _ = select(key, "SELECT s.id FROM S3Object s", inp, scan={"Start": start, "End": start + step - 1})
        ids += [int(r["id"]) for r in got]
    check(f"scan ranges {key}", ids, [r["id"] for r in rows])
got, _, _ = select("people.jsonl", "SELECT s.id FROM S3Object s", LINES_IN, scan={"End": len(json.dumps(rows[-1])) + 60})
check("scan range End alone (the last bytes)", [r["id"] for r in got][-1:], [3000])
got, _, _ = select("people.csv", "SELECT id FROM S3Object", CSV_IN, scan={"Start": 1, "End": 1})
check("scan range inside the header", got, [])

# Events: Stats always, Progress when asked for.
_, kinds, stats = select("people.csv", "SELECT COUNT(*) FROM S3Object", CSV_IN, progress=True)
check("stats scanned", (stats["BytesScanned"], stats["BytesProcessed"]), (len(csv_text), len(csv_text)))
check("progress events", "Progress" in kinds and "Stats" in kinds, True)
_, _, stats = select("people.csv.gz", "SELECT COUNT(*) FROM S3Object", {**CSV_IN, "CompressionType": "GZIP"})
check("stats of a compressed object", (stats["BytesScanned"], stats["BytesProcessed"]), (os.path.getsize(files["people.csv.gz"]), len(csv_text)))


def error_of(label, want, *args, **kwargs):
    try:
        select(*args, **kwargs)
    except (botocore.exceptions.ClientError, botocore.exceptions.EventStreamError) as e:
        err = e.response["Error"]
        check(f"error {label}", err["Code"], want)
        return err
    check(f"error {label}", "no error", want)


err = error_of("bad SQL", "ParseUnexpectedToken", "people.csv", "SELECT * FROM S3Object WHERE", CSV_IN)
check("bad SQL names where", "line 1, column 29" in err["Message"], True)
error_of("unknown function", "ParseUnsupportedSyntax", "people.csv", "SELECT FOO(id) FROM S3Object", CSV_IN)
error_of("missing header", "MissingHeaders", "people.csv", "SELECT nope FROM S3Object", CSV_IN)
error_of("column 0", "InvalidColumnIndex", "people.csv", "SELECT _0 FROM S3Object", CSV_IN)
error_of("expression type", "InvalidExpressionType", "people.csv", "SELECT * FROM S3Object", CSV_IN, extra={"ExpressionType": "XQL"})
error_of("scan range of gzip", "UnsupportedScanRangeInput", "people.csv.gz", "SELECT * FROM S3Object", {**CSV_IN, "CompressionType": "GZIP"}, scan={"Start": 0, "End": 10})
error_of("scan range of parquet", "UnsupportedScanRangeInput", "people.parquet", "SELECT * FROM S3Object", {"Parquet": {}}, scan={"Start": 0, "End": 10})
error_of("not gzip", "InvalidCompressionFormat", "people.jsonl", "SELECT * FROM S3Object", {**LINES_IN, "CompressionType": "GZIP"})
error_of("cast", "CastFailed", "people.csv", "SELECT CAST(name AS INT) FROM S3Object", CSV_IN)
error_of("not JSON", "JSONParsingError", "people.csv", "SELECT * FROM S3Object", LINES_IN)
error_of("no such key", "NoSuchKey", "nope.csv", "SELECT * FROM S3Object", CSV_IN)

# SSE-C: the server decrypts with the customer's key, as for GetObject.
key = bytes(range(32))
s3.put_object(Bucket=BUCKET, Key="secret.csv", Body=csv_text.encode(), SSECustomerAlgorithm="AES256", SSECustomerKey=key)
sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
got, _, _ = select("secret.csv", "SELECT COUNT(*) AS n FROM S3Object", CSV_IN, extra=sse)
check("SSE-C object", got, [{"n": 3000}])
error_of("SSE-C without the key", "InvalidRequest", "secret.csv", "SELECT * FROM S3Object", CSV_IN)

print(f"{checks} checks passed")
