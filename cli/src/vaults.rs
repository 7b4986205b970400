//! `cybs3 vaults …`: named targets (endpoint, bucket, prefix, credentials, encrypted or
//! not), the active one, and `vaults local`, which sets everything up in one command.

use crate::location::{new_passphrase, passphrase};
use crate::server::{self, store_dir, StartArgs};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use vault::config::{normalize_prefix, validate_name, Config, VaultConfig};
use vault::crypto::keys::wrap_for;
use vault::crypto::{Recipient, VaultKeys};
use vault::keystore;

#[derive(clap::Subcommand, Debug)]
pub enum VaultsCmd {
    /// One command to a working encrypted vault on this machine: starts the local server
    /// (if needed), creates a bucket, its access key and an encrypted vault, and makes it
    /// active. Running it again changes nothing.
    Local {
        /// Name of the vault (and of its bucket, `cybs3-NAME`)
        #[arg(long, default_value = "local")]
        name: String,
        /// Port of the local server (on 127.0.0.1)
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// Protect the new identity with a passphrase (CYBS3_PASSPHRASE or a prompt)
        #[arg(long)]
        passphrase: bool,
        /// Serve HTTPS: make a local CA and certificate (`cybs3 server cert`) if there is
        /// none, start the server with it, and trust the CA in the vault
        #[arg(long)]
        tls: bool,
        #[command(flatten)]
        sse: SseArgs,
    },
    /// Add a vault on any S3 endpoint (encrypted unless --plain)
    Add {
        name: String,
        /// S3 endpoint URL, e.g. http://nas:9000 or https://s3.amazonaws.com; repeat it
        /// for the sites of a group (`cybs3 admin site add`): each request goes to the
        /// healthy one with the lowest latency, and fails over to another
        #[arg(long, required = true)]
        endpoint: Vec<String>,
        #[arg(long)]
        bucket: String,
        /// Key prefix inside the bucket
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value = vault::client::DEFAULT_REGION)]
        region: String,
        /// Access key (default: AWS_ACCESS_KEY_ID; leave both out to use `cybs3 login`)
        #[arg(
            long,
            env = "AWS_ACCESS_KEY_ID",
            hide_env_values = true,
            requires = "secret_key"
        )]
        access_key: Option<String>,
        /// Secret key (default: AWS_SECRET_ACCESS_KEY)
        #[arg(
            long,
            env = "AWS_SECRET_ACCESS_KEY",
            hide_env_values = true,
            requires = "access_key"
        )]
        secret_key: Option<String>,
        /// Store objects as they are, unencrypted (a general S3 client)
        #[arg(long)]
        plain: bool,
        /// Protect a new identity with a passphrase (CYBS3_PASSPHRASE or a prompt)
        #[arg(long, conflicts_with = "plain")]
        passphrase: bool,
        /// Trust this CA certificate (PEM) for the https endpoint, besides the system's
        /// (e.g. DATA/tls/ca.crt from `cybs3 server cert`)
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        #[command(flatten)]
        sse: SseArgs,
    },
    /// List vaults (the active one marked *)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one vault's settings, credentials included
    Show {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Make a vault the active one (used by `:path` and by default)
    Use { name: String },
    /// Forget a vault (its objects and its identity file stay)
    Remove { name: String },
    /// Give another person access: wrap the vault identity to their age recipient and
    /// store it in the bucket, where `cybs3 keys import` finds it
    Share {
        name: String,
        /// Their public key, `age1…` (from `age-keygen -y` or `cybs3 keys recipient`)
        #[arg(long)]
        recipient: String,
    },
    /// Start a new identity for new writes; old objects stay readable with the old ones
    Rotate { name: String },
    /// Bind every file of an encrypted vault to its path, then refuse unbound files.
    /// Files are bound when written since cybs3 0.1 (a swapped or rolled-back file is then
    /// an error on read); run this once for a vault written before, or holding files put
    /// there by the plain `age` tool. Files bound to another path are listed, not touched.
    Rebind {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// Server-side encryption the vault asks the server for on every upload.
#[derive(clap::Args, Debug)]
pub struct SseArgs {
    /// Have the server encrypt every upload too: AES256 (SSE-S3) or aws:kms (SSE-KMS);
    /// with an encrypted vault, its objects are then encrypted twice
    #[arg(long, value_name = "ALGORITHM", value_parser = ["AES256", "aws:kms"])]
    sse: Option<String>,
    /// The server's KMS key for --sse aws:kms (`cybs3 admin kms key create NAME`)
    #[arg(long, value_name = "NAME", requires = "sse")]
    sse_kms_key: Option<String>,
}

impl SseArgs {
    fn sse(self) -> Result<Option<vault::sse::Sse>> {
        self.sse
            .map(|a| vault::sse::Sse::new(&a, self.sse_kms_key).map_err(anyhow::Error::msg))
            .transpose()
    }
}

pub fn run(cmd: VaultsCmd) -> Result<()> {
    match cmd {
        VaultsCmd::Local {
            name,
            port,
            passphrase,
            tls,
            sse,
        } => local(&name, port, passphrase, tls, sse.sse()?),
        VaultsCmd::Add {
            name,
            endpoint,
            bucket,
            prefix,
            region,
            access_key,
            secret_key,
            plain,
            passphrase,
            ca_file,
            sse,
        } => {
            let endpoints: Vec<String> = (endpoint.iter())
                .map(|e| e.trim_end_matches('/').to_string())
                .collect();
            let ca_file = ca_file.map(|f| trusted_ca(&endpoints[0], &f)).transpose()?;
            let sse = sse.sse()?;
            let cfg = VaultConfig {
                endpoint: endpoints[0].clone(),
                endpoints: match endpoints.len() {
                    1 => Vec::new(),
                    _ => endpoints.clone(),
                },
                bucket,
                prefix: normalize_prefix(&prefix),
                region,
                access_key: access_key.unwrap_or_default(),
                secret_key: secret_key.unwrap_or_default(),
                encrypted: !plain,
                bound: !plain,
                ca_file,
                sse,
                ..VaultConfig::default()
            };
            let what = format!(
                "{} vault {name:?}: s3://{}/{} at {}",
                if plain { "plain" } else { "encrypted" },
                cfg.bucket,
                cfg.prefix,
                endpoints.join(", ")
            );
            let created = add(&name, cfg, passphrase)?;
            println!("added {what}");
            if let Some(keys) = created {
                crate::keys::print_recovery(&name, &keys);
            }
            Ok(())
        }
        VaultsCmd::List { json } => list(json),
        VaultsCmd::Show { name, json } => show(name.as_deref(), json),
        VaultsCmd::Use { name } => {
            let mut c = Config::load()?;
            c.vault(Some(&name))?;
            c.active = Some(name.clone());
            c.save()?;
            println!("active vault: {name}");
            Ok(())
        }
        VaultsCmd::Remove { name } => {
            let mut c = Config::load()?;
            c.vault(Some(&name))?;
            c.vaults.remove(&name);
            if c.active.as_deref() == Some(name.as_str()) {
                c.active = None;
            }
            c.save()?;
            println!("removed vault {name:?} from the config; its objects are untouched");
            if keystore::exists(&name) {
                println!(
                    "its identity stays at {} (delete it only if no object needs it)",
                    keystore::key_path(&name).display()
                );
            }
            Ok(())
        }
        VaultsCmd::Share { name, recipient } => share(&name, &recipient),
        VaultsCmd::Rebind { name, json } => rebind(&name, json),
        VaultsCmd::Rotate { name } => {
            let mut keys = keystore::load(&name, &passphrase)?;
            let sealed = keystore::is_sealed(&name);
            let r = keys.rotate();
            let p = sealed.then(passphrase).transpose()?;
            keystore::save(&name, &keys, p.as_deref())?;
            println!(
                "vault {name:?} now writes to a new identity ({r}); older objects stay readable."
            );
            println!("Save its recovery phrase: `cybs3 keys show-recovery --vault {name}`.");
            Ok(())
        }
    }
}

/// `vaults rebind`: binds every file, then marks the vault as bound (unbound files are
/// refused from then on). Exits 1 when files bound elsewhere were found.
fn rebind(name: &str, json: bool) -> Result<()> {
    let v = crate::location::open_vault(Some(name))?;
    let report = crate::block_on(v.rebind())?;
    let mut c = Config::load()?;
    if let Some(cfg) = c.vaults.get_mut(name) {
        cfg.bound = true;
        c.save()?;
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "vault {name:?}: {} file(s) bound now, {} already bound; unbound files are refused from now on",
            report.rebound, report.bound
        );
    }
    if !report.foreign.is_empty() {
        bail!(
            "{} file(s) are bound to other paths (swapped or copied in without the vault key), left as they are: {}",
            report.foreign.len(),
            report.foreign.join(", ")
        );
    }
    Ok(())
}

/// Record a vault, creating its identity when it is encrypted and has none yet (returned,
/// so its recovery phrase can be shown once).
fn add(name: &str, cfg: VaultConfig, protect: bool) -> Result<Option<VaultKeys>> {
    validate_name(name)?;
    let mut c = Config::load()?;
    if c.vaults.contains_key(name) {
        bail!("a vault named {name:?} exists; remove it first or pick another name");
    }
    let mut created = None;
    if cfg.encrypted && !keystore::exists(name) {
        let p = protect.then(new_passphrase).transpose()?;
        let keys = VaultKeys::generate();
        keystore::save(name, &keys, p.as_deref())?;
        created = Some(keys);
    }
    c.vaults.insert(name.to_string(), cfg);
    if c.active.is_none() {
        c.active = Some(name.to_string());
    }
    c.save()?;
    Ok(created)
}

/// `--ca-file` checked (an https endpoint, a readable PEM certificate), made absolute
/// so the vault works from any directory.
fn trusted_ca(endpoint: &str, file: &Path) -> Result<PathBuf> {
    if !endpoint.starts_with("https://") {
        bail!("--ca-file is for https:// endpoints; {endpoint} is not one");
    }
    vault::tls::read_ca_file(file)?;
    Ok(std::path::absolute(file)?)
}

fn local(
    name: &str,
    port: u16,
    protect: bool,
    tls: bool,
    sse: Option<vault::sse::Sse>,
) -> Result<()> {
    validate_name(name)?;
    let dir = store_dir(None);
    let (mut did, mut started) = (Vec::new(), false);
    match dir.running()? {
        Some(rt) if rt.address != format!("127.0.0.1:{port}") => bail!(
            "the local server already runs at {}; pass --port {} or stop it with `cybs3 server stop`",
            rt.endpoint(),
            rt.address.rsplit(':').next().unwrap_or("")
        ),
        Some(rt) if tls && !rt.tls => bail!(
            "the local server runs plain HTTP at {}; stop it with `cybs3 server stop` and run this again to restart it with TLS",
            rt.endpoint()
        ),
        Some(_) => {}
        None => {
            let certs = dir.tls();
            if tls && !certs.present() {
                dir.create()?;
                let names = ["localhost".to_string(), "127.0.0.1".to_string()];
                crate::server_cert::issue(&certs, &names, 397)?;
                did.push(format!(
                    "made a local CA and a server certificate ({})",
                    certs.ca_cert().display()
                ));
            }
            server::start(StartArgs {
                data: None,
                drives: None,
                ec: None,
                listen: format!("127.0.0.1:{port}").parse()?,
                region: vault::client::DEFAULT_REGION.into(),
                domains: Vec::new(),
                idle_timeout: server::DEFAULT_IDLE_TIMEOUT,
                max_connections: None,
                detach: true,
                config: None,
                settings: Default::default(),
            })?;
            started = true;
        }
    }
    // What the server serves decides the scheme: it serves HTTPS whenever it has a
    // certificate, --tls or not.
    let rt = dir
        .running()?
        .context("the local server stopped right after starting; see `cybs3 server status`")?;
    let endpoint = rt.endpoint();
    let ca_file = (rt.tls && dir.tls().ca_cert().exists()).then(|| dir.tls().ca_cert());
    if started {
        did.push(format!(
            "started the local server at {endpoint} (data in {})",
            dir.root.display()
        ));
    }
    let config = Config::load()?;
    let mut created = None;
    if let Some(v) = config.vaults.get(name) {
        if v.endpoint != endpoint {
            bail!(
                "vault {name:?} exists with endpoint {}; pick another --name",
                v.endpoint
            );
        }
    } else {
        let bucket = bucket_for(name);
        let root = dir
            .credentials()?
            .context("the local server has no root credentials")?;
        let mut target = vault::S3Target::new(&endpoint, &root.access_key, &root.secret_key);
        target.ca_file = ca_file.clone();
        let client = target.client();
        match crate::block_on(client.create_bucket().bucket(&bucket).send()) {
            Ok(_) => did.push(format!("created bucket {bucket}")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot create bucket {bucket}")))
            }
        }
        let key = crate::access::create(None, &bucket)?;
        did.push(format!("created access key {} for it", key.access_key));
        let cfg = VaultConfig {
            endpoint: endpoint.clone(),
            bucket,
            prefix: String::new(),
            region: vault::client::DEFAULT_REGION.into(),
            access_key: key.access_key,
            secret_key: key.secret_key,
            encrypted: true,
            bound: true,
            ca_file,
            sse: sse.clone(),
            ..VaultConfig::default()
        };
        created = add(name, cfg, protect)?;
        did.push(if created.is_none() {
            format!("created encrypted vault {name:?} with its existing identity")
        } else {
            format!(
                "created encrypted vault {name:?} with a new age identity ({})",
                keystore::key_path(name).display()
            )
        });
    }
    let mut config = Config::load()?;
    // Asked again of a vault that exists: its uploads ask the server for it from now on.
    if let Some(v) = config.vaults.get_mut(name) {
        if sse.is_some() && v.sse != sse {
            v.sse = sse.clone();
            config.save()?;
            did.push(format!(
                "vault {name:?} now asks the server to encrypt its uploads too"
            ));
        }
    }
    if config.active.as_deref() != Some(name) {
        config.active = Some(name.to_string());
        config.save()?;
        did.push(format!("made {name:?} the active vault"));
    }
    if did.is_empty() {
        println!("vault {name:?} is ready at {endpoint}; nothing to do.");
    } else {
        for d in &did {
            println!("{d}");
        }
        if let Some(keys) = &created {
            crate::keys::print_recovery(name, keys);
        }
        println!("Try: cybs3 cp FILE :  ·  cybs3 ls :  ·  cybs3 test");
    }
    Ok(())
}

/// A valid bucket name for a vault name.
fn bucket_for(name: &str) -> String {
    let clean: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("cybs3-{}", clean.trim_matches('-'))
        .chars()
        .take(63)
        .collect()
}

fn list(json: bool) -> Result<()> {
    let c = Config::load()?;
    if json {
        let v: Vec<_> = c
            .vaults
            .iter()
            .map(|(n, v)| vault_json(n, v, c.active.as_deref() == Some(n)))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    if c.vaults.is_empty() {
        println!("no vaults yet; `cybs3 vaults local` creates one");
    }
    for (n, v) in &c.vaults {
        let mark = if c.active.as_deref() == Some(n) {
            "*"
        } else {
            " "
        };
        let kind = if v.encrypted { "encrypted" } else { "plain" };
        let at = match v.endpoints.is_empty() {
            true => v.endpoint.clone(),
            false => v.endpoints.join(", "),
        };
        println!(
            "{mark} {n:<16} {kind:<9} s3://{}/{} at {at}",
            v.bucket, v.prefix
        );
    }
    Ok(())
}

fn vault_json(name: &str, v: &VaultConfig, active: bool) -> serde_json::Value {
    json!({
        "name": name,
        "endpoint": v.endpoint,
        "endpoints": if v.endpoints.is_empty() { vec![v.endpoint.clone()] } else { v.endpoints.clone() },
        "bucket": v.bucket,
        "prefix": v.prefix,
        "region": v.region,
        "access_key": v.access_key,
        "secret_key": v.secret_key,
        "encrypted": v.encrypted,
        "active": active,
        "identity": v.encrypted.then(|| keystore::key_path(name).display().to_string()),
        "ca_file": v.ca_file,
        "sse": v.sse,
    })
}

fn show(name: Option<&str>, json: bool) -> Result<()> {
    let c = Config::load()?;
    let (name, v) = c.vault(name)?;
    let j = vault_json(&name, &v, c.active.as_deref() == Some(name.as_str()));
    if json {
        println!("{j}");
    } else {
        for (k, val) in j.as_object().expect("an object") {
            let val = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{k:<11} {val}");
        }
    }
    Ok(())
}

/// Where a member's wrapped copy of the vault identity lives in the bucket.
pub fn share_key(cfg: &VaultConfig, recipient: &Recipient) -> String {
    format!("{}.cybs3/shares/{recipient}.age", cfg.prefix)
}

fn share(name: &str, recipient: &str) -> Result<()> {
    let (name, cfg) = Config::load()?.vault(Some(name))?;
    if !cfg.encrypted {
        bail!("vault {name:?} is plain: share its credentials instead");
    }
    let recipient: Recipient = recipient
        .parse()
        .context("the recipient must be an age public key (age1…)")?;
    let keys = keystore::load(&name, &passphrase)?;
    let wrapped = wrap_for(keys.to_identity_file().as_bytes(), &recipient);
    let key = share_key(&cfg, &recipient);
    crate::block_on(
        cfg.target()
            .client()
            .put_object()
            .bucket(&cfg.bucket)
            .key(&key)
            .body(wrapped.into())
            .send(),
    )
    .with_context(|| format!("cannot store the share in s3://{}/{key}", cfg.bucket))?;
    println!("shared vault {name:?} with {recipient}.");
    println!(
        "They run: cybs3 vaults add {name} --endpoint {} --bucket {}{} --access-key … --secret-key … \
         && cybs3 keys import --vault {name} --identity THEIR-IDENTITY-FILE",
        cfg.endpoint,
        cfg.bucket,
        if cfg.prefix.is_empty() { String::new() } else { format!(" --prefix {}", cfg.prefix) }
    );
    Ok(())
}
