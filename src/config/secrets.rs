//! Secrets from files: `server.session_key_file`, `mail.smtp.password_file`
//! (and each `mail.relays[i].password_file`)
//! and `database.url_file` name a file whose content is the value, so a
//! secret can live in a file only the service reads, or in a systemd
//! credential (`LoadCredential=` with `%d/NAME` in the unit), instead of in
//! an environment file every command must be given.

use std::path::Path;

use super::{ConfigError, SessionKey, Settings};

impl Settings {
    /// Replaces each secret whose `…_file` key is set by the file's content.
    /// Setting both a secret and its file is refused: one of them would be
    /// silently ignored.
    pub(super) fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(text) = read("server.session_key", &self.server.session_key_file, || {
            self.server.session_key.bytes().is_some()
        })? {
            self.server.session_key = SessionKey::parse(&text).map_err(|why| {
                ConfigError(format!(
                    "server.session_key_file: {} {why}",
                    self.server.session_key_file.display()
                ))
            })?;
        }
        if let Some(text) = read("mail.smtp.password", &self.mail.smtp.password_file, || {
            !self.mail.smtp.password.is_empty()
        })? {
            self.mail.smtp.password = text;
        }
        for (i, relay) in self.mail.relays.0.iter_mut().enumerate() {
            let key = format!("mail.relays[{i}].password");
            if let Some(text) = read(&key, &relay.smtp.password_file, || !relay.smtp.password.is_empty())? {
                relay.smtp.password = text;
            }
        }
        if let Some(text) = read("database.url", &self.database.url_file, || false)? {
            // database.url always has a value (its default); the file wins.
            self.database.url = text;
        }
        Ok(())
    }
}

/// The secret in `file` (empty path: none), without the line break that
/// ends it; an error names the key when the file cannot be used.
fn read(key: &str, file: &Path, also_set: impl FnOnce() -> bool) -> Result<Option<String>, ConfigError> {
    if file.as_os_str().is_empty() {
        return Ok(None);
    }
    if also_set() {
        return Err(ConfigError(format!(
            "{key} and {key}_file are both set: keep one (the file is meant for secrets kept out of the environment)"
        )));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError(format!("{key}_file: cannot read {}: {e}", file.display())))?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Err(ConfigError(format!("{key}_file: {} is empty", file.display())));
    }
    if text.contains(['\r', '\n']) && key != "server.session_key" {
        return Err(ConfigError(format!(
            "{key}_file: {} holds more than one line; the secret must be its only line",
            file.display()
        )));
    }
    Ok(Some(text.to_owned()))
}
