//! `cybs3 test`: a quick end-to-end check of a vault — write, list, read back, verify,
//! delete — printed as a pass/fail table.

use crate::location::open_vault;
use anyhow::{bail, Result};
use serde_json::json;
use std::time::Instant;
use vault::vault::Vault;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The vault to check (default: the active one)
    #[arg(long)]
    pub vault: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TestArgs) -> Result<bool> {
    let vault = open_vault(args.vault.as_deref())?;
    let dir = format!(".cybs3-test-{}", std::process::id());
    // Small (one request) and large enough for a multipart upload and ranged reads.
    let small = b"cybs3 self-test".to_vec();
    let large: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let mut rows: Vec<(String, Result<String>, f64)> = Vec::new();
    let mut server_layer = None;
    crate::block_on(async {
        let mut step = |name: &str, t: Instant, r: Result<String>| {
            rows.push((name.to_string(), r, t.elapsed().as_secs_f64()))
        };
        let t = Instant::now();
        let w = async {
            vault
                .put_bytes(&format!("{dir}/small.txt"), small.clone())
                .await?;
            vault
                .put_bytes(&format!("{dir}/large.bin"), large.clone())
                .await?;
            Ok(format!("2 files, {} bytes", small.len() + large.len()))
        }
        .await;
        let wrote = w.is_ok();
        step("write", t, w);
        let t = Instant::now();
        let l = layers(&vault, &format!("{dir}/large.bin")).await;
        if let Ok((_, server)) = &l {
            server_layer = server.clone();
        }
        step("layers", t, l.map(|(detail, _)| detail));
        let t = Instant::now();
        step("list", t, list(&vault, &dir).await);
        let t = Instant::now();
        step(
            "read back",
            t,
            read_back(&vault, &dir, &small, &large).await,
        );
        let t = Instant::now();
        let d = async {
            vault.delete(&format!("{dir}/small.txt")).await?;
            vault.delete(&format!("{dir}/large.bin")).await?;
            if !vault.list(&dir, true).await?.is_empty() {
                bail!("files remain after delete");
            }
            Ok("removed".to_string())
        }
        .await;
        step(
            "delete",
            t,
            if wrote {
                d
            } else {
                Err(anyhow::anyhow!("skipped: nothing written"))
            },
        );
        // A vault on several endpoints (a site group): each one, on its own.
        for e in &vault.cfg.endpoints {
            let t = Instant::now();
            step(&format!("endpoint {e}"), t, reach(&vault.cfg, e).await);
        }
    });
    let ok = rows.iter().all(|(_, r, _)| r.is_ok());
    if args.json {
        let steps: Vec<_> = rows
            .iter()
            .map(|(n, r, s)| match r {
                Ok(d) => json!({"step": n, "ok": true, "detail": d, "seconds": s}),
                Err(e) => {
                    json!({"step": n, "ok": false, "detail": crate::one_line(e), "seconds": s})
                }
            })
            .collect();
        println!(
            "{}",
            json!({
                "vault": vault.name,
                "encrypted": vault.encrypted(),
                "server_encryption": server_layer,
                "ok": ok,
                "steps": steps
            })
        );
    } else {
        println!(
            "vault {} ({}, {})",
            vault.name,
            if vault.encrypted() {
                "encrypted"
            } else {
                "plain"
            },
            vault.cfg.endpoint
        );
        for (n, r, s) in &rows {
            let (mark, detail) = match r {
                Ok(d) => ("PASS", d.clone()),
                Err(e) => ("FAIL", crate::one_line(e)),
            };
            println!("  {mark}  {n:<10} {s:>7.3}s  {detail}");
        }
        println!(
            "{}",
            if ok {
                "all checks passed"
            } else {
                "some checks FAILED"
            }
        );
    }
    Ok(ok)
}

/// Whether `endpoint` alone answers for the vault's bucket.
async fn reach(cfg: &vault::config::VaultConfig, endpoint: &str) -> Result<String> {
    let mut one = cfg.clone();
    one.endpoint = endpoint.to_string();
    one.endpoints.clear();
    let asked = one
        .target()
        .client()
        .head_bucket()
        .bucket(&cfg.bucket)
        .send();
    match asked.await {
        Ok(_) => Ok(format!("bucket {} reachable", cfg.bucket)),
        Err(e) => bail!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

async fn list(vault: &Vault, dir: &str) -> Result<String> {
    let names: Vec<String> = vault
        .list(dir, true)
        .await?
        .into_iter()
        .map(|e| e.path)
        .collect();
    let want = [format!("{dir}/large.bin"), format!("{dir}/small.txt")];
    if names != want {
        bail!("listed {names:?}, expected {want:?}");
    }
    Ok("both files listed by name".into())
}

async fn read_back(vault: &Vault, dir: &str, small: &[u8], large: &[u8]) -> Result<String> {
    for (name, want) in [("small.txt", small), ("large.bin", large)] {
        let tmp = tempfile::tempdir()?;
        let local = tmp.path().join(name);
        vault
            .download(
                &format!("{dir}/{name}"),
                &local,
                std::sync::Arc::new(|_| {}),
            )
            .await?;
        if std::fs::read(&local)? != want {
            bail!("{name} came back different");
        }
    }
    Ok("byte-identical".into())
}

/// The encryption layers of file `path` as stored: the vault's own (age), and the
/// server's as its HEAD shows it. A vault that asks for server-side encryption fails
/// when the server did not apply it.
async fn layers(vault: &Vault, path: &str) -> Result<(String, Option<String>)> {
    let server = vault.server_encryption(path).await?;
    if vault.cfg.sse.is_some() && server.is_none() {
        bail!("the vault asks the server to encrypt its uploads, and the server's HEAD shows no encryption");
    }
    let age = if vault.encrypted() { "age" } else { "none" };
    let shown = server.as_deref().unwrap_or("none");
    Ok((format!("client: {age}; server: {shown}"), server))
}
