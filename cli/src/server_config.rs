//! `cybs3 server config get [KEY] | set KEY VALUE | unset KEY | list [--json]`: the server
//! config file (`DATA/server.toml`, or `--config FILE`), edited in place with its comments
//! kept. Keys are the `server start` flags' names (see `settings.rs`). Each value is
//! checked by the same parser as the flag, and the whole file as `server start` reads
//! it, before anything is written. A running server then reloads the file
//! ([`Reload`]): what it can change live it applies at once; the rest waits for a restart.

use crate::settings::ServerSettings;
use crate::storedir::StoreDir;
use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Args, FromArgMatches};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Keys a running server applies without a restart.
const LIVE: &[&str] = &[
    "log-level",
    "trusted-proxy",
    "metrics-public",
    "lifecycle-interval-secs",
    "ldap-url",
    "ldap-user-dn",
    "ldap-bind-dn",
    "ldap-bind-password",
    "ldap-user-base",
    "ldap-user-filter",
    "ldap-group-base",
    "ldap-group-filter",
    "ldap-group-policy",
    "ldap-starttls",
    "ldap-ca-file",
];

/// Keys whose values are never printed.
pub const SECRET: &[&str] = &["ldap-bind-password"];

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print KEY's value in the config file (exit 1 when it is not set), or every set key
    Get { key: Option<String> },
    /// Set KEY to VALUE (a list key takes VALUE,VALUE…; a switch takes true or false)
    Set { key: String, value: String },
    /// Remove KEY from the config file (the default applies again)
    Unset { key: String },
    /// Every key: its value in the file, and whether a running server takes it live
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub cmd: ConfigCmd,
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// The config file [default: DATA/server.toml]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

pub fn run(args: ConfigArgs) -> Result<bool> {
    let dir = crate::server::store_dir(args.data);
    let path = args.config.unwrap_or_else(|| dir.root.join("server.toml"));
    let doc = read(&path)?;
    match args.cmd {
        ConfigCmd::Get { key: Some(key) } => {
            kind(&key)?;
            match doc.get(&key) {
                Some(item) => {
                    println!("{}", shown(&key, item));
                    Ok(true)
                }
                None => {
                    eprintln!("{key} is not set in {}", path.display());
                    Ok(false)
                }
            }
        }
        ConfigCmd::Get { key: None } => {
            for (key, item) in doc.iter() {
                println!("{key} = {}", shown(key, item));
            }
            Ok(true)
        }
        ConfigCmd::List { json } => {
            let rows: Vec<serde_json::Value> = keys()
                .into_iter()
                .map(|(key, _)| {
                    serde_json::json!({
                        "key": key,
                        "value": doc.get(&key).map(|i| shown(&key, i)),
                        "live": LIVE.contains(&key.as_str()),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    let live = if r["live"] == true { "live" } else { "restart" };
                    let value = r["value"].as_str().unwrap_or("-");
                    println!(
                        "{:<26} {:<8} {value}",
                        r["key"].as_str().unwrap_or(""),
                        live
                    );
                }
            }
            Ok(true)
        }
        ConfigCmd::Set { key, value } => {
            let mut doc = doc;
            match parsed(&key, &value)? {
                Some(item) => doc[key.as_str()] = item,
                None => drop(doc.remove(&key)),
            }
            save(&dir, &path, &doc, &key)
        }
        ConfigCmd::Unset { key } => {
            kind(&key)?;
            let mut doc = doc;
            if doc.remove(&key).is_none() {
                eprintln!("{key} was not set in {}", path.display());
            }
            save(&dir, &path, &doc, &key)
        }
    }
}

/// The config file as a document (empty when there is none yet).
fn read(path: &Path) -> Result<toml_edit::DocumentMut> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A value as printed: secrets as `(set)`, strings unquoted.
fn shown(key: &str, item: &toml_edit::Item) -> String {
    if SECRET.contains(&key) {
        return "(set)".into();
    }
    match item.as_str() {
        Some(s) => s.to_string(),
        None => item.to_string().trim().to_string(),
    }
}

/// How a key takes its value.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Switch,
    List,
    One,
}

/// Every key the config file takes, with its kind.
fn keys() -> Vec<(String, Kind)> {
    let cmd = ServerSettings::augment_args(clap::Command::new("server.toml"));
    let mut keys: Vec<(String, Kind)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let kind = match a.get_action() {
                ArgAction::SetTrue => Kind::Switch,
                ArgAction::Append => Kind::List,
                _ => Kind::One,
            };
            Some((a.get_long()?.to_string(), kind))
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

fn kind(key: &str) -> Result<Kind> {
    keys()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, kind)| kind)
        .ok_or_else(|| {
            anyhow!("there is no server setting {key:?}; `cybs3 server config list` shows them all")
        })
}

