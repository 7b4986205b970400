//! A job's manifest, read as a stream of tasks: a CSV of `bucket,key[,versionId]` in a
//! bucket, an S3 Inventory `manifest.json` and its gzipped CSV data files, or a listing
//! of a bucket (filtered by prefix, age, size, tags and storage class). Nothing is
//! collected: CSV is read a record at a time, listings a page at a time.
//!
//! Keys in CSV are URL-encoded as AWS writes them (`%XX`, and `+` for a space: a `+`
//! in a key is `%2B`). A generated manifest is the objects that existed when the job
//! was made (written no later), so the job's own copies into the bucket are not in it.

use super::job::{parse_time, Generate, ManifestFormat, Source};
use engine::{ListQuery, Store};
use percent_encoding::percent_decode_str;
use std::collections::VecDeque;
use std::io::{BufReader, Read};

/// One object a task acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Task {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("cannot read the manifest: {0}")]
    Store(#[from] engine::Error),
    #[error("manifest line {line}: {msg}")]
    Line { line: u64, msg: String },
    #[error("inventory manifest: {0}")]
    Inventory(String),
}

type Tasks = Box<dyn Iterator<Item = Result<Task, ManifestError>> + Send>;

/// Where a job stands in its manifest: `done` entries read, and for a listing the last
/// key (a listing resumes after it, so objects a job deleted do not shift it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub done: u64,
    pub after: Option<String>,
}

/// An open manifest, read from a position on.
pub(crate) struct Reader {
    tasks: Tasks,
    pub position: Position,
    listing: bool,
}

/// What a generated manifest takes: written no later than `snapshot_ns` and, with
/// `older_than_days`, no later than `now_ns` less that many days of `day_secs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub snapshot_ns: u64,
    pub now_ns: u64,
    pub day_secs: u64,
}

impl Reader {
    pub(crate) fn open(
        store: &Store,
        source: &Source<'_>,
        clock: Clock,
        from: Position,
    ) -> Result<Reader, ManifestError> {
        let (mut tasks, listing): (Tasks, bool) = match source {
            Source::Object {
                bucket,
                key,
                format: ManifestFormat::Csv,
            } => (Box::new(csv_tasks(object(store, bucket, key)?)), false),
            Source::Object {
                bucket,
                key,
                format: ManifestFormat::Inventory,
            } => (inventory(store, bucket, key)?, false),
            Source::Generate(g) => (listing(store, g, clock, from.after.clone()), true),
        };
        if !listing {
            for _ in 0..from.done {
                match tasks.next() {
                    Some(Err(e)) => return Err(e),
                    Some(Ok(_)) => {}
                    None => break,
                }
            }
        }
        Ok(Reader {
            tasks,
            position: from,
            listing,
        })
    }

    /// The next `max` tasks (fewer at the end).
    pub(crate) fn next_chunk(&mut self, max: usize) -> Result<Vec<Task>, ManifestError> {
        let mut out = Vec::with_capacity(max.min(4096));
        while out.len() < max {
            match self.tasks.next() {
                Some(t) => out.push(t?),
                None => break,
            }
        }
        self.position.done += out.len() as u64;
        if let (true, Some(last)) = (self.listing, out.last()) {
            self.position.after = Some(last.key.clone());
        }
        Ok(out)
    }

    /// How many tasks are left from here (reads the rest through).
    pub(crate) fn count(mut self) -> Result<u64, ManifestError> {
        let mut n = 0;
        for t in self.tasks.by_ref() {
            t?;
            n += 1;
        }
        Ok(n)
    }
}

fn object(store: &Store, bucket: &str, key: &str) -> Result<impl Read + Send, ManifestError> {
    Ok(BufReader::with_capacity(
        256 << 10,
        store.open_object(bucket, key, None)?.all(),
    ))
}

/// Tasks from CSV records `bucket,key[,versionId]`.
fn csv_tasks(
    r: impl Read + Send + 'static,
) -> impl Iterator<Item = Result<Task, ManifestError>> + Send {
    csv_columns(r, (0, 1, Some(2)))
}

