//! Parquet input: the parquet crate's row reader over ranged reads of the object, so a
//! query reads the footer, then one row group's column chunks at a time, never the
//! whole file; rows become [`Value`] structs.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use time::OffsetDateTime;

use super::error::{Error, Result};
use super::eval::Record;
use super::exec::Object;
use super::value::Value;

/// How much a sequential read fetches at once: page headers are small, and pages are
/// read with their exact length.
const PIECE: u64 = 64 << 10;

/// The object as the parquet crate reads it: ranges on demand.
pub(crate) struct Source {
    object: Arc<dyn Object>,
    size: u64,
    scanned: Arc<AtomicU64>,
}

impl Source {
    pub(crate) fn new(object: Arc<dyn Object>, scanned: Arc<AtomicU64>) -> Source {
        Source {
            size: object.size(),
            object,
            scanned,
        }
    }

    fn read(&self, start: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = start.saturating_add(len).min(self.size);
        let mut out = Vec::with_capacity((end - start.min(end)) as usize);
        self.object
            .range(start.min(end), end)
            .map_err(Error::into_io)?
            .read_to_end(&mut out)?;
        self.scanned.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        self.size
    }
}

/// A sequential read from an offset, a piece at a time.
pub(crate) struct Pieces {
    source: Arc<Source>,
    pos: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            self.buf = self.source.read(self.pos, PIECE)?;
            self.pos += self.buf.len() as u64;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The parquet crate wants one reader type; the source is shared by its readers.
pub(crate) struct Shared(Arc<Source>);

impl Length for Shared {
    fn len(&self) -> u64 {
        self.0.size
    }
}

impl ChunkReader for Shared {
    type T = Pieces;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Pieces> {
        Ok(Pieces {
            source: Arc::clone(&self.0),
            pos: start,
            buf: Vec::new(),
            at: 0,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let bytes = self
            .0
            .read(start, length as u64)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        if bytes.len() != length {
            return Err(ParquetError::EOF(format!("{length} bytes at {start}")));
        }
        Ok(bytes.into())
    }
}

/// The rows of a Parquet object.
pub(crate) struct ParquetRecords {
    rows: RowIter<'static>,
}

impl ParquetRecords {
    pub(crate) fn open(source: Source) -> Result<ParquetRecords> {
        let reader = SerializedFileReader::new(Shared(Arc::new(source))).map_err(parquet_error)?;
        Ok(ParquetRecords {
            rows: RowIter::from_file_into(Box::new(reader)),
        })
    }
}

impl Iterator for ParquetRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        Some(
            self.rows
                .next()?
                .map(|row| Record::Doc(row_value(&row)))
                .map_err(parquet_error),
        )
    }
}

/// Our own errors (reads of the object) come back as they were.
fn parquet_error(e: ParquetError) -> Error {
    match e {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => Error::from_io(*io, Error::Parquet),
            Err(other) => Error::Parquet(other.to_string()),
        },
        other => Error::Parquet(other.to_string()),
    }
}

fn row_value(row: &Row) -> Value {
    Value::Struct(
        row.get_column_iter()
            .map(|(name, f)| (name.clone(), field_value(f)))
            .collect(),
    )
}

fn timestamp(nanos: i128) -> Value {
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_or(Value::Null, Value::Timestamp)
}

fn field_value(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(i) => Value::Int(i64::from(*i)),
        Field::Short(i) => Value::Int(i64::from(*i)),
        Field::Int(i) => Value::Int(i64::from(*i)),
        Field::Long(i) => Value::Int(*i),
        Field::UByte(i) => Value::Int(i64::from(*i)),
        Field::UShort(i) => Value::Int(i64::from(*i)),
        Field::UInt(i) => Value::Int(i64::from(*i)),
        Field::ULong(i) => i64::try_from(*i).map_or(Value::Float(*i as f64), Value::Int),
        Field::Float16(x) => Value::Float(f64::from(*x)),
        Field::Float(x) => Value::Float(f64::from(*x)),
        Field::Double(x) => Value::Float(*x),
        Field::Decimal(_) => f.to_string().parse().map_or(Value::Null, Value::Float),
        Field::Str(s) => Value::Str(s.clone()),
        Field::Bytes(b) => Value::Str(String::from_utf8_lossy(b.data()).into_owned()),
        Field::Date(days) => timestamp(i128::from(*days) * 86_400 * 1_000_000_000),
        Field::TimeMillis(ms) => Value::Int(i64::from(*ms)),
        Field::TimeMicros(us) => Value::Int(*us),
        Field::TimestampMillis(ms) => timestamp(i128::from(*ms) * 1_000_000),
        Field::TimestampMicros(us) => timestamp(i128::from(*us) * 1_000),
        Field::Group(row) => row_value(row),
        Field::ListInternal(list) => Value::List(list.elements().iter().map(field_value).collect()),
        Field::MapInternal(map) => Value::Struct(
            map.entries()
                .iter()
                .map(|(k, v)| (field_value(k).to_text(), field_value(v)))
                .collect(),
        ),
    }
}
