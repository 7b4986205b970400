//! What `cybs3 sync` did, file by file and in sum: counts, per-file lines or JSON
//! records, and the final summary.

use super::*;

#[derive(Default)]
pub(super) struct Counts {
    pub(super) uploaded: u64,
    pub(super) downloaded: u64,
    pub(super) deleted: u64,
    pub(super) skipped: u64,
    pub(super) failed: u64,
    pub(super) bytes: u64,
    pub(super) delete_skipped: bool,
}

/// Everything `sync` prints: JSON records or human lines on stdout, errors and notes on
/// stderr, and the progress bar (on a terminal, unless `--quiet`).
pub(super) struct Report {
    pub(super) json: bool,
    pub(super) quiet: bool,
    pub(super) dry_run: bool,
    pub(super) bar: ProgressBar,
    pub(super) progress: Progress,
    pub(super) counts: Counts,
}

impl Report {
    pub(super) fn new(args: &SyncArgs) -> Report {
        // The total grows as transfers start: which files differ is known only then.
        let (bar, progress) = bytes_bar(0, args.quiet, "sync");
        Report {
            json: args.json,
            quiet: args.quiet,
            dry_run: args.dry_run,
            bar,
            progress,
            counts: Counts::default(),
        }
    }

    pub(super) fn out(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    pub(super) fn human(&self, verb: &str, rel: &str, detail: &str) {
        if !self.quiet {
            let would = if self.dry_run { "would " } else { "" };
            self.out(&format!("{would}{verb} {rel}{detail}"));
        }
    }

    pub(super) fn skipped(&mut self, rel: &str, size: u64) {
        self.counts.skipped += 1;
        if self.json {
            self.out(&json!({"action": "skip", "path": rel, "bytes": size}).to_string());
        }
    }

    pub(super) fn transferred(&mut self, dir: Direction, rel: &str, t: Transfer) {
        let action = match dir {
            Direction::Up => {
                self.counts.uploaded += 1;
                "upload"
            }
            Direction::Down => {
                self.counts.downloaded += 1;
                "download"
            }
        };
        self.counts.bytes += t.bytes;
        if self.json {
            let mut o = json!({"action": action, "path": rel, "bytes": t.bytes});
            if let Some((resumed, parts)) = t.parts {
                o["resumed_parts"] = resumed.into();
                o["parts"] = parts.into();
            }
            self.out(&o.to_string());
        } else {
            let resumed = match t.parts {
                Some((r, n)) if r > 0 => format!(", resumed {r} of {n} parts"),
                _ => String::new(),
            };
            self.human(action, rel, &format!(" ({}{resumed})", HumanBytes(t.bytes)));
        }
    }

    pub(super) fn deleted(&mut self, rel: &str, size: u64) {
        self.counts.deleted += 1;
        if self.json {
            self.out(&json!({"action": "delete", "path": rel, "bytes": size}).to_string());
        } else {
            self.human("delete", rel, "");
        }
    }

    pub(super) fn error(&mut self, rel: &str, e: &anyhow::Error) {
        self.counts.failed += 1;
        let msg = format!("{e:#}").replace('\n', " ");
        if self.json {
            self.out(&json!({"action": "error", "path": rel, "error": msg}).to_string());
        } else {
            self.bar.suspend(|| eprintln!("cybs3: {rel}: {msg}"));
        }
    }

    /// A download already reported whose file could not be made durable or put in place
    /// after all: it counts as failed instead.
    pub(super) fn unlanded(&mut self, rel: &str, size: u64, e: &anyhow::Error) {
        self.counts.downloaded = self.counts.downloaded.saturating_sub(1);
        self.counts.bytes = self.counts.bytes.saturating_sub(size);
        self.error(rel, e);
    }

    /// A problem that is not one file's failure; shown even with `--quiet`.
    pub(super) fn warn(&self, msg: &str) {
        self.bar.suspend(|| eprintln!("cybs3: {msg}"));
    }

    pub(super) fn note(&self, msg: &str) {
        if !self.quiet {
            self.warn(msg);
        }
    }

    pub(super) fn summary(&self, seconds: f64) {
        self.bar.finish_and_clear();
        let c = &self.counts;
        if self.json {
            let s = json!({"summary": {
                "uploaded": c.uploaded,
                "downloaded": c.downloaded,
                "deleted": c.deleted,
                "skipped": c.skipped,
                "failed": c.failed,
                "bytes": c.bytes,
                "dry_run": self.dry_run,
                "delete_skipped": c.delete_skipped,
                "seconds": seconds,
            }});
            self.out(&s.to_string());
        } else if !self.quiet {
            let would = if self.dry_run {
                "dry run: would have "
            } else {
                ""
            };
            self.out(&format!(
                "{would}uploaded {}, downloaded {}, deleted {} ({}); {} unchanged, {} failed; {seconds:.1}s",
                c.uploaded,
                c.downloaded,
                c.deleted,
                HumanBytes(c.bytes),
                c.skipped,
                c.failed
            ));
        }
    }
}
