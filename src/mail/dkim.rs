//! DKIM signing (RFC 6376; RFC 8463 for Ed25519), relaxed/relaxed, over
//! the exact bytes a transport sends. lettre's own signer hashes
//! `Message::headers()`, which lacks a multipart message's top-level
//! `Content-Type`, so receivers computed another header hash and every
//! signature failed; signing the formatted message removes that gap.
//!
//! An issue's copies share all of their body but the reader's link, so the
//! body hash can be fed in parts ([`BodyHash`]): the parts every copy
//! shares are canonicalised once ([`CanonicalPiece`]) and the hash state
//! after the first of them is cloned, leaving a copy only its link to
//! canonicalise and its headers to hash and sign.
//!
//! The list of signed headers is explicit: lettre's default leaves out
//! Message-ID and the list headers, and RFC 8058 §4 asks that
//! List-Unsubscribe and List-Unsubscribe-Post be signed, or a one-click
//! link could be forged in. The crypto is ring's, which rustls already
//! brings: constant-time, and no second RSA implementation in the binary.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest::{Context, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

use crate::config::{DkimAlgorithm, DkimSettings};

/// The headers every signature covers. A header a message lacks is still
/// listed: nobody can add it later without breaking the signature.
pub const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Archive",
    "Reply-To",
    "Feedback-ID",
];

/// Signs messages for one domain and selector. The key never appears in
/// `Debug` output.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("key", &"***")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DKIM signing failed")]
pub struct SignError;

/// Why `mail.dkim` describes no key Gazette can sign with. Each message
/// names the setting and carries its cause, since the process stops with
/// that one line; so the cause is not given again as a `source`.
#[derive(Debug, thiserror::Error)]
pub enum DkimSetupError {
    #[error("mail.dkim.selector: must be set when mail.dkim.domain is")]
    NoSelector,
    #[error("mail.dkim.domain: `{}` is not a domain name in ASCII (IDNA) form", .0.escape_debug())]
    Domain(String),
    #[error("mail.dkim.selector: `{}` may hold only letters, digits, `.`, `-` and `_`", .0.escape_debug())]
    Selector(String),
    #[error("mail.dkim.private_key_file: cannot read {}: {cause}", .file.display())]
    Unreadable { file: PathBuf, cause: std::io::Error },
    #[error("mail.dkim.private_key_file: {} is not {cause}", .file.display())]
    Key { file: PathBuf, cause: KeyError },
}

/// A key file's text that holds no key of the configured algorithm; the
/// message says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Shape(&'static str),
    #[error("{expected}: {cause}")]
    Rejected {
        expected: &'static str,
        cause: ring::error::KeyRejected,
    },
}

