//! A throwaway OpenLDAP `slapd` for tests: its own config, database and
//! (optionally) TLS certificates in a temporary directory, listening on free
//! ports on 127.0.0.1, killed when dropped.
//!
//! Needs the Debian packages `slapd` and `ldap-utils` (and `openssl` for the
//! TLS variant). The system slapd is neither used nor touched.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const BASE: &str = "dc=example,dc=org";
const ROOT_PASSWORD: &str = "rootsecret";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running slapd seeded with `ou=people` and `ou=groups`.
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT` (plain; StartTLS-capable with [`Slapd::start_tls`]).
    pub url: String,
    /// The port of `url`.
    pub port: u16,
    /// The suffix, `dc=example,dc=org`.
    pub base: String,
    /// `ldaps://127.0.0.1:PORT2`, only with [`Slapd::start_tls`].
    pub ldaps_url: Option<String>,
    /// PEM file of the CA that signed the server certificate, only with
    /// [`Slapd::start_tls`].
    pub ca_file: Option<PathBuf>,
    dir: TempDir,
    child: Option<Child>,
}

/// A user to create in `ou=people`, member of `groups` (cn values in `ou=groups`).
pub struct LdapUser<'a> {
    pub uid: &'a str,
    pub password: &'a str,
    pub groups: &'a [&'a str],
}

impl Slapd {
    /// Start a slapd on a free port on 127.0.0.1 seeded with `users` and
    /// their groups. Returns once it answers; panics with slapd's output if
    /// it does not within 10 s.
    pub fn start(users: &[LdapUser]) -> Slapd {
        Self::launch(users, false)
    }

    /// Like [`Slapd::start`], with a certificate for `127.0.0.1` signed by a
    /// throwaway CA (see `ca_file`): StartTLS on `url` and TLS on `ldaps_url`.
    pub fn start_tls(users: &[LdapUser]) -> Slapd {
        Self::launch(users, true)
    }

    /// The DN template of users, `uid={user},ou=people,dc=example,dc=org`.
    pub fn user_dn_template(&self) -> String {
        format!("uid={{user}},ou=people,{}", self.base)
    }

    /// Base DN of the users, `ou=people,dc=example,dc=org`.
    pub fn user_base(&self) -> String {
        format!("ou=people,{}", self.base)
    }

    /// Base DN of the groups, `ou=groups,dc=example,dc=org`.
    pub fn group_base(&self) -> String {
        format!("ou=groups,{}", self.base)
    }

