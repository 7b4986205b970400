//! `cybs3 admin audit verify|report`: checks the audit log's chain and exports what it
//! holds. Both read the files in DATA/audit/ directly (the server may run or not), and
//! verify needs the server's key (DATA/server.key), which keys the chain.

use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Context, Result};
use s3d::audit::{Chain, Line, Query};
use std::io::Write;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// Check that no line of the audit log was edited, removed or reordered and no
    /// file truncated, removed or swapped; report gaps (lines dropped while the buffer
    /// was full). Exit status: 0 intact, 1 broken
    Verify {
        /// Print the verdict as JSON
        #[arg(long)]
        json: bool,
    },
    /// The compliance export: every request of a period (who did what to which bucket
    /// and key, with the decision), with totals per user and per action, denials, and
    /// admin and IAM changes
    Report {
        /// From this time: RFC 3339 (2026-12-05T10:00:00Z) or a date (2026-12-05, its start)
        #[arg(long, value_name = "TIME")]
        from: String,
        /// Up to this time: RFC 3339, or a date (up to its end)
        #[arg(long, value_name = "TIME")]
        to: String,
        /// Only this caller's requests (a user name, `root`, or an access key)
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only requests on this bucket
        #[arg(long, value_name = "BUCKET")]
        bucket: Option<String>,
        /// Only the denied requests
        #[arg(long)]
        denied: bool,
        /// json: one object with the lines and the totals; csv: one row per request
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// `Ok(false)`: the chain is broken (exit 1).
pub fn run(cmd: AuditCmd, data: DataArg) -> Result<bool> {
    let dir = store_dir(data.data);
    let log = dir.audit();
    if !log.exists() {
        bail!(
            "there is no audit log in {}: the server writes it once started (unless --audit off); pass --data for another store",
            log.display()
        );
    }
    match cmd {
        AuditCmd::Verify { json } => {
            let Some(key) = dir.server_key()? else {
                bail!(
                    "{} has no server key (server.key), which keys the audit chain: verify on the store the server ran on (--data)",
                    dir.root.display()
                );
            };
            let live = dir.running()?.is_some();
            verify(&log, &Chain::new(&key), live, json)
        }
        AuditCmd::Report {
            from,
            to,
            user,
            bucket,
            denied,
            format,
        } => {
            let query = Query {
                from: Query::time(&from, false).context("--from")?,
                to: Query::time(&to, true).context("--to")?,
                user,
                bucket,
                denied,
            };
            let report = s3d::audit::report(&log, &query)?;
            let mut out = std::io::stdout().lock();
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
                Format::Csv => csv(&mut out, &report.lines)?,
            }
            Ok(true)
        }
    }
}

fn verify(log: &std::path::Path, chain: &Chain, live: bool, json: bool) -> Result<bool> {
    let v = s3d::audit::verify(log, chain, live)?;
    if json {
        println!("{}", serde_json::to_string(&v)?);
        return Ok(v.intact);
    }
    for p in &v.problems {
        println!("BROKEN ({}): {}", p.kind, p.message);
    }
    for g in &v.gaps {
        println!(
            "gap: {} lines were dropped (the buffer was full) before {} line {} ({})",
            g.dropped, g.file, g.line, g.time
        );
    }
    let span = match (&v.first, &v.last) {
        (Some(a), Some(b)) => format!(", {a} to {b}"),
        _ => String::new(),
    };
    if v.intact {
        println!("intact: {} lines in {} files{span}", v.lines, v.files);
    } else {
        println!(
            "the audit log was tampered with or damaged: {} problems in {} lines, {} files{span}",
            v.problems.len(),
            v.lines,
            v.files
        );
    }
    Ok(v.intact)
}

const COLUMNS: &str = "time,id,api,user,access_key,session,source,action,bucket,key,version,target,decision,by,status,error,bytes_in,bytes_out,us";

fn csv(out: &mut impl Write, lines: &[Line]) -> Result<()> {
    writeln!(out, "{COLUMNS}")?;
    for l in lines {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let n = |v: Option<u64>| v.map_or_else(String::new, |n| n.to_string());
        let row = [
            l.time.clone(),
            s(&l.id),
            s(&l.api),
            s(&l.user),
            s(&l.access_key),
            l.session.to_string(),
            s(&l.source),
            s(&l.action),
            s(&l.bucket),
            s(&l.key),
            s(&l.version),
            s(&l.target),
            s(&l.decision),
            s(&l.by),
            n(l.status.map(u64::from)),
            s(&l.error),
            n(l.bytes_in),
            n(l.bytes_out),
            n(l.us),
        ];
        let row: Vec<String> = row.iter().map(|f| field(f)).collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
fn field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}