impl DkimSigner {
    /// The signer the settings describe, or `None` when `mail.dkim.domain`
    /// is empty. Errors name the key and say what was expected.
    pub fn from_settings(dkim: &DkimSettings) -> Result<Option<Self>, DkimSetupError> {
        let domain = dkim.domain.trim();
        if domain.is_empty() {
            return Ok(None);
        }
        let selector = dkim.selector.trim();
        if selector.is_empty() {
            return Err(DkimSetupError::NoSelector);
        }
        let is_dns_label_text = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        };
        if !is_dns_label_text(domain) {
            return Err(DkimSetupError::Domain(domain.to_owned()));
        }
        if !is_dns_label_text(selector) {
            return Err(DkimSetupError::Selector(selector.to_owned()));
        }
        let file = &dkim.private_key_file;
        let text = std::fs::read_to_string(file).map_err(|cause| DkimSetupError::Unreadable {
            file: file.clone(),
            cause,
        })?;
        let key = SigningKey::parse(&text, dkim.algorithm).map_err(|cause| DkimSetupError::Key {
            file: file.clone(),
            cause,
        })?;
        Ok(Some(Self {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            key,
        }))
    }

    /// Whether a signature costs enough CPU to be made off the thread
    /// that drives the connections: an RSA signature takes 0.5–1.6 ms, an
    /// Ed25519 one a few µs beside its body hash (BENCHMARKS.md).
    pub fn is_slow(&self) -> bool {
        matches!(self.key, SigningKey::Rsa(_))
    }

    /// Where the public key is published: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`DkimSigner::dns_name`].
    pub fn dns_record(&self) -> String {
        let (kind, public) = match &self.key {
            SigningKey::Rsa(key) => ("rsa", subject_public_key_info_rsa(key.public().as_ref())),
            SigningKey::Ed25519(key) => ("ed25519", key.public_key().as_ref().to_vec()),
        };
        format!("v=DKIM1; k={kind}; p={}", BASE64.encode(public))
    }

    /// The message with a `DKIM-Signature` header in front. `message` is a
    /// whole message with CRLF line ends, as a transport sends it.
    pub fn sign(&self, message: &[u8], now_unix: u64) -> Result<Vec<u8>, SignError> {
        let (headers, body) = split_message(message);
        let mut body_hash = BodyHash::new();
        body_hash.feed(body);
        let signature = self.signature_field(headers, &body_hash.finish(), now_unix)?;
        let mut out = Vec::with_capacity(signature.len() + message.len());
        out.extend_from_slice(&signature);
        out.extend_from_slice(message);
        Ok(out)
    }

    /// The `DKIM-Signature` field (with its CRLF) for a message whose
    /// header block is `headers` (each field ending in CRLF, without the
    /// empty line) and whose body's hash is `body_hash`: the per-copy half
    /// of [`DkimSigner::sign`], for bodies hashed from cached pieces.
    pub fn signature_field(&self, headers: &[u8], body_hash: &BodyDigest, now_unix: u64) -> Result<Vec<u8>, SignError> {
        let body_hash = BASE64.encode(body_hash.0.as_ref());
        let algorithm = match self.key {
            SigningKey::Rsa(_) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        };
        let names = SIGNED_HEADERS.map(str::to_ascii_lowercase).join(":");
        // Folded so that no line passes 78 characters but `h=`; `b=` is
        // folded after signing, which verifiers allow (whitespace in b= is
        // ignored, and the value is left out of the hash).
        let unsigned = format!(
            "DKIM-Signature: v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={};\r\n\tt={now_unix}; h={names};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain, self.selector
        );

        let fields = header_fields(headers);
        let mut used = vec![false; fields.len()];
        let mut signed = Vec::with_capacity(headers.len() + unsigned.len());
        for name in SIGNED_HEADERS {
            // The last instance not yet used (RFC 6376 §5.4.2); none: nothing.
            let found = (0..fields.len())
                .rev()
                .find(|&i| !used[i] && field_name(fields[i]).eq_ignore_ascii_case(name.as_bytes()));
            if let Some(i) = found {
                used[i] = true;
                relaxed_header(fields[i], &mut signed);
                signed.extend_from_slice(b"\r\n");
            }
        }
        relaxed_header(unsigned.as_bytes(), &mut signed);

        let signature = match &self.key {
            SigningKey::Rsa(key) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), &signed, &mut out)
                    .map_err(|_| SignError)?;
                out
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data.
            SigningKey::Ed25519(key) => key
                .sign(ring::digest::digest(&SHA256, &signed).as_ref())
                .as_ref()
                .to_vec(),
        };
        let signature = BASE64.encode(signature);

        let mut out = Vec::with_capacity(unsigned.len() + signature.len() + signature.len() / 70 * 3 + 2);
        out.extend_from_slice(unsigned.as_bytes());
        for (i, chunk) in signature.as_bytes().chunks(70).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n\t ");
            }
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

/// The SHA-256 of a body's relaxed canonical form, fed a piece at a time.
/// Cloning it clones the hash state, so the hash of what every copy of an
/// issue begins with is computed once.
#[derive(Clone)]
pub struct BodyHash {
    hash: Context,
    relaxed: Relaxed,
}

/// A finished body hash, for [`DkimSigner::signature_field`].
pub struct BodyDigest(ring::digest::Digest);

impl Default for BodyHash {
    fn default() -> Self {
        Self::new()
    }
}

