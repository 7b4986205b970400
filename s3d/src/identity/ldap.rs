//! LDAP authentication: check a username and password against a directory
//! server and find the groups the user belongs to, so that groups can be
//! mapped to policies.
//!
//! Two ways to find the user's entry are supported:
//! - direct bind: the DN is built from a template (`uid={user},ou=people,…`);
//! - search: a service account searches `user_base` with `user_filter`, then
//!   the DN found is bound with the user's password.
//!
//! Every value taken from the client is escaped before it reaches a DN
//! (RFC 4514) or a search filter (RFC 4515), so a crafted username cannot
//! widen a search or name a different entry.

use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ldap3::{
    dn_escape, ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchEntry,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The LDAP result code a server returns for a wrong password or an unknown DN.
const RC_INVALID_CREDENTIALS: u32 = 49;
/// Longest username accepted; real directories use far shorter ones, and a
/// bound keeps hostile input out of DNs, filters and logs.
const MAX_USERNAME_LEN: usize = 256;
const DEFAULT_USER_FILTER: &str = "(uid={user})";
const DEFAULT_GROUP_FILTER: &str = "(|(member={dn})(uniqueMember={dn})(memberUid={user}))";
const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// How to reach the directory, find users and map their groups to policies.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Direct-bind mode: DN template with a `{user}` placeholder, e.g.
    /// `uid={user},ou=people,dc=example,dc=org`.
    pub user_dn: Option<String>,
    /// Search mode: the service account that looks users and groups up.
    pub bind_dn: Option<String>,
    /// Search mode: the service account's password.
    pub bind_password: Option<String>,
    /// Search mode: the base DN under which users are searched.
    pub user_base: Option<String>,
    /// Search mode: the filter finding a user, default `(uid={user})`.
    pub user_filter: Option<String>,
    /// Where groups live; `None` disables the group lookup.
    pub group_base: Option<String>,
    /// Filter finding a user's groups; `{dn}` is the user's DN and `{user}`
    /// the username. Default `(|(member={dn})(uniqueMember={dn})(memberUid={user}))`.
    pub group_filter: Option<String>,
    /// `(GROUP, POLICY)` pairs; GROUP matches a group's full DN or its cn,
    /// case-insensitively.
    pub group_policies: Vec<(String, String)>,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub start_tls: bool,
    /// PEM file with the CA certificates trusted for `ldaps://` and StartTLS;
    /// without it the platform's roots are used.
    pub ca_file: Option<std::path::PathBuf>,
    /// Limit, in seconds, on connecting and on each LDAP operation.
    pub timeout_secs: u64,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            user_dn: None,
            bind_dn: None,
            bind_password: None,
            user_base: None,
            user_filter: None,
            group_base: None,
            group_filter: None,
            group_policies: Vec::new(),
            start_tls: false,
            ca_file: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// An authenticated directory user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapIdentity {
    /// The username as given by the client.
    pub username: String,
    /// The DN the user authenticated as.
    pub dn: String,
    /// DNs of the groups the user belongs to, as returned by the server.
    pub groups: Vec<String>,
}

/// Why an authentication did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Wrong password or unknown user; one message for both so that clients
    /// cannot probe which users exist.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Refused before binding: LDAP treats a simple bind with an empty
    /// password as an anonymous bind, which "succeeds".
    #[error("an empty password is not accepted")]
    EmptyPassword,
    /// Empty, too long, with leading or trailing whitespace, or containing
    /// control characters.
    #[error("invalid username")]
    InvalidUsername,
    /// Connection refused, timeout, TLS failure, or any LDAP error other
    /// than invalid credentials.
    #[error("the directory server is unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot work.
    #[error("LDAP configuration: {0}")]
    Config(String),
}

