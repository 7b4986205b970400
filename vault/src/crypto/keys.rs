//! Vault identities: X25519 keys in the age encodings, identity files that the age CLI
//! reads, passphrase protection (age scrypt), BIP39 recovery phrases and sharing.

use std::{
    fmt,
    io::{Read, Write},
    iter,
    str::FromStr,
    time::SystemTime,
};

use age::{
    armor::{ArmoredReader, ArmoredWriter, Format},
    secrecy::SecretString,
    DecryptError, Decryptor, Encryptor,
};
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use bech32::{primitives::decode::CheckedHrpstring, Hrp};
use bip39::{Language, Mnemonic};
use rand_core::OsRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::{hkdf, CryptoError, NameCipher};

const SECRET_HRP: Hrp = Hrp::parse_unchecked("AGE-SECRET-KEY-");
const PUBLIC_HRP: Hrp = Hrp::parse_unchecked("age");
const FILE_COMMENT: &str = "# cybs3 vault identity, generation ";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const AGE_MAGIC: &[u8] = b"age-encryption.org/";
const RECOVERY_WORDS: usize = 24;

/// Bech32 as age uses it: BIP-173 without its 90-character limit.
enum Bech32Long {}

impl bech32::Checksum for Bech32Long {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = bech32::Bech32::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = bech32::Bech32::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = bech32::Bech32::TARGET_RESIDUE;
}

fn bech32_encode(hrp: Hrp, data: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(bech32::encode_lower::<Bech32Long>(hrp, data).expect("no length limit"))
}

fn bech32_decode(s: &str, hrp: Hrp, what: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let invalid = || CryptoError::InvalidKey(format!("not an {what}"));
    let parsed = CheckedHrpstring::new::<Bech32Long>(s).map_err(|_| invalid())?;
    if parsed.hrp() != hrp {
        return Err(invalid());
    }
    let bytes = Zeroizing::new(parsed.byte_iter().collect::<Vec<u8>>());
    if bytes.len() != 32 {
        return Err(invalid());
    }
    let mut key = Zeroizing::new([0; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// An X25519 secret key (zeroized on drop). `to_string()` gives the secret
/// `AGE-SECRET-KEY-1…` encoding, so only print it into identity files.
#[derive(Clone)]
pub struct Identity {
    pub(crate) secret: StaticSecret,
    /// When the vault generated it, as written in identity files.
    created: Option<String>,
}

impl Identity {
    pub fn generate() -> Self {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let created = DateTime::from_secs(now.as_secs() as i64)
            .fmt(DateTimeFormat::DateTime)
            .ok();
        Identity {
            secret: StaticSecret::random_from_rng(OsRng),
            created,
        }
    }

    fn from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        Identity {
            secret: StaticSecret::from(**bytes),
            created: None,
        }
    }

    pub fn to_public(&self) -> Recipient {
        Recipient(PublicKey::from(&self.secret))
    }

    /// The secret as a 24-word BIP39 English mnemonic (the 32 secret bytes are its entropy).
    pub fn recovery_phrase(&self) -> Zeroizing<String> {
        let mut mnemonic = Mnemonic::from_entropy_in(Language::English, self.secret.as_bytes())
            .expect("32 bytes are valid BIP39 entropy");
        let phrase = Zeroizing::new(mnemonic.to_string());
        mnemonic.zeroize();
        phrase
    }

    /// Inverse of [`Self::recovery_phrase`]; tolerates any case and whitespace.
    pub fn from_recovery_phrase(phrase: &str) -> Result<Identity, CryptoError> {
        let count = phrase.split_whitespace().count();
        if count != RECOVERY_WORDS {
            let msg = format!("expected {RECOVERY_WORDS} words, got {count}");
            return Err(CryptoError::RecoveryPhrase(msg));
        }
        let mut normalized =
            Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
        // The English word list is ASCII: anything else is an unknown word anyway.
        normalized.make_ascii_lowercase();
        let mut mnemonic =
            Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(phrase_error)?;
        let (mut entropy, _) = mnemonic.to_entropy_array();
        mnemonic.zeroize();
        let mut bytes = Zeroizing::new([0; 32]);
        bytes.copy_from_slice(&entropy[..32]);
        entropy.zeroize();
        Ok(Identity::from_bytes(&bytes))
    }
}

fn phrase_error(e: bip39::Error) -> CryptoError {
    CryptoError::RecoveryPhrase(match e {
        bip39::Error::UnknownWord(i) => {
            format!("word {} is not in the BIP39 English word list", i + 1)
        }
        bip39::Error::InvalidChecksum => {
            "checksum mismatch: a word is wrong or out of order".into()
        }
        e => e.to_string(),
    })
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(SECRET_HRP, self.secret.as_bytes()).to_uppercase())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.to_public())
    }
}

