//! `cybs3 bench s3`'s S3 Select row: a query that scans a large CSV object (a COUNT and
//! a SUM under a filter, so that the answer is one line and the scan is what is timed),
//! next to a plain GET of the same object in the same run.

use crate::machine::drop_caches;
use crate::report::{row, Row};
use crate::s3::{get_large, put_repeated};
use anyhow::{ensure, Context, Result};
use aws_sdk_s3::types::{
    CsvInput, CsvOutput, ExpressionType, FileHeaderInfo, InputSerialization, OutputSerialization,
    SelectObjectContentEventStream,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use std::time::Instant;

const BLOCK: usize = 1 << 20;
const QUERY: &str =
    "SELECT COUNT(*), SUM(CAST(_3 AS INT)) FROM S3Object WHERE CAST(_3 AS INT) < 10";

/// One MiB of CSV rows `id,name,amount`, the last one padded to end the block on its
/// newline, and what [`QUERY`] answers over it: the rows it matches and their sum.
fn block() -> (Bytes, u64, u64) {
    let (mut out, mut matched, mut sum) = (Vec::with_capacity(BLOCK), 0, 0);
    for id in 0u64.. {
        let amount = id % 997;
        let line = format!("{id},n{},{amount}\n", id % 1000);
        let room = BLOCK - out.len();
        if line.len() + 40 > room {
            // The last row fills the block: a name of the length that is left.
            let head = format!("{id},");
            let tail = format!(",{amount}\n");
            out.extend_from_slice(head.as_bytes());
            out.resize(BLOCK - tail.len(), b'x');
            out.extend_from_slice(tail.as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
        if amount < 10 {
            matched += 1;
            sum += amount;
        }
        if out.len() == BLOCK {
            break;
        }
    }
    (Bytes::from(out), matched, sum)
}

pub(crate) async fn rows(client: &Client, bucket: &str, mib: usize) -> Result<Vec<Row>> {
    if mib == 0 {
        return Ok(Vec::new());
    }
    let (block, matched, sum) = block();
    let size = (mib * BLOCK) as u64;
    put_repeated(client, bucket, "select/0", block, size, None).await?;
    drop_caches()?;
    let get = size as f64 / get_large(client, bucket, "select", size, 1).await? / 1e6;
    drop_caches()?;
    let t = Instant::now();
    let answer = select(client, bucket, "select/0").await?;
    let scan = size as f64 / t.elapsed().as_secs_f64() / 1e6;
    let blocks = mib as u64;
    ensure!(
        answer == format!("{},{}\n", matched * blocks, sum * blocks),
        "S3 Select answered {answer:?}"
    );
    Ok(vec![row(
        &format!("S3 Select scan of a {mib} MiB CSV (COUNT and SUM under WHERE)"),
        scan,
        "MB/s",
        Some((scan / get, "a plain GET of the same object")),
    )])
}

/// [`QUERY`] over `key`: the Records it answered.
async fn select(client: &Client, bucket: &str, key: &str) -> Result<String> {
    let mut out = client
        .select_object_content()
        .bucket(bucket)
        .key(key)
        .expression(QUERY)
        .expression_type(ExpressionType::Sql)
        .input_serialization(
            InputSerialization::builder()
                .csv(
                    CsvInput::builder()
                        .file_header_info(FileHeaderInfo::None)
                        .build(),
                )
                .build(),
        )
        .output_serialization(
            OutputSerialization::builder()
                .csv(CsvOutput::builder().build())
                .build(),
        )
        .send()
        .await
        .context("SelectObjectContent")?;
    let mut text = String::new();
    while let Some(ev) = out
        .payload
        .recv()
        .await
        .context("the Select event stream")?
    {
        if let SelectObjectContentEventStream::Records(r) = ev {
            let payload = r.payload().map(|p| p.as_ref()).unwrap_or_default();
            text.push_str(std::str::from_utf8(payload).context("Records")?);
        }
    }
    Ok(text)
}
