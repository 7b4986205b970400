//! Walks the whole chain, file by file, and says what breaks it: a line edited (its
//! link no longer matches the next line's `prev`), lines removed or reordered (the
//! numbers jump or go back where the link breaks), a file swapped (a line later than
//! its file's day, the chain out of order), a file cut short or the last file removed
//! (the log ends before the head's last line). Gap lines are reported, not counted as
//! breaks: they are the writer's own record of lines it had to drop.

use crate::audit::head::{self, Head};
use crate::audit::line::{Chain, Kind, Line, GENESIS};
use crate::audit::{io, AuditError};
use serde::Serialize;
use std::path::Path;

/// One break in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `edited`, `removed`, `reordered`, `truncated`, `file_removed`, `file_swapped`,
    /// `head` (the head record is missing or forged) or `cut_while_stopped`.
    pub kind: &'static str,
    pub file: Option<String>,
    /// The line (from 1) in that file.
    pub line: Option<u64>,
    pub message: String,
}

/// Lines the writer dropped, as its gap line records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub file: String,
    pub line: u64,
    pub time: String,
    pub dropped: u64,
}

/// What verify found.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// No break anywhere (gaps do not count).
    pub intact: bool,
    pub files: usize,
    pub lines: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub problems: Vec<Problem>,
    pub gaps: Vec<Gap>,
}

/// Where the walk stands: the last line seen.
struct Previous {
    link: [u8; 32],
    seq: Option<u64>,
    file: String,
    line: u64,
}

