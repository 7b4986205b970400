//! S3 Select (SelectObjectContent): SQL over one object's CSV, JSON or Parquet records,
//! answered as AWS's event stream.
//!
//! - [`sql`]: the SQL subset AWS documents, parsed by hand into a [`sql::Query`].
//! - [`value`], [`eval`]: values with MISSING and NULL, and evaluation on one record.
//! - [`input`]: InputSerialization, ScanRange windows, decompression, CSV and JSON records;
//!   [`parquet`]: Parquet rows over ranged reads.
//! - [`output`]: CSV and JSON result rows.
//! - [`exec`]: the query over the records, streamed as events in batches.
//!
//! Here: the request's checks (the same reads and keys as GetObject: s3:GetObject, SSE
//! decrypted by the engine, SSE-C with the customer's key) and s3s's event types.

mod ahead;
mod error;
mod eval;
mod exec;
mod input;
mod output;
mod parquet;
mod sql;
mod value;

use std::io::{self, Read};
use std::sync::Arc;

use hyper::http::Extensions;
use s3s::dto::{
    ContinuationEvent, EndEvent, Progress, ProgressEvent, RecordsEvent, SelectObjectContentEvent,
    SelectObjectContentEventStream, SelectObjectContentInput, SelectObjectContentOutput, Stats,
    StatsEvent,
};
use s3s::S3Result;

use crate::ctx::{self, Cybs3};
use crate::identity::auth;
use crate::versioning::{self, Found};
use crate::{archive, errors, sse};
use error::Error;
use exec::{Counts, Event, Object};

/// Events buffered between the query's thread and the response: the query runs ahead of
/// a slow client by this many batches at most.
const IN_FLIGHT: usize = 4;

pub(crate) async fn select(
    s: &Cybs3,
    input: SelectObjectContentInput,
    extensions: &Extensions,
) -> S3Result<SelectObjectContentOutput> {
    let req = &input.request;
    if req.expression_type.as_str() != "SQL" {
        return Err(Error::ExpressionType.into_s3());
    }
    let query = sql::parse(&req.expression).map_err(Error::into_s3)?;
    let format = input::Input::from_request(&req.input_serialization).map_err(Error::into_s3)?;
    let output = output::Output::from_request(&req.output_serialization).map_err(Error::into_s3)?;
    let progress = req
        .request_progress
        .as_ref()
        .and_then(|p| p.enabled)
        .unwrap_or(false);
    let customer = sse::customer_of!(input, sse::key_may_travel(extensions))?;
    let Found {
        object: mut reader, ..
    } = match versioning::open(s, input.bucket.clone(), input.key.clone(), None).await {
        Ok(found) => found,
        Err(e) => return Err(auth::missing_key(extensions, e).await),
    };
    reader
        .unlock(customer.as_ref().map(|c| &c.key))
        .map_err(errors::from_engine)?;
    archive::check_readable(&s.store, reader.version())?;
    s.store.note_read(&input.bucket, &reader.version().key);
    let window = format
        .window(req.scan_range.as_ref(), reader.size())
        .map_err(Error::into_s3)?;
    let object: Arc<dyn Object> = Arc::new(Stored(reader));
    let prepared =
        ctx::spawn(move || exec::prepare(query, &format, output, object, window, progress))
            .await?
            .map_err(Error::into_s3)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        exec::run(prepared, &mut |ev| {
            tx.blocking_send(ev.map(event).map_err(Error::into_s3))
                .is_ok()
        })
    });
    let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(SelectObjectContentOutput {
        payload: Some(SelectObjectContentEventStream::new(events)),
    })
}

fn event(e: Event) -> SelectObjectContentEvent {
    let n = |v: u64| Some(v as i64);
    match e {
        Event::Records(bytes) => SelectObjectContentEvent::Records(RecordsEvent {
            payload: Some(bytes.into()),
        }),
        Event::Progress(Counts {
            scanned,
            processed,
            returned,
        }) => SelectObjectContentEvent::Progress(ProgressEvent {
            details: Some(Progress {
                bytes_scanned: n(scanned),
                bytes_processed: n(processed),
                bytes_returned: n(returned),
            }),
        }),
        Event::Stats(Counts {
            scanned,
            processed,
            returned,
        }) => SelectObjectContentEvent::Stats(StatsEvent {
            details: Some(Stats {
                bytes_scanned: n(scanned),
                bytes_processed: n(processed),
                bytes_returned: n(returned),
            }),
        }),
        Event::Cont => SelectObjectContentEvent::Cont(ContinuationEvent {}),
        Event::End => SelectObjectContentEvent::End(EndEvent {}),
    }
}

/// The stored object, read through the engine (decrypted, every block checked).
struct Stored(engine::ObjectReader);

impl Object for Stored {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn range(&self, start: u64, end: u64) -> error::Result<Box<dyn Read + Send>> {
        /// The engine's failures stay ours, not taken for the format's.
        struct Tagged(engine::RangeRead);
        impl Read for Tagged {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0
                    .read(buf)
                    .map_err(|e| Error::Read(e.to_string()).into_io())
            }
        }
        let r = self
            .0
            .range(start, end)
            .map_err(|e| Error::Read(e.to_string()))?;
        Ok(Box::new(Tagged(r)))
    }
}