/// Tasks from CSV records whose bucket, key and version (if any) are in these columns.
fn csv_columns(
    r: impl Read + Send + 'static,
    (b, k, v): (usize, usize, Option<usize>),
) -> impl Iterator<Item = Result<Task, ManifestError>> + Send {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(r);
    let mut line = 0u64;
    reader.into_records().filter_map(move |rec| {
        line += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                return Some(Err(ManifestError::Line {
                    line,
                    msg: e.to_string(),
                }))
            }
        };
        if rec.iter().all(str::is_empty) {
            return None;
        }
        let cell = |i: usize| rec.get(i).map(str::trim).filter(|s| !s.is_empty());
        let (Some(bucket), Some(key)) = (cell(b), cell(k)) else {
            return Some(Err(ManifestError::Line {
                line,
                msg: "a line is bucket,key[,versionId]".into(),
            }));
        };
        let key = match decode(key) {
            Ok(k) => k,
            Err(msg) => return Some(Err(ManifestError::Line { line, msg })),
        };
        Some(Ok(Task {
            bucket: bucket.to_string(),
            key,
            version_id: v.and_then(cell).map(str::to_string),
        }))
    })
}

/// A URL-encoded key (`+` is a space, as AWS's inventories write it).
pub(crate) fn decode(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {key:?} is not URL-encoded UTF-8"))
}

