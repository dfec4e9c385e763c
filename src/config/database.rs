//! `database.*`, and how its URL is shown: never with its secrets, since
//! the URL appears in log lines, errors and `gazette config check`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    /// A file holding the URL (it may carry a password); empty: `url`.
    pub url_file: PathBuf,
    pub max_connections: u32,
    /// `gazette serve` applies pending migrations at start. Right for one
    /// machine; with several, migrations are one deliberate step
    /// (`gazette migrate`) before the processes are restarted.
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// The file a `sqlite:` URL names (`None` for PostgreSQL and for an
    /// in-memory database).
    pub fn sqlite_file(&self) -> Option<&Path> {
        sqlite_file(&self.url)
    }
}

/// The file of a `sqlite://path` or `sqlite:path` URL, without its options.
pub(super) fn sqlite_file(url: &str) -> Option<&Path> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|file| !file.is_empty() && *file != ":memory:")
        .map(Path::new)
}

// A PostgreSQL URL may carry a password.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact(&self.url))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// Query parameters of a database URL that hold secrets (`password`,
/// `sslpassword`, …).
pub(crate) fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name == "pass" || name == "pwd"
}

/// The URL with its secrets replaced by `***`, for log lines, errors and
/// `gazette config check`: the password in the userinfo
/// (`postgres://user:***@host/db`) and in query parameters
/// (`?password=***`).
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{redact, sqlite_file};
    use std::path::Path;

    #[test]
    fn the_sqlite_file_is_the_url_without_scheme_and_options() {
        assert_eq!(
            sqlite_file("sqlite://data/gazette.db"),
            Some(Path::new("data/gazette.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/gazette/g.db?mode=rwc"),
            Some(Path::new("/var/lib/gazette/g.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("sqlite://data/gazette.db"), "sqlite://data/gazette.db");
        assert_eq!(
            redact("postgres://u@db/x?sslmode=require&password=s3cret&PASSWORD=x"),
            "postgres://u@db/x?sslmode=require&password=***&PASSWORD=***"
        );
        assert_eq!(
            redact("postgres://u:p@ss@db/x?application_name=a@b"),
            "postgres://u:***@db/x?application_name=a@b"
        );
    }
}
