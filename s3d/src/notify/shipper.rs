//! Shipping the audit log to a notification target (`server start --audit-target NAME`):
//! every line, in order, at least once. A task tails the daily files from a cursor kept
//! in the index (server record `audit`/`shipped`: the file and the byte offset after the
//! last line delivered), so shipping resumes where it stopped after a restart. A target
//! that is down is retried with backoff; the log itself is the backlog, so nothing is
//! held in memory meanwhile.

use super::deliver::{Deliverer, Message};
use super::Failed;
use engine::Store;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Lines shipped between two saves of the cursor.
const BATCH: usize = 256;
/// How long the shipper waits when it is caught up.
const IDLE: Duration = Duration::from_millis(500);
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(10);

/// A whole line (without its newline) and the offset after it.
type Read = (Vec<u8>, u64);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The file's name (`YYYY-MM-DD.jsonl`); empty before the first line.
    file: String,
    /// The byte after the last line delivered.
    offset: u64,
}

/// Ships forever (until the server stops).
pub(crate) async fn run(store: Store, dir: PathBuf, deliverer: Arc<Deliverer>, target: String) {
    let mut delay = FIRST_DELAY;
    loop {
        match ship_some(&store, &dir, &deliverer, &target).await {
            Ok(0) => {
                delay = FIRST_DELAY;
                tokio::time::sleep(IDLE).await;
            }
            Ok(_) => delay = FIRST_DELAY,
            Err(Failed(e)) => {
                tracing::warn!(target, "shipping the audit log: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    }
}

/// Ships up to [`BATCH`] lines after the cursor and saves it; how many were shipped.
async fn ship_some(
    store: &Store,
    dir: &Path,
    deliverer: &Deliverer,
    target: &str,
) -> Result<usize, Failed> {
    let (s, d, t) = (store.clone(), dir.to_path_buf(), target.to_string());
    let targets = deliverer.targets().clone();
    let (cursor, lines, opened) = tokio::task::spawn_blocking(move || {
        let cursor = load(&s)?;
        let (next, lines) = read_after(&d, &cursor)?;
        let opened = targets.open(&t).map_err(|e| Failed(e.to_string()))?;
        Ok::<_, Failed>(((cursor, next), lines, opened))
    })
    .await
    .map_err(|e| Failed(e.to_string()))??;
    let (mut at, next) = cursor;
    let mut shipped = 0;
    let result = async {
        for (line, end) in &lines {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let (bucket, key) = (field("bucket"), field("key"));
            let m = Message {
                name: "AuditLine",
                time_ns: crate::ctx::now_ns(),
                bucket: &bucket,
                key: &key,
                body: line,
            };
            deliverer.send(&opened, &m).await?;
            at = Cursor {
                file: next.file.clone(),
                offset: *end,
            };
            shipped += 1;
        }
        if lines.is_empty() && next != at {
            // A finished file passed over (or the first file found): move on without lines.
            at = next.clone();
        }
        Ok::<_, Failed>(())
    }
    .await;
    let s = store.clone();
    let saved = at.clone();
    tokio::task::spawn_blocking(move || save(&s, &saved))
        .await
        .map_err(|e| Failed(e.to_string()))??;
    result.map(|()| shipped)
}

fn load(store: &Store) -> Result<Cursor, Failed> {
    let bytes = store
        .server_record("audit", "shipped")
        .map_err(|e| Failed(e.to_string()))?;
    Ok(bytes
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn save(store: &Store, cursor: &Cursor) -> Result<(), Failed> {
    let bytes = serde_json::to_vec(cursor).expect("a cursor serializes");
    store
        .set_server_record("audit", "shipped", Some(bytes))
        .map_err(|e| Failed(e.to_string()))
}

/// The whole lines after `cursor` (at most [`BATCH`], each with the offset after it), in
/// the cursor's file or, once that is read to its end and a later one exists, the next.
fn read_after(dir: &Path, cursor: &Cursor) -> Result<(Cursor, Vec<Read>), Failed> {
    let files = crate::audit::files(dir).map_err(|e| Failed(e.to_string()))?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    // The cursor's file, else the first file after it.
    let Some(i) = names
        .iter()
        .position(|n| n.as_str() >= cursor.file.as_str())
    else {
        return Ok((cursor.clone(), Vec::new()));
    };
    let offset = if names[i] == cursor.file {
        cursor.offset
    } else {
        0
    };
    let here = Cursor {
        file: names[i].clone(),
        offset,
    };
    let lines = read_lines(&files[i], offset)?;
    if lines.is_empty() && i + 1 < names.len() {
        // This file is done (a day ended): the next one starts at 0.
        let next = Cursor {
            file: names[i + 1].clone(),
            offset: 0,
        };
        return Ok((next, Vec::new()));
    }
    Ok((here, lines))
}

fn read_lines(path: &Path, offset: u64) -> Result<Vec<Read>, Failed> {
    let fail = |e: std::io::Error| Failed(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::open(path).map_err(fail)?;
    f.seek(SeekFrom::Start(offset)).map_err(fail)?;
    let mut r = BufReader::new(f);
    let mut at = offset;
    let mut out = Vec::new();
    while out.len() < BATCH {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).map_err(fail)?;
        // A line still being written (no newline yet) waits for the next round.
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        at += n as u64;
        line.pop();
        out.push((line, at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_walks_whole_lines_and_moves_on_to_the_next_day() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("2026-12-04.jsonl"),
            b"{\"a\":1}\n{\"a\":2}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("2026-12-05.jsonl"), b"{\"b\":1}\n{\"b\":2").unwrap();
        let (here, lines) = read_after(dir.path(), &Cursor::default()).unwrap();
        assert_eq!(here.file, "2026-12-04.jsonl");
        assert_eq!(
            lines,
            [(b"{\"a\":1}".to_vec(), 8), (b"{\"a\":2}".to_vec(), 16)]
        );
        let done = Cursor {
            file: here.file,
            offset: 16,
        };
        let (next, lines) = read_after(dir.path(), &done).unwrap();
        assert!(lines.is_empty());
        assert_eq!((next.file.as_str(), next.offset), ("2026-12-05.jsonl", 0));
        // The last line has no newline yet: it is not shipped half-written.
        let (_, lines) = read_after(dir.path(), &next).unwrap();
        assert_eq!(lines, [(b"{\"b\":1}".to_vec(), 8)]);
    }
}
