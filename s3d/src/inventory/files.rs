//! A report's data files as AWS writes them: gzip-compressed CSV (every cell quoted, keys
//! URL-encoded) or Parquet (AWS's `s3.inventory` schema), each streamed into a new
//! object of the destination bucket while its size and MD5 are counted.

use super::fields::{Field, Kind, Row, Value};
use super::report::InventoryError;
use crate::notify::{event_time, form_encode};
use engine::{ObjectMeta, ObjectWriter};
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

/// Rows buffered per Parquet row group (columns are written one after the other, so a
/// group's rows are held in memory: this bounds it).
const ROW_GROUP: usize = 64 * 1024;
/// What the engine is handed at a time.
const WRITE_BUFFER: usize = 256 * 1024;

/// A data file or a manifest going into the destination bucket.
pub(crate) struct Sink {
    writer: ObjectWriter,
    md5: Md5,
    size: u64,
}

/// A finished object: its size and MD5 (hex), as the manifest lists them.
pub(crate) struct Written {
    pub size: u64,
    pub md5: String,
}

impl Sink {
    pub(crate) fn new(writer: ObjectWriter) -> Sink {
        Sink {
            writer,
            md5: Md5::new(),
            size: 0,
        }
    }

    /// Make the bytes a new version of the object, with the MD5 as its ETag.
    pub(crate) fn finish(self, content_type: &str) -> engine::Result<Written> {
        let md5 = hex::encode(self.md5.finalize());
        self.writer.finish(ObjectMeta {
            etag: md5.clone(),
            content_type: Some(content_type.to_string()),
            ..Default::default()
        })?;
        Ok(Written {
            size: self.size,
            md5,
        })
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf).map_err(io::Error::other)?;
        self.md5.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One data file being written.
pub(crate) enum DataFile {
    Csv(Box<GzEncoder<BufWriter<Sink>>>),
    Parquet(Box<ParquetFile>),
}

impl DataFile {
    pub(crate) fn csv(sink: Sink) -> DataFile {
        let out = BufWriter::with_capacity(WRITE_BUFFER, sink);
        DataFile::Csv(Box::new(GzEncoder::new(
            out,
            flate2::Compression::default(),
        )))
    }

    pub(crate) fn parquet(sink: Sink, columns: &[Field]) -> Result<DataFile, InventoryError> {
        Ok(DataFile::Parquet(Box::new(ParquetFile::new(
            sink, columns,
        )?)))
    }

    pub(crate) fn push(&mut self, columns: &[Field], row: &Row) -> Result<(), InventoryError> {
        match self {
            DataFile::Csv(out) => Ok(out.write_all(csv_line(columns, row).as_bytes())?),
            DataFile::Parquet(p) => p.push(columns, row),
        }
    }

    /// The file's bytes, all handed to its sink.
    pub(crate) fn finish(self) -> Result<Sink, InventoryError> {
        match self {
            DataFile::Csv(gz) => Ok(gz.finish()?.into_inner().map_err(|e| e.into_error())?),
            DataFile::Parquet(p) => p.finish(),
        }
    }
}

/// A CSV line as AWS writes it: every cell quoted, the key URL-encoded.
pub(crate) fn csv_line(columns: &[Field], row: &Row) -> String {
    let mut line = String::with_capacity(128);
    for (i, f) in columns.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let cell = match f.value(row) {
            Value::Text(t) if *f == Field::Key => form_encode(&t),
            Value::Text(t) => t.into_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Millis(ms) => event_time(u64::try_from(ms).unwrap_or(0) * 1_000_000),
            Value::Null => String::new(),
        };
        line.push('"');
        line.push_str(&cell.replace('"', "\"\""));
        line.push('"');
    }
    line.push('\n');
    line
}

/// The Parquet schema of a report with these columns, as AWS's `fileSchema` gives it:
/// bucket and key required, every other column optional.
pub(crate) fn parquet_schema(columns: &[Field]) -> String {
    let mut s = String::from("message s3.inventory {");
    for f in columns {
        let repetition = match f {
            Field::Bucket | Field::Key => "required",
            _ => "optional",
        };
        let ty = match f.kind() {
            Kind::Text => format!("binary {} (UTF8)", f.column()),
            Kind::Bool => format!("boolean {}", f.column()),
            Kind::Int => format!("int64 {}", f.column()),
            Kind::Millis => format!("int64 {} (TIMESTAMP_MILLIS)", f.column()),
        };
        s.push_str(&format!(" {repetition} {ty};"));
    }
    s.push_str(" }");
    s
}