impl From<ldap3::LdapError> for LdapError {
    fn from(e: ldap3::LdapError) -> Self {
        match e {
            ldap3::LdapError::LdapResult { result } if result.rc == RC_INVALID_CREDENTIALS => {
                LdapError::InvalidCredentials
            }
            ldap3::LdapError::LdapResult { result } => {
                LdapError::Unavailable(format!("LDAP result {}: {}", result.rc, result.text))
            }
            other => LdapError::Unavailable(other.to_string()),
        }
    }
}

/// Which way the user's DN is found.
enum Mode<'a> {
    Direct {
        template: &'a str,
    },
    Search {
        bind_dn: &'a str,
        bind_password: &'a str,
        base: &'a str,
        filter: &'a str,
    },
}

impl LdapConfig {
    /// Check that the configuration is usable: URL scheme, exactly one of the
    /// direct-bind and search modes, and placeholders where they are needed.
    pub fn validate(&self) -> Result<(), LdapError> {
        self.validate_transport()?;
        self.mode()?;
        self.validate_groups()
    }

    fn validate_transport(&self) -> Result<(), LdapError> {
        let scheme = match self.url.split_once("://") {
            Some((scheme, rest)) if !rest.is_empty() => scheme.to_ascii_lowercase(),
            _ => {
                return Err(config(
                    "url must look like ldap://host:port or ldaps://host:port",
                ))
            }
        };
        if scheme != "ldap" && scheme != "ldaps" {
            return Err(config("url must start with ldap:// or ldaps://"));
        }
        if scheme == "ldaps" && self.start_tls {
            return Err(config("start_tls cannot be combined with ldaps://"));
        }
        if self.ca_file.is_some() && !self.uses_tls() {
            return Err(config("ca_file needs ldaps:// or start_tls"));
        }
        if self.timeout_secs == 0 {
            return Err(config("timeout_secs must be at least 1"));
        }
        Ok(())
    }

    fn mode(&self) -> Result<Mode<'_>, LdapError> {
        match (&self.user_dn, &self.user_base) {
            (Some(_), Some(_)) => Err(config("set either user_dn or user_base, not both")),
            (Some(template), None) => {
                if self.bind_dn.is_some() || self.bind_password.is_some() {
                    return Err(config(
                        "bind_dn and bind_password are only used with user_base",
                    ));
                }
                if self.user_filter.is_some() {
                    return Err(config("user_filter is only used with user_base"));
                }
                require_placeholder("user_dn", template, &["{user}"])?;
                Ok(Mode::Direct { template })
            }
            (None, Some(base)) => {
                let bind_dn = non_empty("bind_dn", &self.bind_dn)?;
                // An empty password would turn the service bind into an anonymous one.
                let bind_password = non_empty("bind_password", &self.bind_password)?;
                let filter = self.user_filter.as_deref().unwrap_or(DEFAULT_USER_FILTER);
                require_placeholder("user_filter", filter, &["{user}"])?;
                Ok(Mode::Search {
                    bind_dn,
                    bind_password,
                    base,
                    filter,
                })
            }
            (None, None) => Err(config("set user_dn (direct bind) or user_base (search)")),
        }
    }

    fn validate_groups(&self) -> Result<(), LdapError> {
        if self.group_base.is_none() {
            if !self.group_policies.is_empty() {
                return Err(config("group_policies need group_base"));
            }
            return Ok(());
        }
        // A filter naming neither the user nor their DN would match every group.
        require_placeholder("group_filter", self.group_filter(), &["{dn}", "{user}"])?;
        if self
            .group_policies
            .iter()
            .any(|(g, p)| g.is_empty() || p.is_empty())
        {
            return Err(config("group_policies entries need a group and a policy"));
        }
        Ok(())
    }

    fn uses_tls(&self) -> bool {
        self.start_tls || self.url.to_ascii_lowercase().starts_with("ldaps://")
    }

    fn group_filter(&self) -> &str {
        self.group_filter.as_deref().unwrap_or(DEFAULT_GROUP_FILTER)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

fn config(msg: &str) -> LdapError {
    LdapError::Config(msg.to_owned())
}

fn non_empty<'a>(name: &str, value: &'a Option<String>) -> Result<&'a str, LdapError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(LdapError::Config(format!(
            "{name} is required with user_base"
        ))),
    }
}

