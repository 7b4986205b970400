//! `cybs3 server cert`: a local certificate authority and a server certificate it
//! signs, under `<data>/tls/`, so that HTTPS is one command. `server start` serves
//! them when no `--tls-*` flag says otherwise; clients trust the CA (`ca.crt`).
//!
//! The CA is made once and kept: issuing again (new names, renewal) signs a new server
//! certificate with the same CA, so clients that trust it keep working.

use crate::server::store_dir;
use crate::storedir::write_file;
use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// How long the local CA is valid; server certificates are renewed well within it.
const CA_DAYS: i64 = 3650;
/// Certificates start an hour back, for clients whose clock is a little behind.
const SKEW: Duration = Duration::hours(1);

#[derive(clap::Args, Debug)]
pub struct CertArgs {
    /// Data directory of the store (the files go to DATA/tls/)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A DNS name or IP address clients use to reach the server; repeatable
    /// [default: localhost and 127.0.0.1]
    #[arg(long = "name", value_name = "DNS-or-IP")]
    pub names: Vec<String>,
    /// Days the server certificate is valid
    #[arg(long, value_name = "N", default_value_t = 397, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// The files of `<data>/tls/`.
pub struct TlsDir {
    root: PathBuf,
}

impl TlsDir {
    pub fn new(root: PathBuf) -> TlsDir {
        TlsDir { root }
    }

    /// The CA certificate clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// The server's pair, as `server start` serves it.
    pub fn files(&self) -> s3d::TlsFiles {
        s3d::TlsFiles {
            cert: self.root.join("server.crt"),
            key: self.root.join("server.key"),
        }
    }

    /// Whether `server cert` made a server pair here.
    pub fn present(&self) -> bool {
        let f = self.files();
        f.cert.exists() && f.key.exists()
    }
}

/// What [`issue`] did.
pub struct Issued {
    pub ca_created: bool,
    pub names: Vec<String>,
    pub not_after: OffsetDateTime,
}

pub fn run(args: CertArgs) -> Result<()> {
    let dir = store_dir(args.data);
    dir.create()?;
    let names = if args.names.is_empty() {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    } else {
        args.names
    };
    let tls = dir.tls();
    let issued = issue(&tls, &names, args.days)?;
    let running = dir.running()?;
    // Only a TLS server has a SIGHUP handler; the signal would end a plain one.
    let reloaded = match &running {
        Some(rt) if rt.tls => {
            // SAFETY: a plain signal to the server pid recorded in server.json.
            (unsafe { libc::kill(rt.pid as libc::pid_t, libc::SIGHUP) } == 0).then_some(rt.pid)
        }
        _ => None,
    };
    let files = tls.files();
    let ca = tls.ca_cert();
    let not_after = issued.not_after.date().to_string();
    if args.json {
        let out = serde_json::json!({
            "ca_cert": ca,
            "ca_created": issued.ca_created,
            "cert": files.cert,
            "key": files.key,
            "names": issued.names,
            "not_after": not_after,
            "reloaded_pid": reloaded,
        });
        println!("{out}");
        return Ok(());
    }
    let ca_line = if issued.ca_created {
        "made a local CA"
    } else {
        "signed by the local CA"
    };
    println!(
        "{ca_line}: {} (its key stays in ca.key, 0600)",
        ca.display()
    );
    println!(
        "server certificate: {} and {}, for {}, valid until {not_after}",
        files.cert.display(),
        files.key.display(),
        issued.names.join(", ")
    );
    match (&running, reloaded) {
        (_, Some(pid)) => println!("the running server (pid {pid}) serves it now (SIGHUP)"),
        (Some(rt), None) => println!(
            "the server (pid {}) runs plain HTTP: restart it (`cybs3 server stop`, then `cybs3 server start`) to serve HTTPS",
            rt.pid
        ),
        (None, _) => println!("`cybs3 server start` serves HTTPS with it"),
    }
    let endpoint = match &running {
        Some(rt) => format!("https://{}", rt.address),
        None => "https://127.0.0.1:9000".to_string(),
    };
    let ca = ca.display();
    println!("Clients trust the CA:");
    println!("  cybs3:  cybs3 vaults add NAME --endpoint {endpoint} --ca-file {ca} …");
    println!("  aws:    AWS_CA_BUNDLE={ca} aws --endpoint-url {endpoint} s3 ls");
    println!("  rclone: --ca-cert {ca}   s3cmd: --ssl --ca-certs={ca}   curl: --cacert {ca}");
    Ok(())
}

/// Sign a server certificate for `names`, valid `days`, with the CA of `tls` (made
/// first if there is none), and write it and its key (0600).
pub fn issue(tls: &TlsDir, names: &[String], days: u32) -> Result<Issued> {
    let Some(first) = names.first() else {
        bail!("a certificate needs at least one --name");
    };
    for name in names {
        check_name(name)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tls.root)
        .with_context(|| format!("cannot create {}", tls.root.display()))?;
    let now = OffsetDateTime::now_utc();
    let (ca_key, ca_created) = if tls.ca_cert().exists() && tls.ca_key().exists() {
        let pem = std::fs::read_to_string(tls.ca_key())
            .with_context(|| format!("cannot read {}", tls.ca_key().display()))?;
        let key = KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "{} is not a private key; move the tls directory away to make a new CA",
                tls.ca_key().display()
            )
        })?;
        (key, false)
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        params.not_before = now - SKEW;
        params.not_after = now + Duration::days(CA_DAYS);
        let cert = params.self_signed(&key)?;
        write_file(&tls.ca_key(), key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&tls.ca_cert(), cert.pem().as_bytes(), 0o644)?;
        (key, true)
    };
    // The issuer is the CA's name and key: the name is fixed, so a kept CA signs alike.
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, first.as_str());
    params.not_before = now - SKEW;
    params.not_after = now + Duration::days(i64::from(days));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    let files = tls.files();
    // The key first: a server reloading between the two writes then fails to match
    // them and keeps serving its old pair, instead of serving a mismatched one.
    write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(Issued {
        ca_created,
        names: names.to_vec(),
        not_after: params.not_after,
    })
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cybs3");
    dn.push(DnType::CommonName, "cybs3 local CA");
    params.distinguished_name = dn;
    // It signs server certificates only, never other CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A name goes into the certificate as an IP address or a DNS name (`*.` allowed first).
fn check_name(name: &str) -> Result<()> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !host.split('.').all(label_ok) {
        bail!("--name {name:?} is neither a DNS name nor an IP address; give e.g. --name nas.local or --name 192.168.1.10");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_names_or_addresses() {
        for good in [
            "localhost",
            "nas.local",
            "*.s3.example",
            "10.0.0.1",
            "::1",
            "a-b.c",
        ] {
            check_name(good).unwrap();
        }
        for bad in ["", "a b", "-x", "x-", "a..b", "*", "http://x", "a_b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_kept_ca_signs_again_and_keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsDir::new(dir.path().join("tls"));
        let first = issue(&tls, &["localhost".into()], 30).unwrap();
        assert!(first.ca_created && tls.present());
        let ca = std::fs::read(tls.ca_cert()).unwrap();
        let cert = std::fs::read(tls.files().cert).unwrap();
        let again = issue(&tls, &["nas.local".into(), "10.1.2.3".into()], 30).unwrap();
        assert!(!again.ca_created);
        assert_eq!(std::fs::read(tls.ca_cert()).unwrap(), ca, "the CA is kept");
        assert_ne!(std::fs::read(tls.files().cert).unwrap(), cert);
        for key in [tls.ca_key(), tls.files().key] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
}
