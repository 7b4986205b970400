//! Reading an object's records: the request's InputSerialization checked and kept as
//! [`Input`], the byte window a ScanRange selects ([`ScanWindow`]), decompression, and
//! the CSV and JSON record sources (Parquet has its own module). Every layer is a
//! `Read`, so a query holds a buffer per layer whatever the object's size.

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use s3s::dto::{InputSerialization, ScanRange};

use super::error::{Error, Result};
use super::eval::Record;
use super::value::Value;

/// The input's format and settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub format: Format,
    pub compression: Compression,
}

#[derive(Debug, Clone)]
pub(crate) enum Format {
    Csv(CsvIn),
    Json,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Header {
    None,
    Use,
    Ignore,
}

#[derive(Debug, Clone)]
pub(crate) struct CsvIn {
    pub header: Header,
    pub delimiter: u8,
    /// The byte a record ends with (`\n` also ends `\r\n` records).
    pub record: u8,
    pub quote: u8,
    pub escape: u8,
    pub comment: Option<u8>,
    pub quoted_records: bool,
}

/// AWS's CSV settings when a request names none: no header, `,`, `\n`, `"` quoting.
#[cfg(test)]
impl Default for CsvIn {
    fn default() -> CsvIn {
        CsvIn {
            header: Header::None,
            delimiter: b',',
            record: b'\n',
            quote: b'"',
            escape: b'"',
            comment: None,
            quoted_records: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
}

/// One byte of a setting that AWS allows one character for.
fn one_byte(what: &str, v: Option<&str>, default: u8) -> Result<u8> {
    match v {
        None | Some("") => Ok(default),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some(s) => Err(Error::InvalidRequest(format!(
            "{what} must be one single-byte character, not {s:?}"
        ))),
    }
}

impl Input {
    pub(crate) fn from_request(i: &InputSerialization) -> Result<Input> {
        let compression = match i.compression_type.as_ref().map(|c| c.as_str()) {
            None | Some("NONE") => Compression::None,
            Some("GZIP") => Compression::Gzip,
            Some("BZIP2") => Compression::Bzip2,
            Some(other) => {
                return Err(Error::Compression(format!(
                    "CompressionType {other} is not supported"
                )))
            }
        };
        let format = match (&i.csv, &i.json, &i.parquet) {
            (Some(c), None, None) => {
                let header = match c.file_header_info.as_ref().map(|h| h.as_str()) {
                    None | Some("NONE") => Header::None,
                    Some("USE") => Header::Use,
                    Some("IGNORE") => Header::Ignore,
                    Some(other) => {
                        return Err(Error::InvalidRequest(format!(
                            "FileHeaderInfo {other} is not NONE, USE or IGNORE"
                        )))
                    }
                };
                let record = match c.record_delimiter.as_deref() {
                    Some("\r\n") => b'\n',
                    other => one_byte("RecordDelimiter", other, b'\n')?,
                };
                Format::Csv(CsvIn {
                    header,
                    delimiter: one_byte("FieldDelimiter", c.field_delimiter.as_deref(), b',')?,
                    record,
                    quote: one_byte("QuoteCharacter", c.quote_character.as_deref(), b'"')?,
                    escape: one_byte(
                        "QuoteEscapeCharacter",
                        c.quote_escape_character.as_deref(),
                        b'"',
                    )?,
                    comment: c
                        .comments
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .map(|s| one_byte("Comments", Some(s), b'#'))
                        .transpose()?,
                    quoted_records: c.allow_quoted_record_delimiter.unwrap_or(false),
                })
            }
            (None, Some(j), None) => match j.type_.as_ref().map(|t| t.as_str()) {
                // A document may span lines; lines hold one record each: both are a
                // stream of JSON values to this reader.
                None | Some("DOCUMENT" | "LINES") => Format::Json,
                Some(other) => {
                    return Err(Error::InvalidRequest(format!(
                        "JSON Type {other} is not DOCUMENT or LINES"
                    )))
                }
            },
            (None, None, Some(_)) => {
                if compression != Compression::None {
                    return Err(Error::Compression(
                        "Parquet input takes no CompressionType (its columns are compressed)"
                            .into(),
                    ));
                }
                Format::Parquet
            }
            _ => {
                return Err(Error::InvalidRequest(
                    "InputSerialization must name one of CSV, JSON or Parquet".into(),
                ))
            }
        };
        Ok(Input {
            format,
            compression,
        })
    }

    /// The ScanRange as `start..end` bytes of an object of `size` bytes (AWS's End is
    /// inclusive, and an End alone means the last End bytes); `None` without one.
    pub(crate) fn window(
        &self,
        range: Option<&ScanRange>,
        size: u64,
    ) -> Result<Option<(u64, u64)>> {
        let Some(r) = range else {
            return Ok(None);
        };
        if r.start.is_none() && r.end.is_none() {
            return Ok(None);
        }
        match &self.format {
            Format::Parquet => return Err(Error::ScanRangeInput("Parquet")),
            Format::Csv(c) if c.quoted_records => {
                return Err(Error::ScanRangeInput("CSV with AllowQuotedRecordDelimiter"))
            }
            _ if self.compression != Compression::None => {
                return Err(Error::ScanRangeInput("compressed objects"))
            }
            _ => {}
        }
        let neg =
            |v: i64| u64::try_from(v).map_err(|_| Error::ScanRange(format!("{v} is negative")));
        let (start, end) = match (r.start, r.end) {
            (Some(s), Some(e)) if e < s => {
                return Err(Error::ScanRange(format!("Start {s} is after End {e}")))
            }
            (Some(s), Some(e)) => (neg(s)?, neg(e)?.saturating_add(1)),
            (Some(s), None) => (neg(s)?, size),
            (None, Some(e)) => (size.saturating_sub(neg(e)?), size),
            (None, None) => unreachable!("handled above"),
        };
        Ok(Some((start.min(size), end.min(size))))
    }
}

/// A reader that counts what passes through it (the Stats' bytes scanned and processed).
pub(crate) struct Counted<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The bytes of the records a ScanRange selects: those that start within `start..end`,
/// each read whole. `inner` starts at `start - 1` (at 0 when `start` is 0), so a record
/// starting exactly at `start` is seen to follow a delimiter.
pub(crate) struct ScanWindow<R> {
    inner: R,
    delimiter: u8,
    /// The position of `buf[0]` in the object.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
    state: Window,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Window {
    /// Dropping the tail of the record that began before the range.
    Skip,
    Pass,
    Done,
}

impl<R: Read> ScanWindow<R> {
    /// `inner` reads from [`ScanWindow::read_from`]`(start)`.
    pub(crate) fn new(inner: R, delimiter: u8, start: u64, end: u64) -> Self {
        ScanWindow {
            inner,
            delimiter,
            pos: Self::read_from(start),
            end,
            buf: Vec::new(),
            at: 0,
            state: match start {
                _ if start >= end => Window::Done,
                0 => Window::Pass,
                _ => Window::Skip,
            },
        }
    }

    /// Where the underlying read must begin.
    pub(crate) fn read_from(start: u64) -> u64 {
        start.saturating_sub(1)
    }

    fn fill(&mut self) -> io::Result<()> {
        self.pos += self.buf.len() as u64;
        self.buf.resize(64 << 10, 0);
        let n = self.inner.read(&mut self.buf)?;
        self.buf.truncate(n);
        self.at = 0;
        if n == 0 {
            self.state = Window::Done;
        }
        Ok(())
    }
}

impl<R: Read> Read for ScanWindow<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.state == Window::Done {
                return Ok(0);
            }
            if self.at == self.buf.len() {
                self.fill()?;
                continue;
            }
            let rest = &self.buf[self.at..];
            let here = self.pos + self.at as u64;
            match self.state {
                Window::Skip => match rest.iter().position(|&b| b == self.delimiter) {
                    Some(i) => {
                        self.at += i + 1;
                        // The next record starts past the range: nothing is selected.
                        if here + i as u64 + 1 >= self.end {
                            self.state = Window::Done;
                        } else {
                            self.state = Window::Pass;
                        }
                    }
                    None => self.at = self.buf.len(),
                },
                Window::Pass => {
                    // Records starting before `end` are read through their delimiter: the
                    // first delimiter at `end - 1` or later ends the window.
                    let from = (self.end.saturating_sub(1)).saturating_sub(here) as usize;
                    let mut take = rest.len().min(out.len());
                    if from < rest.len() {
                        if let Some(i) = rest[from..].iter().position(|&b| b == self.delimiter) {
                            if from + i < take {
                                take = from + i + 1;
                                self.state = Window::Done;
                            }
                        }
                    }
                    out[..take].copy_from_slice(&rest[..take]);
                    self.at += take;
                    return Ok(take);
                }
                Window::Done => return Ok(0),
            }
        }
    }
}

/// `raw` decompressed; a decoder's failure is the object's format, not ours.
pub(crate) fn decompress(raw: Box<dyn Read + Send>, c: Compression) -> Box<dyn Read + Send> {
    struct Tagged<R>(R);
    impl<R: Read> Read for Tagged<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0
                .read(buf)
                .map_err(|e| Error::from_io(e, Error::Compression).into_io())
        }
    }
    match c {
        Compression::None => raw,
        Compression::Gzip => Box::new(Tagged(flate2::read::MultiGzDecoder::new(raw))),
        Compression::Bzip2 => Box::new(Tagged(bzip2::read::MultiBzDecoder::new(raw))),
    }
}

