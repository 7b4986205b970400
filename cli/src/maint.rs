//! `cybs3 heal` and `cybs3 fsck`: through the running server, or on the stopped store directly.

use crate::admin;
use crate::server::{open_stopped, store_dir};
use anyhow::Result;
use engine::HealReport;
use std::path::PathBuf;
use std::process::ExitCode;

/// `cybs3 heal` exits 0 at full redundancy, [`DEGRADED`] when every object is still
/// readable but some redundancy could not be restored, [`LOST`] when data is lost.
pub const DEGRADED: u8 = 3;
pub const LOST: u8 = 4;

pub fn heal(data: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let r = run(data, true, json)?;
    Ok(ExitCode::from(if !r.unrecoverable.is_empty() {
        LOST
    } else if !r.fully_redundant() {
        DEGRADED
    } else {
        0
    }))
}

/// `true` when the store is clean.
pub fn fsck(data: Option<PathBuf>, json: bool) -> Result<bool> {
    Ok(run(data, false, json)?.clean())
}

fn run(data: Option<PathBuf>, repair: bool, json: bool) -> Result<HealReport> {
    let dir = store_dir(data);
    let report: serde_json::Value = if dir.running()?.is_some() {
        let path = if repair { "/heal" } else { "/fsck" };
        let method = if repair {
            hyper::Method::POST
        } else {
            hyper::Method::GET
        };
        crate::block_on(admin::call(&dir.socket(), method, path, None))?
    } else {
        let store = open_stopped(&dir)?;
        let r = if repair { store.heal() } else { store.check() }?;
        serde_json::to_value(r)?
    };
    let r: HealReport = serde_json::from_value(report.clone())?;
    if json {
        println!("{report}");
    } else {
        print_report(&r, repair);
    }
    Ok(r)
}

fn print_report(r: &HealReport, repair: bool) {
    if !r.drives_bad.is_empty() {
        println!("drives needing repair: {:?}", r.drives_bad);
    }
    if repair && !r.drives_healed.is_empty() {
        println!("drives repaired:       {:?}", r.drives_healed);
    }
    if !r.drives_unwritable.is_empty() {
        println!(
            "drives not writable:   {:?} (read-only, full or failing)",
            r.drives_unwritable
        );
    }
    if !r.pool_drives_bad.is_empty() {
        println!(
            "pool drives needing repair: {}",
            r.pool_drives_bad.join(", ")
        );
    }
    if repair && !r.pool_drives_healed.is_empty() {
        println!(
            "pool drives repaired:       {}",
            r.pool_drives_healed.join(", ")
        );
    }
    if !r.pool_drives_unwritable.is_empty() {
        println!(
            "pool drives not writable:   {} (read-only, full or failing)",
            r.pool_drives_unwritable.join(", ")
        );
    }
    println!(
        "checked {} objects/parts, {} shards: {} bad{}",
        r.data_checked,
        r.shards_checked,
        r.shards_bad,
        if repair {
            format!(", {} rebuilt", r.shards_healed)
        } else {
            String::new()
        }
    );
    if r.inline_whole > 0 {
        println!(
            "small objects stored whole on every drive (from an older cybs3): {}{}",
            r.inline_whole,
            if repair {
                " (sharded now; a warning above names any that failed)"
            } else {
                " (`cybs3 heal` shards them)"
            }
        );
    }
    if r.orphans > 0 {
        println!(
            "orphaned files: {}{}",
            r.orphans,
            if repair {
                format!(" ({} removed)", r.orphans_removed)
            } else {
                String::new()
            }
        );
    }
    if !r.degraded.is_empty() {
        println!(
            "{} objects/parts readable but short of shards{}",
            r.degraded.len(),
            if repair {
                " that could not be rewritten"
            } else {
                ""
            }
        );
    }
    for u in &r.unrecoverable {
        println!("LOST: {u}");
    }
    let verdict = match repair {
        true if !r.unrecoverable.is_empty() => "data lost: see LOST above",
        true if !r.fully_redundant() => {
            "degraded: every object is readable, but redundancy could not be fully restored; \
             make the drives above writable and run `cybs3 heal` again"
        }
        true => "healed: full redundancy",
        false if r.clean() => "clean",
        false => "problems found; run `cybs3 heal` to repair",
    };
    println!("{verdict}");
}