/// VALUE for KEY checked by the flag's own parser, as the file's TOML value; `None`
/// for a switch turned off (removed from the file).
fn parsed(key: &str, value: &str) -> Result<Option<toml_edit::Item>> {
    let kind = kind(key)?;
    let mut argv = vec!["server.toml".to_string()];
    match kind {
        Kind::Switch => match value {
            "true" | "on" | "yes" => argv.push(format!("--{key}")),
            "false" | "off" | "no" => return Ok(None),
            _ => bail!("{key} is a switch: set it to true or false"),
        },
        Kind::List => argv.extend(value.split(',').map(|v| format!("--{key}={}", v.trim()))),
        Kind::One => argv.push(format!("--{key}={value}")),
    }
    let cmd = ServerSettings::augment_args(clap::Command::new("server.toml"));
    let matches = cmd.try_get_matches_from(&argv).map_err(|e| {
        let msg = e.to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        anyhow!("{key} = {value:?}: {first}")
    })?;
    let settings = ServerSettings::from_arg_matches(&matches)?;
    let text = toml::to_string(&settings)?;
    let doc: toml_edit::DocumentMut = text.parse()?;
    doc.get(key)
        .cloned()
        .map(Some)
        .ok_or_else(|| anyhow!("{key}: the value did not come through"))
}