impl BodyHash {
    pub fn new() -> Self {
        Self {
            hash: Context::new(&SHA256),
            relaxed: Relaxed::default(),
        }
    }

    /// Canonicalises and hashes `bytes`, the next part of the body. Every
    /// part but the last must end at a line end: a line is canonicalised
    /// whole, and a last line without CRLF is given one.
    pub fn feed(&mut self, bytes: &[u8]) {
        let hash = &mut self.hash;
        self.relaxed.lines(bytes, |b| hash.update(b));
    }

    /// Hashes a piece canonicalised beforehand, as [`BodyHash::feed`] would.
    pub fn feed_canonical(&mut self, piece: &CanonicalPiece) {
        if piece.lines.is_empty() {
            self.relaxed.empty_lines += piece.trailing_empty_lines;
            return;
        }
        self.relaxed.flush_empty_lines(|b| self.hash.update(b));
        self.hash.update(&piece.lines);
        self.relaxed.empty_lines = piece.trailing_empty_lines;
    }

    /// The hash; empty lines at the end of the body are left out, as
    /// relaxed canonicalisation asks.
    pub fn finish(self) -> BodyDigest {
        BodyDigest(self.hash.finish())
    }
}

/// A part of a body (beginning at a line start, ending at a line end) in
/// relaxed canonical form, made once and hashed into many bodies. Empty
/// lines at its end are only counted: whether they are part of the
/// canonical body depends on what follows the piece.
#[derive(Debug, Clone)]
pub struct CanonicalPiece {
    lines: Vec<u8>,
    trailing_empty_lines: usize,
}

impl CanonicalPiece {
    pub fn new(bytes: &[u8]) -> Self {
        let mut relaxed = Relaxed::default();
        let mut lines = Vec::with_capacity(bytes.len());
        relaxed.lines(bytes, |b| lines.extend_from_slice(b));
        Self {
            lines,
            trailing_empty_lines: relaxed.empty_lines,
        }
    }
}

impl SigningKey {
    /// A key from the file's text; the error says what was expected.
    fn parse(text: &str, algorithm: DkimAlgorithm) -> Result<Self, KeyError> {
        match algorithm {
            DkimAlgorithm::Rsa => {
                const EXPECTED: &str = "an RSA private key of 2048 to 4096 bits in PEM \
                                        (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY, unencrypted)";
                let key = if let Some(der) = pem(text, "RSA PRIVATE KEY") {
                    RsaKeyPair::from_der(&der)
                } else if let Some(der) = pem(text, "PRIVATE KEY") {
                    RsaKeyPair::from_pkcs8(&der)
                } else {
                    return Err(KeyError::Shape(EXPECTED));
                };
                key.map(SigningKey::Rsa).map_err(|cause| KeyError::Rejected {
                    expected: EXPECTED,
                    cause,
                })
            }
            DkimAlgorithm::Ed25519 => {
                const EXPECTED: &str =
                    "an Ed25519 private key: 32 bytes in base64, or PEM (BEGIN PRIVATE KEY, unencrypted)";
                let key = if let Some(der) = pem(text, "PRIVATE KEY") {
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                } else {
                    match BASE64.decode(text.trim()) {
                        Ok(seed) if seed.len() == 32 => Ed25519KeyPair::from_seed_unchecked(&seed),
                        _ => return Err(KeyError::Shape(EXPECTED)),
                    }
                };
                key.map(SigningKey::Ed25519).map_err(|cause| KeyError::Rejected {
                    expected: EXPECTED,
                    cause,
                })
            }
        }
    }
}

/// The DER inside `-----BEGIN {label}-----` … `-----END {label}-----`.
fn pem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let base64: String = text[start..stop].split_whitespace().collect();
    BASE64.decode(base64).ok()
}