/// An inventory's manifest: its CSV data files, read one after the other from the
/// manifest's bucket (where AWS and cybs3 write both).
fn inventory(store: &Store, bucket: &str, key: &str) -> Result<Tasks, ManifestError> {
    let mut json = Vec::new();
    object(store, bucket, key)?
        .read_to_end(&mut json)
        .map_err(|e| ManifestError::Inventory(format!("cannot read {key}: {e}")))?;
    let m: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| ManifestError::Inventory(format!("{key} is not JSON: {e}")))?;
    let format = m["fileFormat"].as_str().unwrap_or_default();
    if !format.eq_ignore_ascii_case("csv") {
        return Err(ManifestError::Inventory(format!(
            "only CSV inventories can be manifests, not {format:?}"
        )));
    }
    let schema: Vec<String> = m["fileSchema"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let at = |name: &str| schema.iter().position(|c| c == name);
    let (Some(b), Some(k)) = (at("bucket"), at("key")) else {
        return Err(ManifestError::Inventory(
            "fileSchema has no Bucket and Key columns".into(),
        ));
    };
    let columns = (b, k, at("versionid"));
    let files: Vec<String> = m["files"]
        .as_array()
        .ok_or_else(|| ManifestError::Inventory("no files in the manifest".into()))?
        .iter()
        .filter_map(|f| f["key"].as_str().map(str::to_string))
        .collect();
    let (store, bucket) = (store.clone(), bucket.to_string());
    Ok(Box::new(files.into_iter().flat_map(move |file| {
        let opened = object(&store, &bucket, &file).map(flate2::read::MultiGzDecoder::new);
        let tasks: Tasks = match opened {
            Ok(gz) => Box::new(csv_columns(gz, columns)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        tasks
    })))
}

/// Objects of a listing that pass the filters, a page at a time.
fn listing(store: &Store, g: &Generate, clock: Clock, after: Option<String>) -> Tasks {
    const PAGE: usize = 1000;
    let (store, g) = (store.clone(), g.clone());
    let mut q = ListQuery {
        prefix: g.prefix.clone(),
        after,
        max: PAGE,
        ..ListQuery::default()
    };
    let mut page: VecDeque<Task> = VecDeque::new();
    let mut more = true;
    Box::new(std::iter::from_fn(move || loop {
        if let Some(t) = page.pop_front() {
            return Some(Ok(t));
        }
        if !more {
            return None;
        }
        let p = match store.list(&g.bucket, &q) {
            Ok(p) => p,
            Err(e) => {
                more = false;
                return Some(Err(e.into()));
            }
        };
        more = p.truncated;
        q.after = p.next;
        page.extend(
            p.objects
                .iter()
                .filter(|v| passes(&g, clock, v))
                .map(|v| Task {
                    bucket: g.bucket.clone(),
                    key: v.key.clone(),
                    version_id: Some(v.version_id.clone()),
                }),
        );
    }))
}

fn passes(g: &Generate, clock: Clock, v: &engine::ObjectVersion) -> bool {
    if v.delete_marker || v.mtime_ns > clock.snapshot_ns {
        return false;
    }
    if let Some(days) = g.older_than_days {
        let age = days
            .saturating_mul(clock.day_secs)
            .saturating_mul(1_000_000_000);
        if v.mtime_ns > clock.now_ns.saturating_sub(age) {
            return false;
        }
    }
    // Checked when the job was made, so a time that does not parse is not here.
    let at = |t: &Option<String>| t.as_deref().and_then(|t| parse_time(t).ok());
    if at(&g.created_after).is_some_and(|after| v.mtime_ns <= after)
        || at(&g.created_before).is_some_and(|before| v.mtime_ns >= before)
    {
        return false;
    }
    if g.min_size.is_some_and(|m| v.size < m) || g.max_size.is_some_and(|m| v.size > m) {
        return false;
    }
    if let Some(c) = &g.storage_class {
        if v.meta.storage_class.as_deref().unwrap_or("STANDARD") != c {
            return false;
        }
    }
    g.tag
        .iter()
        .all(|(k, want)| v.meta.tags.iter().any(|(tk, tv)| tk == k && tv == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(csv: &str) -> Vec<Result<Task, String>> {
        csv_tasks(std::io::Cursor::new(csv.as_bytes().to_vec()))
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    fn task(b: &str, k: &str, v: Option<&str>) -> Result<Task, String> {
        Ok(Task {
            bucket: b.into(),
            key: k.into(),
            version_id: v.map(str::to_string),
        })
    }

    #[test]
    fn csv_lines_give_bucket_key_and_version_with_keys_url_decoded() {
        let got = tasks("b,a%2Fb%20c+d%2B,\n\"b\",\"x\",\"v1\"\n\nb,%E2%82%AC\n");
        assert_eq!(
            got,
            vec![
                task("b", "a/b c d+", None),
                task("b", "x", Some("v1")),
                task("b", "€", None),
            ]
        );
    }

    #[test]
    fn bad_lines_are_errors_with_their_number() {
        let got = tasks("b,k\nonly-bucket\nb,%FF\n");
        assert_eq!(got[0], task("b", "k", None));
        assert!(got[1].as_ref().unwrap_err().contains("line 2"), "{got:?}");
        assert!(
            got[2].as_ref().unwrap_err().contains("URL-encoded"),
            "{got:?}"
        );
    }

    #[test]
    fn an_inventory_manifest_is_read_through_its_data_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::store(&dir);
        store.create_bucket("inv").unwrap();
        let gz = |rows: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, rows.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let put = |key: &str, bytes: &[u8]| {
            let mut w = store.put("inv", key).unwrap();
            w.write(bytes).unwrap();
            w.finish(engine::ObjectMeta::default()).unwrap();
        };
        put(
            "d/1.csv.gz",
            &gz("\"src\",\"a+b\",\"v1\",\"true\"\n\"src\",\"c\",\"v2\",\"true\"\n"),
        );
        put("d/2.csv.gz", &gz("\"src\",\"d%2Fe\",\"v3\",\"false\"\n"));
        put(
            "d/manifest.json",
            br#"{"fileFormat": "CSV", "fileSchema": "Bucket, Key, VersionId, IsLatest",
                 "files": [{"key": "d/1.csv.gz"}, {"key": "d/2.csv.gz"}]}"#,
        );
        let source = Source::Object {
            bucket: "inv",
            key: "d/manifest.json",
            format: ManifestFormat::Inventory,
        };
        let clock = Clock {
            snapshot_ns: u64::MAX,
            now_ns: u64::MAX,
            day_secs: 86_400,
        };
        let mut r = Reader::open(&store, &source, clock, Position::default()).unwrap();
        let first = r.next_chunk(2).unwrap();
        assert_eq!(
            first.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
            ["a b", "c"]
        );
        // Reopened at the position, as after a restart.
        let mut r2 = Reader::open(&store, &source, clock, r.position.clone()).unwrap();
        let rest = r2.next_chunk(10).unwrap();
        assert_eq!(rest, vec![task("src", "d/e", Some("v3")).unwrap()]);
        assert_eq!(r2.position.done, 3);
    }
}
