//! HTTPS for the tests: the SDK's HTTP client trusting a test CA (and nothing else), and
//! a small blocking TLS client that shows which certificate the server serves and keeps
//! one keep-alive connection open across requests.

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The SDK's default HTTPS client, trusting only the CA in `ca` (PEM).
pub fn sdk_http_client(ca: &Path) -> SharedHttpClient {
    let pem = std::fs::read(ca).expect("read the CA file");
    let roots = TrustStore::empty().with_pem_certificate(pem);
    let context = TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .expect("TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// A status and a body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// One TLS connection to `127.0.0.1:port`, trusting only `ca`.
pub struct Conn {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl Conn {
    /// Connect and finish the handshake (an error if the server's certificate is not
    /// signed by `ca` or does not name 127.0.0.1).
    pub fn open(port: u16, ca: &Path) -> std::io::Result<Conn> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(std::io::Error::other)? {
            roots
                .add(cert.map_err(std::io::Error::other)?)
                .map_err(std::io::Error::other)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").expect("an IP server name");
        let mut tls =
            ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        Ok(Conn {
            stream: BufReader::new(StreamOwned::new(tls, tcp)),
        })
    }

    /// The certificate the server presented (DER).
    pub fn server_cert(&self) -> Vec<u8> {
        let certs = self.stream.get_ref().conn.peer_certificates();
        certs
            .and_then(|c| c.first())
            .expect("a server certificate")
            .to_vec()
    }

    /// `GET path` on this connection, keeping it open.
    pub fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        write!(
            self.stream.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )?;
        self.stream.get_mut().flush()?;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.trim().parse().unwrap_or(0));
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body)?;
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `GET path` over a new TLS connection; `None` if it cannot be made.
pub fn get(port: u16, ca: &Path, path: &str) -> Option<Reply> {
    Conn::open(port, ca).ok()?.get(path).ok()
}