impl FromStr for Identity {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, CryptoError> {
        Ok(Identity::from_bytes(&bech32_decode(
            s,
            SECRET_HRP,
            "AGE-SECRET-KEY-1… identity",
        )?))
    }
}

/// An X25519 public key, `age1…`: what files are encrypted to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Recipient(pub(crate) PublicKey);

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(PUBLIC_HRP, self.0.as_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Recipient {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, CryptoError> {
        let bytes = bech32_decode(s, PUBLIC_HRP, "age1… recipient")?;
        Ok(Recipient(PublicKey::from(*bytes)))
    }
}

/// The identities of a vault, oldest first. New writes go to the last one; reads try all.
/// Name and content-MAC keys derive from the first, so rotation keeps existing names valid.
pub struct VaultKeys {
    identities: Vec<Identity>,
}

impl VaultKeys {
    pub fn generate() -> Self {
        VaultKeys {
            identities: vec![Identity::generate()],
        }
    }

    /// Keys from identities in generation order (e.g. one restored from a recovery phrase).
    pub fn from_identities(identities: Vec<Identity>) -> Result<Self, CryptoError> {
        if identities.is_empty() {
            return Err(CryptoError::InvalidKey(
                "a vault needs at least one identity".into(),
            ));
        }
        Ok(VaultKeys { identities })
    }

    /// All identities, for reading.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The recipient of new writes.
    pub fn recipient(&self) -> Recipient {
        self.identities.last().expect("never empty").to_public()
    }

    /// Adds a fresh identity for new writes and returns its recipient.
    pub fn rotate(&mut self) -> Recipient {
        self.identities.push(Identity::generate());
        self.recipient()
    }

    pub fn names_cipher(&self) -> NameCipher {
        NameCipher::new(self.derive(b"cybs3 names v1"))
    }

    /// Key of the keyed hash of plaintext content that sync keeps in object metadata (a
    /// plain hash would let the server confirm guesses of file contents).
    pub fn content_mac_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"cybs3 content-mac v1")
    }

    /// Key of the path bindings in each file's header (see [`super::binding`]).
    pub fn bind_key(&self) -> super::BindKey {
        super::BindKey(self.derive(b"cybs3 path-binding v1"))
    }

    fn derive<const N: usize>(&self, info: &[u8]) -> Zeroizing<[u8; N]> {
        hkdf(&[], info, self.identities[0].secret.as_bytes())
    }

    /// Identity file text (to be written 0600); `age -d -i FILE` accepts it.
    pub fn to_identity_file(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        for (i, identity) in self.identities.iter().enumerate() {
            text.push_str(&format!("{FILE_COMMENT}{}", i + 1));
            if let Some(created) = &identity.created {
                text.push_str(&format!(", created {created}"));
            }
            text.push_str(&format!("\n# public key: {}\n", identity.to_public()));
            text.push_str(&Zeroizing::new(format!("{identity}\n")));
        }
        text
    }

    /// Parses identity file text: one key per line, `#` comments and blank lines ignored.
    pub fn from_identity_file(text: &str) -> Result<Self, CryptoError> {
        let mut identities = Vec::new();
        let mut created = None;
        for (n, line) in text.lines().map(str::trim).enumerate() {
            if let Some(comment) = line.strip_prefix(FILE_COMMENT) {
                created = comment
                    .split_once(", created ")
                    .map(|(_, at)| at.to_owned());
            } else if !line.is_empty() && !line.starts_with('#') {
                let mut identity: Identity = line.parse().map_err(|_| {
                    let msg = format!("line {} of the identity file is not a key", n + 1);
                    CryptoError::InvalidKey(msg)
                })?;
                identity.created = created.take();
                identities.push(identity);
            }
        }
        Self::from_identities(identities)
    }

    /// Reads an identity file, plain text or passphrase-encrypted (armored or binary age).
    pub fn open_identity_bytes(
        bytes: &[u8],
        passphrase: Option<&str>,
    ) -> Result<Self, CryptoError> {
        let trimmed = bytes.trim_ascii_start();
        if !trimmed.starts_with(ARMOR_BEGIN) && !trimmed.starts_with(AGE_MAGIC) {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                CryptoError::InvalidKey(
                    "the identity file is neither text nor age-encrypted".into(),
                )
            })?;
            return Self::from_identity_file(text);
        }
        let passphrase = passphrase.ok_or(CryptoError::PassphraseRequired)?;
        let decryptor = Decryptor::new_buffered(ArmoredReader::new(trimmed)).map_err(age_error)?;
        if !decryptor.is_scrypt() {
            return Err(CryptoError::Malformed(
                "the identity file is not passphrase-encrypted",
            ));
        }
        let identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
        let reader = decryptor
            .decrypt(iter::once(&identity as _))
            .map_err(|e| match e {
                DecryptError::DecryptionFailed => CryptoError::WrongPassphrase,
                e => age_error(e),
            })?;
        let plain = read_all(reader)?;
        let text = std::str::from_utf8(&plain).map_err(|_| {
            CryptoError::InvalidKey("the decrypted identity file is not text".into())
        })?;
        Self::from_identity_file(text)
    }
}

