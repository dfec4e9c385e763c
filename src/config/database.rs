//! `database.*`, and how its URL is shown: never with its secrets, since
//! the URL appears in log lines, errors and `gazette config check`.

use std::fmt;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// `gazette serve` applies pending migrations at start. Right for one
    /// machine; with several, migrations are one deliberate step
    /// (`gazette migrate`) before the processes are restarted.
    pub migrate_on_start: bool,
}

// A PostgreSQL URL may carry a password.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact(&self.url))
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
    use super::redact;

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
