//! The audit log's writer: requests hand their records to a bounded buffer and go on;
//! one thread takes them in batches, links and writes them (one write and flush per
//! batch), rewrites the head every 100 ms, and syncs to disk every second. When the buffer is full,
//! the setting decides: requests wait for room (`block`), or the lines are dropped and
//! counted, and a gap line with the count goes into the chain as soon as there is room.

use crate::audit::head::{self, Head};
use crate::audit::line::{Chain, Kind, Line, GENESIS};
use crate::audit::{io, AuditError};
use crate::trail::Record;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often written lines are synced to disk: a power loss loses at most this much of
/// the log (and verify then reports the end as cut against the head).
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the head follows the log. Rewriting it (a new file renamed over the old)
/// after every batch cost more than the batch when requests come one at a time; lines
/// written since the last head are not covered by its truncation check.
const HEAD_EVERY: Duration = Duration::from_millis(100);
/// The most lines written in one batch, so that the head keeps up under a flood.
const MAX_BATCH: usize = 4096;

/// What requests do when the buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room: no request goes unaudited (strict, for compliance).
    Block,
    /// Go on; the dropped lines are counted in a gap line that verify reports.
    Gap,
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Lines the buffer holds between the requests and the writer.
    pub buffer: usize,
    pub when_full: WhenFull,
}

pub(crate) enum Msg {
    Record(Box<Record>),
    /// A line made elsewhere (an alert).
    Line(Box<Line>),
    Close,
}