/// Encrypts identity file text with a passphrase (age scrypt, ASCII-armored).
pub fn seal_with_passphrase(text: &str, passphrase: &str) -> Vec<u8> {
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    if cfg!(test) {
        // The default work factor takes about a second per test.
        recipient.set_work_factor(10);
    }
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).expect("writes to memory");
    encrypt_into(&recipient, armor, text.as_bytes())
        .finish()
        .expect("writes to memory");
    out
}

/// Standard binary age encryption of `text` to `recipient`, e.g. to share vault keys.
pub fn wrap_for(text: &[u8], recipient: &Recipient) -> Vec<u8> {
    let recipient: age::x25519::Recipient = recipient.to_string().parse().expect("same encoding");
    encrypt_into(&recipient, Vec::new(), text)
}

/// Decrypts what [`wrap_for`] (or any age tool, armored or not) encrypted to one of `identities`.
pub fn unwrap_with(
    bytes: &[u8],
    identities: &[Identity],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let identities: Vec<age::x25519::Identity> = identities
        .iter()
        .map(|identity| {
            Zeroizing::new(identity.to_string())
                .parse()
                .expect("same encoding")
        })
        .collect();
    let decryptor = Decryptor::new_buffered(ArmoredReader::new(bytes)).map_err(age_error)?;
    let reader = decryptor
        .decrypt(identities.iter().map(|identity| identity as _))
        .map_err(age_error)?;
    read_all(reader)
}

fn encrypt_into<W: Write>(recipient: &dyn age::Recipient, output: W, plain: &[u8]) -> W {
    let encryptor = Encryptor::with_recipients(iter::once(recipient)).expect("one recipient");
    let mut writer = encryptor.wrap_output(output).expect("writes to memory");
    writer.write_all(plain).expect("writes to memory");
    writer.finish().expect("writes to memory")
}

fn read_all(mut reader: impl Read) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut plain = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut plain).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => CryptoError::Truncated,
        _ => CryptoError::Corrupt,
    })?;
    Ok(plain)
}

