//! Temporary credentials from an S3 endpoint's STS: a directory login through
//! `AssumeRoleWithLDAPIdentity` (as served by cybs3 and MinIO).

use crate::error::{Error, Result};
use crate::xml::text;
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// What a login yields.
#[derive(Clone, Debug)]
pub struct TempCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expires_unix: u64,
}

impl TempCredentials {
    /// As the SDK takes them, expiry included, so its cache asks for new ones in time.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key,
            &self.secret_key,
            Some(self.session_token.clone()),
            Some(UNIX_EPOCH + Duration::from_secs(self.expires_unix)),
            "cybs3-login",
        )
    }
}

/// Credentials from a directory login that log in again, as the same user and for as
/// long, when the session runs out: for processes that outlive a session (a mount, a long
/// sync). The SDK asks for them again shortly before they expire.
#[derive(Clone)]
pub struct Relogin(Arc<ReloginState>);

struct ReloginState {
    endpoint: String,
    username: String,
    password: Zeroizing<String>,
    duration: Option<u64>,
    /// A CA trusted for an https endpoint besides the system's.
    ca_file: Option<PathBuf>,
    /// The session held when this was made, used first.
    held: Mutex<Option<TempCredentials>>,
}

impl Relogin {
    pub fn new(
        endpoint: &str,
        username: &str,
        password: &str,
        duration: Option<u64>,
        ca_file: Option<PathBuf>,
        held: Option<TempCredentials>,
    ) -> Relogin {
        Relogin(Arc::new(ReloginState {
            endpoint: endpoint.to_string(),
            username: username.to_string(),
            password: Zeroizing::new(password.to_string()),
            duration,
            ca_file,
            held: Mutex::new(held),
        }))
    }

    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let s = &self.0;
        let held = s.held.lock().unwrap().take();
        let now = SystemTime::now();
        if let Some(c) = held.filter(|c| UNIX_EPOCH + Duration::from_secs(c.expires_unix) > now) {
            return Ok(c.credentials());
        }
        let fresh = ldap_login(
            &s.endpoint,
            s.ca_file.as_deref(),
            &s.username,
            &s.password,
            s.duration,
        )
        .await
        .map_err(|e| {
            tracing::error!("logging in again as {} failed: {e:#}", s.username);
            CredentialsError::provider_error(Box::<dyn std::error::Error + Send + Sync>::from(e))
        })?;
        tracing::info!("logged in again as {} for a new session", s.username);
        Ok(fresh.credentials())
    }
}

impl std::fmt::Debug for Relogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relogin({} at {})", self.0.username, self.0.endpoint)
    }
}

impl ProvideCredentials for Relogin {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// Log in as `username` at `endpoint` (https trusting `ca_file` too, or http) and get
/// credentials for `duration` seconds (the server's default when `None`).
pub async fn ldap_login(
    endpoint: &str,
    ca_file: Option<&Path>,
    username: &str,
    password: &str,
    duration: Option<u64>,
) -> Result<TempCredentials> {
    let mut form = format!(
        "Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15&LDAPUsername={}&LDAPPassword={}",
        encode(username),
        encode(password)
    );
    if let Some(d) = duration {
        form.push_str(&format!("&DurationSeconds={d}"));
    }
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(30), post(endpoint, ca_file, form))
            .await
            .map_err(|_| {
                Error::Transport(format!("{endpoint} did not answer the login within 30 s"))
            })??;
    if !status.is_success() {
        let code = text(&body, "Code").unwrap_or_else(|| status.to_string());
        let message = text(&body, "Message").unwrap_or_default();
        let refused = format!("login refused by {endpoint}: {message} ({code})");
        return Err(match status.as_u16() {
            401 | 403 => Error::AccessDenied(refused),
            _ => Error::Transport(refused),
        });
    }
    let malformed = |what: String| Error::Transport(format!("the login answer has {what}"));
    let field = |name: &str| text(&body, name).ok_or_else(|| malformed(format!("no {name}")));
    Ok(TempCredentials {
        access_key: field("AccessKeyId")?,
        secret_key: field("SecretAccessKey")?,
        session_token: field("SessionToken")?,
        expires_unix: parse_iso8601(&field("Expiration")?)
            .ok_or_else(|| malformed("a bad Expiration".into()))?,
    })
}

async fn post(
    endpoint: &str,
    ca_file: Option<&Path>,
    form: String,
) -> Result<(hyper::StatusCode, String)> {
    let (authority, port) = match endpoint.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some(("https", rest)) => (rest, 443),
        _ => {
            return Err(Error::invalid(format!(
                "login needs an http:// or https:// endpoint (got {endpoint})"
            )))
        }
    };
    let authority = authority.trim_end_matches('/');
    let (host, address) = match authority.rsplit_once(':') {
        Some((host, p)) if !authority.ends_with(']') && p.parse::<u16>().is_ok() => {
            (host, authority.to_string())
        }
        _ => (authority, format!("{authority}:{port}")),
    };
    let stream = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| Error::Transport(format!("cannot reach {endpoint}: {e}")))?;
    let form = Full::new(Bytes::from(form));
    if port == 443 {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = crate::tls::connect(stream, host, ca_file).await?;
        exchange(TokioIo::new(stream), endpoint, authority, form).await
    } else {
        exchange(TokioIo::new(stream), endpoint, authority, form).await
    }
}

/// One form POST on a fresh connection: the status and the body.
async fn exchange<I>(
    io: I,
    endpoint: &str,
    authority: &str,
    form: Full<Bytes>,
) -> Result<(hyper::StatusCode, String)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("host", authority)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .map_err(|e| Error::invalid(format!("cannot log in at {endpoint}: {e}")))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Form encoding: everything but unreserved characters as %XX.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::UNRESERVED).to_string()
}

/// `2026-11-22T03:04:05Z` (RFC 3339, fractions allowed) as Unix seconds.
fn parse_iso8601(s: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_iso8601("2026-11-22T03:04:05.123Z"),
            Some(1_795_316_645)
        );
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(encode("a b&c=d+é"), "a%20b%26c%3Dd%2B%C3%A9");
    }
}
