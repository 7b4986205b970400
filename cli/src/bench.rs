//! `cybs3 bench`: the benchmarks live in the `cybs3-bench` crate; this is what they ask of
//! the CLI (the local server's record, vaults opened as every command opens them).

use anyhow::Result;
use std::path::{Path, PathBuf};
use vault::vault::Vault;

pub use bench::BenchCmd;

pub fn run(cmd: BenchCmd) -> Result<()> {
    bench::run(cmd, &Cli)
}

struct Cli;

impl bench::Cli for Cli {
    fn store_dir(&self, data: Option<PathBuf>) -> PathBuf {
        crate::server::store_dir(data).root
    }

    fn running_address(&self, dir: &Path) -> Result<Option<String>> {
        let dir = crate::storedir::StoreDir::new(dir.to_path_buf());
        Ok(dir.running()?.map(|rt| rt.address))
    }

    fn root_keys(&self, dir: &Path) -> Option<(String, String)> {
        let dir = crate::storedir::StoreDir::new(dir.to_path_buf());
        let c = dir.credentials().ok()??;
        Some((c.access_key, c.secret_key))
    }

    fn open_vault(&self, name: Option<&str>) -> Result<Vault> {
        crate::location::open_vault(name)
    }

    fn passphrase(&self) -> Result<String> {
        crate::location::passphrase()
    }

    fn webhook_target(&self, dir: &Path, name: &str, url: Option<&str>) -> Result<Option<String>> {
        use s3d::notify::{Kind, NewTarget, NotifyCall, TargetInfo};
        let dir = crate::storedir::StoreDir::new(dir.to_path_buf());
        let call = match url {
            Some(url) => NotifyCall::Add(Box::new(NewTarget {
                name: name.to_string(),
                kind: Kind::Webhook,
                url: url.to_string(),
                options: Default::default(),
            })),
            None => NotifyCall::Remove {
                name: name.to_string(),
            },
        };
        let body = serde_json::to_value(&call)?;
        // The bench calls from inside its own runtime: the socket call gets a thread.
        let socket = dir.socket();
        let out = std::thread::spawn(move || {
            crate::block_on(crate::admin::call(
                &socket,
                hyper::Method::POST,
                "/notify",
                Some(body),
            ))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the management call panicked"))??;
        Ok(match url {
            Some(_) => Some(serde_json::from_value::<TargetInfo>(out)?.arn),
            None => None,
        })
    }
}
