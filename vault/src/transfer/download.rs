//! Ranged downloads: a first GET that brings the metadata, then ranges in parallel,
//! each streamed in pieces to a consumer and retried when its body breaks off.

use super::{ObjectInfo, Pin, Progress, RangeConsumer, Sink, Transfers, PIECE, RANGES_IN_FLIGHT};
use crate::blocking::blocking;
use crate::error::{status, Error, Result, ResultExt};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use bytes::{Bytes, BytesMut};
use futures::{stream, StreamExt, TryStreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Attempts at a ranged GET whose body breaks off.
const BODY_ATTEMPTS: u32 = 3;

impl Transfers {
    /// Downloads bytes `[start, end)` of `bucket/key` (`end` = object size when `None`)
    /// into `sink` at offsets relative to `start`, in ranged GETs of `part_size` with `jobs`
    /// in flight. Returns the object's size and metadata from the first response; later
    /// ranges carry `If-Match` with its ETag, so an object replaced meanwhile fails the
    /// download instead of mixing versions.
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: Option<u64>,
        sink: Arc<dyn Sink>,
        progress: Progress,
    ) -> Result<ObjectInfo> {
        let step = self.part_size.max(1);
        if let Some(end) = end.filter(|&end| end <= start) {
            // Nothing to fetch, but the object must exist and be long enough.
            let info = self
                .head(bucket, key)
                .await?
                .ok_or_else(|| no_such_object(bucket, key))?;
            check_range(bucket, key, start, end, info.size)?;
            return Ok(info);
        }
        // A small first request: it is held whole, and the rest streams.
        let first_end = end.map_or(start + PIECE as u64, |end| end.min(start + PIECE as u64));
        let (info, data) = self
            .get_first(bucket, key, start, first_end, None)
            .await?
            .ok_or_else(|| no_such_object(bucket, key))?;
        let end = end.unwrap_or(info.size);
        check_range(bucket, key, start, end, info.size)?;
        let first_end = first_end.min(end);
        if data.len() as u64 != first_end - start {
            return Err(Error::Transport(format!(
                "download of {bucket}/{key} failed at bytes {start}..{first_end}: the server sent {} bytes",
                data.len()
            )));
        }
        let each: RangeConsumer = Arc::new(move |offset, data: &mut [u8]| {
            sink.write_at(offset - start, data)
                .context("writing the download")?;
            progress(data.len() as u64);
            Ok(())
        });
        // The first range is written before the others are requested, so whatever the sink
        // does with it happens before any later range is read.
        let first = each.clone();
        blocking(move || first(start, &mut BytesMut::from(data)))
            .await
            .with_context(|| format!("download of {bucket}/{key} failed"))?;
        let ranges = (first_end..end)
            .step_by(step as usize)
            .map(|at| (at, (at + step).min(end)))
            .collect();
        let pin = Pin {
            etag: info.etag.as_deref(),
            version: None,
        };
        self.fetch_ranges(bucket, key, pin, ranges, PIECE, each)
            .await?;
        Ok(info)
    }

    /// One GET of `[start, end)` of `bucket/key` (less at the object's end), of `version`
    /// or the current one: the object's size and metadata with the bytes, so a small
    /// object costs one request. `None`: no such object. Past the object's end (an empty
    /// object) there are no bytes, and one HEAD finds the metadata.
    pub async fn get_first(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        version: Option<&str>,
    ) -> Result<Option<(ObjectInfo, Bytes)>> {
        let failed = || format!("download of {bucket}/{key} failed at bytes {start}..{end}");
        let mut data = BytesMut::new();
        let pin = Pin {
            etag: None,
            version,
        };
        let Some(out) = self
            .get_range_into(bucket, key, start, end, pin, &mut data)
            .await
            .with_context(failed)?
        else {
            let info = self.head_version(bucket, key, version).await?;
            return Ok(info.map(|info| (info, Bytes::new())));
        };
        let size = object_size(&out, start, end, data.len() as u64).with_context(failed)?;
        Ok(Some((ObjectInfo::from_get(&out, size), data.freeze())))
    }

    /// Fetches each of `ranges` (`[start, end)`, non-empty) of `bucket/key` as one of the
    /// [`RANGES_IN_FLIGHT`] slots of all downloads frees up (first asked, first served, so
    /// concurrent downloads progress together), and hands it to `each` in pieces of `piece` bytes (less at a range's end) as
    /// it arrives, so memory does not grow with the range. Every request is pinned to
    /// `pin`: with its ETag, an object replaced meanwhile is an error. Stops at the first
    /// error.
    pub async fn fetch_ranges(
        &self,
        bucket: &str,
        key: &str,
        pin: Pin<'_>,
        ranges: Vec<(u64, u64)>,
        piece: usize,
        each: RangeConsumer,
    ) -> Result<()> {
        let _buffers = self.buffers.in_use();
        // The slots bound what runs; this only lets every range wait for one.
        let in_flight = ranges.len().max(1);
        stream::iter(ranges)
            .map(|(start, end)| {
                let each = each.clone();
                async move {
                    let _slot = self.range_slots.acquire().await.map_err(Error::transport)?;
                    self.fetch_range(bucket, key, pin, (start, end), piece, each)
                        .await
                        .with_context(|| {
                            format!("download of {bucket}/{key} failed at bytes {start}..{end}")
                        })
                }
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await
    }

    /// GETs `[start, end)` into `buf` (emptied first), retrying a body that breaks off.
    /// The body streams into `buf`, so a reused buffer costs no allocation. `Ok(None)`: no
    /// such object (404), or the range starts outside it (416).
    pub async fn get_range_into(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        pin: Pin<'_>,
        buf: &mut BytesMut,
    ) -> Result<Option<GetObjectOutput>> {
        let mut attempt = 1;
        loop {
            let Some(mut out) = self.get_range(bucket, key, start, end, pin).await? else {
                return Ok(None);
            };
            // What the server says it sends (less than asked at the object's end).
            let len = out.content_length().and_then(|n| u64::try_from(n).ok());
            buf.clear();
            buf.reserve(len.unwrap_or(0).min(end - start) as usize);
            let mut body = std::mem::take(&mut out.body);
            let read = async {
                while let Some(piece) = body.try_next().await? {
                    buf.extend_from_slice(&piece);
                }
                Ok::<_, aws_sdk_s3::primitives::ByteStreamError>(())
            };
            match read.await {
                Ok(()) => return Ok(Some(out)),
                Err(_) if attempt < BODY_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The response to a GET of `[start, end)`, its body still to be read. `Ok(None)`: no
    /// such object (404), or the range starts outside it (416).
    pub async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        pin: Pin<'_>,
    ) -> Result<Option<GetObjectOutput>> {
        let sent = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .set_version_id(pin.version.map(str::to_string))
            .set_if_match(pin.etag.map(str::to_string))
            .send()
            .await;
        let e = match sent {
            Ok(out) => return Ok(Some(out)),
            Err(e) if status(&e) == Some(416) => return Ok(None),
            Err(e) => Error::from(e),
        };
        match e {
            Error::NotFound(_) => Ok(None),
            Error::PreconditionFailed(_) if pin.etag.is_some() => Err(Error::PreconditionFailed(
                "the object was replaced during the download (its ETag changed)".into(),
            )),
            e => Err(e),
        }
    }

    /// Streams `[start, end)` to `each` in pieces of `piece` bytes, each consumed on a
    /// blocking thread while the next one arrives, in two buffers of the pool. A body that
    /// breaks off is asked for again from where it broke.
    async fn fetch_range(
        &self,
        bucket: &str,
        key: &str,
        pin: Pin<'_>,
        (start, end): (u64, u64),
        piece: usize,
        each: RangeConsumer,
    ) -> Result<()> {
        if end <= start || piece == 0 {
            return Err(Error::invalid("empty range"));
        }
        let mut filling = self.buffers.take_empty();
        let mut spare = Some(self.buffers.take_empty());
        // The piece being consumed, which gives its buffer back.
        let mut consuming = None;
        let (mut received, mut handed) = (start, start);
        let mut attempt = 1;
        while received < end {
            let out = self
                .get_range(bucket, key, received, end, pin)
                .await?
                .ok_or_else(gone)?;
            let mut body = out.body;
            loop {
                let mut bytes = match body.try_next().await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) if received < end => {
                        return Err(Error::Transport(format!(
                            "the server sent {} bytes",
                            received - start
                        )))
                    }
                    Ok(None) => break,
                    Err(_) if attempt < BODY_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                        attempt += 1;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                if bytes.len() as u64 > end - received {
                    return Err(Error::Transport(
                        "the server sent more than the range".into(),
                    ));
                }
                received += bytes.len() as u64;
                while !bytes.is_empty() {
                    let n = (piece - filling.len()).min(bytes.len());
                    filling.extend_from_slice(&bytes.split_to(n));
                    if filling.len() < piece && received < end {
                        continue;
                    }
                    let next = match (spare.take(), consuming.take()) {
                        (Some(buf), _) => buf,
                        (None, Some(done)) => {
                            let (done, buf) = done.await?;
                            done?;
                            buf
                        }
                        (None, None) => unreachable!("a buffer is spare or being consumed"),
                    };
                    let mut full = std::mem::replace(&mut filling, next);
                    filling.clear();
                    let (at, each) = (handed, each.clone());
                    handed += full.len() as u64;
                    // The consumer's own result travels beside the buffer, which comes
                    // back to the pool whether or not it succeeded.
                    consuming = Some(blocking(move || Ok((each(at, &mut full), full))));
                }
            }
        }
        if let Some(done) = consuming {
            let (done, buf) = done.await?;
            self.buffers.give_back(buf.freeze(), 2 * RANGES_IN_FLIGHT);
            done?;
        }
        self.buffers
            .give_back(filling.freeze(), 2 * RANGES_IN_FLIGHT);
        Ok(())
    }
}

/// The object's size from the answer to a GET of `[start, asked_end)` with `len` bytes.
fn object_size(out: &GetObjectOutput, start: u64, asked_end: u64, len: u64) -> Result<u64> {
    match out.content_range() {
        Some(range) => range
            .rsplit_once('/')
            .and_then(|(_, total)| total.parse().ok())
            .ok_or_else(|| Error::Transport(format!("unexpected Content-Range {range:?}"))),
        // A server may answer with the whole object instead (HTTP allows ignoring Range);
        // that is only what was asked for if it starts at 0 and fits.
        None if start == 0 && len <= asked_end => Ok(len),
        None => Err(Error::Transport(
            "the server ignored the Range header".into(),
        )),
    }
}

fn check_range(bucket: &str, key: &str, start: u64, end: u64, size: u64) -> Result<()> {
    if start > end || end > size {
        return Err(Error::invalid(format!("download of {bucket}/{key} failed: bytes {start}..{end} asked for, but the object has {size} bytes")));
    }
    Ok(())
}

fn no_such_object(bucket: &str, key: &str) -> Error {
    Error::NotFound(format!("download of {bucket}/{key} failed: no such object"))
}

/// What a range that was there a moment ago and is not any more says.
pub(crate) fn gone() -> Error {
    Error::NotFound("the object is gone or ends before the range".into())
}
