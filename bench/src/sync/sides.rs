//! The two vaults `cybs3 bench sync` compares: the encrypted one and a plain one (named,
//! or made for the run), how a child `cybs3 sync` reaches each, and a probe that both
//! answer before anything is timed.

use super::*;

/// One vault of the comparison: how to run `cybs3 sync` with it, and where its bench
/// objects are stored.
pub(super) struct Side {
    /// "encrypted" or "plain".
    pub(super) kind: &'static str,
    pub(super) vault: String,
    /// `CYBS3_HOME` for the child when it is not ours (the temporary plain vault).
    pub(super) home: Option<PathBuf>,
    /// For a passphrase-sealed identity: asked once here, handed to every child.
    pub(super) passphrase: Option<String>,
    pub(super) client: Client,
    pub(super) cfg: VaultConfig,
    /// Key prefix of the bench directory in the bucket, ending in '/'.
    pub(super) keys: String,
}

impl Side {
    pub(super) fn remote(&self, dir: &str, what: &str) -> String {
        format!("{}:{dir}/{what}", self.vault)
    }
}

/// The encrypted vault and the plain one (named, or a temporary one in its own
/// `CYBS3_HOME` under `tmp`, so the user's config is never rewritten).
pub(super) fn sides(
    args: &SyncBenchArgs,
    cli: &dyn Cli,
    dir: &str,
    tmp: &Path,
) -> Result<(Side, Side)> {
    let config = Config::load()?;
    let (name, cfg) = config.vault(args.vault.as_deref())?;
    if !cfg.encrypted {
        bail!("vault {name:?} is plain; bench sync needs an encrypted --vault (the plain one is --plain-vault)");
    }
    let passphrase = keystore::is_sealed(&name)
        .then(|| cli.passphrase())
        .transpose()?;
    let keys = keystore::load(&name, &|| {
        passphrase
            .clone()
            .context("the identity asks for a passphrase")
    })?;
    let vault = Vault::open(&name, cfg.clone(), Some(keys))?;
    let enc = Side {
        kind: "encrypted",
        keys: format!("{}/", vault.key_of(dir)?),
        client: vault.client().clone(),
        vault: name,
        home: None,
        passphrase,
        cfg,
    };
    let (name, cfg, home) = match &args.plain_vault {
        Some(name) => {
            let (name, cfg) = config.vault(Some(name))?;
            if cfg.encrypted {
                bail!("vault {name:?} is encrypted; --plain-vault takes a plain one");
            }
            (name, cfg, None)
        }
        None => {
            let cfg = VaultConfig {
                encrypted: false,
                prefix: format!("{}plain/", scratch(&enc.cfg, dir)),
                ..enc.cfg.clone()
            };
            let home = tmp.join("home");
            let name = "bench-plain".to_string();
            write_config(&home, &name, &cfg)?;
            (name, cfg, Some(home))
        }
    };
    let vault = Vault::open(&name, cfg.clone(), None)?;
    let plain = Side {
        kind: "plain",
        keys: format!("{}/", vault.key_of(dir)?),
        client: vault.client().clone(),
        vault: name,
        home,
        passphrase: None,
        cfg,
    };
    Ok((enc, plain))
}

/// A config with the one vault `name`, active, in `home`.
pub(super) fn write_config(home: &Path, name: &str, cfg: &VaultConfig) -> Result<()> {
    // The CLI has no TOML encoder of its own; a JSON string is a valid TOML basic string.
    let s = |v: &str| Value::from(v).to_string();
    let mut text = format!(
        "active = {}\n\n[vaults.{}]\nendpoint = {}\nbucket = {}\nprefix = {}\nregion = {}\naccess_key = {}\nsecret_key = {}\nencrypted = false\n",
        s(name),
        s(name),
        s(&cfg.endpoint),
        s(&cfg.bucket),
        s(&cfg.prefix),
        s(&cfg.region),
        s(&cfg.access_key),
        s(&cfg.secret_key),
    );
    if let Some(token) = &cfg.session_token {
        text.push_str(&format!("session_token = {}\n", s(token)));
    }
    Ok(write_private(&home.join("config.toml"), text.as_bytes())?)
}

/// One quick request, so a server that is down fails the bench in seconds with one line
/// instead of after the SDK's retries.
pub(super) async fn probe(side: &Side) -> Result<()> {
    let quick = Client::from_conf(
        side.client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .build(),
    );
    match quick.head_bucket().bucket(&side.cfg.bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(status) => bail!(
                "vault {:?}: {} answers HTTP {status} for bucket {}",
                side.vault,
                side.cfg.endpoint,
                side.cfg.bucket
            ),
            None => {
                // The innermost cause says it best ("Connection refused", a timeout).
                let mut cause: &dyn std::error::Error = &e;
                while let Some(inner) = cause.source() {
                    cause = inner;
                }
                bail!(
                    "vault {:?}: its endpoint {} does not answer ({cause}); is the server running? (`cybs3 server start --detach`)",
                    side.vault,
                    side.cfg.endpoint
                )
            }
        },
    }
}
