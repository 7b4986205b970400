//! Server secrets kept in the index (remote tiers' secret keys, notification targets'
//! credentials): sealed with ChaCha20-Poly1305 under the server's key, bound to their
//! use by the associated data, so neither the index nor the management socket carries
//! them in clear.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Seals `secret` under `server_key` for the use `aad` names.
pub(crate) fn seal(server_key: &[u8; 32], aad: &[u8], secret: &str) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(server_key));
    let nonce: [u8; 12] = rand::random();
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad,
            },
        )
        .expect("sealing cannot fail");
    [nonce.as_slice(), &sealed].concat()
}

/// Opens what [`seal`] sealed for `aad`; `None` for another key or use, or damage.
pub(crate) fn open(server_key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<String> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(server_key));
    let (nonce, body) = sealed.split_at_checked(12)?;
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()?;
    String::from_utf8(plain).ok()
}