/// A PKCS#1 RSAPublicKey wrapped as the SubjectPublicKeyInfo DKIM's `p=`
/// carries (what `openssl rsa -pubout` prints).
fn subject_public_key_info_rsa(rsa_public_key: &[u8]) -> Vec<u8> {
    fn der(tag: u8, content: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
    }
    // SEQUENCE { OID rsaEncryption (1.2.840.113549.1.1.1), NULL }
    const RSA_ENCRYPTION: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8]; // no unused bits
    bits.extend_from_slice(rsa_public_key);
    let mut content = RSA_ENCRYPTION.to_vec();
    der(0x03, &bits, &mut content);
    let mut out = Vec::with_capacity(content.len() + 4);
    der(0x30, &content, &mut out);
    out
}

/// The header block (each field ending in CRLF) and the body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// Each header field with its folding, without the final CRLF.
fn header_fields(headers: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while let Some(offset) = crlf(&headers[at..]) {
        let end = at + offset;
        let next = end + 2;
        let continues = matches!(headers.get(next), Some(b' ' | b'\t'));
        if !continues {
            if end > start {
                fields.push(&headers[start..end]);
            }
            start = next;
        }
        at = next;
    }
    if start < headers.len() {
        fields.push(&headers[start..]);
    }
    fields
}

fn field_name(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    field[..colon].trim_ascii_end()
}

/// RFC 6376 §3.4.2: the name in lower case, the value unfolded, runs of
/// whitespace made one space, none around the colon or at the end.
fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    out.extend(field[..colon].trim_ascii_end().iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut space = false;
    let mut started = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = started,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                started = true;
                out.push(b);
            }
        }
    }
}

/// RFC 6376 §3.4.4, line by line: whitespace at line ends dropped, runs
/// of it made one space, empty lines at the end dropped, and a last line
/// without CRLF given one. Empty lines are held back until a line with
/// text follows, so a body may be canonicalised in parts that each end at
/// a line end. Lines needing no change (nearly all of a quoted-printable
/// body) go out as they are.
#[derive(Debug, Clone, Default)]
struct Relaxed {
    empty_lines: usize,
    scratch: Vec<u8>,
}

impl Relaxed {
    fn flush_empty_lines(&mut self, mut out: impl FnMut(&[u8])) {
        for _ in 0..self.empty_lines {
            out(b"\r\n");
        }
        self.empty_lines = 0;
    }