/// CSV records, by the csv crate with the request's settings.
pub(crate) struct CsvRecords {
    reader: csv::Reader<Box<dyn Read + Send>>,
    record: csv::StringRecord,
}

impl CsvRecords {
    pub(crate) fn new(r: Box<dyn Read + Send>, c: &CsvIn) -> CsvRecords {
        let mut b = csv::ReaderBuilder::new();
        b.has_headers(false)
            .flexible(true)
            .delimiter(c.delimiter)
            .quote(c.quote)
            .comment(c.comment)
            .terminator(if c.record == b'\n' {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(c.record)
            });
        if c.escape != c.quote {
            b.escape(Some(c.escape));
        }
        CsvRecords {
            reader: b.from_reader(r),
            record: csv::StringRecord::new(),
        }
    }

    /// The next record's fields.
    pub(crate) fn next_fields(&mut self) -> Result<Option<Vec<String>>> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(self.record.iter().map(str::to_owned).collect())),
            Err(e) => Err(csv_error(e)),
        }
    }
}

fn csv_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::from_io(io, Error::Csv),
        kind => Error::Csv(format!("{kind:?}")),
    }
}

/// A source of records read one at a time into a slot the caller keeps. A CSV row is
/// read into the last row's buffers, so a scan allocates nothing per row once rows
/// stop growing (a fresh record per row was a third of a scan's time, in malloc and
/// free).
pub(crate) trait ReadRecord: Send {
    /// Reads the next record into `slot`; false at the end.
    fn read_into(&mut self, slot: &mut Record) -> Result<bool>;
}

