//! DKIM signing (optional): relaxed/relaxed, over an explicit list of
//! headers. lettre's default list leaves out Message-ID and the list
//! headers, and RFC 8058 §4 asks that List-Unsubscribe and
//! List-Unsubscribe-Post be signed, or a one-click link could be forged in.

use lettre::message::header::HeaderName;
use lettre::message::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};

use crate::config::{DkimAlgorithm, DkimSettings};

/// The headers every signature covers (a header a message lacks is still
/// listed, so nobody can add it later without breaking the signature).
pub const SIGNED_HEADERS: [&str; 12] = [
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
];

/// The signing configuration, or `None` when `mail.dkim.domain` is empty.
pub fn signing_config(dkim: &DkimSettings) -> Result<Option<DkimConfig>, String> {
    if dkim.domain.trim().is_empty() {
        return Ok(None);
    }
    if dkim.selector.trim().is_empty() {
        return Err("mail.dkim.selector: must be set when mail.dkim.domain is".into());
    }
    let key_file = &dkim.private_key_file;
    let key = std::fs::read_to_string(key_file)
        .map_err(|e| format!("mail.dkim.private_key_file: cannot read {}: {e}", key_file.display()))?;
    let algorithm = match dkim.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| {
        let expected = match dkim.algorithm {
            DkimAlgorithm::Rsa => "an RSA private key in PKCS#1 PEM (BEGIN RSA PRIVATE KEY)",
            DkimAlgorithm::Ed25519 => "an Ed25519 private key: 32 bytes in base64",
        };
        format!(
            "mail.dkim.private_key_file: {} is not {expected}: {e}",
            key_file.display()
        )
    })?;
    let relaxed = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    let headers = SIGNED_HEADERS
        .iter()
        .map(|name| HeaderName::new_from_ascii_str(name))
        .collect();
    Ok(Some(DkimConfig::new(
        dkim.selector.trim().to_owned(),
        dkim.domain.trim().to_owned(),
        key,
        headers,
        relaxed,
    )))
}
