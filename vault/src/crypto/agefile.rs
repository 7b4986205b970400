// Over 800 lines: 620 of code; the rest is its tests against the format and the age crate.
//! Standard age v1 files (<https://age-encryption.org/v1>) with one X25519 recipient stanza,
//! written and read chunk by chunk.
//!
//! The age crate's streams are sequential; vault transfers need more: any ciphertext byte
//! range can be recomputed from persisted [`FileSecrets`] (an interrupted multipart upload
//! resumes with parts identical to those already uploaded), and upload or download workers
//! seal and open their own chunks in parallel. The output is a plain age file that
//! `age -d -i identity.txt` decrypts.
//!
//! Payload chunk nonces are counters under one file key, so the same secrets must never
//! seal different plaintext: a modified file gets fresh [`FileSecrets`].

use std::{fmt, io};

use base64::{prelude::BASE64_STANDARD_NO_PAD as B64, Engine};
use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, Key, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use ring::aead::{self as ring_aead, Aad, LessSafeKey, UnboundKey, CHACHA20_POLY1305};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::binding::{self, BindKey, Binding};
use super::{hkdf, CryptoError, Identity, Recipient};

/// Plaintext bytes per payload chunk, fixed by the age format.
pub const CHUNK: u64 = 64 * 1024;
/// Where the payload starts in every file written by [`Sealer`] with a path binding (its
/// header always has the same length), so listings can show plaintext sizes without
/// fetching headers.
pub const SEALED_PAYLOAD_START: u64 = 184 + BOUND_STANZA_LEN;
/// What the `cybs3-path` stanza adds to a header: its line and its body's line.
const BOUND_STANZA_LEN: u64 = ("-> ".len() + binding::STANZA_TAG.len() + 1) as u64
    + (binding::BODY_LEN as u64).div_ceil(3) * 4
    + 1;

const TAG: u64 = 16;
const CIPHER_CHUNK: u64 = CHUNK + TAG;
const NONCE_LEN: usize = 16;
const MAX_HEADER: usize = 64 * 1024;
const VERSION_LINE: &str = "age-encryption.org/v1\n";
const X25519_TAG: &str = "X25519";
const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";

/// Everything random about one age file. Persist it (0600) to re-create identical
/// ciphertext later, never reuse it for different plaintext.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct FileSecrets {
    file_key: [u8; 16],
    ephemeral: [u8; 32],
    nonce: [u8; NONCE_LEN],
}

impl FileSecrets {
    pub fn random() -> Self {
        let mut secrets = FileSecrets {
            file_key: [0; 16],
            ephemeral: [0; 32],
            nonce: [0; NONCE_LEN],
        };
        OsRng.fill_bytes(&mut secrets.file_key);
        OsRng.fill_bytes(&mut secrets.ephemeral);
        OsRng.fill_bytes(&mut secrets.nonce);
        secrets
    }
}

impl fmt::Debug for FileSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileSecrets(..)")
    }
}

/// Exact size of an age file whose payload starts at `payload_start`.
pub fn cipher_len_for(plain_len: u64, payload_start: u64) -> u64 {
    Layout {
        payload_start,
        plain_len,
    }
    .cipher_len()
}

/// Inverse of [`cipher_len_for`]; lengths no age file can have are [`CryptoError::Truncated`].
pub fn plain_len_for(cipher_len: u64, payload_start: u64) -> Result<u64, CryptoError> {
    let payload = cipher_len
        .checked_sub(payload_start)
        .filter(|&payload| payload >= TAG)
        .ok_or(CryptoError::Truncated)?;
    let (full, rest) = (payload / CIPHER_CHUNK, payload % CIPHER_CHUNK);
    match rest {
        0 => Ok(full * CHUNK),
        // Only an empty file has an empty (tag-only) final chunk.
        r if r < TAG || (r == TAG && full > 0) => Err(CryptoError::Truncated),
        r => Ok(full * CHUNK + r - TAG),
    }
}

/// Where the chunks of one file are.
#[derive(Clone, Copy)]
struct Layout {
    payload_start: u64,
    plain_len: u64,
}

impl Layout {
    fn chunks(self) -> u64 {
        self.plain_len.div_ceil(CHUNK).max(1)
    }

    fn is_last(self, chunk: u64) -> bool {
        chunk + 1 == self.chunks()
    }

    fn plain_span(self, chunk: u64) -> (u64, u64) {
        (chunk * CHUNK, ((chunk + 1) * CHUNK).min(self.plain_len))
    }

    fn cipher_start(self, chunk: u64) -> u64 {
        self.payload_start + chunk * CIPHER_CHUNK
    }

    fn cipher_len(self) -> u64 {
        self.payload_start + self.plain_len + self.chunks() * TAG
    }
}

/// Encrypts one file of known length to one recipient. Cheap to share between threads.
pub struct Sealer {
    /// Header and payload nonce: everything before the first chunk.
    head: Vec<u8>,
    payload: LessSafeKey,
    layout: Layout,
}

impl Sealer {
    /// A sealer for `plain_len` bytes to `recipient`, bound to `bind`'s path and time when
    /// it is given (vaults always bind; see [`binding`]).
    pub fn new(
        recipient: &Recipient,
        secrets: &FileSecrets,
        plain_len: u64,
        bind: Option<(&BindKey, &Binding)>,
    ) -> Sealer {
        let stanza = bind.map(|(key, b)| binding::seal(key, &secrets.file_key, b));
        let mut head = x25519_header(
            &recipient.0,
            &secrets.ephemeral,
            &secrets.file_key,
            stanza.as_deref(),
        );
        head.extend_from_slice(&secrets.nonce);
        let layout = Layout {
            payload_start: head.len() as u64,
            plain_len,
        };
        Sealer {
            payload: payload_cipher(&secrets.file_key, &secrets.nonce),
            head,
            layout,
        }
    }

