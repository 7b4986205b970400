//! Running a query: [`prepare`] opens the records (and reads a CSV header, binding the
//! query's column names to it) before the response starts, so that its errors are a
//! 400; [`run`] then streams: records filtered, projected or aggregated, and written
//! out in batches as they come, with the Progress, Stats and End events.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ahead::Ahead;
use super::error::{Error, Result};
use super::eval::{eval, navigate, truth, Acc, Env, Record};
use super::input::{
    decompress, Counted, CsvRecords, Each, Format, Header, Input, JsonRecords, ReadRecord,
    ScanWindow,
};
use super::output::Output;
use super::parquet::{ParquetRecords, Source};
use super::sql::{visit_mut, Expr, Query, Step};
use super::value::Value;

/// Output is sent once this much of it is ready (AWS's Records events are of this order).
const BATCH: usize = 256 << 10;
/// With nothing to send for this long (a filter that matches little), a Cont event tells
/// the client the query is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// The object a query reads: its size and its byte ranges.
pub(crate) trait Object: Send + Sync {
    fn size(&self) -> u64;
    fn range(&self, start: u64, end: u64) -> Result<Box<dyn Read + Send>>;
}

/// The Stats and Progress figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Counts {
    pub scanned: u64,
    pub processed: u64,
    pub returned: u64,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Event {
    Records(Vec<u8>),
    Progress(Counts),
    Stats(Counts),
    Cont,
    End,
}

type Records = Box<dyn ReadRecord>;

pub(crate) struct Prepared {
    query: Query,
    records: Records,
    /// A CSV header's names (the keys of `SELECT *` as JSON).
    names: Vec<String>,
    output: Output,
    progress: bool,
    scanned: Arc<AtomicU64>,
    processed: Arc<AtomicU64>,
}

pub(crate) fn prepare(
    mut query: Query,
    input: &Input,
    output: Output,
    object: Arc<dyn Object>,
    window: Option<(u64, u64)>,
    progress: bool,
) -> Result<Prepared> {
    let scanned = Arc::new(AtomicU64::new(0));
    let size = object.size();
    let (records, names, processed): (Records, _, _) = match &input.format {
        Format::Parquet => {
            let source = Source::new(object, Arc::clone(&scanned));
            // Parquet's pages are processed as they are scanned.
            (
                Box::new(Each(ParquetRecords::open(source)?)),
                Vec::new(),
                Arc::clone(&scanned),
            )
        }
        format => {
            let processed = Arc::new(AtomicU64::new(0));
            let (start, end) = window.unwrap_or((0, size));
            let raw: Box<dyn Read + Send> = Box::new(Counted {
                inner: object.range(ScanWindow::<&[u8]>::read_from(start), size)?,
                count: Arc::clone(&scanned),
            });
            let delimiter = match format {
                Format::Csv(c) => c.record,
                _ => b'\n',
            };
            let windowed: Box<dyn Read + Send> = match window {
                Some(_) => Box::new(ScanWindow::new(raw, delimiter, start, end)),
                None => raw,
            };
            let bytes: Box<dyn Read + Send> = Box::new(Counted {
                inner: decompress(windowed, input.compression),
                count: Arc::clone(&processed),
            });
            match format {
                Format::Csv(c) => {
                    let mut records = CsvRecords::new(bytes, c);
                    // The header is the object's first record, wherever the range is.
                    let names = match c.header {
                        Header::Use if start > 0 => {
                            let first = decompress(object.range(0, size)?, input.compression);
                            CsvRecords::new(first, c).next_fields()?.unwrap_or_default()
                        }
                        Header::Use => records.next_fields()?.unwrap_or_default(),
                        Header::Ignore if start == 0 => {
                            records.next_fields()?;
                            Vec::new()
                        }
                        Header::Ignore | Header::None => Vec::new(),
                    };
                    bind(&mut query, (c.header == Header::Use).then_some(&names))?;
                    (Box::new(Ahead::start(records)?), names, processed)
                }
                _ => (
                    Box::new(Each(JsonRecords::new(bytes))),
                    Vec::new(),
                    processed,
                ),
            }
        }
    };
    Ok(Prepared {
        query,
        records,
        names,
        output,
        progress,
        scanned,
        processed,
    })
}

