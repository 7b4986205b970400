//! `cybs3 batch create|list|status|cancel|report`: S3 Batch Operations jobs, made and
//! followed through the running server's management socket (the same jobs as the S3
//! Control API on the S3 port). A job made here runs with the rights of `--user`.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Context, Result};
use hyper::Method;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3d::batch::{BatchCall, JobView, ReportView, Status};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub cmd: BatchCmd,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(clap::Subcommand, Debug)]
pub enum BatchCmd {
    /// Make a job from a job file (JSON: manifest, operation, report, priority,
    /// concurrency) and print its id
    Create {
        file: PathBuf,
        /// The user whose rights every task is checked against (`root` by default)
        #[arg(long, default_value = "root")]
        user: String,
        /// Wait until the job ends (a progress bar on a terminal); exit 1 unless it completed
        #[arg(long)]
        wait: bool,
        /// No progress bar
        #[arg(long, short)]
        quiet: bool,
        #[arg(long)]
        json: bool,
    },
    /// Every job, oldest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// A job's status and counts
    Status {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop a job after the tasks in flight; its report covers what was done
    Cancel { id: String },
    /// A job's report: a CSV line per task (bucket,key,versionId,status,httpStatus,
    /// errorCode,message), after the summary on stderr
    Report {
        id: String,
        /// The summary and the CSV as one JSON document
        #[arg(long)]
        json: bool,
    },
}

fn call(socket: &Path, call: BatchCall) -> Result<serde_json::Value> {
    crate::block_on(admin::call(
        socket,
        Method::POST,
        "/batch",
        Some(serde_json::to_value(call)?),
    ))
}

pub fn run(args: BatchArgs) -> Result<bool> {
    let dir = store_dir(args.data.data);
    if dir.running()?.is_none() {
        bail!("batch jobs are run by the server: start it with `cybs3 server start`");
    }
    let socket = dir.socket();
    match args.cmd {
        BatchCmd::Create {
            file,
            user,
            wait,
            quiet,
            json,
        } => {
            let text =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            // The server validates the job; here it only has to be JSON.
            let job: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let made: JobView =
                serde_json::from_value(call(&socket, BatchCall::Create { job, user })?)?;
            let shown = match wait {
                true => follow(&socket, &made, quiet || json)?,
                false => made,
            };
            print_job(&shown, json)?;
            Ok(!wait || shown.status == Status::Complete)
        }
        BatchCmd::List { json } => {
            let jobs: Vec<JobView> = serde_json::from_value(call(&socket, BatchCall::List)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                for j in &jobs {
                    println!("{}", line(j));
                }
            }
            Ok(true)
        }
        BatchCmd::Status { id, json } => {
            let j: JobView = serde_json::from_value(call(&socket, BatchCall::Status { id })?)?;
            print_job(&j, json)?;
            Ok(true)
        }
        BatchCmd::Cancel { id } => {
            let j: JobView = serde_json::from_value(call(&socket, BatchCall::Cancel { id })?)?;
            println!("{}", line(&j));
            Ok(true)
        }
        BatchCmd::Report { id, json } => {
            let out = call(&socket, BatchCall::Report { id })?;
            if json {
                println!("{out}");
                return Ok(true);
            }
            let r: ReportView = serde_json::from_value(out)?;
            eprintln!("{}", serde_json::to_string(&r.summary)?);
            print!("{}", r.csv);
            Ok(true)
        }
    }
}

fn line(j: &JobView) -> String {
    format!(
        "{}  {:?}  {}  priority {}  {}/{} done, {} failed{}",
        j.id,
        j.status,
        j.operation,
        j.priority,
        j.counts.succeeded + j.counts.failed,
        j.counts.total,
        j.counts.failed,
        j.reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    )
}

fn print_job(j: &JobView, json: bool) -> Result<()> {
    match json {
        true => println!("{}", serde_json::to_string_pretty(j)?),
        false => println!("{}", line(j)),
    }
    Ok(())
}

/// Poll the job until it ends, with a bar of its tasks when stderr is a terminal.
fn follow(socket: &Path, made: &JobView, quiet: bool) -> Result<JobView> {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tasks {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    };
    loop {
        let id = made.id.clone();
        let j: JobView = serde_json::from_value(call(socket, BatchCall::Status { id })?)?;
        bar.set_length(j.counts.total);
        bar.set_position(j.counts.succeeded + j.counts.failed);
        bar.set_message(format!("{:?}", j.status));
        if j.status == Status::Complete
            || j.status == Status::Failed
            || j.status == Status::Cancelled
        {
            bar.finish_and_clear();
            return Ok(j);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