    /// DN of the group with this cn.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={cn},{}", self.group_base())
    }

    /// The directory manager's DN, usable as a search-mode service account.
    pub fn root_dn(&self) -> String {
        format!("cn=admin,{}", self.base)
    }

    /// The directory manager's password.
    pub fn root_password(&self) -> String {
        ROOT_PASSWORD.to_owned()
    }

    /// Kill slapd and wait for it to exit; the port stops answering.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Ignored: it fails only if slapd already exited, which is the goal.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn launch(users: &[LdapUser], tls: bool) -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("slapd-")
            .tempdir()
            .expect("create slapd temp dir");
        let port = free_port();
        let ldaps_port = tls.then(free_port);
        let ca_file = tls.then(|| make_certificates(dir.path()));
        let conf = write_config(dir.path(), tls);
        fs::create_dir(dir.path().join("db")).expect("create slapd db dir");
        let seed = dir.path().join("seed.ldif");
        fs::write(&seed, seed_ldif(users)).expect("write seed.ldif");
        run(Command::new(sbin("slapadd"))
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&seed));

        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_url = ldaps_port.map(|p| format!("ldaps://127.0.0.1:{p}"));
        let listen = [Some(&url), ldaps_url.as_ref()]
            .into_iter()
            .flatten()
            .map(|u| format!("{u}/"))
            .collect::<Vec<_>>()
            .join(" ");
        let log = fs::File::create(dir.path().join("slapd.log")).expect("create slapd.log");
        // -d keeps slapd in the foreground, so it is our child and dies with kill().
        let child = Command::new(sbin("slapd"))
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(&listen)
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn slapd (is the slapd package installed?)");
        let mut slapd = Slapd {
            url,
            port,
            base: BASE.to_owned(),
            ldaps_url,
            ca_file,
            dir,
            child: Some(child),
        };
        slapd.wait_ready();
        slapd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.fail(&format!("slapd exited with {status}"));
            }
            if self.answers() {
                return;
            }
            if Instant::now() > deadline {
                self.fail("slapd did not answer within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the listener accepts connections and a bind as the root DN works.
    fn answers(&self) -> bool {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return false;
        }
        Command::new("ldapwhoami")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &self.root_dn(),
                "-w",
                ROOT_PASSWORD,
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn fail(&mut self, why: &str) -> ! {
        self.stop();
        let log = fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
        panic!("{why}; slapd output:\n{log}");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago; the small race with other processes
/// is acceptable for tests.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Debian installs slapd tools in /usr/sbin, which is not on every PATH.
fn sbin(name: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(name)
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn write_config(dir: &Path, tls: bool) -> PathBuf {
    let d = dir.display();
    let mut conf = String::new();
    for schema in ["core", "cosine", "nis", "inetorgperson"] {
        conf += &format!("include /etc/ldap/schema/{schema}.schema\n");
    }
    conf += &format!(
        "pidfile \"{d}/slapd.pid\"\n\
         argsfile \"{d}/slapd.args\"\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n"
    );
    if tls {
        conf += &format!(
            "TLSCACertificateFile \"{d}/ca.pem\"\n\
             TLSCertificateFile \"{d}/server.pem\"\n\
             TLSCertificateKeyFile \"{d}/server.key\"\n"
        );
    }
    // No access lines: slapd's default lets anyone read, which group lookups need.
    conf += &format!(
        "database mdb\n\
         suffix \"{BASE}\"\n\
         rootdn \"cn=admin,{BASE}\"\n\
         rootpw {ROOT_PASSWORD}\n\
         directory \"{d}/db\"\n\
         maxsize 67108864\n"
    );
    let path = dir.join("slapd.conf");
    fs::write(&path, conf).expect("write slapd.conf");
    path
}

/// The base, `ou=people` with the users and `ou=groups` with one
/// groupOfNames per group named by any user.
fn seed_ldif(users: &[LdapUser]) -> String {
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for u in users {
        check_ldif_value(u.uid);
        check_password(u.password);
        // slapd compares a userPassword without {SCHEME} as plain text.
        ldif += &format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {pw}\n\n",
            uid = u.uid,
            pw = u.password
        );
    }
    let mut groups: Vec<&str> = users
        .iter()
        .flat_map(|u| u.groups.iter().copied())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for group in groups {
        check_ldif_value(group);
        ldif +=
            &format!("dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {group}\n");
        for u in users.iter().filter(|u| u.groups.contains(&group)) {
            ldif += &format!("member: uid={},ou=people,{BASE}\n", u.uid);
        }
        ldif += "\n";
    }
    ldif
}

/// A password LDIF takes verbatim: printable ASCII, not starting with a space, `:` or `<`
/// (spaces and form-special characters such as `+&=` inside are fine).
fn check_password(v: &str) {
    assert!(
        !v.is_empty()
            && !v.starts_with([' ', ':', '<'])
            && !v.ends_with(' ')
            && v.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "slapd fixture password {v:?} must be printable ASCII without leading or trailing space"
    );
}

/// Fixture values are words that LDIF and DNs take verbatim; `*` is allowed
/// so tests can create users whose names are filter wildcards.
fn check_ldif_value(v: &str) {
    assert!(
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.*".contains(c)),
        "slapd fixture value {v:?} must be letters, digits and -_.*"
    );
}

/// A CA and a server certificate for 127.0.0.1 / localhost; returns the CA's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "1", "-subj", "/CN=slapd test CA"])
        .args(ec)
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .args(["-keyout", "ca.key", "-out", "ca.pem"])
        .current_dir(dir));
    run(Command::new("openssl")
        .args(["req", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .args(["-keyout", "server.key", "-out", "server.csr"])
        .current_dir(dir));
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in", "server.csr"])
        .args(["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"])
        .args(["-extfile", "server.ext", "-out", "server.pem"])
        .current_dir(dir));
    dir.join("ca.pem")
}