fn age_error(e: DecryptError) -> CryptoError {
    match e {
        DecryptError::NoMatchingKeys => CryptoError::NoMatchingIdentity,
        DecryptError::InvalidHeader | DecryptError::UnknownFormat => {
            CryptoError::Malformed("not a valid age file")
        }
        DecryptError::ExcessiveWork { .. } => {
            CryptoError::Malformed("the passphrase work factor is too high")
        }
        DecryptError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            CryptoError::Truncated
        }
        _ => CryptoError::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(keys: &VaultKeys) -> Vec<String> {
        keys.identities()
            .iter()
            .map(|identity| identity.to_string())
            .collect()
    }

    #[test]
    fn encodings_match_the_age_crate() {
        let ours = Identity::generate();
        let secret = ours.to_string();
        assert!(secret.starts_with("AGE-SECRET-KEY-1"), "{secret}");
        let theirs: age::x25519::Identity = secret.parse().unwrap();
        assert_eq!(theirs.to_public().to_string(), ours.to_public().to_string());

        let theirs = age::x25519::Identity::generate();
        let ours: Identity = age::secrecy::ExposeSecret::expose_secret(&theirs.to_string())
            .parse()
            .unwrap();
        assert_eq!(ours.to_public().to_string(), theirs.to_public().to_string());
        let recipient: Recipient = theirs.to_public().to_string().parse().unwrap();
        assert_eq!(recipient, ours.to_public());
        assert!(recipient.to_string().starts_with("age1"));
    }

    #[test]
    fn bad_key_strings_are_refused() {
        let secret = Identity::generate().to_string();
        let public = Identity::generate().to_public().to_string();
        let mut typo = secret.clone().into_bytes();
        typo[20] = if typo[20] == b'Q' { b'P' } else { b'Q' };
        let typo = String::from_utf8(typo).unwrap();
        for bad in [
            typo.as_str(),
            &secret[..secret.len() - 1],
            public.as_str(),
            "",
            "age1",
        ] {
            assert!(bad.parse::<Identity>().is_err(), "{bad}");
        }
        assert!(secret.parse::<Recipient>().is_err());
        assert!(public[..public.len() - 2].parse::<Recipient>().is_err());
    }

    #[test]
    fn identity_files_round_trip_and_are_read_by_age() {
        let mut keys = VaultKeys::generate();
        let new = keys.rotate();
        assert_eq!(keys.recipient(), new);
        assert_eq!(keys.identities().len(), 2);
        let text = keys.to_identity_file();
        assert!(
            text.starts_with("# cybs3 vault identity, generation 1, created 20"),
            "{}",
            *text
        );
        assert!(text.contains(&format!("# public key: {new}\n")));
        let parsed = VaultKeys::from_identity_file(&text).unwrap();
        assert_eq!(strings(&parsed), strings(&keys));
        assert_eq!(
            *parsed.to_identity_file(),
            *text,
            "creation dates survive a round trip"
        );

        let age_file = age::IdentityFile::from_buffer(text.as_bytes()).unwrap();
        let age_ids = age_file.into_identities().unwrap();
        assert_eq!(age_ids.len(), 2);
        let wrapped = wrap_for(b"hi", &new);
        let decryptor = Decryptor::new_buffered(&wrapped[..]).unwrap();
        let ids = age_ids.iter().map(|id| id.as_ref() as &dyn age::Identity);
        assert_eq!(*read_all(decryptor.decrypt(ids).unwrap()).unwrap(), b"hi");
    }

    #[test]
    fn identity_file_errors() {
        assert!(VaultKeys::from_identity_file("# only a comment\n\n").is_err());
        let err = VaultKeys::from_identity_file("# x\nAGE-SECRET-KEY-1NOPE\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn derived_keys_survive_rotation_and_differ_between_vaults() {
        let mut keys = VaultKeys::generate();
        let name = keys.names_cipher().encrypt_segment("", "a").unwrap();
        let mac_key = keys.content_mac_key();
        keys.rotate();
        assert_eq!(keys.names_cipher().encrypt_segment("", "a").unwrap(), name);
        assert_eq!(*keys.content_mac_key(), *mac_key);
        let other = VaultKeys::generate();
        assert_ne!(other.names_cipher().encrypt_segment("", "a").unwrap(), name);
        assert_ne!(*other.content_mac_key(), *mac_key);
    }

    #[test]
    fn recovery_phrases_round_trip() {
        let identity = Identity::generate();
        let phrase = identity.recovery_phrase();
        assert_eq!(phrase.split(' ').count(), 24);
        let messy = format!("  {}\n", phrase.to_uppercase().replace(' ', " \t\n "));
        let restored = Identity::from_recovery_phrase(&messy).unwrap();
        assert_eq!(restored.to_string(), identity.to_string());
    }

    /// BIP39 test vector: entropy 0x7f repeated.
    const VECTOR: &str = "legal winner thank year wave sausage worth useful legal winner thank year \
                          wave sausage worth useful legal winner thank year wave sausage worth title";

    #[test]
    fn recovery_phrases_follow_bip39() {
        let identity = Identity::from_bytes(&Zeroizing::new([0x7f; 32]));
        let vector = VECTOR.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(*identity.recovery_phrase(), vector);
    }

    #[test]
    fn bad_recovery_phrases_are_refused() {
        let mut words: Vec<&str> = VECTOR.split_whitespace().collect();
        let error = |words: &[&str]| {
            Identity::from_recovery_phrase(&words.join(" "))
                .err()
                .unwrap()
                .to_string()
        };

        let original = words[3];
        words[3] = "abandon";
        assert!(error(&words).contains("checksum"), "{}", error(&words));
        words[3] = "notaword";
        assert!(
            error(&words).contains("word 4 is not in the BIP39"),
            "{}",
            error(&words)
        );
        words[3] = original;
        assert!(error(&words[..12]).contains("expected 24 words, got 12"));
    }

    #[test]
    fn passphrase_protected_identity_files() {
        let mut keys = VaultKeys::generate();
        keys.rotate();
        let sealed = seal_with_passphrase(&keys.to_identity_file(), "correct horse");
        assert!(sealed.starts_with(ARMOR_BEGIN));
        let opened = VaultKeys::open_identity_bytes(&sealed, Some("correct horse")).unwrap();
        assert_eq!(strings(&opened), strings(&keys));
        let wrong = VaultKeys::open_identity_bytes(&sealed, Some("wrong horse"))
            .err()
            .unwrap();
        assert!(matches!(wrong, CryptoError::WrongPassphrase), "{wrong}");
        let missing = VaultKeys::open_identity_bytes(&sealed, None).err().unwrap();
        assert!(
            matches!(missing, CryptoError::PassphraseRequired),
            "{missing}"
        );

        let plain =
            VaultKeys::open_identity_bytes(keys.to_identity_file().as_bytes(), None).unwrap();
        assert_eq!(strings(&plain), strings(&keys));
    }

    #[test]
    fn binary_passphrase_files_open_too() {
        let keys = VaultKeys::generate();
        let mut recipient = age::scrypt::Recipient::new(SecretString::from("pw".to_owned()));
        recipient.set_work_factor(10);
        let binary = encrypt_into(&recipient, Vec::new(), keys.to_identity_file().as_bytes());
        assert!(binary.starts_with(AGE_MAGIC));
        let opened = VaultKeys::open_identity_bytes(&binary, Some("pw")).unwrap();
        assert_eq!(strings(&opened), strings(&keys));
        // An identity file encrypted to a key, not a passphrase, is not ours to open.
        let to_key = wrap_for(keys.to_identity_file().as_bytes(), &keys.recipient());
        assert!(VaultKeys::open_identity_bytes(&to_key, Some("pw")).is_err());
    }

    #[test]
    fn sharing_round_trips() {
        let mut member = VaultKeys::generate();
        let old = member.recipient();
        member.rotate();
        let secret = b"vault keys of the shared vault";
        let wrapped = wrap_for(secret, &old);
        assert_eq!(*unwrap_with(&wrapped, member.identities()).unwrap(), secret);
        let stranger = VaultKeys::generate();
        let err = unwrap_with(&wrapped, stranger.identities()).err().unwrap();
        assert!(matches!(err, CryptoError::NoMatchingIdentity), "{err}");
        let mut tampered = wrapped.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            unwrap_with(&tampered, member.identities()),
            Err(CryptoError::Corrupt)
        ));
    }
}