/// The audit log, open for appending. Clones share the writer.
#[derive(Clone)]
pub struct Log {
    /// Where its files are, for the readers of a running log (the access analyzer).
    dir: PathBuf,
    tx: SyncSender<Msg>,
    pub(crate) dropped: Arc<AtomicU64>,
    pub(crate) when_full: WhenFull,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Open the log in `dir` (made if missing) and start its writer, which first writes
    /// a start line saying whether the log ends where its head says.
    pub fn open(dir: PathBuf, chain: Chain, settings: Settings) -> Result<Log, AuditError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        let mut writer = Writer::recover(dir.clone(), chain)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(settings.buffer.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        writer.dropped = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(io("audit-writer thread"))?;
        Ok(Log {
            dir,
            tx,
            dropped,
            when_full: settings.when_full,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// The directory of its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hand a record to the writer: at once while the buffer has room; when it is full,
    /// after waiting for room (`block`) or not at all, counted as dropped (`gap`).
    pub async fn append(&self, record: Record) {
        self.send(Msg::Record(Box::new(record))).await;
    }

    /// Hand an anomaly alert to the writer, as [`Log::append`] does a request.
    pub(crate) async fn append_alert(&self, alert: &crate::anomaly::alert::Alert) {
        self.send(Msg::Line(Box::new(Line::alert(alert)))).await;
    }

    async fn send(&self, msg: Msg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => match self.when_full {
                WhenFull::Gap => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                WhenFull::Block => {
                    // The wait happens on a blocking thread, not the executor's.
                    let tx = self.tx.clone();
                    let sent = tokio::task::spawn_blocking(move || tx.send(msg).is_ok()).await;
                    if !matches!(sent, Ok(true)) {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            // Closed: the server is stopping and the writer has written its last line.
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!(
                    "a request ended after the audit log was closed; it is not in the log"
                );
            }
        }
    }

    /// Write what is buffered, sync, and stop the writer (at shutdown).
    pub fn close(&self) {
        let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        if self.tx.send(Msg::Close).is_ok() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
impl Log {
    /// A log whose buffer is `tx`, with no writer: the test reads the buffer itself.
    pub(crate) fn for_tests(tx: SyncSender<Msg>, when_full: WhenFull) -> Log {
        Log {
            dir: PathBuf::new(),
            tx,
            dropped: Arc::default(),
            when_full,
            thread: Arc::default(),
        }
    }
}

/// The writer thread's state: where the chain stands and the open file.
struct Writer {
    dir: PathBuf,
    chain: Chain,
    /// The next line's number.
    seq: u64,
    /// The last line's link.
    prev: [u8; 32],
    /// The day of the open file (`YYYY-MM-DD`); lines never go to an earlier day's file.
    day: String,
    file: Option<BufWriter<File>>,
    /// Lines in the open file.
    lines: u64,
    dropped: Arc<AtomicU64>,
    unsynced: bool,
    synced_at: Instant,
    /// Lines were written since the head was.
    head_behind: bool,
    head_at: Instant,
    /// The start line, written first by the thread.
    start: Option<Line>,
}

impl Writer {
    /// Find where the chain ends (the last complete line of the last file) and compare
    /// it with the head.
    fn recover(dir: PathBuf, chain: Chain) -> Result<Writer, AuditError> {
        let files = head::files(&dir)?;
        let mut w = Writer {
            dir,
            chain,
            seq: 0,
            prev: GENESIS,
            day: String::new(),
            file: None,
            lines: 0,
            dropped: Arc::default(),
            unsynced: false,
            synced_at: Instant::now(),
            head_behind: false,
            head_at: Instant::now(),
            start: None,
        };
        let mut notes = Vec::new();
        if let Some(last) = files.last() {
            let mut bytes = Vec::new();
            File::open(last)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io(last))?;
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if whole < bytes.len() {
                // A crash in the middle of a write: the partial line was never linked.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(last)
                    .map_err(io(last))?;
                f.set_len(whole as u64).map_err(io(last))?;
                notes.push(format!(
                    "removed {} bytes of a line left unfinished at the end of {}",
                    bytes.len() - whole,
                    head::name(last)
                ));
                bytes.truncate(whole);
            }
            let lines: Vec<&[u8]> = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            w.day = head::name(last).trim_end_matches(".jsonl").to_string();
            w.lines = lines.len() as u64;
            if let Some(line) = lines.last() {
                w.prev = w.chain.link(line);
                let seq = serde_json::from_slice::<Line>(line).map(|l| l.seq);
                w.seq = seq.map_or(w.lines, |s| s + 1);
            }
        }
        let head = Head::read(&w.dir)?;
        let head_ok = match &head {
            None => files.is_empty(),
            Some(h) => {
                h.sealed(&w.chain)
                    && link_at(&w.dir.join(&h.file), h.lines, &w.chain)
                        .is_some_and(|l| hex::encode(l) == h.link)
            }
        };
        if !head_ok {
            notes.push(match &head {
                None => "the head record is missing".to_string(),
                Some(h) => format!(
                    "the head names line {} of {} (number {}), which the log does not hold as recorded: it was cut or changed while the server was stopped",
                    h.lines, h.file, h.seq
                ),
            });
        }
        let mut start = Line::new(Kind::Start, SystemTime::now());
        start.head_ok = Some(head_ok);
        start.note = (!notes.is_empty()).then(|| notes.join("; "));
        w.start = Some(start);
        Ok(w)
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        let mut batch: Vec<Line> = self.start.take().into_iter().collect();
        loop {
            let mut close = false;
            if batch.is_empty() {
                let wait = if self.head_behind {
                    HEAD_EVERY
                } else {
                    SYNC_EVERY
                };
                match rx.recv_timeout(wait) {
                    Ok(Msg::Record(r)) => batch.push(Line::request(*r)),
                    Ok(Msg::Line(l)) => batch.push(*l),
                    Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => close = true,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            while !close && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Record(r)) => batch.push(Line::request(*r)),
                    Ok(Msg::Line(l)) => batch.push(*l),
                    Ok(Msg::Close) => close = true,
                    Err(_) => break,
                }
            }
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let mut gap = Line::new(Kind::Gap, SystemTime::now());
                gap.dropped = Some(dropped);
                gap.note = Some("the audit buffer was full: lines were dropped".into());
                batch.push(gap);
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                if let Err(e) = self.write(batch.drain(..)) {
                    tracing::error!("cannot write the audit log: {e}");
                    // Counted, so that a gap line says so once writing works again.
                    self.dropped.fetch_add(n, Ordering::Relaxed);
                    batch.clear();
                }
            }
            if self.unsynced && (close || self.synced_at.elapsed() >= SYNC_EVERY) {
                if let Err(e) = self.sync() {
                    tracing::error!("cannot sync the audit log: {e}");
                }
            } else if self.head_behind && self.head_at.elapsed() >= HEAD_EVERY {
                if let Err(e) = self.write_head(false) {
                    tracing::error!("cannot write the audit log's head: {e}");
                }
            }
            if close {
                return;
            }
        }
    }

    /// Link and write `lines`, flush, and rewrite the head.
    fn write(&mut self, lines: impl Iterator<Item = Line>) -> Result<(), AuditError> {
        let mut buf = Vec::with_capacity(512);
        for mut line in lines {
            if line.day() > self.day.as_str() || self.file.is_none() {
                let day = line.day().max(self.day.as_str()).to_string();
                self.open_day(day)?;
            }
            line.seq = self.seq;
            line.prev = hex::encode(self.prev);
            buf.clear();
            serde_json::to_writer(&mut buf, &line).expect("a line serializes");
            self.prev = self.chain.link(&buf);
            buf.push(b'\n');
            let path = self.path();
            let file = self.file.as_mut().expect("opened above");
            file.write_all(&buf).map_err(io(path))?;
            self.seq += 1;
            self.lines += 1;
        }
        let path = self.path();
        if let Some(f) = self.file.as_mut() {
            f.flush().map_err(io(path))?;
        }
        self.unsynced = true;
        self.head_behind = true;
        Ok(())
    }

    fn write_head(&mut self, sync: bool) -> Result<(), AuditError> {
        self.head().write(&self.dir, sync)?;
        self.head_behind = false;
        self.head_at = Instant::now();
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(head::file_name(&self.day))
    }

    fn head(&self) -> Head {
        Head::new(
            &self.chain,
            head::file_name(&self.day),
            self.lines,
            self.seq.saturating_sub(1),
            hex::encode(self.prev),
        )
    }

    /// Switch to `day`'s file (the day before stays synced).
    fn open_day(&mut self, day: String) -> Result<(), AuditError> {
        if day != self.day {
            if self.file.is_some() {
                self.sync()?;
            }
            self.lines = 0;
        }
        self.day = day;
        let path = self.path();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        self.file = Some(BufWriter::with_capacity(64 * 1024, f));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        let path = self.path();
        if let Some(f) = self.file.as_mut() {
            f.flush().map_err(io(&path))?;
            f.get_ref().sync_data().map_err(io(&path))?;
        }
        self.write_head(true)?;
        self.unsynced = false;
        self.synced_at = Instant::now();
        Ok(())
    }
}

/// The link of line `n` (from 1) of a file, if it has that many lines.
pub(crate) fn link_at(path: &Path, n: u64, chain: &Chain) -> Option<[u8; 32]> {
    let f = BufReader::new(File::open(path).ok()?);
    let line = f
        .split(b'\n')
        .nth(usize::try_from(n.checked_sub(1)?).ok()?)?
        .ok()?;
    Some(chain.link(&line))
}
