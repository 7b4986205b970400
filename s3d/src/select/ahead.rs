//! CSV records parsed ahead on a thread of their own: a scan is two stages of about
//! equal cost (the reader chain and the CSV parse, then the query's expressions), and
//! one thread running both left the second core idle. The parse thread fills batches
//! of up to [`BATCH`] records and sends them over a bounded channel; the query's thread
//! takes each record by swapping it with its slot, and sends the batch back, so the
//! records' buffers go round between the two threads and a scan allocates nothing per
//! row.
//!
//! Order is kept: a batch holds the records before an error, and the error comes next.
//! When the query stops early (LIMIT, or the client gone), dropping the reader drops
//! the channel's end, and the parse thread ends at its next send.

use super::error::{Error, Result};
use super::eval::Record;
use super::input::{CsvRecords, ReadRecord};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Records per batch at most: enough that handing a batch over (a wake-up of the other
/// thread) is rare next to the records' work.
const BATCH: usize = 4096;
/// Bytes of records per batch at most, so that wide rows keep a batch small.
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight each way: the parse thread runs at most this far ahead.
const DEPTH: usize = 4;

/// A batch of parsed records: `len` of them are filled (all of `records` but the last
/// one may hold buffers only).
struct Batch {
    records: Vec<csv::StringRecord>,
    len: usize,
}

/// What the parse thread sends: a batch, or the error after the batches before it.
type Parsed = std::result::Result<Batch, Error>;

/// The query's side of a [`CsvRecords`] parsed on its own thread.
pub(crate) struct Ahead {
    full: Receiver<Parsed>,
    empty: SyncSender<Batch>,
    batch: Batch,
    next: usize,
}

impl Ahead {
    /// Starts the parse thread over `records`, which the thread now owns.
    pub(crate) fn start(mut records: CsvRecords) -> Result<Ahead> {
        let (full_tx, full) = sync_channel::<Parsed>(DEPTH);
        let (empty, empty_rx) = sync_channel::<Batch>(DEPTH + 1);
        std::thread::Builder::new()
            .name("cybs3-select-csv".into())
            .spawn(move || loop {
                let mut batch = empty_rx.try_recv().unwrap_or_else(|_| Batch {
                    records: (0..BATCH).map(|_| csv::StringRecord::new()).collect(),
                    len: 0,
                });
                batch.len = 0;
                // Why the batch ended short: the end of the records, or an error.
                let (mut bytes, mut end) = (0, None);
                while batch.len < BATCH && bytes < BATCH_BYTES {
                    let record = &mut batch.records[batch.len];
                    match records.read_record(record) {
                        Ok(true) => {
                            bytes += record.as_slice().len();
                            batch.len += 1;
                        }
                        Ok(false) => {
                            end = Some(None);
                            break;
                        }
                        Err(e) => {
                            end = Some(Some(e));
                            break;
                        }
                    }
                }
                if batch.len > 0 && full_tx.send(Ok(batch)).is_err() {
                    return; // the query stopped
                }
                if let Some(failed) = end {
                    if let Some(e) = failed {
                        let _ = full_tx.send(Err(e));
                    }
                    return;
                }
            })
            .map_err(|e| Error::Read(format!("cannot start the CSV thread: {e}")))?;
        Ok(Ahead {
            full,
            empty,
            batch: Batch {
                records: Vec::new(),
                len: 0,
            },
            next: 0,
        })
    }
}

impl ReadRecord for Ahead {
    fn read_into(&mut self, slot: &mut Record) -> Result<bool> {
        if self.next == self.batch.len {
            let done = std::mem::replace(
                &mut self.batch,
                match self.full.recv() {
                    Ok(parsed) => parsed?,
                    Err(_) => return Ok(false), // the parse thread ended: no more records
                },
            );
            self.next = 0;
            if !done.records.is_empty() {
                // The parse thread may be gone already; its buffers then go with this.
                let _ = self.empty.try_send(done);
            }
        }
        std::mem::swap(slot.csv(), &mut self.batch.records[self.next]);
        self.next += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::input::CsvIn;
    use std::io::Cursor;

    /// Rows `0..n` as `i,row i`, then `tail`.
    fn rows(n: usize, tail: &[u8]) -> Ahead {
        let mut text = Vec::new();
        for i in 0..n {
            text.extend_from_slice(format!("{i},row {i}\n").as_bytes());
        }
        text.extend_from_slice(tail);
        Ahead::start(CsvRecords::new(
            Box::new(Cursor::new(text)),
            &CsvIn::default(),
        ))
        .unwrap()
    }

    fn first_field(slot: &Record) -> String {
        match slot {
            Record::Csv(r) => r[0].to_string(),
            Record::Doc(_) => panic!("not a CSV record"),
        }
    }

    #[test]
    fn records_come_in_order_across_batches_then_the_error() {
        // More rows than three batches hold, then a row that is not UTF-8.
        let n = 3 * BATCH + 17;
        let mut ahead = rows(n, b"\xff\xfe,bad\nnever,read\n");
        let mut slot = Record::Doc(crate::select::value::Value::Null);
        for i in 0..n {
            assert!(ahead.read_into(&mut slot).unwrap(), "row {i}");
            assert_eq!(first_field(&slot), i.to_string());
        }
        let e = ahead.read_into(&mut slot).unwrap_err();
        assert_eq!(e.code(), "CSVParsingError");
        assert!(
            !ahead.read_into(&mut slot).unwrap(),
            "nothing after the error"
        );
    }

    #[test]
    fn the_end_is_the_end_and_a_stopped_query_ends_the_thread() {
        let mut ahead = rows(BATCH, b"");
        let mut slot = Record::Doc(crate::select::value::Value::Null);
        let mut n = 0;
        while ahead.read_into(&mut slot).unwrap() {
            n += 1;
        }
        assert_eq!(n, BATCH);
        // A query that stops after one row (LIMIT 1) drops its reader mid-stream: the
        // parse thread's next send fails and it ends, so the test does not hang.
        let mut ahead = rows(50 * BATCH, b"");
        assert!(ahead.read_into(&mut slot).unwrap());
        drop(ahead);
    }
}
