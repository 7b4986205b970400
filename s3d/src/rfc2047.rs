//! Non-ASCII user metadata in response headers, encoded as AWS encodes it. s3s stores a
//! value decoded (RFC 2047 words sent are decoded first) and answers any non-ASCII value
//! as base64 words; AWS picks the encoding as JavaMail's `MimeUtility.encodeText` does:
//! plain when every character is printable ASCII (or a tab), Q ("quoted-printable") when
//! at most half are not, B (base64) otherwise, over UTF-8, split in halves into words of
//! at most 63 encoded characters. So `Hello World\x04` comes back `=?UTF-8?Q?Hello_World=04?=`,
//! and `日本語` as `=?UTF-8?B?5pel5pys6Kqe?=`.

use base64::Engine;
use hyper::header::HeaderValue;
use hyper::Response;
use s3s::Body;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Encoded text per word: JavaMail's `68 - "UTF-8".len()`.
const WORD_TEXT: usize = 63;

/// Rewrites the `x-amz-meta-*` headers s3s encoded as base64 words in AWS's encoding.
pub(crate) fn reencode_user_metadata(resp: &mut Response<Body>) {
    for (name, value) in resp.headers_mut().iter_mut() {
        if !name.as_str().starts_with("x-amz-meta-") {
            continue;
        }
        let Some(text) = value.to_str().ok().and_then(decode_b_words) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_str(&encode(&text)) {
            *value = v;
        }
    }
}

/// The text of one or more space-separated `=?UTF-8?B?…?=` words (as s3s writes them);
/// `None` for anything else.
fn decode_b_words(value: &str) -> Option<String> {
    let mut bytes = Vec::new();
    for word in value.split(' ') {
        let text = word.strip_prefix("=?UTF-8?B?")?.strip_suffix("?=")?;
        bytes.extend(B64.decode(text).ok()?);
    }
    String::from_utf8(bytes).ok()
}

/// JavaMail's test for a character that needs encoding (per UTF-16 unit).
fn needs_encoding(c: char) -> bool {
    let c = c as u32;
    c >= 0x7f || (c < 0x20 && c != u32::from(b'\t'))
}

/// `text` as AWS returns it in a header.
fn encode(text: &str) -> String {
    let (mut ascii, mut other) = (0, 0);
    for c in text.chars() {
        if needs_encoding(c) {
            other += c.len_utf16();
        } else {
            ascii += 1;
        }
    }
    if other == 0 {
        return text.to_string();
    }
    let base64 = other > ascii;
    let mut words = Vec::new();
    encode_words(text, base64, &mut words);
    words.join(" ")
}

/// Q bytes: a space is `_`; controls, non-ASCII and `=?_` are `=XX`.
fn q_encoded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        match b {
            b' ' => out.push('_'),
            b'=' | b'?' | b'_' => out.push_str(&format!("={b:02X}")),
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out
}

/// One word if it fits, else the two halves (by characters) recursively, as JavaMail does.
fn encode_words(text: &str, base64: bool, words: &mut Vec<String>) {
    let encoded = if base64 {
        B64.encode(text.as_bytes())
    } else {
        q_encoded(text.as_bytes())
    };
    let chars = text.chars().count();
    if encoded.len() > WORD_TEXT && chars > 1 {
        let mid = text
            .char_indices()
            .nth(chars / 2)
            .map_or(text.len(), |(i, _)| i);
        encode_words(&text[..mid], base64, words);
        encode_words(&text[mid..], base64, words);
        return;
    }
    let kind = if base64 { 'B' } else { 'Q' };
    words.push(format!("=?UTF-8?{kind}?{encoded}?="));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_the_share_of_ascii() {
        assert_eq!(encode("plain text"), "plain text");
        assert_eq!(encode("tab\there"), "tab\there");
        assert_eq!(encode("\x04mymeta"), "=?UTF-8?Q?=04mymeta?=");
        assert_eq!(encode("Hello World\u{e9}"), "=?UTF-8?Q?Hello_World=C3=A9?=");
        assert_eq!(encode("a=b?c_d é"), "=?UTF-8?Q?a=3Db=3Fc=5Fd_=C3=A9?=");
        assert_eq!(encode("日本語"), "=?UTF-8?B?5pel5pys6Kqe?=");
        // Half and half is still mostly ASCII.
        assert_eq!(encode("aé"), "=?UTF-8?Q?a=C3=A9?=");
    }

    #[test]
    fn long_values_split_into_words_that_decode_back() {
        let text = "ü".repeat(40);
        let encoded = encode(&text);
        let words: Vec<&str> = encoded.split(' ').collect();
        assert!(words.len() > 1, "{encoded}");
        for w in &words {
            assert!(w.len() <= WORD_TEXT + 12, "{w}");
        }
        assert_eq!(decode_b_words(&encoded).as_deref(), Some(text.as_str()));
    }

    #[test]
    fn only_s3s_base64_words_are_rewritten() {
        assert_eq!(decode_b_words("plain"), None);
        assert_eq!(decode_b_words("=?UTF-8?Q?x?="), None);
        assert_eq!(
            decode_b_words("=?UTF-8?B?5pel?= =?UTF-8?B?5pys?=").as_deref(),
            Some("日本")
        );
    }
}
