//! HTTPS: the server's certificate and key, loaded from PEM files, served by rustls,
//! and reloaded on SIGHUP.
//!
//! The certificate pair lives behind a lock that every handshake reads, so a reload
//! changes what new connections see while open connections (whose handshake is done)
//! keep going untouched. A reload that fails keeps the pair already served.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate chain and private key are (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate first, then any intermediates.
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {cause}")]
    Cert {
        path: PathBuf,
        cause: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in {0} (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCert(PathBuf),
    #[error("cannot read the TLS private key {path}: {cause}")]
    Key {
        path: PathBuf,
        cause: rustls::pki_types::pem::Error,
    },
    #[error("the TLS key {key} does not fit the certificate {cert}: {cause}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        cause: rustls::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Config(rustls::Error),
}

impl TlsFiles {
    /// Whether the pair loads (both files readable, PEM, the key fitting the
    /// certificate), for a clear error before the server starts.
    pub fn check(&self) -> Result<(), TlsError> {
        read_pair(self, &rustls::crypto::ring::default_provider()).map(drop)
    }
}

/// The certificate pair being served, replaced whole on reload.
#[derive(Debug)]
pub(crate) struct Certs {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certs {
    /// Load the pair (an error if either file is missing, unreadable or they disagree).
    pub(crate) fn load(files: TlsFiles) -> Result<Arc<Certs>, TlsError> {
        // ring explicitly, as for LDAP: more than one rustls provider is compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = read_pair(&files, &provider)?;
        Ok(Arc::new(Certs {
            files,
            provider,
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Read the files again and serve what they hold from the next handshake on.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let pair = read_pair(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// A TLS acceptor (HTTP/1.1 and HTTP/2 through ALPN) that serves the current pair.
    pub(crate) fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reload on every SIGHUP until the process ends; a failed reload is logged and
    /// the old pair stays.
    pub(crate) fn reload_on_hangup(self: Arc<Self>) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match self.reload() {
                    Ok(()) => tracing::info!(
                        cert = %self.files.cert.display(),
                        "SIGHUP: reloaded the TLS certificate"
                    ),
                    Err(e) => tracing::warn!("SIGHUP: {e}; still serving the previous certificate"),
                }
            }
        });
        Ok(())
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_err = |cause| TlsError::Cert {
        path: files.cert.clone(),
        cause,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(cert_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_err)?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|cause| TlsError::Key {
        path: files.key.clone(),
        cause,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|cause| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        cause,
    })
}

/// Whether a directory login (a password in the request) may come from `peer` over
/// this connection: over TLS always; in clear only from this machine (all of
/// 127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address), unless the operator
/// allowed it with `--allow-insecure-login`.
pub(crate) fn login_allowed(secure: bool, peer: std::net::IpAddr, allow_insecure: bool) -> bool {
    secure || allow_insecure || peer.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::login_allowed;
    use std::net::IpAddr;

    #[test]
    fn clear_logins_only_from_this_machine() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(login_allowed(false, ip(local), false), "{local}");
        }
        for remote in [
            "10.0.0.1",
            "192.168.1.5",
            "0.0.0.0",
            "::",
            "fe80::1",
            "::ffff:10.0.0.1",
            "128.0.0.1",
        ] {
            assert!(!login_allowed(false, ip(remote), false), "{remote}");
            assert!(login_allowed(true, ip(remote), false), "{remote} over TLS");
            assert!(
                login_allowed(false, ip(remote), true),
                "{remote} allowed by the operator"
            );
        }
    }
}