/// Verify the log in `dir` with the chain's key. `live`: a server is writing it, so a
/// last line still being written is left out rather than called a cut.
pub fn verify(dir: &Path, chain: &Chain, live: bool) -> Result<Verdict, AuditError> {
    // The head first: the files it describes are at least as long when read after it.
    let head = Head::read(dir)?;
    let files = head::files(dir)?;
    let mut v = Verdict {
        intact: true,
        files: files.len(),
        lines: 0,
        first: None,
        last: None,
        problems: Vec::new(),
        gaps: Vec::new(),
    };
    let mut prev = Previous {
        link: GENESIS,
        seq: None,
        file: String::new(),
        line: 0,
    };
    let mut problem = |kind, file: &str, line, message: String| {
        v.problems.push(Problem {
            kind,
            file: Some(file.to_string()),
            line,
            message,
        });
    };
    // The link of the line the head names, once the walk reaches it.
    let mut head_line = None;
    let mut gaps = Vec::new();
    let mut lines_seen = 0;
    let (mut first, mut last) = (None, None);
    for path in &files {
        let name = head::name(path);
        let day = name.trim_end_matches(".jsonl");
        let mut bytes = std::fs::read(path).map_err(io(path))?;
        let writing = live && Some(path) == files.last();
        if writing && bytes.last().is_some_and(|b| *b != b'\n') {
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(whole);
        }
        if bytes.last().is_some_and(|b| *b != b'\n') {
            problem(
                "truncated",
                &name,
                None,
                format!("{name} ends in the middle of a line: the file was cut short"),
            );
        }
        let mut n = 0;
        for raw in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            n += 1;
            lines_seen += 1;
            let link = chain.link(raw);
            let Ok(line) = serde_json::from_slice::<Line>(raw) else {
                problem(
                    "edited",
                    &name,
                    Some(n),
                    format!("{name} line {n} is not an audit record: it was edited"),
                );
                prev = Previous {
                    link,
                    seq: prev.seq.map(|s| s + 1),
                    file: name.clone(),
                    line: n,
                };
                continue;
            };
            first.get_or_insert_with(|| line.time.clone());
            last = Some(line.time.clone());
            let expected = prev.seq.map_or(0, |s| s + 1);
            if line.prev != hex::encode(prev.link) {
                let at_file_start = n == 1;
                let (kind, message) = if prev.seq.is_none() && line.seq > 0 {
                    ("removed", format!(
                        "the log starts at line number {} in {name}: the {} lines before it (older files, or the start of this one) were removed",
                        line.seq, line.seq
                    ))
                } else if line.seq == expected {
                    ("edited", format!(
                        "the hash link from {} line {} to {name} line {n} is broken: one of the two lines was edited",
                        prev.file, prev.line
                    ))
                } else if line.seq > expected && at_file_start {
                    ("removed", format!(
                        "{} lines (numbers {expected} to {}) are missing between {} and {name}: the end of {}, or a whole file between them, was removed",
                        line.seq - expected, line.seq - 1, prev.file, prev.file
                    ))
                } else if line.seq > expected {
                    ("removed", format!(
                        "{} lines (numbers {expected} to {}) are missing before {name} line {n}: lines were deleted",
                        line.seq - expected, line.seq - 1
                    ))
                } else if at_file_start {
                    ("file_swapped", format!(
                        "{name} starts at line number {}, before the end of {} (number {}): files were swapped or renamed",
                        line.seq, prev.file, expected.saturating_sub(1)
                    ))
                } else {
                    (
                        "reordered",
                        format!(
                        "{name} line {n} (number {}) comes after number {}: lines were reordered",
                        line.seq, expected.saturating_sub(1)
                    ),
                    )
                };
                problem(kind, &name, Some(n), message);
            }
            if line.day() > day {
                problem(
                    "file_swapped",
                    &name,
                    Some(n),
                    format!("{name} line {n} is from {}, a later day than its file's: files were swapped or renamed", line.day()),
                );
            }
            match line.kind {
                Kind::Gap => gaps.push(Gap {
                    file: name.clone(),
                    line: n,
                    time: line.time.clone(),
                    dropped: line.dropped.unwrap_or(0),
                }),
                Kind::Start if line.head_ok == Some(false) => problem(
                    "cut_while_stopped",
                    &name,
                    Some(n),
                    format!(
                        "at its start ({}) the server found the log changed: {}",
                        line.time,
                        line.note
                            .as_deref()
                            .unwrap_or("it did not end where its head said")
                    ),
                ),
                Kind::Start | Kind::Request | Kind::Alert => {}
            }
            if head
                .as_ref()
                .is_some_and(|h| h.seq == line.seq && h.file == name)
            {
                head_line = Some(link);
            }
            prev = Previous {
                link,
                seq: Some(line.seq),
                file: name.clone(),
                line: n,
            };
        }
    }
    match head {
        None if files.is_empty() => {}
        None => problem(
            "head",
            "HEAD",
            None,
            "the head record (HEAD) is missing: whether the end of the log was cut cannot be told"
                .into(),
        ),
        Some(h) if !h.sealed(chain) => problem(
            "head",
            "HEAD",
            None,
            "the head record (HEAD) was edited or is not this server's: it does not match its seal"
                .into(),
        ),
        Some(h) => check_head(dir, &h, head_line, &prev, &mut problem),
    }
    v.gaps = gaps;
    v.lines = lines_seen;
    v.first = first;
    v.last = last;
    v.intact = v.problems.is_empty();
    Ok(v)
}

/// The log must reach the head's last line (`reached`: its link, if the walk met it),
/// and hold it as the head recorded it.
fn check_head(
    dir: &Path,
    h: &Head,
    reached: Option<[u8; 32]>,
    prev: &Previous,
    problem: &mut impl FnMut(&'static str, &str, Option<u64>, String),
) {
    if !dir.join(&h.file).exists() {
        problem(
            "file_removed",
            &h.file,
            None,
            format!("{} is missing: the head record names it as the log's last file (up to line number {})", h.file, h.seq),
        );
        return;
    }
    match reached {
        Some(link) if hex::encode(link) == h.link => {}
        Some(_) => problem(
            "edited",
            &h.file,
            None,
            format!("line number {} in {} is not the line the head record names: it was edited or replaced", h.seq, h.file),
        ),
        None => problem(
            "truncated",
            &h.file,
            None,
            format!(
                "the log was cut short: it ends in {} at line number {}, but the head record's last line is number {} in {} ({} lines)",
                prev.file,
                prev.seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
                h.seq,
                h.file,
                h.lines
            ),
        ),
    }
}