fn require_placeholder(name: &str, value: &str, any_of: &[&str]) -> Result<(), LdapError> {
    if any_of.iter().any(|p| value.contains(p)) {
        Ok(())
    } else {
        Err(LdapError::Config(format!(
            "{name} must contain {}",
            any_of.join(" or ")
        )))
    }
}

/// Check a username and password against the directory; returns who they
/// are and their groups.
pub async fn authenticate(
    cfg: &LdapConfig,
    username: &str,
    password: &str,
) -> Result<LdapIdentity, LdapError> {
    check_username(username)?;
    if password.is_empty() {
        return Err(LdapError::EmptyPassword);
    }
    cfg.validate()?;
    let mut ldap = connect(cfg).await?;
    let result = authenticate_on(&mut ldap, cfg, username, password).await;
    // The outcome is decided; a failed unbind only means the server dropped us first.
    if let Err(e) = ldap.with_timeout(cfg.timeout()).unbind().await {
        tracing::debug!("LDAP unbind failed: {e}");
    }
    result
}

fn check_username(username: &str) -> Result<(), LdapError> {
    // Directories ignore leading and trailing spaces when matching, so
    // "alice " would log in as alice under a second name.
    if username.is_empty()
        || username.len() > MAX_USERNAME_LEN
        || username.chars().any(char::is_control)
        || username.trim() != username
    {
        return Err(LdapError::InvalidUsername);
    }
    Ok(())
}

async fn connect(cfg: &LdapConfig) -> Result<Ldap, LdapError> {
    // The connect timeout covers TCP, StartTLS and the TLS handshake.
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(cfg.timeout())
        .set_starttls(cfg.start_tls);
    if cfg.uses_tls() {
        settings = settings.set_config(tls_config(cfg.ca_file.as_deref())?);
    }
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &cfg.url).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!("LDAP connection ended: {e}");
        }
    });
    Ok(ldap)
}

