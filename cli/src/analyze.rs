//! `cybs3 admin analyze`: the access analyzer's findings (public buckets and objects,
//! grants to others, wildcards, conditions that never hold, unused users and keys, long
//! sessions), asked of the running server, which reads its records and its audit log.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use hyper::Method;
use s3d::Analysis;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Users and access keys older than this many days with no request in them are findings
    #[arg(long, value_name = "N", default_value_t = 90)]
    unused_days: u64,
    /// Print the findings as one JSON array (notes still go to stderr)
    #[arg(long)]
    json: bool,
}

pub fn run(args: AnalyzeArgs, data: DataArg) -> Result<()> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("the analyzer runs in the server: start it with `cybs3 server start`");
    }
    let path = format!("/analyze?unused_days={}", args.unused_days);
    let v = crate::block_on(admin::call(&dir.socket(), Method::GET, &path, None))?;
    let analysis: Analysis = serde_json::from_value(v)?;
    for note in &analysis.notes {
        eprintln!("note: {note}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&analysis.findings)?);
        return Ok(());
    }
    if analysis.findings.is_empty() {
        println!("no findings");
    }
    for f in &analysis.findings {
        println!(
            "{} {} {}",
            f.severity.as_str().to_uppercase(),
            f.kind.as_str(),
            f.resource
        );
        println!("  {}", f.summary);
        if let Some(blocked) = f.blocked {
            let by = if blocked { "yes" } else { "no" };
            println!("  blocked by the public access block: {by}");
        }
        println!("  evidence: {}", serde_json::to_string(&f.evidence)?);
        println!("  fix: {}", f.fix);
        println!();
    }
    Ok(())
}
