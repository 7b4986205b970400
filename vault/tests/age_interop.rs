//! Vault objects are plain age files: the real age CLI must read what we write, and we must
//! read what it writes. Needs the `age` and `age-keygen` binaries (Debian: `apt-get install age`).

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
};

use cybs3_vault::crypto::{Binding, FileSecrets, Identity, Opener, Sealer, VaultKeys, CHUNK};

/// Runs an age binary, failing (not skipping) when it is missing.
fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{program}` ({e}): install the age CLI (Debian/Ubuntu: apt-get install -y age)")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {stderr}"
    );
    output
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn write_private(file: &Path, bytes: &[u8]) {
    fs::write(file, bytes).unwrap();
    fs::set_permissions(file, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Seals `plain` the way parallel upload workers do: each thread its own ciphertext part,
/// bound to a path as vaults bind every file (the age CLI skips that stanza).
fn seal_in_parts(keys: &VaultKeys, plain: &[u8], parts: u64) -> Vec<u8> {
    let bound = Binding {
        path: "photos/a.jpg".into(),
        sealed_at: 1,
    };
    let sealer = Sealer::new(
        &keys.recipient(),
        &FileSecrets::random(),
        plain.len() as u64,
        Some((&keys.bind_key(), &bound)),
    );
    let total = sealer.cipher_len();
    let part_len = total.div_ceil(parts).max(1);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..total.div_ceil(part_len))
            .map(|i| {
                let sealer = &sealer;
                scope.spawn(move || {
                    let (start, end) = (i * part_len, ((i + 1) * part_len).min(total));
                    let mut read = |offset: u64, buf: &mut [u8]| {
                        buf.copy_from_slice(&plain[offset as usize..][..buf.len()]);
                        Ok(())
                    };
                    let mut part = vec![0; (end - start) as usize];
                    sealer.read_cipher(start, &mut part, &mut read).unwrap();
                    part
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

fn opener_decrypts(file: &Path, identities: &[Identity]) -> Vec<u8> {
    let cipher = fs::read(file).unwrap();
    let opener = Opener::parse(&cipher, identities).unwrap().unwrap();
    let len = cipher.len() as u64;
    let (start, end, first) = opener.cipher_range(0, opener.plain_len(len).unwrap(), len);
    assert_eq!(first, 0);
    opener
        .open_chunks(first, &cipher[start as usize..end as usize], len)
        .unwrap()
}

#[test]
fn age_cli_decrypts_sealed_files_with_our_identity_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = VaultKeys::generate();
    keys.rotate();
    let identity_file = dir.path().join("identity.txt");
    write_private(&identity_file, keys.to_identity_file().as_bytes());
    for len in [0, 1, CHUNK as usize, 3 * CHUNK as usize + 12_345] {
        let plain = data(len);
        let sealed = dir.path().join(format!("{len}.age"));
        fs::write(&sealed, seal_in_parts(&keys, &plain, 3)).unwrap();
        let decrypted = run("age", &["-d", "-i", path(&identity_file), path(&sealed)]).stdout;
        assert_eq!(decrypted, plain, "length {len}");
    }
}

#[test]
fn opener_decrypts_age_cli_files() {
    let dir = tempfile::tempdir().unwrap();
    let keys = VaultKeys::generate();
    let other = VaultKeys::generate();
    for len in [0, 5, 2 * CHUNK as usize, 2 * CHUNK as usize + 1] {
        let plain = data(len);
        let input = dir.path().join(format!("{len}.txt"));
        fs::write(&input, &plain).unwrap();
        let encrypted = dir.path().join(format!("{len}.age"));
        let (ours, theirs) = (keys.recipient().to_string(), other.recipient().to_string());
        run(
            "age",
            &[
                "-r",
                &theirs,
                "-r",
                &ours,
                "-o",
                path(&encrypted),
                path(&input),
            ],
        );
        assert_eq!(
            opener_decrypts(&encrypted, keys.identities()),
            plain,
            "length {len}"
        );
    }
}

#[test]
fn age_keygen_identities_work_as_vault_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key_file: PathBuf = dir.path().join("key.txt");
    run("age-keygen", &["-o", path(&key_file)]);
    let text = fs::read_to_string(&key_file).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    let identity: Identity = secret.parse().unwrap();
    assert_eq!(identity.to_public().to_string(), public);
    assert_eq!(identity.to_string(), secret);

    let keys = VaultKeys::from_identity_file(&text).unwrap();
    let plain = data(100_000);
    let sealed = dir.path().join("x.age");
    fs::write(&sealed, seal_in_parts(&keys, &plain, 4)).unwrap();
    let decrypted = run("age", &["-d", "-i", path(&key_file), path(&sealed)]).stdout;
    assert_eq!(decrypted, plain);
}
