//! `cybs3 heal` and `cybs3 fsck`: through the running server, or on the stopped store directly.

use crate::admin;
use crate::server::{open_stopped, store_dir};
use anyhow::Result;
use engine::HealReport;
use std::path::PathBuf;

pub fn run(data: Option<PathBuf>, repair: bool, json: bool) -> Result<bool> {
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
    let ok = if repair {
        r.unrecoverable.is_empty() && r.drives_healed.len() == r.drives_bad.len()
    } else {
        r.clean()
    };
    if json {
        println!("{report}");
    } else {
        print_report(&r, repair, ok);
    }
    Ok(ok)
}

fn print_report(r: &HealReport, repair: bool, ok: bool) {
    if !r.drives_bad.is_empty() {
        println!("drives needing repair: {:?}", r.drives_bad);
    }
    if repair && !r.drives_healed.is_empty() {
        println!("drives repaired:       {:?}", r.drives_healed);
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
    for u in &r.unrecoverable {
        println!("LOST: {u}");
    }
    match (ok, repair) {
        (true, true) => println!("healed: full redundancy"),
        (true, false) => println!("clean"),
        (false, true) => println!("some data could not be healed; see above"),
        (false, false) => println!("problems found; run `cybs3 heal` to repair"),
    }
}