/// A verifying client configuration trusting the CAs in `ca_file`, or the
/// platform's roots without one.
///
/// Always built here rather than left to ldap3: its default relies on
/// rustls's process-wide provider, which panics when another dependency
/// also enables aws-lc-rs.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let roots = match ca_file {
        Some(path) => file_roots(path)?,
        None => platform_roots(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn file_roots(path: &Path) -> Result<rustls::RootCertStore, LdapError> {
    let ca_error =
        |e: &dyn std::fmt::Display| LdapError::Config(format!("ca_file {}: {e}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(&e))? {
        roots
            .add(cert.map_err(|e| ca_error(&e))?)
            .map_err(|e| ca_error(&e))?;
    }
    if roots.is_empty() {
        return Err(ca_error(&"no certificates found"));
    }
    Ok(roots)
}

/// The platform's trusted roots, loaded once: reading the system store on
/// every login would be wasted work.
fn platform_roots() -> rustls::RootCertStore {
    static ROOTS: LazyLock<rustls::RootCertStore> = LazyLock::new(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!("loading the platform's CA certificates: {e}");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!("platform CA certificates: {added} loaded, {ignored} unparsable");
        roots
    });
    ROOTS.clone()
}

async fn authenticate_on(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    username: &str,
    password: &str,
) -> Result<LdapIdentity, LdapError> {
    let timeout = cfg.timeout();
    let dn = match cfg.mode()? {
        Mode::Direct { template } => {
            let dn = template.replace("{user}", &dn_escape(username));
            bind(ldap, timeout, &dn, password).await?;
            stored_dn(ldap, timeout, &dn).await?
        }
        Mode::Search {
            bind_dn,
            bind_password,
            base,
            filter,
        } => {
            service_bind(ldap, timeout, bind_dn, bind_password).await?;
            let dn = find_user(ldap, timeout, base, filter, username).await?;
            bind(ldap, timeout, &dn, password).await?;
            // Groups are looked up with the service account's rights, not the user's.
            service_bind(ldap, timeout, bind_dn, bind_password).await?;
            dn
        }
    };
    let groups = match &cfg.group_base {
        Some(base) => find_groups(ldap, cfg, base, &dn, username).await?,
        None => Vec::new(),
    };
    Ok(LdapIdentity {
        username: username.to_owned(),
        dn,
        groups,
    })
}

async fn bind(
    ldap: &mut Ldap,
    timeout: Duration,
    dn: &str,
    password: &str,
) -> Result<(), LdapError> {
    ldap.with_timeout(timeout)
        .simple_bind(dn, password)
        .await?
        .success()?;
    Ok(())
}

/// The entry's DN as the directory stores it: a DN built from the template
/// matches the entry whatever the username's case or spacing (`uid=ALICE`),
/// and the identity should carry the one real DN.
async fn stored_dn(
    ldap: &mut Ldap,
    timeout: Duration,
    bound_dn: &str,
) -> Result<String, LdapError> {
    let result = ldap
        .with_timeout(timeout)
        .search(bound_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await?;
    // A directory may hide an entry from its own user; the bind already proved
    // this DN, so it is the best answer then.
    let dn = result
        .success()
        .ok()
        .and_then(|(entries, _)| entries_dns(entries).pop());
    Ok(dn.unwrap_or_else(|| bound_dn.to_owned()))
}

/// A rejected service account is the server's configuration problem; it must
/// not look like the user typed a wrong password.
async fn service_bind(
    ldap: &mut Ldap,
    timeout: Duration,
    dn: &str,
    password: &str,
) -> Result<(), LdapError> {
    bind(ldap, timeout, dn, password)
        .await
        .map_err(|e| match e {
            LdapError::InvalidCredentials => {
                LdapError::Unavailable("the service account (bind_dn) was rejected".into())
            }
            other => other,
        })
}

async fn search_dns(
    ldap: &mut Ldap,
    timeout: Duration,
    base: &str,
    filter: &str,
) -> Result<Vec<String>, LdapError> {
    // "1.1" asks for no attributes: only the entries' DNs are needed.
    let (entries, _) = ldap
        .with_timeout(timeout)
        .search(base, Scope::Subtree, filter, vec!["1.1"])
        .await?
        .success()?;
    Ok(entries_dns(entries))
}

/// DNs of the entries proper: referrals (common from Active Directory) are
/// not users or groups, and have no DN to bind or match.
fn entries_dns(entries: Vec<ResultEntry>) -> Vec<String> {
    entries
        .into_iter()
        .filter(|e| !e.is_ref() && !e.is_intermediate())
        .map(|e| SearchEntry::construct(e).dn)
        .collect()
}

async fn find_user(
    ldap: &mut Ldap,
    timeout: Duration,
    base: &str,
    filter: &str,
    username: &str,
) -> Result<String, LdapError> {
    let filter = filter.replace("{user}", &ldap_escape(username));
    let mut dns = search_dns(ldap, timeout, base, &filter).await?;
    match dns.len() {
        1 => Ok(dns.remove(0)),
        0 => Err(LdapError::InvalidCredentials),
        n => {
            // Picking one of several entries could log someone in as the wrong user.
            tracing::warn!("LDAP user filter matched {n} entries; refusing the login");
            Err(LdapError::InvalidCredentials)
        }
    }
}

async fn find_groups(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    base: &str,
    dn: &str,
    username: &str,
) -> Result<Vec<String>, LdapError> {
    let filter = fill_group_filter(cfg.group_filter(), dn, username);
    search_dns(ldap, cfg.timeout(), base, &filter).await
}

/// Substitute `{dn}` and `{user}` in one pass, so that a placeholder-like
/// text inside a substituted value is never substituted again.
fn fill_group_filter(template: &str, dn: &str, username: &str) -> String {
    let dn = ldap_escape(dn);
    let user = ldap_escape(username);
    let mut out = String::with_capacity(template.len() + dn.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("{dn}") {
            out.push_str(&dn);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{user}") {
            out.push_str(&user);
            rest = after;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The policy names the identity's groups map to (deduplicated, config order).
pub fn policies_for(cfg: &LdapConfig, id: &LdapIdentity) -> Vec<String> {
    let mut policies: Vec<String> = Vec::new();
    for (group, policy) in &cfg.group_policies {
        let member = id.groups.iter().any(|dn| {
            dn.eq_ignore_ascii_case(group)
                || leading_cn(dn).is_some_and(|cn| cn.eq_ignore_ascii_case(group))
        });
        if member && !policies.contains(policy) {
            policies.push(policy.clone());
        }
    }
    policies
}

/// The unescaped value of a DN's first RDN when that RDN is `cn=…`.
fn leading_cn(dn: &str) -> Option<String> {
    let (attr, value) = dn.split_once('=')?;
    if !attr.trim().eq_ignore_ascii_case("cn") {
        return None;
    }
    let mut bytes = Vec::new();
    let mut rest = value.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        match c {
            // An unescaped ',' ends the RDN, '+' starts another attribute of it.
            b',' | b'+' => break,
            b'\\' => {
                let (byte, tail) = unescape_pair(tail)?;
                bytes.push(byte);
                rest = tail;
            }
            _ => {
                bytes.push(c);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

/// Decode what follows a backslash in a DN: two hex digits or one character.
fn unescape_pair(s: &[u8]) -> Option<(u8, &[u8])> {
    // Checked digit by digit: from_str_radix would also accept a sign ("\\+c").
    let hex = s
        .get(..2)
        .and_then(|h| Some((hex_value(h[0])?, hex_value(h[1])?)));
    if let Some((hi, lo)) = hex {
        return Some((hi << 4 | lo, &s[2..]));
    }
    s.split_first().map(|(&c, tail)| (c, tail))
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(groups: &[&str]) -> LdapIdentity {
        LdapIdentity {
            username: "u".into(),
            dn: "uid=u,dc=x".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn group_filter_escapes_and_substitutes_once() {
        let f = fill_group_filter(
            "(|(member={dn})(memberUid={user}))",
            "uid=a{user},dc=x",
            "*)(x",
        );
        assert_eq!(f, "(|(member=uid=a{user},dc=x)(memberUid=\\2a\\29\\28x))");
    }

    #[test]
    fn leading_cn_unescapes() {
        assert_eq!(leading_cn("cn=a\\2cb\\+c,ou=g").as_deref(), Some("a,b+c"));
        assert_eq!(leading_cn("CN=Readers,ou=g").as_deref(), Some("Readers"));
        assert_eq!(leading_cn("ou=g,dc=x"), None);
    }

    #[test]
    fn policies_deduplicated_in_config_order() {
        let cfg = LdapConfig {
            group_policies: vec![
                ("writers".into(), "rw".into()),
                ("CN=Readers,OU=g".into(), "ro".into()),
                ("readers".into(), "rw".into()),
            ],
            ..Default::default()
        };
        let id = identity(&["cn=readers,ou=g", "cn=writers,ou=g"]);
        assert_eq!(policies_for(&cfg, &id), vec!["rw", "ro"]);
        assert!(policies_for(&cfg, &identity(&["cn=other,ou=g"])).is_empty());
    }

    #[test]
    fn usernames_checked() {
        assert!(check_username("alice").is_ok());
        for bad in ["", "a\0b", "a\nb", " a", "a\t", &"x".repeat(257)] {
            assert!(matches!(
                check_username(bad),
                Err(LdapError::InvalidUsername)
            ));
        }
    }
}