    /// Exact total ciphertext length.
    pub fn cipher_len(&self) -> u64 {
        self.layout.cipher_len()
    }

    /// Fills `out` with the ciphertext at `start`. `read_plain(offset, buf)` must fill `buf`
    /// exactly with the plaintext at `offset`; whole chunks are read even when `out` cuts
    /// them.
    pub fn read_cipher(
        &self,
        start: u64,
        out: &mut [u8],
        read_plain: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (end, total) = (start + out.len() as u64, self.cipher_len());
        if end > total {
            let msg = format!("ciphertext range {start}..{end} is outside 0..{total}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        let head_len = self.head.len() as u64;
        if start < head_len {
            let head = &self.head[start as usize..end.min(head_len) as usize];
            out[..head.len()].copy_from_slice(head);
        }
        if end > head_len && start < end {
            let first = (start.max(head_len) - head_len) / CIPHER_CHUNK;
            let last = (end - head_len).div_ceil(CIPHER_CHUNK);
            let mut scratch = Vec::new();
            for chunk in first..last {
                self.seal_window(chunk, start, out, &mut scratch, read_plain)?;
            }
        }
        Ok(())
    }

    /// Seals the part of `chunk` inside `out` (ciphertext from `start`): in place when the
    /// whole chunk fits, so a part costs no copy, else through `scratch`.
    fn seal_window(
        &self,
        chunk: u64,
        start: u64,
        out: &mut [u8],
        scratch: &mut Vec<u8>,
        read_plain: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (plain_start, plain_end) = self.layout.plain_span(chunk);
        let chunk_start = self.layout.cipher_start(chunk);
        let chunk_end = chunk_start + plain_end - plain_start + TAG;
        let end = start + out.len() as u64;
        if start <= chunk_start && chunk_end <= end {
            let at = (chunk_start - start) as usize..(chunk_end - start) as usize;
            return self.seal_chunk(chunk, plain_start, &mut out[at], read_plain);
        }
        scratch.resize((chunk_end - chunk_start) as usize, 0);
        self.seal_chunk(chunk, plain_start, scratch, read_plain)?;
        let (from, to) = (start.max(chunk_start), end.min(chunk_end));
        out[(from - start) as usize..(to - start) as usize]
            .copy_from_slice(&scratch[(from - chunk_start) as usize..(to - chunk_start) as usize]);
        Ok(())
    }

    /// Seals `chunk`, whose plaintext starts at `plain_start`, into `sealed`: exactly its
    /// ciphertext and tag.
    fn seal_chunk(
        &self,
        chunk: u64,
        plain_start: u64,
        sealed: &mut [u8],
        read_plain: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (body, tag) = sealed.split_at_mut(sealed.len() - TAG as usize);
        read_plain(plain_start, body)?;
        let nonce = chunk_nonce(chunk, self.layout.is_last(chunk));
        let sealed_tag = self
            .payload
            .seal_in_place_separate_tag(nonce, Aad::empty(), body)
            .expect("a chunk is far below the ChaCha20-Poly1305 message limit");
        tag.copy_from_slice(sealed_tag.as_ref());
        Ok(())
    }
}

/// Decrypts any chunk range of one age file once its header is known. Cheap to share
/// between threads.
pub struct Opener {
    payload: LessSafeKey,
    payload_start: u64,
    /// Kept to check the path binding and to bind the same payload to another path.
    file_key: Zeroizing<[u8; 16]>,
    nonce: [u8; NONCE_LEN],
    /// The body of the `cybs3-path` stanza, if the header has one.
    bound: Option<Vec<u8>>,
}

impl Opener {
    /// Parses the header and payload nonce from the first bytes of an object. `Ok(None)`:
    /// `prefix` is too short, fetch more (headers are far below 1 KiB; over 64 KiB is
    /// refused). Any stanzas are accepted; each X25519 one is tried with each identity.
    pub fn parse(prefix: &[u8], identities: &[Identity]) -> Result<Option<Opener>, CryptoError> {
        let Some(header) = Header::parse(prefix)? else {
            return Ok(None);
        };
        let Some(nonce) = prefix.get(header.len..header.len + NONCE_LEN) else {
            return Ok(None);
        };
        let file_key = header.unwrap_file_key(identities)?;
        header_mac(&file_key[..], &prefix[..header.mac_input_len])
            .verify_slice(&header.mac)
            .map_err(|_| CryptoError::Corrupt)?;
        Ok(Some(Opener {
            payload: payload_cipher(&file_key[..], nonce),
            payload_start: (header.len + NONCE_LEN) as u64,
            nonce: nonce.try_into().expect("NONCE_LEN bytes"),
            bound: header.binding()?,
            file_key,
        }))
    }

    /// The sealing time the header binds to `path`; `Ok(None)` for a file with no
    /// binding (written before vaults bound files, or by another age tool), and
    /// [`CryptoError::WrongPath`] for a file bound to another path or vault.
    pub fn bound_time(&self, key: &BindKey, path: &str) -> Result<Option<u64>, CryptoError> {
        self.bound
            .as_deref()
            .map(|body| binding::open(key, &self.file_key[..], path, body))
            .transpose()
    }

    /// A new header (and payload nonce) for this file's payload, bound to `bind`, for
    /// `recipient`: with it, the unchanged payload after [`Opener::payload_start`] is a
    /// complete age file again. Nothing is re-encrypted: the same payload key seals the
    /// same plaintext, so no nonce is reused for different data.
    pub fn rebound_head(&self, recipient: &Recipient, key: &BindKey, bind: &Binding) -> Vec<u8> {
        let mut ephemeral = Zeroizing::new([0; 32]);
        OsRng.fill_bytes(&mut ephemeral[..]);
        let stanza = binding::seal(key, &self.file_key[..], bind);
        let mut head = x25519_header(&recipient.0, &ephemeral, &self.file_key, Some(&stanza));
        head.extend_from_slice(&self.nonce);
        head
    }

    /// Length of header and payload nonce: where chunk 0 starts.
    pub fn payload_start(&self) -> u64 {
        self.payload_start
    }

    /// Plaintext length of the object, or [`CryptoError::Truncated`] if no complete age file
    /// has this length.
    pub fn plain_len(&self, cipher_len: u64) -> Result<u64, CryptoError> {
        plain_len_for(cipher_len, self.payload_start)
    }

    /// Chunk-aligned ciphertext `(start, end, first_chunk)` holding plaintext `[start, end)`.
    /// Its plaintext begins at `first_chunk * CHUNK`. An empty range still yields one chunk,
    /// so even empty objects are authenticated.
    pub fn cipher_range(
        &self,
        plain_start: u64,
        plain_end: u64,
        cipher_len: u64,
    ) -> (u64, u64, u64) {
        let payload = cipher_len.saturating_sub(self.payload_start);
        let chunks = payload.div_ceil(CIPHER_CHUNK).max(1);
        let first = (plain_start / CHUNK).min(chunks - 1);
        let last = plain_end.div_ceil(CHUNK).clamp(first + 1, chunks);
        let start = self.payload_start + first * CIPHER_CHUNK;
        let end = (self.payload_start + last * CIPHER_CHUNK).min(cipher_len);
        (start, end, first)
    }

    /// Decrypts whole consecutive chunks starting at chunk `first` of an object of
    /// `cipher_len` bytes. Every chunk is authenticated, and the object's last chunk must
    /// carry the final flag, so a truncated object is an error, never a short plaintext.
    pub fn open_chunks(
        &self,
        first: u64,
        cipher: &[u8],
        cipher_len: u64,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = cipher.to_vec();
        let len = self.open_in_place(first, &mut out, cipher_len)?;
        out.truncate(len);
        Ok(out)
    }

    /// [`Opener::open_chunks`] without a second buffer: the plaintext replaces the
    /// ciphertext at the start of `buf`; returns its length.
    pub fn open_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        cipher_len: u64,
    ) -> Result<usize, CryptoError> {
        self.each_chunk(
            first,
            buf.len(),
            cipher_len,
            |chunk, read, written, len, last| {
                let (body, tag) = buf[read..read + len + TAG as usize].split_at_mut(len);
                self.open_chunk(chunk, body, tag, last)?;
                buf.copy_within(read..read + len, written);
                Ok(())
            },
        )
    }

    /// [`Opener::open_chunks`] into `out`, which must have room for the plaintext; returns
    /// its length. Each chunk is copied and then decrypted where it lands, so with a small
    /// `out` the decryption works in the CPU cache.
    pub fn open_into(
        &self,
        first: u64,
        cipher: &[u8],
        out: &mut [u8],
        cipher_len: u64,
    ) -> Result<usize, CryptoError> {
        self.each_chunk(
            first,
            cipher.len(),
            cipher_len,
            |chunk, read, written, len, last| {
                let body = &mut out[written..written + len];
                body.copy_from_slice(&cipher[read..read + len]);
                let tag = &cipher[read + len..read + len + TAG as usize];
                self.open_chunk(chunk, body, tag, last)
            },
        )
    }

    /// Walks the whole chunks, from chunk `first`, of `piece_len` ciphertext bytes of an
    /// object of `cipher_len` bytes: `open` gets each chunk's number, where it starts in
    /// the ciphertext and in the plaintext, its plaintext length, and whether it is the
    /// last. Returns the plaintext length.
    fn each_chunk(
        &self,
        first: u64,
        piece_len: usize,
        cipher_len: u64,
        mut open: impl FnMut(u64, usize, usize, usize, bool) -> Result<(), CryptoError>,
    ) -> Result<usize, CryptoError> {
        let layout = Layout {
            payload_start: self.payload_start,
            plain_len: self.plain_len(cipher_len)?,
        };
        let (mut read, mut written) = (0, 0);
        let mut chunk = first;
        while read < piece_len {
            if chunk >= layout.chunks() {
                return Err(CryptoError::Corrupt);
            }
            let (plain_start, plain_end) = layout.plain_span(chunk);
            let len = (plain_end - plain_start) as usize;
            if piece_len - read < len + TAG as usize {
                return Err(CryptoError::Truncated);
            }
            open(chunk, read, written, len, layout.is_last(chunk))?;
            read += len + TAG as usize;
            written += len;
            chunk += 1;
        }
        Ok(written)
    }

    /// Decrypts `body` in place.
    fn open_chunk(
        &self,
        chunk: u64,
        body: &mut [u8],
        tag: &[u8],
        last: bool,
    ) -> Result<(), CryptoError> {
        let tag = ring_aead::Tag::try_from(tag).map_err(|_| CryptoError::Corrupt)?;
        // A failed open leaves `body` unspecified: keep the last chunk (one per object) to
        // tell a truncation from corruption.
        let sealed = last.then(|| body.to_vec());
        let open = |body: &mut [u8], last| {
            self.payload
                .open_in_place_separate_tag(chunk_nonce(chunk, last), Aad::empty(), tag, body, 0..)
                .is_ok()
        };
        if open(body, last) {
            return Ok(());
        }
        // A valid non-final chunk at the end means the object was cut at a chunk boundary.
        let truncated = sealed.is_some_and(|mut sealed| open(&mut sealed, false));
        Err(if truncated {
            CryptoError::Truncated
        } else {
            CryptoError::Corrupt
        })
    }
}

fn chunk_nonce(chunk: u64, last: bool) -> ring_aead::Nonce {
    let mut nonce = [0; 12];
    nonce[3..11].copy_from_slice(&chunk.to_be_bytes());
    nonce[11] = u8::from(last);
    ring_aead::Nonce::assume_unique_for_key(nonce)
}

/// ring's ChaCha20-Poly1305 for the payload: 2-3x the throughput of the `chacha20poly1305`
/// crate on AVX2 machines, and payload sealing is most of an encrypted transfer's CPU.
fn payload_cipher(file_key: &[u8], nonce: &[u8]) -> LessSafeKey {
    let key = hkdf::<32>(nonce, b"payload", file_key);
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key[..]).expect("a 32-byte key"))
}