impl CsvRecords {
    /// Reads the next record into `record`; false at the end.
    pub(crate) fn read_record(&mut self, record: &mut csv::StringRecord) -> Result<bool> {
        self.reader.read_record(record).map_err(csv_error)
    }
}

impl ReadRecord for CsvRecords {
    fn read_into(&mut self, slot: &mut Record) -> Result<bool> {
        self.read_record(slot.csv())
    }
}

/// Formats whose records come owned (JSON values, Parquet rows), as a [`ReadRecord`].
pub(crate) struct Each<I>(pub I);

impl<I: Iterator<Item = Result<Record>> + Send> ReadRecord for Each<I> {
    fn read_into(&mut self, slot: &mut Record) -> Result<bool> {
        match self.0.next() {
            None => Ok(false),
            Some(record) => {
                *slot = record?;
                Ok(true)
            }
        }
    }
}

/// JSON values one after another (a document, or one per line).
pub(crate) struct JsonRecords {
    stream: serde_json::StreamDeserializer<'static, JsonRead, Value>,
}

type JsonRead = serde_json::de::IoRead<BufReader<Box<dyn Read + Send>>>;

impl JsonRecords {
    pub(crate) fn new(r: Box<dyn Read + Send>) -> JsonRecords {
        let stream = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 << 10, r))
            .into_iter::<Value>();
        JsonRecords { stream }
    }
}