    fn lines(&mut self, body: &[u8], mut out: impl FnMut(&[u8])) {
        let mut rest = body;
        while !rest.is_empty() {
            let (line, next) = match crlf(rest) {
                Some(at) => (&rest[..at], &rest[at + 2..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            let is_wsp = |b: &u8| *b == b' ' || *b == b'\t';
            let trimmed_len = line.len() - line.iter().rev().take_while(|b| is_wsp(b)).count();
            let line = &line[..trimmed_len];
            if line.is_empty() {
                self.empty_lines += 1;
                continue;
            }
            self.flush_empty_lines(&mut out);
            let needs_change = line
                .iter()
                .zip(&line[1..])
                .any(|(&a, &b)| b == b'\t' || (a == b' ' && b == b' '))
                || line[0] == b'\t';
            if needs_change {
                self.scratch.clear();
                let mut space = false;
                for &b in line {
                    if is_wsp(&b) {
                        space = true;
                    } else {
                        if space {
                            self.scratch.push(b' ');
                            space = false;
                        }
                        self.scratch.push(b);
                    }
                }
                out(&self.scratch);
            } else {
                out(line);
            }
            out(b"\r\n");
        }
    }
}

/// Where the first CRLF starts.
fn crlf(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(lf) = bytes[from..].iter().position(|&b| b == b'\n') {
        let at = from + lf;
        if at > 0 && bytes[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_body(body: &[u8]) -> Vec<u8> {
        // The hash of the canonical form equals the hash of what we expect.
        let mut hash = BodyHash::new();
        hash.feed(body);
        hash.finish().0.as_ref().to_vec()
    }

    fn sha(bytes: &[u8]) -> Vec<u8> {
        ring::digest::digest(&SHA256, bytes).as_ref().to_vec()
    }

    #[test]
    fn relaxed_body_follows_rfc_6376() {
        // RFC 6376 §3.4.6's example.
        assert_eq!(canonical_body(b" C \r\nD \t E\r\n\r\n\r\n"), sha(b" C\r\nD E\r\n"));
        assert_eq!(canonical_body(b"no final line end"), sha(b"no final line end\r\n"));
        assert_eq!(canonical_body(b"a\r\n\r\nb\r\n \r\n"), sha(b"a\r\n\r\nb\r\n"));
        assert_eq!(canonical_body(b""), sha(b""));
        assert_eq!(canonical_body(b"\ta  b\tc\r\n"), sha(b" a b c\r\n"));
        assert_eq!(canonical_body(b"bare\nlf\r\n"), sha(b"bare\nlf\r\n"));
    }

    #[test]
    fn relaxed_headers_follow_rfc_6376() {
        // RFC 6376 §3.4.6's example.
        let mut out = Vec::new();
        relaxed_header(b"A: X", &mut out);
        out.extend_from_slice(b"\r\n");
        relaxed_header(b"B : Y\t\r\n\tZ  ", &mut out);
        assert_eq!(out, b"a:X\r\nb:Y Z");
        let fields = header_fields(b"A: X\r\nB : Y\t\r\n\tZ  \r\nC: 1\r\n");
        assert_eq!(fields, vec![&b"A: X"[..], b"B : Y\t\r\n\tZ  ", b"C: 1"]);
    }

    #[test]
    fn rsa_public_keys_are_published_as_subject_public_key_info() {
        let key = SigningKey::parse(include_str!("../../tests/fixtures/dkim-rsa.pem"), DkimAlgorithm::Rsa).unwrap();
        let SigningKey::Rsa(key) = key else { unreachable!() };
        let spki = subject_public_key_info_rsa(key.public().as_ref());
        // What `openssl rsa -pubout -outform DER` gives for the fixture.
        let expected = include_str!("../../tests/fixtures/dkim-rsa.pub");
        let expected: String = expected.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(BASE64.encode(spki), expected);
    }

    #[test]
    fn keys_in_other_shapes_are_refused_with_what_was_expected() {
        let rsa = SigningKey::parse("not a key", DkimAlgorithm::Rsa)
            .err()
            .unwrap()
            .to_string();
        assert!(rsa.contains("RSA private key"), "{rsa}");
        let short = SigningKey::parse(&BASE64.encode([1u8; 31]), DkimAlgorithm::Ed25519)
            .err()
            .unwrap()
            .to_string();
        assert!(short.contains("32 bytes"), "{short}");
        let rsa_as_ed = SigningKey::parse(
            include_str!("../../tests/fixtures/dkim-rsa.pem"),
            DkimAlgorithm::Ed25519,
        );
        assert!(rsa_as_ed.is_err());
    }

    proptest::proptest! {
        #[test]
        fn a_body_hashed_in_pieces_hashes_as_it_does_whole(
            lines in proptest::collection::vec("[ \t.a=]{0,6}", 0..40),
            cuts in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
            cached in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
            last_line_end in proptest::prelude::any::<bool>(),
        ) {
            let mut pieces = vec![Vec::new()];
            for (i, line) in lines.iter().enumerate() {
                let piece = pieces.last_mut().unwrap();
                piece.extend_from_slice(line.as_bytes());
                if i + 1 < lines.len() || last_line_end {
                    piece.extend_from_slice(b"\r\n");
                }
                if cuts[i] {
                    pieces.push(Vec::new());
                }
            }
            let body: Vec<u8> = pieces.concat();
            let mut whole = BodyHash::new();
            whole.feed(&body);
            // Each piece either canonicalised on the spot or beforehand.
            let mut by_piece = BodyHash::new();
            for (i, piece) in pieces.iter().enumerate() {
                match cached[i] {
                    true => by_piece.feed_canonical(&CanonicalPiece::new(piece)),
                    false => by_piece.feed(piece),
                }
            }
            let (whole, by_piece) = (whole.finish(), by_piece.finish());
            proptest::prop_assert_eq!(whole.0.as_ref(), by_piece.0.as_ref());
        }
    }
}
