//! Vaults end to end with the real binary: `vaults local`, object commands, the
//! zero-knowledge property checked with plain S3 tools and the `age` CLI, key recovery,
//! sharing, rotation, passphrases, plain vaults, and refusal of damaged ciphertext.

use cybs3_tests::{cybs3, LocalVault};
use std::path::Path;
use std::process::{Command, Output};

const MARKER: &str = "zebra-marker-7f3a";

/// The aws CLI with the given credentials against `endpoint`.
fn aws(endpoint: &str, ak: &str, sk: &str, args: &[&str]) -> Output {
    Command::new("aws")
        .args(["--endpoint-url", endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws (install awscli: tests/run.sh does)")
}

fn aws_ok(v: &LocalVault, args: &[&str]) -> Vec<u8> {
    let j = v.vault_json("local");
    let out = aws(
        &v.endpoint(),
        j["access_key"].as_str().unwrap(),
        j["secret_key"].as_str().unwrap(),
        args,
    );
    assert!(out.status.success(), "aws {args:?}: {out:?}");
    out.stdout
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// The raw object keys of the local vault's bucket.
fn raw_keys(v: &LocalVault) -> Vec<String> {
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let out = aws_ok(v, &["s3", "ls", "--recursive", &format!("s3://{bucket}")]);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

#[test]
fn vaults_local_is_one_idempotent_command() {
    let v = LocalVault::new();
    let config = std::fs::read(v.home.join("config.toml")).unwrap();
    let again = v.ok(&["vaults", "local", "--port", &v.port.to_string()]);
    assert!(again.contains("nothing to do"), "{again}");
    assert_eq!(std::fs::read(v.home.join("config.toml")).unwrap(), config);

    let j = v.vault_json("local");
    for field in [
        "name",
        "endpoint",
        "bucket",
        "prefix",
        "region",
        "access_key",
        "secret_key",
    ] {
        assert!(j[field].is_string(), "{field} in {j}");
    }
    assert_eq!(j["encrypted"], true);
    assert_eq!(j["endpoint"], v.endpoint());
    let list: serde_json::Value =
        serde_json::from_str(&v.ok(&["vaults", "list", "--json"])).unwrap();
    assert_eq!(list[0]["name"], "local");
    assert_eq!(list[0]["active"], true);

    // Secrets are 0600.
    use std::os::unix::fs::PermissionsExt;
    for f in ["config.toml", "keys/local.age"] {
        let mode = std::fs::metadata(v.home.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    // The vault's key reaches its bucket only.
    let out = aws(
        &v.endpoint(),
        j["access_key"].as_str().unwrap(),
        j["secret_key"].as_str().unwrap(),
        &["s3", "mb", "s3://another"],
    );
    assert!(!out.status.success(), "a vault key created a bucket");

    // The self-test passes.
    let t: serde_json::Value = serde_json::from_str(&v.ok(&["test", "--json"])).unwrap();
    assert_eq!(t["ok"], true, "{t}");
    let steps: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["write", "layers", "list", "read back", "delete"]);
    // An encrypted vault on a server that does not encrypt: one layer, the client's.
    assert_eq!(t["server_encryption"], serde_json::Value::Null);
}

#[test]
fn encrypted_vault_shows_only_ciphertext_to_s3_and_age_decrypts_it() {
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    let body = format!("{MARKER} top secret {}", "x".repeat(200_000)).into_bytes();
    let file = tmp.path().join(format!("{MARKER}-name.txt"));
    write(&file, &body);
    v.ok(&[
        "cp",
        file.to_str().unwrap(),
        &format!(":docs/{MARKER}-dir/"),
    ]);

    // Through the vault: plaintext names and content.
    let ls = v.ok(&["ls", ":docs", "-r", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let want = format!("docs/{MARKER}-dir/{MARKER}-name.txt");
    assert_eq!(entries[0]["path"], want.as_str(), "{ls}");
    assert_eq!(entries[0]["size"], body.len());
    let out = cybs3(&v.home, &["cat", &format!(":{want}")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, body);

    // Through plain S3: no plaintext name, no plaintext content.
    let keys = raw_keys(&v);
    assert_eq!(keys.len(), 1, "{keys:?}");
    for k in &keys {
        assert!(
            !k.contains(MARKER) && !k.contains("docs"),
            "plaintext in key {k}"
        );
    }
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = tmp.path().join("raw.age");
    aws_ok(
        &v,
        &[
            "s3",
            "cp",
            &format!("s3://{bucket}/{}", keys[0]),
            raw.to_str().unwrap(),
        ],
    );
    let raw_bytes = std::fs::read(&raw).unwrap();
    assert!(raw_bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!raw_bytes
        .windows(MARKER.len())
        .any(|w| w == MARKER.as_bytes()));

    // The plain age tool with the exported identity gets the original bytes back.
    let id = tmp.path().join("identity.txt");
    std::fs::write(&id, v.ok(&["keys", "export"])).unwrap();
    let out = Command::new("age")
        .args(["-d", "-i", id.to_str().unwrap(), raw.to_str().unwrap()])
        .output()
        .expect("run age (Debian package age)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, body);

    // Downloads restore the content and the mtime.
    let back = tmp.path().join("back.txt");
    v.ok(&["cp", &format!(":{want}"), back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), body);
    let (m1, m2) = (
        std::fs::metadata(&file).unwrap(),
        std::fs::metadata(&back).unwrap(),
    );
    assert_eq!(m1.modified().unwrap(), m2.modified().unwrap());

    // rm removes it; rm of a directory needs -r.
    let out = cybs3(&v.home, &["rm", ":docs"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    v.ok(&["rm", "-r", ":docs"]);
    assert!(raw_keys(&v).is_empty());
}

#[test]
fn damaged_or_foreign_ciphertext_is_refused_naming_the_path() {
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    // Past the first request's MiB, so the damage is met in the streamed part.
    let body: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let file = tmp.path().join("f.bin");
    write(&file, &body);
    v.ok(&["cp", file.to_str().unwrap(), ":f.bin"]);
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let key = raw_keys(&v).remove(0);
    let raw = tmp.path().join("raw");
    aws_ok(
        &v,
        &[
            "s3",
            "cp",
            &format!("s3://{bucket}/{key}"),
            raw.to_str().unwrap(),
        ],
    );
    let good = std::fs::read(&raw).unwrap();

    let replace = |bytes: &[u8]| {
        std::fs::write(&raw, bytes).unwrap();
        aws_ok(
            &v,
            &[
                "s3",
                "cp",
                raw.to_str().unwrap(),
                &format!("s3://{bucket}/{key}"),
            ],
        );
    };
    let refused = |what: &str| {
        for args in [
            vec!["cat", ":f.bin"],
            vec!["cp", ":f.bin", tmp.path().join("out.bin").to_str().unwrap()],
        ] {
            let out = cybs3(&v.home, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}: {args:?} {out:?}");
            assert!(err.contains("f.bin") && err.contains(what), "{what}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
        assert!(!tmp.path().join("out.bin").exists(), "no partial file left");
    };

    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 1;
    replace(&flipped);
    refused("corrupted");

    // Cut at a chunk boundary: every remaining chunk is intact, only the end is missing.
    replace(&good[..good.len() - (body.len() % 65_536 + 16)]);
    refused("truncated");

    // A different identity cannot read it.
    replace(&good);
    let keyfile = v.home.join("keys/local.age");
    let mine = std::fs::read(&keyfile).unwrap();
    let o = LocalVault::new();
    std::fs::copy(o.home.join("keys/local.age"), &keyfile).unwrap();
    refused("no identity of this vault");
    std::fs::write(&keyfile, mine).unwrap();
    assert_eq!(cybs3(&v.home, &["cat", ":f.bin"]).stdout, body);
}

/// `cybs3 keys restore --vault local` with `phrases` on stdin.
fn restore(v: &LocalVault, phrases: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(cybs3_tests::bin())
        .args(["keys", "restore", "--vault", "local"])
        .env("CYBS3_HOME", &v.home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A refusal may come before the child reads its input; the exit status tells.
    match stdin.write_all(phrases.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn recovery_phrase_restores_a_lost_identity_and_rotation_keeps_old_objects() {
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.txt");
    write(&a, b"written under the first identity");
    v.ok(&["cp", a.to_str().unwrap(), ":a.txt"]);

    v.ok(&["vaults", "rotate", "local"]);
    let b = tmp.path().join("b.txt");
    write(&b, b"written under the second identity");
    v.ok(&["cp", b.to_str().unwrap(), ":b.txt"]);
    let export = v.ok(&["keys", "export"]);
    assert_eq!(export.matches("AGE-SECRET-KEY-1").count(), 2, "{export}");

    let phrases = v.ok(&["keys", "show-recovery"]);
    let keyfile = v.home.join("keys/local.age");
    std::fs::remove_file(&keyfile).unwrap();
    let out = cybs3(&v.home, &["cat", ":a.txt"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keys restore"),
        "{out:?}"
    );

    assert!(restore(&v, &phrases).status.success());
    assert_eq!(v.ok(&["cat", ":a.txt"]), "written under the first identity");
    assert_eq!(
        v.ok(&["cat", ":b.txt"]),
        "written under the second identity"
    );

    // A bad phrase is refused clearly.
    let out = restore(&v, "abandon abandon\n");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sharing_passphrases_and_plain_vaults() {
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("shared.txt");
    write(&f, b"for the team");
    v.ok(&["cp", f.to_str().unwrap(), ":team/shared.txt"]);

    // A member with their own age identity gets access through a share in the bucket.
    let their_id = tmp.path().join("their.key");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&their_id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let their_pub = Command::new("age-keygen")
        .arg("-y")
        .arg(&their_id)
        .output()
        .unwrap();
    let their_pub = String::from_utf8(their_pub.stdout)
        .unwrap()
        .trim()
        .to_string();
    v.ok(&["vaults", "share", "local", "--recipient", &their_pub]);
    assert!(
        v.ok(&["ls", ":", "-r"]).contains("team/shared.txt"),
        "share file is hidden"
    );

    let member = tempfile::tempdir().unwrap();
    let j = v.vault_json("local");
    let add = cybs3(
        member.path(),
        &[
            "vaults",
            "add",
            "team",
            "--endpoint",
            &v.endpoint(),
            "--bucket",
            j["bucket"].as_str().unwrap(),
            "--access-key",
            j["access_key"].as_str().unwrap(),
            "--secret-key",
            j["secret_key"].as_str().unwrap(),
        ],
    );
    assert!(add.status.success(), "{add:?}");
    // `vaults add` made a fresh identity; the member replaces it with the shared one.
    std::fs::remove_file(member.path().join("keys/team.age")).unwrap();
    let imp = cybs3(
        member.path(),
        &[
            "keys",
            "import",
            "--vault",
            "team",
            "--identity",
            their_id.to_str().unwrap(),
        ],
    );
    assert!(imp.status.success(), "{imp:?}");
    let out = cybs3(member.path(), &["cat", "team:team/shared.txt"]);
    assert_eq!(out.stdout, b"for the team", "{out:?}");

    // A passphrase-protected vault needs its passphrase.
    let (rak, rsk) = v.root_keys();
    let add = Command::new(cybs3_tests::bin())
        .args([
            "vaults",
            "add",
            "locked",
            "--endpoint",
            &v.endpoint(),
            "--bucket",
        ])
        .arg(j["bucket"].as_str().unwrap())
        .args(["--prefix", "locked", "--passphrase"])
        .args(["--access-key", &rak, "--secret-key", &rsk])
        .env("CYBS3_HOME", &v.home)
        .env("CYBS3_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    let ident = std::fs::read_to_string(v.home.join("keys/locked.age")).unwrap();
    assert!(ident.contains("BEGIN AGE ENCRYPTED FILE") && !ident.contains("AGE-SECRET-KEY"));
    let with = |pass: Option<&str>, args: &[&str]| {
        let mut c = Command::new(cybs3_tests::bin());
        c.args(args)
            .env("CYBS3_HOME", &v.home)
            .env_remove("CYBS3_PASSPHRASE");
        if let Some(p) = pass {
            c.env("CYBS3_PASSPHRASE", p);
        }
        c.output().unwrap()
    };
    let out = with(
        Some("correct horse"),
        &["cp", f.to_str().unwrap(), "locked:x.txt"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = with(None, &["cat", "locked:x.txt"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CYBS3_PASSPHRASE"),
        "{out:?}"
    );
    let out = with(Some("wrong"), &["cat", "locked:x.txt"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{out:?}"
    );
    assert_eq!(
        with(Some("correct horse"), &["cat", "locked:x.txt"]).stdout,
        b"for the team"
    );

    // A plain vault is a general S3 client: keys and bodies as they are.
    v.ok(&[
        "vaults",
        "add",
        "plain",
        "--plain",
        "--endpoint",
        &v.endpoint(),
        "--bucket",
        j["bucket"].as_str().unwrap(),
        "--prefix",
        "pl",
        "--access-key",
        &rak,
        "--secret-key",
        &rsk,
    ]);
    v.ok(&["cp", f.to_str().unwrap(), "plain:dir/readable.txt"]);
    let out = aws(
        &v.endpoint(),
        &rak,
        &rsk,
        &[
            "s3",
            "cp",
            &format!("s3://{}/pl/dir/readable.txt", j["bucket"].as_str().unwrap()),
            "-",
        ],
    );
    assert_eq!(out.stdout, b"for the team", "{out:?}");
    assert!(v.ok(&["vaults", "list"]).contains("plain"));
}

/// The one key that appeared in the bucket when `path` was first written.
fn cp_new(v: &LocalVault, local: &Path, path: &str) -> String {
    let before = raw_keys(v);
    v.ok(&["cp", local.to_str().unwrap(), &format!(":{path}")]);
    let mut new: Vec<String> = raw_keys(v)
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new.remove(0)
}

/// `args` fails with exit 1 and one line on stderr naming `path` and saying `what`.
fn refused_with(v: &LocalVault, args: &[&str], path: &str, what: &str) {
    let out = cybs3(&v.home, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    assert!(err.contains(path) && err.contains(what), "{args:?}: {err}");
}

#[test]
fn swapped_rolled_back_and_unbound_files_are_refused_everywhere() {
    use cybs3_tests::mount::{errno, Mounted};
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let c = cybs3_tests::mount::s3(&v);
    let raw = |key: &str| cybs3_tests::mount::get(&c, &bucket, key).unwrap();
    let put_raw = |key: &str, body: &[u8]| cybs3_tests::mount::put(&c, &bucket, key, body);
    let local = |name: &str, body: &str| {
        let p = tmp.path().join(name);
        write(&p, body.as_bytes());
        p
    };
    let key_a = cp_new(&v, &local("a", "alpha, the file a.txt"), "a.txt");
    let key_b = cp_new(&v, &local("b", "bravo v1"), "docs/b.txt");
    let b_v1 = raw(&key_b);
    assert_eq!(cybs3(&v.home, &["cat", ":docs/b.txt"]).stdout, b"bravo v1");

    // 1. Swap: a.txt's ciphertext copied over docs/b.txt, by someone with write access.
    put_raw(&key_b, &raw(&key_a));
    let swapped = "bound to another path";
    refused_with(&v, &["cat", ":docs/b.txt"], "docs/b.txt", swapped);
    let down = tmp.path().join("down");
    refused_with(
        &v,
        &["sync", ":", down.to_str().unwrap()],
        "docs/b.txt",
        swapped,
    );
    {
        let m = Mounted::new(&v, "local", &[]);
        assert_eq!(
            std::fs::read(m.p("a.txt")).unwrap(),
            b"alpha, the file a.txt"
        );
        assert_eq!(errno(std::fs::read(m.p("docs/b.txt"))), libc::EIO);
    }

    // 2. Rollback: docs/b.txt written again, then its first version put back.
    put_raw(&key_b, &b_v1);
    assert_eq!(cybs3(&v.home, &["cat", ":docs/b.txt"]).stdout, b"bravo v1");
    v.ok(&[
        "cp",
        local("b2", "bravo v2").to_str().unwrap(),
        ":docs/b.txt",
    ]);
    assert_eq!(cybs3(&v.home, &["cat", ":docs/b.txt"]).stdout, b"bravo v2");
    put_raw(&key_b, &b_v1);
    refused_with(&v, &["cat", ":docs/b.txt"], "docs/b.txt", "rollback");
    refused_with(
        &v,
        &["sync", ":", down.to_str().unwrap()],
        "docs/b.txt",
        "rollback",
    );
    {
        let m = Mounted::new(&v, "local", &[]);
        assert_eq!(errno(std::fs::read(m.p("docs/b.txt"))), libc::EIO);
        // A rename through the mount rebinds the file: it reads at its new path.
        std::fs::rename(m.p("a.txt"), m.p("docs/a2.txt")).unwrap();
        assert_eq!(
            std::fs::read(m.p("docs/a2.txt")).unwrap(),
            b"alpha, the file a.txt"
        );
    }
    assert_eq!(
        cybs3(&v.home, &["cat", ":docs/a2.txt"]).stdout,
        b"alpha, the file a.txt"
    );

    // 3. A file without a binding (here written by the plain age tool) is refused in a
    // vault made bound; `vaults rebind` binds it and lists the swapped one.
    let recipient = v.ok(&["keys", "recipient"]);
    let plain = local("c", "charlie, from the age CLI");
    let sealed = tmp.path().join("c.age");
    let out = Command::new("age")
        .args(["-r", recipient.trim(), "-o"])
        .args([&sealed, &plain])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key_c = cp_new(&v, &local("c0", "c"), "c.txt");
    put_raw(&key_c, &std::fs::read(&sealed).unwrap());
    refused_with(&v, &["cat", ":c.txt"], "c.txt", "no path binding");
    put_raw(&key_b, &raw(&key_c));
    let out = cybs3(&v.home, &["vaults", "rebind", "local", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["rebound"], 2, "{report}");
    assert_eq!(report["bound"], 1, "{report}");
    // The unbound copy at docs/b.txt was adopted too: rebind trusts the bucket, as its
    // help says. What it cannot adopt is a file bound elsewhere:
    put_raw(&key_b, &raw(&key_c));
    let out = cybs3(&v.home, &["vaults", "rebind", "local", "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(
        report["foreign"],
        serde_json::json!(["docs/b.txt"]),
        "{report}"
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        cybs3(&v.home, &["cat", ":c.txt"]).stdout,
        b"charlie, from the age CLI"
    );
}

/// A vault with `--sse aws:kms`: each object is age ciphertext that the server encrypts
/// again (HEAD shows it, `cybs3 test` reports both layers), and once the server has
/// taken its layer off, the plain `age` tool decrypts what it sends.
#[test]
fn a_vault_with_server_side_encryption_is_encrypted_twice() {
    let v = LocalVault::new();
    let tmp = tempfile::tempdir().unwrap();
    v.ok(&["admin", "kms", "key", "create", "vaultkey"]);
    let port = v.port.to_string();
    let out = v.ok(&[
        "vaults",
        "local",
        "--port",
        &port,
        "--sse",
        "aws:kms",
        "--sse-kms-key",
        "vaultkey",
    ]);
    assert!(out.contains("encrypt its uploads too"), "{out}");
    assert_eq!(v.vault_json("local")["sse"]["algorithm"], "aws:kms");
    let body = b"twice sealed: age on the client, AES-GCM on the server".to_vec();
    let file = tmp.path().join("doc.txt");
    write(&file, &body);
    v.ok(&["cp", file.to_str().unwrap(), ":doc.txt"]);
    // A large file goes up in parts: the upload asks for the encryption once.
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let big_file = tmp.path().join("big.bin");
    write(&big_file, &big);
    v.ok(&["cp", big_file.to_str().unwrap(), ":big.bin"]);
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = raw_keys(&v);
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        // `--key=K`, not `--key K`: an encrypted name may begin with '-'.
        let head = aws_ok(
            &v,
            &[
                "s3api",
                "head-object",
                "--bucket",
                &bucket,
                &format!("--key={k}"),
            ],
        );
        let head: serde_json::Value = serde_json::from_slice(&head).unwrap();
        assert_eq!(head["ServerSideEncryption"], "aws:kms", "{head}");
        assert!(head["SSEKMSKeyId"]
            .as_str()
            .unwrap()
            .ends_with(":key/vaultkey"));
    }
    // Whichever key is the small file's: the age tool decrypts it after the server's GET.
    let id = tmp.path().join("identity.txt");
    std::fs::write(&id, v.ok(&["keys", "export"])).unwrap();
    let mut found = false;
    for k in &keys {
        let raw = tmp.path().join("raw.age");
        aws_ok(
            &v,
            &[
                "s3",
                "cp",
                &format!("s3://{bucket}/{k}"),
                raw.to_str().unwrap(),
            ],
        );
        let out = Command::new("age")
            .args(["-d", "-i", id.to_str().unwrap(), raw.to_str().unwrap()])
            .output()
            .expect("run age");
        assert!(out.status.success(), "{out:?}");
        found |= out.stdout == body;
    }
    assert!(found, "the small file decrypts with age");
    assert_eq!(cybs3(&v.home, &["cat", ":big.bin"]).stdout, big);
    let test: serde_json::Value = serde_json::from_str(&v.ok(&["test", "--json"])).unwrap();
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["encrypted"], true);
    assert_eq!(test["server_encryption"], "aws:kms");
}