fn header_mac(file_key: &[u8], header: &[u8]) -> Hmac<Sha256> {
    let key = hkdf::<32>(&[], b"header", file_key);
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key[..]).expect("HMAC takes any key length");
    mac.update(header);
    mac
}

/// X25519 key wrapping of age: returns the wrapping key for one ephemeral share.
fn wrap_key(shared: &[u8; 32], ephemeral: &PublicKey, recipient: &PublicKey) -> ChaCha20Poly1305 {
    let salt = [ephemeral.as_bytes().as_slice(), recipient.as_bytes()].concat();
    let key = hkdf::<32>(&salt, X25519_LABEL, shared);
    ChaCha20Poly1305::new(Key::from_slice(&key[..]))
}

/// The complete header, up to and including the MAC line: `file_key` wrapped for
/// `recipient` with the `ephemeral` secret, then the path binding's stanza if given.
fn x25519_header(
    recipient: &PublicKey,
    ephemeral: &[u8; 32],
    file_key: &[u8; 16],
    bound: Option<&[u8]>,
) -> Vec<u8> {
    let ephemeral_secret = StaticSecret::from(*ephemeral);
    let ephemeral = PublicKey::from(&ephemeral_secret);
    let shared = ephemeral_secret.diffie_hellman(recipient);
    let body = wrap_key(shared.as_bytes(), &ephemeral, recipient)
        .encrypt(&Nonce::default(), &file_key[..])
        .expect("16 bytes are far below the ChaCha20Poly1305 message limit");
    let mut header = String::from(VERSION_LINE);
    header.push_str(&format!(
        "-> {X25519_TAG} {}\n",
        B64.encode(ephemeral.as_bytes())
    ));
    push_body(&mut header, &body);
    if let Some(bound) = bound {
        header.push_str(&format!("-> {}\n", binding::STANZA_TAG));
        push_body(&mut header, bound);
    }
    header.push_str("---");
    let mac = header_mac(file_key, header.as_bytes())
        .finalize()
        .into_bytes();
    header.push_str(&format!(" {}\n", B64.encode(mac)));
    header.into_bytes()
}

