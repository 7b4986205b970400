//! `cybs3 login`: temporary credentials for a vault from a directory login (STS
//! `AssumeRoleWithLDAPIdentity`), stored in the vault's config and renewed by logging
//! in again when they run out.

use anyhow::{bail, Result};
use std::io::IsTerminal;
use vault::config::{Config, VaultConfig};

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The vault to log in for (default: the active one)
    #[arg(long)]
    pub vault: Option<String>,
    /// Directory (LDAP) user name
    #[arg(long)]
    pub username: String,
    /// How long the credentials last, in seconds (default: the server's, 1 hour)
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LoginArgs) -> Result<()> {
    let mut config = Config::load()?;
    let (name, mut cfg) = config.vault(args.vault.as_deref())?;
    let password = password(&args.username)?;
    login(&mut cfg, &args.username, &password, args.duration)?;
    let expires = cfg.session_expires_unix.unwrap_or_default();
    config.vaults.insert(name.clone(), cfg);
    config.save()?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"vault": name, "username": args.username, "expires_unix": expires})
        );
    } else {
        println!(
            "logged in as {} for vault {name}; the credentials last {} minutes",
            args.username,
            expires.saturating_sub(now()) / 60
        );
    }
    Ok(())
}

/// A session with less than this left is renewed before a command uses it.
const RENEW_SECS: u64 = 10;

/// Log in again if the vault's session has run out or is about to.
pub fn refresh(name: &str, cfg: &mut VaultConfig) -> Result<()> {
    let Some(expires) = cfg.session_expires_unix else {
        return Ok(());
    };
    if now() + RENEW_SECS < expires {
        return Ok(());
    }
    let Some(user) = cfg.login_user.clone() else {
        bail!("the credentials of vault {name} have expired; get new ones with `cybs3 login --vault {name} --username USER`");
    };
    let password = password(&user).map_err(|e| {
        e.context(format!(
            "the session of vault {name} has expired (or is about to) and logging in again needs {user}'s password"
        ))
    })?;
    login(cfg, &user, &password, cfg.login_duration)?;
    let mut config = Config::load()?;
    config.vaults.insert(name.to_string(), cfg.clone());
    Ok(config.save()?)
}

fn login(cfg: &mut VaultConfig, user: &str, password: &str, duration: Option<u64>) -> Result<()> {
    let creds = crate::block_on(vault::sts::ldap_login(
        &cfg.endpoint,
        cfg.ca_file.as_deref(),
        user,
        password,
        duration,
    ))?;
    cfg.access_key = creds.access_key;
    cfg.secret_key = creds.secret_key;
    cfg.session_token = Some(creds.session_token);
    cfg.session_expires_unix = Some(creds.expires_unix);
    cfg.login_user = Some(user.to_string());
    cfg.login_duration = duration;
    Ok(())
}

/// Lets the vault's clients log in again by themselves when its session runs out, if the
/// process has the password (`CYBS3_PASSWORD`): a mount or a long sync outlives a session.
pub fn renew_in_process(cfg: &mut VaultConfig) {
    if cfg.login_user.is_some() {
        cfg.login_password = std::env::var("CYBS3_PASSWORD").ok();
    }
}

/// The directory password: `CYBS3_PASSWORD`, else asked on the terminal.
fn password(user: &str) -> Result<String> {
    if let Ok(p) = std::env::var("CYBS3_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("set CYBS3_PASSWORD or run on a terminal to give {user}'s password");
    }
    Ok(rpassword::prompt_password(format!(
        "password for {user}: "
    ))?)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