impl Iterator for JsonRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        Some(match self.stream.next()? {
            Ok(v) => Ok(Record::Doc(v)),
            Err(e) if e.is_io() => Err(Error::from_io(e.into(), Error::Json)),
            Err(e) => Err(Error::Json(e.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a ScanRange selects from `text` (lines), as AWS defines it.
    fn window(text: &str, start: u64, end: u64) -> String {
        let from = ScanWindow::<&[u8]>::read_from(start) as usize;
        let mut w = ScanWindow::new(&text.as_bytes()[from..], b'\n', start, end);
        let mut out = String::new();
        // Small reads, so every boundary of the window's buffer is crossed.
        let mut buf = [0u8; 3];
        loop {
            let n = w.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    }

    #[test]
    fn scan_range_takes_records_that_start_inside_it() {
        let t = "aaa\nbbb\nccc\n";
        // Offsets: aaa 0-3, bbb 4-7, ccc 8-11.
        assert_eq!(window(t, 0, 12), t);
        assert_eq!(window(t, 0, 1), "aaa\n");
        assert_eq!(window(t, 0, 4), "aaa\n");
        assert_eq!(window(t, 0, 5), "aaa\nbbb\n");
        assert_eq!(window(t, 1, 5), "bbb\n");
        assert_eq!(window(t, 4, 5), "bbb\n");
        assert_eq!(window(t, 3, 4), "");
        assert_eq!(window(t, 3, 5), "bbb\n");
        assert_eq!(window(t, 5, 12), "ccc\n");
        assert_eq!(window(t, 9, 12), "");
        assert_eq!(window(t, 0, 0), "");
        assert_eq!(window(t, 4, 4), "");
        // A last record without its delimiter.
        assert_eq!(window("aaa\nbbb", 2, 7), "bbb");
        assert_eq!(window("aaa\nbbb", 4, 5), "bbb");
    }

    #[test]
    fn windows_of_a_scan_split_every_record_once() {
        let t: String = (0..200)
            .map(|i| format!("{}\n", "x".repeat(i % 7)))
            .collect();
        for step in [1, 2, 5, 64, 1000] {
            let mut all = String::new();
            let mut s = 0;
            while s < t.len() as u64 {
                all.push_str(&window(&t, s, (s + step).min(t.len() as u64)));
                s += step;
            }
            assert_eq!(all, t, "step {step}");
        }
    }

    fn scan(start: Option<i64>, end: Option<i64>) -> s3s::dto::ScanRange {
        s3s::dto::ScanRange { start, end }
    }

    #[test]
    fn scan_range_bounds_and_where_they_are_refused() {
        let csv = Input {
            format: Format::Csv(CsvIn::default()),
            compression: Compression::None,
        };
        assert_eq!(
            csv.window(Some(&scan(Some(2), Some(5))), 100).unwrap(),
            Some((2, 6))
        );
        assert_eq!(
            csv.window(Some(&scan(Some(2), None)), 100).unwrap(),
            Some((2, 100))
        );
        assert_eq!(
            csv.window(Some(&scan(None, Some(10))), 100).unwrap(),
            Some((90, 100))
        );
        assert_eq!(
            csv.window(Some(&scan(None, Some(1000))), 100).unwrap(),
            Some((0, 100))
        );
        assert_eq!(csv.window(None, 100).unwrap(), None);
        assert_eq!(
            csv.window(Some(&scan(Some(6), Some(5))), 100)
                .unwrap_err()
                .code(),
            "InvalidScanRange"
        );
        let gz = Input {
            compression: Compression::Gzip,
            ..csv.clone()
        };
        assert_eq!(
            gz.window(Some(&scan(Some(0), None)), 9).unwrap_err().code(),
            "UnsupportedScanRangeInput"
        );
        let pq = Input {
            format: Format::Parquet,
            compression: Compression::None,
        };
        assert_eq!(
            pq.window(Some(&scan(Some(0), None)), 9).unwrap_err().code(),
            "UnsupportedScanRangeInput"
        );
    }

    fn read_all(mut r: impl ReadRecord) -> Result<Vec<Record>> {
        let (mut all, mut slot) = (Vec::new(), Record::Doc(Value::Null));
        while r.read_into(&mut slot)? {
            all.push(slot.clone());
        }
        Ok(all)
    }

    #[test]
    fn csv_settings() {
        let c = CsvIn {
            header: Header::None,
            delimiter: b';',
            record: b'|',
            quote: b'\'',
            escape: b'\\',
            comment: Some(b'#'),
            quoted_records: false,
        };
        let fields = |v: &[&str]| Record::Csv(csv::StringRecord::from(v.to_vec()));
        let text = "a;'b;\\'c'|1;2";
        let got = read_all(CsvRecords::new(Box::new(io::Cursor::new(text)), &c)).unwrap();
        assert_eq!(got, [fields(&["a", "b;'c"]), fields(&["1", "2"])]);
        let c = CsvIn { record: b'\n', ..c };
        let text = "#skip;me\na;b\r\n#x\n1;2\n";
        let got = read_all(CsvRecords::new(Box::new(io::Cursor::new(text)), &c)).unwrap();
        assert_eq!(got, [fields(&["a", "b"]), fields(&["1", "2"])]);
    }

    #[test]
    fn compression_errors_are_the_formats() {
        let bad = decompress(
            Box::new(io::Cursor::new(b"not gzip at all".to_vec())),
            Compression::Gzip,
        );
        let e = read_all(Each(JsonRecords::new(bad))).unwrap_err();
        assert_eq!(e.code(), "InvalidCompressionFormat");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"{\"a\":1}\n{\"a\":2}").unwrap();
        let ok = decompress(
            Box::new(io::Cursor::new(gz.finish().unwrap())),
            Compression::Gzip,
        );
        assert_eq!(read_all(Each(JsonRecords::new(ok))).unwrap().len(), 2);
        let e = read_all(Each(JsonRecords::new(Box::new(io::Cursor::new("{\"a\":"))))).unwrap_err();
        assert_eq!(e.code(), "JSONParsingError");
    }
}