/// A stanza body: 64-column lines, the last one shorter (so possibly empty).
fn push_body(header: &mut String, body: &[u8]) {
    let encoded = B64.encode(body);
    for line in encoded.as_bytes().chunks(64) {
        header.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        header.push('\n');
    }
    if encoded.len().is_multiple_of(64) {
        header.push('\n');
    }
}

struct Stanza<'a> {
    args: Vec<&'a [u8]>,
    body: Vec<u8>,
}

struct Header<'a> {
    stanzas: Vec<Stanza<'a>>,
    /// Bytes covered by the MAC: up to and including "---".
    mac_input_len: usize,
    mac: Vec<u8>,
    /// Bytes up to and including the MAC line.
    len: usize,
}

/// Cursor over the `\n`-terminated lines of a header prefix.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its `\n`, or `None` if the prefix ends first.
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n')?;
        self.pos += len + 1;
        Some(&rest[..len])
    }
}

impl<'a> Header<'a> {
    /// `Ok(None)` when the header does not end within `buf`.
    fn parse(buf: &'a [u8]) -> Result<Option<Header<'a>>, CryptoError> {
        let n = VERSION_LINE.len().min(buf.len());
        if buf[..n] != VERSION_LINE.as_bytes()[..n] {
            return Err(CryptoError::Malformed("not an age v1 file"));
        }
        match Self::parse_complete(buf) {
            None if buf.len() >= MAX_HEADER => Err(CryptoError::Malformed("header over 64 KiB")),
            parsed => parsed.transpose(),
        }
    }

    /// `None` when a line is cut off by the end of `buf`.
    fn parse_complete(buf: &'a [u8]) -> Option<Result<Header<'a>, CryptoError>> {
        let mut lines = Lines { buf, pos: 0 };
        lines.next()?;
        let mut stanzas = Vec::new();
        loop {
            let line = lines.next()?;
            if let Some(mac) = line.strip_prefix(b"---") {
                let mac_input_len = lines.pos - line.len() - 1 + 3;
                let len = lines.pos;
                let mac = mac.strip_prefix(b" ").and_then(|mac| decode(mac, 32));
                let mac = mac.ok_or(CryptoError::Malformed("bad MAC line"));
                return Some(mac.map(|mac| Header {
                    stanzas,
                    mac_input_len,
                    mac,
                    len,
                }));
            }
            let Some(args) = line.strip_prefix(b"-> ") else {
                return Some(Err(CryptoError::Malformed(
                    "expected a stanza or the MAC line",
                )));
            };
            let args: Vec<&[u8]> = args.split(|&b| b == b' ').collect();
            if args
                .iter()
                .any(|arg| arg.is_empty() || !arg.iter().all(|b| (0x21..=0x7e).contains(b)))
            {
                return Some(Err(CryptoError::Malformed("bad stanza argument")));
            }
            let body = match Self::stanza_body(&mut lines)? {
                Ok(body) => body,
                Err(e) => return Some(Err(e)),
            };
            stanzas.push(Stanza { args, body });
        }
    }

    fn stanza_body(lines: &mut Lines<'a>) -> Option<Result<Vec<u8>, CryptoError>> {
        let mut encoded = Vec::new();
        loop {
            let line = lines.next()?;
            if line.len() > 64 {
                return Some(Err(CryptoError::Malformed(
                    "stanza body line over 64 columns",
                )));
            }
            encoded.extend_from_slice(line);
            if line.len() < 64 {
                return Some(
                    B64.decode(&encoded)
                        .map_err(|_| CryptoError::Malformed("bad stanza body")),
                );
            }
        }
    }

    /// The body of the one `cybs3-path` stanza, if there is one.
    fn binding(&self) -> Result<Option<Vec<u8>>, CryptoError> {
        let mut bound = self
            .stanzas
            .iter()
            .filter(|s| s.args[0] == binding::STANZA_TAG.as_bytes());
        match (bound.next(), bound.next()) {
            (None, _) => Ok(None),
            (Some(s), None) if s.args.len() == 1 && s.body.len() == binding::BODY_LEN => {
                Ok(Some(s.body.clone()))
            }
            _ => Err(CryptoError::Malformed("bad cybs3-path stanza")),
        }
    }

    fn unwrap_file_key(&self, identities: &[Identity]) -> Result<Zeroizing<[u8; 16]>, CryptoError> {
        for stanza in self
            .stanzas
            .iter()
            .filter(|s| s.args[0] == X25519_TAG.as_bytes())
        {
            let ([_, share], 32) = (stanza.args.as_slice(), stanza.body.len()) else {
                return Err(CryptoError::Malformed("bad X25519 stanza"));
            };
            let share = decode(share, 32).ok_or(CryptoError::Malformed("bad X25519 share"))?;
            let ephemeral = PublicKey::from(<[u8; 32]>::try_from(share).expect("decoded 32 bytes"));
            for identity in identities {
                if let Some(key) = unwrap_x25519(&ephemeral, &stanza.body, identity)? {
                    return Ok(key);
                }
            }
        }
        Err(CryptoError::NoMatchingIdentity)
    }
}

fn unwrap_x25519(
    ephemeral: &PublicKey,
    body: &[u8],
    identity: &Identity,
) -> Result<Option<Zeroizing<[u8; 16]>>, CryptoError> {
    let shared = identity.secret.diffie_hellman(ephemeral);
    if !shared.was_contributory() {
        return Err(CryptoError::Malformed("low-order X25519 share"));
    }
    let wrap = wrap_key(shared.as_bytes(), ephemeral, &identity.to_public().0);
    // Failing to open is no error: the stanza may be for another recipient.
    Ok(wrap
        .decrypt(&Nonce::default(), body)
        .ok()
        .map(|mut opened| {
            let mut key = Zeroizing::new([0; 16]);
            key.copy_from_slice(&opened);
            opened.zeroize();
            key
        }))
}

/// Canonical unpadded base64 of exactly `len` bytes.
fn decode(encoded: &[u8], len: usize) -> Option<Vec<u8>> {
    B64.decode(encoded).ok().filter(|bytes| bytes.len() == len)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    fn data(len: u64, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn read_from(plain: &[u8]) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> + '_ {
        |offset, buf| {
            buf.copy_from_slice(&plain[offset as usize..][..buf.len()]);
            Ok(())
        }
    }

    fn bind_key() -> BindKey {
        BindKey(Zeroizing::new([42; 32]))
    }

    fn bound_to(path: &str) -> Binding {
        Binding {
            path: path.into(),
            sealed_at: 1_790_000_000_000_000_000,
        }
    }

    /// A sealer as vaults make them: bound to a path.
    fn sealer(identity: &Identity, secrets: &FileSecrets, len: u64) -> Sealer {
        let b = bound_to("dir/file");
        Sealer::new(&identity.to_public(), secrets, len, Some((&bind_key(), &b)))
    }

    fn seal(identity: &Identity, secrets: &FileSecrets, plain: &[u8]) -> Vec<u8> {
        let sealer = sealer(identity, secrets, plain.len() as u64);
        window(&sealer, plain, 0, sealer.cipher_len()).unwrap()
    }

    fn window(sealer: &Sealer, plain: &[u8], start: u64, end: u64) -> io::Result<Vec<u8>> {
        let mut out = vec![0; (end - start) as usize];
        sealer.read_cipher(start, &mut out, &mut read_from(plain))?;
        Ok(out)
    }

    fn age_identity(identity: &Identity) -> age::x25519::Identity {
        identity.to_string().parse().unwrap()
    }

    fn age_decrypt(identity: &Identity, cipher: &[u8]) -> Result<Vec<u8>, String> {
        let decryptor = age::Decryptor::new_buffered(cipher).map_err(|e| e.to_string())?;
        let age_id = age_identity(identity);
        let mut reader = decryptor
            .decrypt(std::iter::once(&age_id as _))
            .map_err(|e| e.to_string())?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).map_err(|e| e.to_string())?;
        Ok(plain)
    }

    fn age_encrypt(identity: &Identity, plain: &[u8]) -> Vec<u8> {
        let recipient: age::x25519::Recipient = identity.to_public().to_string().parse().unwrap();
        age::encrypt(&recipient, plain).unwrap()
    }

    fn open(cipher: &[u8], identities: &[Identity]) -> Result<Opener, CryptoError> {
        Ok(Opener::parse(cipher, identities)?.expect("the whole file holds the header"))
    }

    /// Plaintext `[start, end)` read the way a download does: chunk-aligned range, open, slice.
    fn open_range(
        opener: &Opener,
        cipher: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher_len = cipher.len() as u64;
        let (c0, c1, first) = opener.cipher_range(start, end, cipher_len);
        let plain = opener.open_chunks(first, &cipher[c0 as usize..c1 as usize], cipher_len)?;
        let skip = (start - first * CHUNK) as usize;
        Ok(plain[skip..skip + (end - start) as usize].to_vec())
    }

    fn open_all(cipher: &[u8], identities: &[Identity]) -> Result<Vec<u8>, CryptoError> {
        let opener = open(cipher, identities)?;
        let len = opener.plain_len(cipher.len() as u64)?;
        open_range(&opener, cipher, 0, len)
    }

    const LENGTHS: [u64; 7] = [0, 1, 65535, 65536, 65537, 3 * 65536, 1_000_003];

    #[test]
    fn sealed_files_decrypt_with_the_age_crate() {
        let identity = Identity::generate();
        for (seed, len) in LENGTHS.into_iter().enumerate() {
            let plain = data(len, seed as u64 + 1);
            let cipher = seal(&identity, &FileSecrets::random(), &plain);
            assert_eq!(
                cipher.len() as u64,
                cipher_len_for(len, SEALED_PAYLOAD_START)
            );
            assert_eq!(
                age_decrypt(&identity, &cipher).unwrap(),
                plain,
                "length {len}"
            );
            assert_eq!(
                open_all(&cipher, std::slice::from_ref(&identity)).unwrap(),
                plain
            );
        }
    }

    #[test]
    fn sealer_windows_concatenate_to_the_whole_file() {
        let identity = Identity::generate();
        let secrets = FileSecrets::random();
        let plain = data(3 * CHUNK + 777, 7);
        let whole = seal(&identity, &secrets, &plain);
        let sealer = sealer(&identity, &secrets, plain.len() as u64);
        let total = sealer.cipher_len();
        let mut steps = data(64, 3).into_iter().cycle();
        let mut start = 0;
        let mut parts = Vec::new();
        while start < total {
            // Windows of 0 to ~130 KiB, cutting headers, chunks and tags anywhere.
            let step = u64::from(steps.next().unwrap()) * 521;
            let end = (start + step).min(total);
            parts.extend(window(&sealer, &plain, start, end).unwrap());
            start = end;
        }
        assert_eq!(parts, whole);
        for (start, end) in [
            (0, 1),
            (183, 185),
            (184, 200),
            (total - 1, total),
            (total, total),
        ] {
            let got = window(&sealer, &plain, start, end).unwrap();
            assert_eq!(got, whole[start as usize..end as usize]);
        }
        assert!(window(&sealer, &plain, 0, total + 1).is_err());
        assert!(window(&sealer, &plain, total, total + 1).is_err());
    }

    #[test]
    fn sealing_is_deterministic_given_the_secrets() {
        let identity = Identity::generate();
        let secrets = FileSecrets::random();
        let plain = data(100_000, 9);
        let persisted: FileSecrets =
            serde_json::from_str(&serde_json::to_string(&secrets).unwrap()).unwrap();
        assert_eq!(
            seal(&identity, &secrets, &plain),
            seal(&identity, &persisted, &plain)
        );
        assert_ne!(
            seal(&identity, &secrets, &plain),
            seal(&identity, &FileSecrets::random(), &plain)
        );
    }

    #[test]
    fn the_sealed_header_has_a_fixed_length() {
        let identity = Identity::generate();
        let opener = open(&seal(&identity, &FileSecrets::random(), b"x"), &[identity]).unwrap();
        assert_eq!(opener.payload_start(), SEALED_PAYLOAD_START);
    }

    #[test]
    fn files_are_bound_to_their_path_and_rebinding_moves_them() {
        let identity = Identity::generate();
        let ids = std::slice::from_ref(&identity);
        let plain = data(CHUNK + 5, 31);
        let cipher = seal(&identity, &FileSecrets::random(), &plain);
        let opener = open(&cipher, ids).unwrap();
        let key = bind_key();
        let sealed_at = bound_to("").sealed_at;
        assert_eq!(
            opener.bound_time(&key, "dir/file").unwrap(),
            Some(sealed_at)
        );
        for (key, path) in [
            (bind_key(), "dir/other"),
            (BindKey(Zeroizing::new([1; 32])), "dir/file"),
        ] {
            assert!(matches!(
                opener.bound_time(&key, path),
                Err(CryptoError::WrongPath)
            ));
        }
        // Files of other age tools carry no binding.
        let foreign = open(&age_encrypt(&identity, b"x"), ids).unwrap();
        assert_eq!(foreign.bound_time(&key, "dir/file").unwrap(), None);

        let moved = Binding {
            path: "elsewhere".into(),
            sealed_at: sealed_at + 1,
        };
        let head = opener.rebound_head(&identity.to_public(), &key, &moved);
        assert_eq!(head.len() as u64, SEALED_PAYLOAD_START);
        let rebound = [&head[..], &cipher[SEALED_PAYLOAD_START as usize..]].concat();
        let opener = open(&rebound, ids).unwrap();
        assert_eq!(
            opener.bound_time(&key, "elsewhere").unwrap(),
            Some(sealed_at + 1)
        );
        assert!(matches!(
            opener.bound_time(&key, "dir/file"),
            Err(CryptoError::WrongPath)
        ));
        assert_eq!(open_all(&rebound, ids).unwrap(), plain);
        assert_eq!(age_decrypt(&identity, &rebound).unwrap(), plain);
    }

    #[test]
    fn a_binding_moved_between_files_breaks_the_header_mac() {
        let identity = Identity::generate();
        let ids = std::slice::from_ref(&identity);
        let a = seal(&identity, &FileSecrets::random(), b"a");
        let b = seal(&identity, &FileSecrets::random(), b"b");
        // The binding stanza's body line sits right before the MAC line.
        let body = |f: &[u8]| {
            let text =
                std::str::from_utf8(&f[..SEALED_PAYLOAD_START as usize - NONCE_LEN]).unwrap();
            let end = text.find("\n---").unwrap();
            (end - 32, end)
        };
        let (from, to) = body(&a);
        let mut mixed = b.clone();
        mixed[from..to].copy_from_slice(&a[from..to]);
        assert!(matches!(open(&mixed, ids), Err(CryptoError::Corrupt)));
    }

    #[test]
    fn age_crate_files_open_at_any_range() {
        let identity = Identity::generate();
        let others = [Identity::generate(), identity.clone()];
        for (seed, len) in LENGTHS.into_iter().enumerate() {
            let plain = data(len, seed as u64 + 11);
            let cipher = age_encrypt(&identity, &plain);
            let opener = open(&cipher, &others).unwrap();
            assert_eq!(opener.plain_len(cipher.len() as u64).unwrap(), len);
            assert_eq!(open_range(&opener, &cipher, 0, len).unwrap(), plain);
            let mut bounds = data(16, seed as u64 + 5)
                .into_iter()
                .map(|b| u64::from(b) * len / 255);
            while let (Some(a), Some(b)) = (bounds.next(), bounds.next()) {
                let (start, end) = (a.min(b), a.max(b));
                let range = open_range(&opener, &cipher, start, end).unwrap();
                assert_eq!(
                    range,
                    plain[start as usize..end as usize],
                    "len {len} range {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn short_prefixes_ask_for_more_and_garbage_is_refused() {
        let identity = Identity::generate();
        let cipher = age_encrypt(&identity, b"hello");
        let ids = std::slice::from_ref(&identity);
        let payload_start = open(&cipher, ids).unwrap().payload_start() as usize;
        for len in [0, 5, 22, 40, payload_start - 17, payload_start - 1] {
            assert!(
                Opener::parse(&cipher[..len], ids).unwrap().is_none(),
                "prefix {len}"
            );
        }
        for garbage in [
            &b"hello world"[..],
            b"age-encryption.org/v2\n",
            b"-----BEGIN AGE ENCRYPTED FILE-----",
        ] {
            assert!(matches!(
                Opener::parse(garbage, ids),
                Err(CryptoError::Malformed(_))
            ));
        }
        let mut endless = VERSION_LINE.as_bytes().to_vec();
        endless.resize(MAX_HEADER, b'a');
        assert!(matches!(
            Opener::parse(&endless, ids),
            Err(CryptoError::Malformed(_))
        ));
    }

    /// A header as another age implementation may write it: a grease stanza first, with a
    /// multi-line body ending in an empty line.
    fn with_grease_stanza(identity: &Identity, secrets: &FileSecrets, plain: &[u8]) -> Vec<u8> {
        let sealed = seal(identity, secrets, plain);
        let text =
            std::str::from_utf8(&sealed[..SEALED_PAYLOAD_START as usize - NONCE_LEN]).unwrap();
        let stanza_end = text.find("\n---").unwrap() + 1;
        let mut header = String::from("age-encryption.org/v1\n-> grease-x ab {c\n");
        push_body(&mut header, &data(96, 5));
        header.push_str(&text[VERSION_LINE.len()..stanza_end]);
        header.push_str("---");
        let mac = header_mac(&secrets.file_key, header.as_bytes())
            .finalize()
            .into_bytes();
        header.push_str(&format!(" {}\n", B64.encode(mac)));
        [
            header.as_bytes(),
            &sealed[SEALED_PAYLOAD_START as usize - NONCE_LEN..],
        ]
        .concat()
    }

    #[test]
    fn foreign_stanzas_are_skipped() {
        let identity = Identity::generate();
        let plain = data(70_000, 21);
        let cipher = with_grease_stanza(&identity, &FileSecrets::random(), &plain);
        assert!(std::str::from_utf8(&cipher[..300])
            .unwrap_or_default()
            .contains("\n\n-> X25519"));
        assert_eq!(
            age_decrypt(&identity, &cipher).unwrap(),
            plain,
            "the crafted file is valid age"
        );
        assert_eq!(open_all(&cipher, &[identity]).unwrap(), plain);
    }

    #[test]
    fn wrong_identity_is_refused() {
        let cipher = seal(&Identity::generate(), &FileSecrets::random(), b"secret");
        let err = open(&cipher, &[Identity::generate(), Identity::generate()])
            .err()
            .unwrap();
        assert!(matches!(err, CryptoError::NoMatchingIdentity));
        assert_eq!(err.to_string(), "no identity of this vault can decrypt it");
    }

    #[test]
    fn tampering_is_detected() {
        let identity = Identity::generate();
        let ids = std::slice::from_ref(&identity);
        let plain = data(2 * CHUNK + 10, 4);
        let cipher = seal(&identity, &FileSecrets::random(), &plain);
        let mac_char = SEALED_PAYLOAD_START as usize - NONCE_LEN - 10;
        let nonce_byte = SEALED_PAYLOAD_START as usize - 3;
        let chunk1_byte = (SEALED_PAYLOAD_START + CIPHER_CHUNK + 100) as usize;
        let last_tag_byte = cipher.len() - 1;
        for at in [mac_char, nonce_byte, chunk1_byte, last_tag_byte] {
            let mut tampered = cipher.clone();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let err = open_all(&tampered, ids).err();
            assert!(
                matches!(err, Some(CryptoError::Corrupt)),
                "byte {at}: {err:?}"
            );
            assert!(age_decrypt(&identity, &tampered).is_err());
        }
        // Chunks authenticate their position: swapping two is tampering too.
        let mut swapped = seal(&identity, &FileSecrets::random(), &data(3 * CHUNK + 1, 5));
        let c0 = SEALED_PAYLOAD_START as usize;
        let c1 = c0 + CIPHER_CHUNK as usize;
        let chunk0 = swapped[c0..c1].to_vec();
        swapped.copy_within(c1..c1 + CIPHER_CHUNK as usize, c0);
        swapped[c1..c1 + CIPHER_CHUNK as usize].copy_from_slice(&chunk0);
        assert!(matches!(open_all(&swapped, ids), Err(CryptoError::Corrupt)));
    }

    #[test]
    fn truncation_is_an_error_never_a_short_plaintext() {
        let identity = Identity::generate();
        let ids = std::slice::from_ref(&identity);
        for len in [3 * CHUNK, 3 * CHUNK + 5] {
            let cipher = seal(&identity, &FileSecrets::random(), &data(len, 8));
            let boundary = (SEALED_PAYLOAD_START + 2 * CIPHER_CHUNK) as usize;
            for cut in [
                boundary,
                SEALED_PAYLOAD_START as usize + CIPHER_CHUNK as usize,
            ] {
                let truncated = &cipher[..cut];
                let opener = open(truncated, ids).unwrap();
                let cut_len = cut as u64;
                assert!(
                    opener.plain_len(cut_len).is_ok(),
                    "a boundary cut has a plausible length"
                );
                assert!(
                    matches!(open_all(truncated, ids), Err(CryptoError::Truncated)),
                    "cut {cut}"
                );
                // Even a reader that only asks for the start learns nothing false: the
                // early chunks are genuine, and the last one fails.
                let (c0, c1, first) =
                    opener.cipher_range(0, opener.plain_len(cut_len).unwrap(), cut_len);
                let err = opener.open_chunks(first, &truncated[c0 as usize..c1 as usize], cut_len);
                assert!(matches!(err, Err(CryptoError::Truncated)));
            }
            for cut in [
                boundary + 1,
                boundary + 15,
                boundary + 16,
                boundary + 17,
                boundary + 1000,
                cipher.len() - 1,
            ] {
                let err = open_all(&cipher[..cut], ids).err();
                assert!(
                    matches!(err, Some(CryptoError::Truncated | CryptoError::Corrupt)),
                    "cut {cut}: {err:?}"
                );
            }
            assert!(matches!(
                open_all(&cipher[..SEALED_PAYLOAD_START as usize], ids),
                Err(CryptoError::Truncated)
            ));
        }
        // A range shorter than the object claims is refused too.
        let cipher = seal(&identity, &FileSecrets::random(), &data(CHUNK + 5, 2));
        let opener = open(&cipher, ids).unwrap();
        let short = &cipher[SEALED_PAYLOAD_START as usize..cipher.len() - 1];
        let err = opener.open_chunks(0, short, cipher.len() as u64);
        assert!(matches!(err, Err(CryptoError::Truncated)));
    }

    #[test]
    fn lengths_round_trip() {
        for plain in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 3] {
            let cipher = cipher_len_for(plain, 200);
            assert_eq!(plain_len_for(cipher, 200).unwrap(), plain);
        }
        for impossible in [
            0,
            199,
            200,
            215,
            200 + CIPHER_CHUNK + 16,
            200 + CIPHER_CHUNK + 3,
        ] {
            assert!(plain_len_for(impossible, 200).is_err(), "{impossible}");
        }
    }

    #[test]
    fn sealer_and_opener_are_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sealer>();
        shareable::<Opener>();
    }
}