/// A column's buffered cells: values of the non-null ones, and a definition level each.
enum Cells {
    Text(Vec<ByteArray>),
    Bool(Vec<bool>),
    Int(Vec<i64>),
}

struct Column {
    cells: Cells,
    defs: Vec<i16>,
    required: bool,
}

pub(crate) struct ParquetFile {
    writer: SerializedFileWriter<BufWriter<Sink>>,
    columns: Vec<Column>,
    rows: usize,
}

impl ParquetFile {
    fn new(sink: Sink, fields: &[Field]) -> Result<ParquetFile, InventoryError> {
        let schema = Arc::new(parse_message_type(&parquet_schema(fields))?);
        let props = Arc::new(WriterProperties::builder().build());
        let out = BufWriter::with_capacity(WRITE_BUFFER, sink);
        let columns = fields
            .iter()
            .map(|f| Column {
                cells: match f.kind() {
                    Kind::Text => Cells::Text(Vec::new()),
                    Kind::Bool => Cells::Bool(Vec::new()),
                    Kind::Int | Kind::Millis => Cells::Int(Vec::new()),
                },
                defs: Vec::new(),
                required: matches!(f, Field::Bucket | Field::Key),
            })
            .collect();
        Ok(ParquetFile {
            writer: SerializedFileWriter::new(out, schema, props)?,
            columns,
            rows: 0,
        })
    }

    fn push(&mut self, fields: &[Field], row: &Row) -> Result<(), InventoryError> {
        for (f, col) in fields.iter().zip(&mut self.columns) {
            let value = f.value(row);
            col.defs.push(i16::from(value != Value::Null));
            match (&mut col.cells, value) {
                (Cells::Text(v), Value::Text(t)) => v.push(ByteArray::from(t.as_bytes().to_vec())),
                (Cells::Bool(v), Value::Bool(b)) => v.push(b),
                (Cells::Int(v), Value::Int(n) | Value::Millis(n)) => v.push(n),
                (_, Value::Null) => {}
                _ => unreachable!("a field's values are of its kind"),
            }
        }
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), InventoryError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        for col in &mut self.columns {
            let mut w = group
                .next_column()?
                .expect("the schema has a column per field");
            let defs = (!col.required).then_some(&col.defs[..]);
            match &mut col.cells {
                Cells::Text(v) => {
                    w.typed::<ByteArrayType>().write_batch(v, defs, None)?;
                    v.clear();
                }
                Cells::Bool(v) => {
                    w.typed::<BoolType>().write_batch(v, defs, None)?;
                    v.clear();
                }
                Cells::Int(v) => {
                    w.typed::<Int64Type>().write_batch(v, defs, None)?;
                    v.clear();
                }
            }
            col.defs.clear();
            w.close()?;
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Sink, InventoryError> {
        self.flush_group()?;
        let out = self.writer.into_inner()?;
        Ok(out.into_inner().map_err(|e| e.into_error())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::ObjectVersion;

    #[test]
    fn csv_cells_are_quoted_and_keys_url_encoded() {
        let mut v = ObjectVersion {
            mtime_ns: 1_700_000_000_123_000_000,
            size: 5,
            ..crate::testing::version("a b/c\"d+e.txt")
        };
        v.meta.etag = "abc-2".into();
        let row = Row {
            bucket: "bkt",
            version: &v,
            is_latest: true,
        };
        let cols = super::super::fields::columns(
            true,
            &[
                Field::Size,
                Field::LastModifiedDate,
                Field::ETag,
                Field::IsMultipartUploaded,
                Field::ObjectLockMode,
            ],
        );
        assert_eq!(
            csv_line(&cols, &row),
            "\"bkt\",\"a+b/c%22d%2Be.txt\",\"null\",\"true\",\"false\",\"5\",\
             \"2023-11-14T22:13:20.123Z\",\"abc-2\",\"true\",\"\"\n"
        );
    }

    #[test]
    fn the_parquet_schema_is_awss() {
        let cols = super::super::fields::columns(false, &[Field::Size, Field::LastModifiedDate]);
        assert_eq!(
            parquet_schema(&cols),
            "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); \
             optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); }"
        );
        parse_message_type(&parquet_schema(&cols)).unwrap();
    }
}
