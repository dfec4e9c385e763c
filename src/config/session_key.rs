//! The staff session cookie's key: `server.session_key` as configured, or,
//! outside production, one generated on first start and kept on disk so
//! every process on the same data shares it.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::Deserialize;

use super::Settings;

pub const MIN_SESSION_KEY_BYTES: usize = 64;

/// The staff session cookie's key as configured: at least 64 bytes, given
/// as base64 or hex, or empty (then one is generated and kept on disk).
/// Never printed: Debug shows only whether it is set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionKey(Option<Vec<u8>>);

/// Why a written session key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSessionKey {
    #[error("must be written as base64 or hex")]
    Encoding,
    #[error("must be at least {MIN_SESSION_KEY_BYTES} bytes (it has {0}); `openssl rand -hex 64` makes one")]
    TooShort(usize),
}

impl SessionKey {
    pub fn parse(raw: &str) -> Result<Self, BadSessionKey> {
        // Line breaks and spaces inside are dropped: base64 tools wrap their
        // output (`openssl rand -base64 64` prints two lines).
        let raw: String = raw.split_ascii_whitespace().collect();
        let raw = raw.as_str();
        if raw.is_empty() {
            return Ok(Self(None));
        }
        let bytes = decode_hex(raw)
            .or_else(|| {
                use base64::Engine;
                let engines = [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE,
                ];
                engines.iter().find_map(|e| e.decode(raw).ok())
            })
            .ok_or(BadSessionKey::Encoding)?;
        if bytes.len() < MIN_SESSION_KEY_BYTES {
            return Err(BadSessionKey::TooShort(bytes.len()));
        }
        Ok(Self(Some(bytes)))
    }

    pub fn bytes(&self) -> Option<&[u8]> {
        self.0.as_deref()
    }
}

fn decode_hex(raw: &str) -> Option<Vec<u8>> {
    if !raw.len().is_multiple_of(2) || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok())
        .collect()
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "SessionKey(***)"
        } else {
            "SessionKey(unset)"
        })
    }
}

impl<'de> Deserialize<'de> for SessionKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SessionKey::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    #[error(
        "server.session_key is not set: GAZETTE_ENV=production needs a fixed key \
         (at least {MIN_SESSION_KEY_BYTES} bytes as base64 or hex; `openssl rand -hex 64` makes one)"
    )]
    MissingInProduction,
    #[error("server.session_key: cannot read or write {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("server.session_key: {path} does not hold a usable key: {why}")]
    BadFile { path: String, why: String },
}

impl Settings {
    /// The key for the session cookie: `server.session_key`, or else one kept
    /// in `session.key` beside the SQLite database (in `data/` for
    /// PostgreSQL), generated on first start. In production a missing key
    /// stops the process: several web processes must share one key, and a
    /// key that changes on each deploy would log everybody out.
    pub fn session_key(&self) -> Result<Vec<u8>, SessionKeyError> {
        if let Some(bytes) = self.server.session_key.bytes() {
            return Ok(bytes.to_vec());
        }
        if self.is_production() {
            return Err(SessionKeyError::MissingInProduction);
        }
        let path = key_path(&self.database.url);
        let file_error = |source| SessionKeyError::File {
            path: path.display().to_string(),
            source,
        };
        let read = |path: &Path| -> Result<Option<Vec<u8>>, SessionKeyError> {
            let bad = |why: String| SessionKeyError::BadFile {
                path: path.display().to_string(),
                why,
            };
            match std::fs::read_to_string(path) {
                Ok(text) => SessionKey::parse(&text)
                    .map_err(|e| bad(e.to_string()))?
                    .bytes()
                    .map(|key| Some(key.to_vec()))
                    .ok_or_else(|| bad("the file is empty".into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(file_error(source)),
            }
        };
        if let Some(key) = read(&path)? {
            return Ok(key);
        }
        let mut key = vec![0u8; MIN_SESSION_KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        let hex = crate::domain::lower_hex(&key);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        // Written whole under a private name, then linked into place: another
        // process starting at the same moment either wins the link or reads
        // the winner's complete key, never half a file.
        let draft = path.with_extension(format!("key.{}", uuid::Uuid::new_v4().simple()));
        write_private(&draft, &hex).map_err(file_error)?;
        let linked = std::fs::hard_link(&draft, &path);
        let _ = std::fs::remove_file(&draft);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a session key for staff logins (set server.session_key to choose one)");
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                read(&path)?.ok_or_else(|| SessionKeyError::BadFile {
                    path: path.display().to_string(),
                    why: "it vanished while being read".into(),
                })
            }
            Err(e) => Err(file_error(e)),
        }
    }
}

fn key_path(database_url: &str) -> PathBuf {
    match super::database::sqlite_file(database_url).and_then(Path::parent) {
        Some(dir) => dir.join("session.key"),
        None => PathBuf::from("data/session.key"),
    }
}

/// Writes a file only its owner can read (mode 0600 on Unix).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_are_64_bytes_of_hex_or_base64_and_masked() {
        assert_eq!(SessionKey::parse("  ").unwrap().bytes(), None);
        assert!(SessionKey::parse(&"ab".repeat(63)).is_err(), "63 bytes is too short");
        let hex = SessionKey::parse(&"ab".repeat(64)).unwrap();
        assert_eq!(hex.bytes().unwrap(), &[0xab; 64][..]);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(SessionKey::parse(&b64).unwrap().bytes().unwrap(), &[7u8; 64][..]);
        assert!(SessionKey::parse("not a key!").is_err());
        // base64 as openssl writes it, wrapped at 64 characters.
        let (first, second) = b64.split_at(64);
        let wrapped = format!("{first}\n{second}\n");
        assert_eq!(SessionKey::parse(&wrapped).unwrap().bytes().unwrap(), &[7u8; 64][..]);
        assert_eq!(format!("{hex:?}"), "SessionKey(***)");
    }

    #[test]
    fn the_key_lives_beside_the_sqlite_database() {
        assert_eq!(key_path("sqlite://data/gazette.db"), PathBuf::from("data/session.key"));
        assert_eq!(
            key_path("sqlite:///srv/g/db.sqlite?mode=rwc"),
            PathBuf::from("/srv/g/session.key")
        );
        assert_eq!(key_path("postgres://u@h/db"), PathBuf::from("data/session.key"));
    }
}