/// Check the whole file as `server start` would, write it (0600: it may hold the
/// directory's bind password), and have a running server reload it.
fn save(dir: &StoreDir, path: &Path, doc: &toml_edit::DocumentMut, key: &str) -> Result<bool> {
    let text = doc.to_string();
    let settings: ServerSettings =
        toml::from_str(&text).with_context(|| format!("{} would not be valid", path.display()))?;
    check(&settings)?;
    write_private(path, &text)?;
    if dir.running()?.is_none() {
        println!(
            "{key}: saved in {}; the server takes it when it starts",
            path.display()
        );
        return Ok(true);
    }
    let v = crate::block_on(crate::admin::call(
        &dir.socket(),
        hyper::Method::POST,
        "/config/reload",
        None,
    ))?;
    let list = |k: &str| -> Vec<String> {
        v[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let (applied, restart, shadowed) = (list("applied"), list("restart_needed"), list("shadowed"));
    if shadowed.iter().any(|k| k == key) {
        println!("{key}: saved in {}, but a `server start` flag sets it and wins: restart the server without that flag", path.display());
    } else if restart.iter().any(|k| k == key) {
        println!(
            "{key}: saved in {}; restart needed (`cybs3 server stop`, then `cybs3 server start`)",
            path.display()
        );
    } else if applied.iter().any(|k| k == key) {
        println!(
            "{key}: saved in {} and applied to the running server",
            path.display()
        );
    } else {
        println!(
            "{key}: saved in {}; the running server already had this value",
            path.display()
        );
    }
    Ok(true)
}

/// The checks `server start` makes on settings beyond their types.
fn check(settings: &ServerSettings) -> Result<()> {
    settings.ldap()?;
    if settings.tls_cert.is_some() != settings.tls_key.is_some() {
        bail!("tls-cert and tls-key go together: set both");
    }
    if let Some(level) = &settings.log_level {
        crate::logging::parse_filter(level)?;
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// What a running server needs to reload its config file: where it is, the flags it
/// was started with (which win over the file), and the settings in force.
pub struct Reload {
    data: PathBuf,
    file: Option<PathBuf>,
    flags: ServerSettings,
    state: Mutex<State>,
}

struct State {
    now: ServerSettings,
    /// Keys changed in the file that only a restart applies.
    pending: BTreeSet<String>,
}

/// What a reload did (`POST /config/reload` on the management socket).
#[derive(Serialize)]
pub struct Reloaded {
    pub file: PathBuf,
    pub applied: Vec<String>,
    pub restart_needed: Vec<String>,
    /// Keys the file changes but a start flag sets.
    pub shadowed: Vec<String>,
}

impl Reload {
    pub fn new(
        data: PathBuf,
        file: Option<PathBuf>,
        flags: ServerSettings,
        now: ServerSettings,
    ) -> std::sync::Arc<Reload> {
        std::sync::Arc::new(Reload {
            data,
            file,
            flags,
            state: Mutex::new(State {
                now,
                pending: BTreeSet::new(),
            }),
        })
    }

    /// Read the file again and apply what changed that can change live.
    pub fn reload(&self, live: &s3d::Live) -> Result<Reloaded> {
        let next = self.flags.merged(self.file.as_deref(), &self.data)?;
        check(&next)?;
        let file_only = ServerSettings::default().merged(self.file.as_deref(), &self.data)?;
        let mut state = self.state.lock().unwrap();
        let (before, after, flags, file) = (
            table(&state.now)?,
            table(&next)?,
            table(&self.flags)?,
            table(&file_only)?,
        );
        let mut out = Reloaded {
            file: self
                .file
                .clone()
                .unwrap_or_else(|| self.data.join("server.toml")),
            applied: Vec::new(),
            restart_needed: Vec::new(),
            shadowed: Vec::new(),
        };
        for (key, _) in keys() {
            if flags.get(&key).is_some_and(is_set) && file.get(&key) != flags.get(&key) {
                out.shadowed.push(key.clone());
            }
            if before.get(&key) == after.get(&key) {
                continue;
            }
            if LIVE.contains(&key.as_str()) {
                out.applied.push(key);
            } else {
                state.pending.insert(key);
            }
        }
        if out.applied.iter().any(|k| k.starts_with("ldap-")) {
            live.set_ldap(next.ldap()?);
        }
        for key in &out.applied {
            match key.as_str() {
                "log-level" => {
                    crate::logging::set_filter(next.log_level.as_deref().unwrap_or("info,s3s=off"))?
                }
                "trusted-proxy" => live.set_trusted_proxies(next.trusted_proxy.clone()),
                "metrics-public" => live.metrics().set_public(next.metrics_public),
                "lifecycle-interval-secs" => live.set_lifecycle_interval(next.lifecycle_interval()),
                _ => {}
            }
        }
        if !out.applied.is_empty() {
            tracing::info!(keys = ?out.applied, "server settings changed");
        }
        out.restart_needed = state.pending.iter().cloned().collect();
        state.now = next;
        Ok(out)
    }
}

/// Settings as a TOML table, one entry per key that has a value.
fn table(s: &ServerSettings) -> Result<toml::Table> {
    Ok(toml::Table::try_from(s)?)
}

/// Whether a flag's value says something (false switches and empty lists do not).
fn is_set(v: &toml::Value) -> bool {
    match v {
        toml::Value::Boolean(b) => *b,
        toml::Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_the_flags_parsers() {
        let item = parsed("trusted-proxy", "10.0.0.1,10.0.0.2")
            .unwrap()
            .unwrap();
        assert_eq!(item.to_string().trim(), r#"["10.0.0.1", "10.0.0.2"]"#);
        let item = parsed("lifecycle-interval-secs", "30").unwrap().unwrap();
        assert_eq!(item.as_integer(), Some(30));
        assert!(parsed("metrics-public", "false").unwrap().is_none());
        assert!(parsed("metrics-public", "true")
            .unwrap()
            .unwrap()
            .as_bool()
            .unwrap());
        for (key, bad) in [
            ("trusted-proxy", "not-an-ip"),
            ("lifecycle-interval-secs", "0"),
            ("audit", "maybe"),
            ("metrics-public", "2"),
            ("no-such-key", "1"),
        ] {
            assert!(parsed(key, bad).is_err(), "{key} = {bad}");
        }
    }

    #[test]
    fn a_flag_shadows_the_file_and_only_live_keys_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "# kept\nlifecycle-day-secs = 10\n").unwrap();
        let flags = ServerSettings {
            trusted_proxy: vec!["10.9.9.9".parse().unwrap()],
            ..Default::default()
        };
        let now = flags.merged(None, dir.path()).unwrap();
        let reload = Reload::new(dir.path().to_path_buf(), None, flags, now);
        let live = s3d::Live::default();
        std::fs::write(
            &file,
            "# kept\nlifecycle-day-secs = 20\nmetrics-public = true\ntrusted-proxy = [\"10.1.1.1\"]\n",
        )
        .unwrap();
        let r = reload.reload(&live).unwrap();
        assert_eq!(r.applied, ["metrics-public"]);
        assert_eq!(r.restart_needed, ["lifecycle-day-secs"]);
        assert_eq!(r.shadowed, ["trusted-proxy"]);
        assert_eq!(*live.trusted_proxies(), Vec::<std::net::IpAddr>::new());
    }
}