/// CSV columns named in the query become their positions in the header; a name the
/// header lacks (or any name, without a header) is AWS's MissingHeaders.
fn bind(query: &mut Query, header: Option<&Vec<String>>) -> Result<()> {
    let find = |name: &str, exact: bool| {
        let h = header?;
        h.iter()
            .position(|n| n == name)
            .or_else(|| (!exact).then(|| h.iter().position(|n| n.eq_ignore_ascii_case(name)))?)
    };
    for e in query.exprs_mut() {
        visit_mut(e, &mut |e| {
            if let Expr::Path(steps) = e {
                let Some(Step::Field { name, exact }) = steps.first() else {
                    return Err(Error::MissingHeaders);
                };
                let i = find(name, *exact).ok_or(Error::MissingHeaders)?;
                *e = Expr::Column(i, steps[1..].to_vec());
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The records `FROM S3Object[*].path` names below one input record.
fn from_path(v: Value, steps: &[Step], out: &mut Vec<Record>) {
    let Some(all) = steps.iter().position(|s| *s == Step::All) else {
        match navigate(&v, steps) {
            Value::Missing => {}
            found => out.push(Record::Doc(found)),
        }
        return;
    };
    if let Value::List(items) = navigate(&v, &steps[..all]) {
        for item in items {
            from_path(item, &steps[all + 1..], out);
        }
    }
}

/// Streams the query's events to `send` until the end, an error (sent as the last
/// event), or `send` answering false (the client went away).
pub(crate) fn run(p: Prepared, send: &mut dyn FnMut(Result<Event>) -> bool) {
    if let Err(e) = stream(p, send) {
        send(Err(e));
    }
}

fn counts(p: &Prepared, returned: u64) -> Counts {
    Counts {
        scanned: p.scanned.load(Ordering::Relaxed),
        processed: p.processed.load(Ordering::Relaxed),
        returned,
    }
}

/// Sends the output ready (and the progress, when asked for); false once the client
/// is gone.
fn flush(
    p: &Prepared,
    send: &mut dyn FnMut(Result<Event>) -> bool,
    out: &mut String,
    returned: &mut u64,
    last: &mut Instant,
) -> bool {
    if out.is_empty() {
        return true;
    }
    *returned += out.len() as u64;
    *last = Instant::now();
    send(Ok(Event::Records(std::mem::take(out).into_bytes())))
        && (!p.progress || send(Ok(Event::Progress(counts(p, *returned)))))
}

fn stream(mut p: Prepared, send: &mut dyn FnMut(Result<Event>) -> bool) -> Result<()> {
    let mut out = String::new();
    let mut returned = 0u64;
    let mut last_event = Instant::now();
    let mut accs: Vec<Acc> = p
        .query
        .aggregates
        .iter()
        .map(|a| Acc::new(a.func))
        .collect();
    let aggregate = !accs.is_empty();
    let mut emitted = 0u64;
    let mut positional: Vec<String> = Vec::new();
    let mut docs = Vec::new();
    let mut seen = 0u64;
    let limit = p.query.limit.unwrap_or(u64::MAX);
    let mut done = limit == 0;
    // The record read last: a CSV row is read into its buffers (`ReadRecord`).
    let mut slot = Record::Doc(Value::Null);
    while !done {
        if !p.records.read_into(&mut slot)? {
            break;
        }
        seen += 1;
        let rows: &[Record] = match &mut slot {
            Record::Csv(_) => std::slice::from_ref(&slot),
            Record::Doc(v) => {
                docs.clear();
                from_path(std::mem::replace(v, Value::Null), &p.query.from, &mut docs);
                &docs
            }
        };
        for record in rows {
            let env = Env {
                record,
                aggregates: &[],
            };
            if let Some(f) = &p.query.filter {
                if truth(&eval(f, &env)?)? != Some(true) {
                    continue;
                }
            }
            if aggregate {
                for (acc, a) in accs.iter_mut().zip(&p.query.aggregates) {
                    acc.add(a, &env)?;
                }
                continue;
            }
            write_row(&p, record, &mut positional, &mut out)?;
            emitted += 1;
            if emitted == limit {
                done = true;
                break;
            }
        }
        if out.len() >= BATCH {
            if !flush(&p, send, &mut out, &mut returned, &mut last_event) {
                return Ok(());
            }
        } else if seen.is_multiple_of(1024) && last_event.elapsed() >= KEEP_ALIVE {
            last_event = Instant::now();
            let ev = if p.progress {
                Event::Progress(counts(&p, returned))
            } else {
                Event::Cont
            };
            if !send(Ok(ev)) {
                return Ok(());
            }
        }
    }
    if aggregate && limit > 0 {
        let results: Vec<Value> = accs.into_iter().map(Acc::finish).collect();
        let none = Record::Doc(Value::Null);
        let env = Env {
            record: &none,
            aggregates: &results,
        };
        let items = p.query.items.as_deref().unwrap_or_default();
        let values = items
            .iter()
            .map(|i| eval(&i.expr, &env))
            .collect::<Result<Vec<_>>>()?;
        p.output
            .write(items.iter().map(|i| i.name.as_str()).zip(&values), &mut out);
    }
    if !flush(&p, send, &mut out, &mut returned, &mut last_event) {
        return Ok(());
    }
    let _ = send(Ok(Event::Stats(counts(&p, returned)))) && send(Ok(Event::End));
    Ok(())
}

fn write_row(
    p: &Prepared,
    record: &Record,
    positional: &mut Vec<String>,
    out: &mut String,
) -> Result<()> {
    let Some(items) = &p.query.items else {
        // SELECT *: the record as it is.
        match record {
            Record::Csv(fields) => {
                while positional.len() < fields.len() {
                    positional.push(format!("_{}", positional.len() + 1));
                }
                let values: Vec<Value> = fields.iter().map(|f| Value::Str(f.to_owned())).collect();
                let names =
                    (0..values.len()).map(|i| p.names.get(i).unwrap_or(&positional[i]).as_str());
                p.output.write(names.zip(&values), out);
            }
            Record::Doc(Value::Struct(fields)) => {
                p.output
                    .write(fields.iter().map(|(k, v)| (k.as_str(), v)), out);
            }
            Record::Doc(v) => p.output.write(std::iter::once(("_1", v)), out),
        }
        return Ok(());
    };
    let env = Env {
        record,
        aggregates: &[],
    };
    let values = items
        .iter()
        .map(|i| eval(&i.expr, &env))
        .collect::<Result<Vec<_>>>()?;
    p.output
        .write(items.iter().map(|i| i.name.as_str()).zip(&values), out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::input::Compression;
    use crate::select::sql::parse;

    struct Bytes(Vec<u8>);

    impl Object for Bytes {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn range(&self, start: u64, end: u64) -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(
                self.0[start as usize..end as usize].to_vec(),
            )))
        }
    }

    fn csv_input(header: Header) -> Input {
        Input {
            format: Format::Csv(crate::select::input::CsvIn {
                header,
                ..Default::default()
            }),
            compression: Compression::None,
        }
    }

    fn json_out() -> Output {
        Output::Json {
            record: "\n".into(),
        }
    }

    /// The query's output text, its Stats, and whether it ended.
    fn query(
        sql: &str,
        input: Input,
        output: Output,
        data: &str,
        window: Option<(u64, u64)>,
    ) -> Result<String> {
        let object: Arc<dyn Object> = Arc::new(Bytes(data.as_bytes().to_vec()));
        let p = prepare(parse(sql)?, &input, output, object, window, false)?;
        let mut text = String::new();
        let mut err = None;
        let mut ended = false;
        run(p, &mut |ev| {
            match ev {
                Ok(Event::Records(b)) => text.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(Event::End) => ended = true,
                Ok(_) => {}
                Err(e) => err = Some(e),
            }
            true
        });
        match err {
            Some(e) => Err(e),
            None => {
                assert!(ended);
                Ok(text)
            }
        }
    }

    const PEOPLE: &str = "name,age,city\nAnn,31,Oslo\nBob,25,Rome\n\"Cy, Jr\",40,Oslo\n";

    #[test]
    fn csv_with_header_by_name_and_position() {
        let csv_out = Output::Csv {
            field: ",".into(),
            record: "\n".into(),
            quote: "\"".into(),
            escape: "\"".into(),
            always: false,
        };
        let got = query(
            "SELECT s.name, _2 FROM S3Object s WHERE CAST(age AS INT) > 30",
            csv_input(Header::Use),
            csv_out,
            PEOPLE,
            None,
        )
        .unwrap();
        assert_eq!(got, "Ann,31\n\"Cy, Jr\",40\n");
        let got = query(
            "SELECT * FROM S3Object LIMIT 1",
            csv_input(Header::Use),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap();
        assert_eq!(got, "{\"name\":\"Ann\",\"age\":\"31\",\"city\":\"Oslo\"}\n");
        let got = query(
            "SELECT _1 FROM S3Object",
            csv_input(Header::Ignore),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap();
        assert_eq!(got.lines().count(), 3);
        let got = query(
            "SELECT _1 FROM S3Object",
            csv_input(Header::None),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap();
        assert_eq!(got.lines().next(), Some("{\"_1\":\"name\"}"));
        let e = query(
            "SELECT nope FROM S3Object",
            csv_input(Header::Use),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), "MissingHeaders");
        let e = query(
            "SELECT name FROM S3Object",
            csv_input(Header::None),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), "MissingHeaders");
    }

    #[test]
    fn aggregates_answer_one_row() {
        let got = query(
            "SELECT COUNT(*), SUM(CAST(age AS INT)), AVG(CAST(age AS FLOAT)), MIN(name), MAX(age) FROM S3Object WHERE city = 'Oslo'",
            csv_input(Header::Use),
            json_out(),
            PEOPLE,
            None,
        )
        .unwrap();
        assert_eq!(
            got,
            "{\"_1\":2,\"_2\":71,\"_3\":35.5,\"_4\":\"Ann\",\"_5\":\"40\"}\n"
        );
    }

    #[test]
    fn scan_range_keeps_the_header_and_reads_whole_records() {
        // "name,age,city\n" is 14 bytes: Ann's record starts at 14, Bob's at 26.
        let got = query(
            "SELECT name FROM S3Object",
            csv_input(Header::Use),
            json_out(),
            PEOPLE,
            Some((15, 27)),
        )
        .unwrap();
        assert_eq!(got, "{\"name\":\"Bob\"}\n");
        let got = query(
            "SELECT name FROM S3Object",
            csv_input(Header::Use),
            json_out(),
            PEOPLE,
            Some((0, 15)),
        )
        .unwrap();
        assert_eq!(got, "{\"name\":\"Ann\"}\n");
    }

    #[test]
    fn json_paths_in_from_and_select() {
        let json = Input {
            format: Format::Json,
            compression: Compression::None,
        };
        let doc = r#"{"rows":[{"a":1,"b":{"c":"x"}},{"a":2},{"a":3,"b":{"c":"z"}}]}"#;
        let got = query(
            "SELECT r.a, r.b.c FROM S3Object[*].rows[*] r WHERE r.a >= 2",
            json.clone(),
            json_out(),
            doc,
            None,
        )
        .unwrap();
        assert_eq!(got, "{\"a\":2}\n{\"a\":3,\"c\":\"z\"}\n");
        let lines = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        let got = query(
            "SELECT * FROM S3Object s WHERE s.a <> 2",
            json.clone(),
            json_out(),
            lines,
            None,
        )
        .unwrap();
        assert_eq!(got, "{\"a\":1}\n{\"a\":3}\n");
        let got = query(
            "SELECT COUNT(*) AS n FROM S3Object",
            json.clone(),
            json_out(),
            lines,
            Some((1, 9)),
        )
        .unwrap();
        assert_eq!(got, "{\"n\":1}\n");
        let e = query(
            "SELECT * FROM S3Object",
            json,
            json_out(),
            "{\"a\":1}\n{\"a\"",
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), "JSONParsingError");
    }

    #[test]
    fn batches_stream_before_the_end() {
        let line = format!("{}\n", "x".repeat(1000));
        let data = line.repeat(1000);
        let object: Arc<dyn Object> = Arc::new(Bytes(data.into_bytes()));
        let p = prepare(
            parse("SELECT * FROM S3Object").unwrap(),
            &csv_input(Header::None),
            json_out(),
            object,
            None,
            true,
        )
        .unwrap();
        let mut events = Vec::new();
        run(p, &mut |ev| {
            events.push(ev.unwrap());
            true
        });
        let records = events
            .iter()
            .filter(|e| matches!(e, Event::Records(_)))
            .count();
        assert!(records >= 3, "{records} batches");
        assert!(events.iter().all(|e| match e {
            Event::Records(b) => b.len() < BATCH + 2000,
            _ => true,
        }));
        let Some(Event::Stats(c)) = events.iter().rev().nth(1) else {
            panic!("{:?}", events.last())
        };
        assert_eq!((c.scanned, c.processed), (1_001_000, 1_001_000));
        assert_eq!(events.last(), Some(&Event::End));
        assert!(events.iter().any(|e| matches!(e, Event::Progress(_))));
    }
}
