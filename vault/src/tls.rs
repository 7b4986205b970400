//! Trust for https endpoints beyond the system's CAs: a vault's CA file (`vaults add
//! --ca-file`, e.g. the one `cybs3 server cert` made), for the SDK client and for the
//! login form, which goes over its own connection.

use crate::error::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The CA certificates in `file` (PEM), checked: the SDK's TLS setup panics on bad PEM.
pub fn read_ca_file(file: &Path) -> Result<Vec<u8>> {
    let bad = |why: String| Error::invalid(format!("CA file {}: {why}", file.display()));
    let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(pem)
}

/// A TLS connection over `tcp` to `host` (a DNS name or an IP address), trusting the
/// system's CAs and those in `ca_file`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    ca_file: Option<&Path>,
) -> Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(file) = ca_file {
        let pem = read_ca_file(file)?;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            roots
                .add(cert)
                .map_err(|e| Error::invalid(format!("CA file {}: {e}", file.display())))?;
        }
    }
    // ring explicitly: more than one rustls provider is compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::transport)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| Error::invalid(format!("{host} is not a server name: {e}")))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Transport(format!("TLS with {host} failed: {e}")))
}
