//! Layered settings: `config/default.toml` (also compiled in), then `config/$GAZETTE_ENV.toml`,
//! then `GAZETTE_<SECTION>__<KEY>` environment variables.
//!
//! Values are parsed into typed settings once, at start-up, so a bad value
//! stops the process with a message naming the key instead of failing later.
//!
//! Every module reads its settings here, so this module uses nothing of the
//! crate but `domain`: the types a setting parses into live beside it.

mod database;
mod digest_languages;
mod inbound;
mod proxies;
mod relays;
mod schedule;
mod secrets;
mod session_key;
mod subject;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

pub(crate) use database::is_secret_parameter;
pub use database::{DatabaseSettings, redact};
pub use digest_languages::DigestLanguages;
pub use inbound::InboundSettings;
pub use proxies::{BadProxyEntry, TrustedProxies};
pub use relays::{RelayList, RelaySettings};
pub use schedule::{CronSchedule, ScheduleError, ScheduleTimezone};
pub use session_key::{BadSessionKey, MIN_SESSION_KEY_BYTES, SessionKey, SessionKeyError};
pub use subject::{SubjectTemplate, SubjectValues};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub delivery: DeliverySettings,
    pub subscriptions: SubscriptionSettings,
    pub limits: LimitSettings,
    pub digest: DigestSettings,
    pub log: LogSettings,
    pub schedule: ScheduleSettings,
    pub metrics: MetricsSettings,
    pub feeds: FeedSettings,
    pub webhooks: WebhookSettings,
    pub retention: RetentionSettings,
    pub inbound: InboundSettings,
    pub site: SiteSettings,
    pub signup: SignupSettings,
    pub tracking: TrackingSettings,
    /// Where they came from (`GAZETTE_ENV` as it was, the files and
    /// variables read), for the line every command starts with.
    #[serde(skip)]
    origin: Origin,
}

/// The configuration directory used when none is named: a package's or an
/// operator's install puts the files here, and every command run on that
/// machine (the units, cron, a shell) then finds them without being told.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/gazette";

/// The directory the configuration is read from: the one named by
/// `--config-dir` or `GAZETTE_CONFIG_DIR` (which must exist: a typo would
/// otherwise run on the defaults), else `/etc/gazette` when it exists, else
/// `config` (the checkout's, for the embedded set-up).
pub fn config_dir(named: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    choose_config_dir(named, Path::new(SYSTEM_CONFIG_DIR).is_dir())
}

fn choose_config_dir(named: Option<PathBuf>, system_dir_exists: bool) -> Result<PathBuf, ConfigError> {
    match named {
        Some(dir) if dir.is_dir() => Ok(dir),
        Some(dir) => Err(ConfigError(format!(
            "the configuration directory {} (--config-dir or GAZETTE_CONFIG_DIR) does not exist",
            dir.display()
        ))),
        None if system_dir_exists => Ok(PathBuf::from(SYSTEM_CONFIG_DIR)),
        None => Ok(PathBuf::from("config")),
    }
}

/// Which files and variables a configuration was read from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    dir: PathBuf,
    files: Vec<String>,
    variables: Vec<String>,
    environment: String,
    /// Other environments' files in the directory: a command run without
    /// `GAZETTE_ENV=production` on a production machine shows it did not
    /// read `production.toml`.
    not_read: Vec<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.files.is_empty() {
            write!(f, "built-in defaults (no file in {})", self.dir.display())?;
        } else {
            write!(f, "{} ({})", self.dir.display(), self.files.join(", "))?;
        }
        if !self.variables.is_empty() {
            write!(f, " and {}", self.variables.join(", "))?;
        }
        if !self.not_read.is_empty() {
            write!(
                f,
                "; not read: {} (GAZETTE_ENV is {})",
                self.not_read.join(", "),
                self.environment
            )?;
        }
        Ok(())
    }
}

/// `/metrics` on its own listener, away from the public one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `None` (an empty setting): no metrics listener.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: Option<std::net::SocketAddr>,
    /// The database gauges are read at most this often; scrapes in between
    /// get the last reading.
    pub cache_seconds: u64,
}

fn deserialize_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let raw = String::deserialize(d)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{}` is not an IP address and port such as 127.0.0.1:9100 (empty: no metrics listener)",
            raw.escape_debug()
        ))
    })
}

/// How long what is no longer needed is kept (`gazette prune`, and the
/// daily run of `gazette serve`); 0 keeps that kind forever.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// `gazette serve` prunes at start-up and then once a day.
    pub daily: bool,
    /// Delivery rows of issues sent more than this many months ago are
    /// summarised per issue (counts per outcome) and removed.
    pub delivery_months: u32,
    /// Sent or failed transactional mail older than this loses its address.
    pub mail_address_days: u32,
    /// Readers who never confirmed, signed up more than this many days ago
    /// and hold no valid link, are removed.
    pub unconfirmed_reader_days: u32,
    /// `.eml` files in `mail.outbox_dir` older than this are deleted.
    pub outbox_days: u32,
    /// Articles staff deleted more than this many days ago are purged with
    /// their summaries' earlier versions; until then they can be restored.
    pub deleted_article_days: u32,
}

/// Fetching feeds by URL (`gazette articles import URL`, the admin's import).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// Also fetch from loopback and private networks (intranet feeds).
    /// Link-local, cloud metadata and other special addresses stay refused.
    pub allow_private_addresses: bool,
    /// `gazette serve` polls each source this often.
    pub poll_minutes: u32,
    /// An entry's body (as text) longer than this is cut at a paragraph
    /// boundary.
    pub max_body_bytes: usize,
}

/// Outbound webhooks (see `crate::webhooks`): their targets obey
/// `feeds.allow_private_addresses`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The first retry waits this long; each next one twice as long.
    pub retry_base_seconds: u64,
    /// A delivery still failing this long after it was queued is given up.
    pub give_up_hours: u32,
    /// One request, connection included.
    pub timeout_seconds: u64,
}

/// The built-in weekly dispatch of `gazette serve` (see `crate::schedule`);
/// when it runs and which week an instant falls in is answered by the
/// methods in `config/schedule.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub enabled: bool,
    pub cron: CronSchedule,
    pub timezone: ScheduleTimezone,
    /// A run missed while no process was up is made up at start-up within
    /// this many hours, and skipped after.
    pub grace_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub base_url: BaseUrl,
    pub max_body_bytes: usize,
    pub session_key: SessionKey,
    /// A file holding the session key instead (see `config/secrets.rs`).
    pub session_key_file: PathBuf,
    pub session_idle_minutes: u32,
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
    /// A request body must arrive within this many seconds of its headers.
    pub body_timeout_seconds: u64,
    /// A staff session ends this many hours after its login, however busy.
    pub session_max_hours: u32,
    /// Lets `GAZETTE_ENV=production` run with an http:// base URL (one-click
    /// unsubscribe, RFC 8058, needs https).
    pub allow_http_base_url: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub outbox_dir: PathBuf,
    #[serde(deserialize_with = "deserialize_mailbox")]
    pub from: Mailbox,
    pub smtp: SmtpSettings,
    /// Several relays instead of `mail.smtp` (see `config/relays.rs`);
    /// empty: `mail.smtp` is the one relay.
    #[serde(default)]
    pub relays: RelayList,
    pub dkim: DkimSettings,
    /// The `Feedback-ID` header on every message; empty: none.
    pub feedback_id: String,
    /// The name given in EHLO on every SMTP connection.
    pub helo_name: HeloName,
    /// The domain of the return path (VERP: `bounces+…@bounce_domain`)
    /// and of the per-reader `unsubscribe+…@` mailto, whose mail comes
    /// back to Gazette (`[inbound]`); empty: the return path is `mail.from`
    /// and `List-Unsubscribe` carries only the https link.
    pub bounce_domain: String,
}

/// What Gazette calls itself in SMTP's EHLO (`mail.helo_name`). Relays
/// check it (Postfix's `reject_non_fqdn_helo_hostname`, spam scores), and
/// a container's or a cloud machine's own host name is often no public
/// name at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeloName {
    /// An empty setting: the machine's host name, as before the setting.
    MachineName,
    /// A host name (RFC 1123): letters, digits and hyphens in dot-separated
    /// labels, such as `mail.example.org`.
    Host(String),
    /// An address literal, `[192.0.2.1]` (or written bare).
    Ipv4(std::net::Ipv4Addr),
    /// An address literal, `[IPv6:2001:db8::1]` (or written bare).
    Ipv6(std::net::Ipv6Addr),
}

impl HeloName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Ok(Self::MachineName);
        }
        let wrong = || {
            format!(
                "`{}` is not a host name (such as mail.example.org) or an address literal \
                 (such as [192.0.2.1] or [IPv6:2001:db8::1]); empty: this machine's host name",
                raw.escape_debug()
            )
        };
        if let Some(inner) = name.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(wrong)?;
            let v6 = inner.get(..5).filter(|tag| tag.eq_ignore_ascii_case("IPv6:"));
            return match v6 {
                Some(_) => inner[5..].parse().map(Self::Ipv6).map_err(|_| wrong()),
                None => inner.parse().map(Self::Ipv4).map_err(|_| wrong()),
            };
        }
        if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            return Ok(match ip {
                std::net::IpAddr::V4(v4) => Self::Ipv4(v4),
                std::net::IpAddr::V6(v6) => Self::Ipv6(v6),
            });
        }
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let last = name.rsplit('.').next().unwrap_or(name);
        // An all-digit last label would be a mistyped address (`192.0.2`).
        if name.len() > 253 || !name.split('.').all(label_ok) || last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        Ok(Self::Host(name.to_owned()))
    }
}

impl<'de> Deserialize<'de> for HeloName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// DKIM signing; off while `domain` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl MailSettings {
    /// The relays mail goes through: `mail.relays`, or `mail.smtp` alone.
    pub fn relay_list(&self) -> Vec<RelaySettings> {
        if self.relays.0.is_empty() {
            vec![RelaySettings::single(&self.smtp)]
        } else {
            self.relays.0.clone()
        }
    }

    /// The publication's name, on pages and in emails: the display name of
    /// `mail.from`, or "Gazette" when it has none.
    pub fn publication(&self) -> String {
        self.publication_ref().to_owned()
    }

    /// [`Self::publication`], borrowed.
    pub fn publication_ref(&self) -> &str {
        self.from
            .name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("Gazette")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: String,
    /// A file holding the password instead (see `config/secrets.rs`).
    pub password_file: PathBuf,
    pub ca_file: PathBuf,
    pub timeout_seconds: u64,
    pub max_messages_per_connection: u32,
}

// The password must never reach a log line, so Debug is written by hand.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_messages_per_connection", &self.max_messages_per_connection)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub concurrency: usize,
    pub batch_size: usize,
    pub lease_seconds: u32,
    /// Messages per second to the relay, by every worker process together
    /// (shared through the database, per relay), confirmations as well as
    /// digests; 0 = unlimited. After a quiet period a burst of a quarter
    /// second's worth (at least one) may leave at once, never more.
    pub rate_per_second: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
    pub poll_interval_ms: u64,
}

impl DeliverySettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// The public site as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// The pages' language when a reader has not chosen one and their
    /// browser asks for none Gazette has; the imported readers' language.
    pub default_language: crate::i18n::Language,
    /// Who runs the newsletter and answers for the readers' data (every
    /// page's footer, the privacy notice); empty: the publication.
    pub publisher: String,
    /// Where readers write about their data (the footer, the privacy
    /// notice); empty: `mail.from`'s address.
    pub contact: String,
}

/// What Gazette learns of what readers do with an issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    pub clicks: ClickTracking,
}

/// Whether the digest's story links count clicks (`tracking.clicks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClickTracking {
    /// The links lead straight to the stories.
    Off,
    /// The links go through Gazette, which counts clicks per issue and
    /// story, and knows nothing of who clicked.
    Aggregate,
}

/// The signup form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupSettings {
    /// Whether the form asks for a name (the address is all it needs).
    pub ask_name: bool,
    /// Whether a reader who confirms is sent a welcome email.
    pub welcome: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSettings {
    pub confirmation_ttl_hours: u32,
    pub confirmation_emails_per_day: u32,
    /// Accept `.test` addresses (other special-use domains never are).
    pub allow_test_domains: bool,
}

impl SubscriptionSettings {
    /// What every parse of a reader's or staff member's address accepts.
    pub fn address_policy(&self) -> crate::domain::AddressPolicy {
        crate::domain::AddressPolicy {
            allow_test_domains: self.allow_test_domains,
            allow_special_use: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub signups_per_ip_per_minute: u32,
    pub admin_logins_per_ip_per_minute: u32,
    pub admin_logins_per_account_per_minute: u32,
    /// Confirmation emails queued per rolling hour, all processes
    /// together; 0 = no cap.
    pub confirmations_per_hour: u32,
    /// Staff password checks (argon2, 19 MiB each) computing at once.
    pub concurrent_password_checks: u32,
    /// Requests to the JSON API per token per minute; 0 = no limit.
    pub api_requests_per_token_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// Longest generated or feed summary, in characters.
    pub summary_max_chars: usize,
    pub max_articles: u32,
    pub subject: SubjectTemplate,
    pub postal_address: String,
    pub unsubscribe_mailto: String,
    /// Which articles each language's rendering holds (its own first).
    pub languages: DigestLanguages,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The public address of the site, without a trailing slash, always with an
/// http or https scheme so links in emails are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

/// Why a written base URL cannot be used; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBaseUrl {
    #[error("`{0}` must start with http:// or https://")]
    NoScheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
}

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, BadBaseUrl> {
        let trimmed = raw.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or_else(|| BadBaseUrl::NoScheme(raw.to_owned()))?;
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(BadBaseUrl::NoHost(raw.to_owned()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        BaseUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn deserialize_mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse::<Mailbox>()
        .map_err(|e| serde::de::Error::custom(format!("`{raw}` is not an email address: {e}")))
}

/// `GAZETTE_ENV`, `local` when unset.
pub fn environment() -> String {
    std::env::var("GAZETTE_ENV").unwrap_or_else(|_| "local".into())
}

/// The environments that need no file of their own: `local` runs on the
/// embedded defaults, `production` may be set entirely by variables.
const BUILT_IN_ENVIRONMENTS: [&str; 2] = ["local", "production"];

/// A mistyped `GAZETTE_ENV` (`prodution`) would otherwise fall back to the
/// defaults without a word: a name other than the built-in ones must have
/// its file in the configuration directory.
fn check_environment(config_dir: &Path, environment: &str) -> Result<(), ConfigError> {
    if BUILT_IN_ENVIRONMENTS.contains(&environment) {
        return Ok(());
    }
    let file = config_dir.join(format!("{environment}.toml"));
    let plain_name = !environment.is_empty()
        && environment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if plain_name && file.is_file() {
        return Ok(());
    }
    Err(ConfigError(format!(
        "GAZETTE_ENV `{environment}` is not an environment: use local or production, or put its settings in {}",
        if plain_name {
            file.display().to_string()
        } else {
            "a file named after it (lowercase letters, digits, - and _)".into()
        }
    )))
}

/// The layers, lowest first. The defaults are compiled in, so the binary
/// runs from any directory; a `config/default.toml` beside it may still
/// change them.
fn layers(
    config_dir: &Path,
    environment: &str,
    variables: config::Map<String, String>,
) -> config::ConfigBuilder<config::builder::DefaultState> {
    config::Config::builder()
        .add_source(config::File::from_str(EMBEDDED_DEFAULTS, config::FileFormat::Toml))
        .add_source(config::File::from(config_dir.join("default.toml")).required(false))
        .add_source(config::File::from(config_dir.join(format!("{environment}.toml"))).required(false))
        .add_source(
            config::Environment::with_prefix("GAZETTE")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(variables)),
        )
}

/// This process's variables that set a key.
fn this_process_setting_variables() -> config::Map<String, String> {
    // `vars()` would panic on a variable that is not UTF-8.
    setting_variables(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
}

/// The environment variables that set a key: `GAZETTE_SECTION__KEY`. Every
/// key is in a section, so a variable without `__` after the prefix
/// (`GAZETTE_ENV`, `GAZETTE_CONFIG_DIR`, the tests' `GAZETTE_TEST_…`) names
/// no key and is left out, instead of being refused as an unknown one.
fn setting_variables(vars: impl Iterator<Item = (String, String)>) -> config::Map<String, String> {
    vars.filter(|(name, _)| name.strip_prefix("GAZETTE_").is_some_and(|key| key.contains("__")))
        .collect()
}

/// Says which key is unknown, where, and the known key nearest to it, from
/// serde's report of a field no settings struct has (every one denies
/// unknown fields, so `rate_per_sec = 5` cannot pass for a setting while
/// `rate_per_second` stays at its default). Other errors pass unchanged.
fn explain(error: &config::ConfigError) -> String {
    let message = error.to_string();
    unknown_key(&message).unwrap_or(message)
}

/// Reads serde's `unknown field `x`, expected one of `a`, `b` for key
/// `section`` (`expected `a`` with one known field; the key part is missing
/// at the top level, and an origin may follow it).
fn unknown_key(message: &str) -> Option<String> {
    let (field, rest) = message.strip_prefix("unknown field `")?.split_once('`')?;
    let (expected, section, origin) = match rest.split_once(" for key `") {
        Some((expected, after)) => {
            let (section, origin) = after.split_once('`')?;
            (expected, Some(section), origin)
        }
        None => (rest, None, ""),
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let path = |name: &str| section.map_or_else(|| name.to_owned(), |s| format!("{s}.{name}"));
    let advice = match nearest(field, &known) {
        Some(near) => format!("did you mean `{}`?", path(near)),
        None => format!(
            "the keys here are {}",
            known
                .iter()
                .map(|k| format!("`{}`", path(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(format!("unknown key `{}`{origin}: {advice}", path(field)))
}

/// The known key closest to `typed` in edit distance, if it is close enough
/// to be a slip (or one begins with the other, as `rate_per_sec` does).
fn nearest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let (distance, near) = known.iter().map(|k| (edit_distance(typed, k), *k)).min()?;
    let close = distance <= (typed.chars().count() / 3).max(2) || near.starts_with(typed) || typed.starts_with(near);
    close.then_some(near)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Keys whose values are secrets: shown as `***` when set.
const SECRET_KEYS: [&str; 4] = ["password", "session_key", "secret", "private_key"];

fn flatten(prefix: &str, values: config::Map<String, config::Value>, out: &mut Vec<(String, String)>) {
    for (key, value) in values {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.kind {
            config::ValueKind::Table(table) => flatten(&key, table, out),
            // A list of tables (`mail.relays`) shows each table's keys, so
            // that their secrets are masked like any other.
            config::ValueKind::Array(items)
                if !items.is_empty() && items.iter().all(|i| matches!(i.kind, config::ValueKind::Table(_))) =>
            {
                for (i, item) in items.into_iter().enumerate() {
                    if let config::ValueKind::Table(table) = item.kind {
                        flatten(&format!("{key}[{i}]"), table, out);
                    }
                }
            }
            config::ValueKind::Array(items) => {
                let shown: Vec<String> = items.into_iter().map(|item| item.to_string()).collect();
                out.push((key, format!("[{}]", shown.join(", "))));
            }
            kind => {
                let shown = config::Value::new(None, kind).to_string();
                let last = key.rsplit('.').next().unwrap_or(&key);
                let shown = if SECRET_KEYS.contains(&last) && !shown.is_empty() {
                    "***".to_owned()
                } else if key == "database.url" {
                    redact(&shown)
                } else if key == "mail.relays" {
                    relays::without_passwords(&shown)
                } else {
                    shown
                };
                out.push((key, shown));
            }
        }
    }
}

const EMBEDDED_DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Reads the layered configuration from `config_dir` and the environment.
    pub fn load(config_dir: &Path) -> Result<Self, ConfigError> {
        Self::load_with(config_dir, |builder| builder)
    }

    /// Like [`Settings::load`], with a hook to set values on top of every
    /// layer (tests use it to point the app at their own database and port).
    pub fn load_with(
        config_dir: &Path,
        overrides: impl FnOnce(
            config::ConfigBuilder<config::builder::DefaultState>,
        ) -> config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Self, ConfigError> {
        let environment = environment();
        check_environment(config_dir, &environment)?;
        let variables = this_process_setting_variables();
        let mut variable_names: Vec<String> = variables.keys().cloned().collect();
        variable_names.sort();
        let builder = layers(config_dir, &environment, variables);
        let mut settings: Settings = overrides(builder)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(explain(&e)))?;
        let files: Vec<String> = ["default.toml".to_owned(), format!("{environment}.toml")]
            .into_iter()
            .filter(|file| config_dir.join(file).is_file())
            .collect();
        let mut not_read: Vec<String> = std::fs::read_dir(config_dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".toml") && !files.contains(name) && name != "default.toml")
            .collect();
        not_read.sort();
        settings.origin = Origin {
            dir: config_dir.to_owned(),
            files,
            environment,
            not_read,
            variables: variable_names,
        };
        settings.read_secret_files()?;
        settings.check()?;
        if settings.is_production() {
            settings.check_production()?;
        }
        Ok(settings)
    }

    /// The files and variables these settings were read from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `GAZETTE_ENV` as it was when these settings were loaded.
    pub fn environment(&self) -> &str {
        &self.origin.environment
    }

    /// A command that would open a SQLite database that does not exist yet
    /// is refused in production unless it is the one meant to create it
    /// (`gazette migrate`): a command run from the wrong place would
    /// otherwise make a new empty database, report success, and leave the
    /// real one untouched.
    pub fn check_database_exists(&self, may_create: bool) -> Result<(), ConfigError> {
        match self.database.sqlite_file() {
            Some(file) if self.is_production() && !may_create && !file.exists() => Err(ConfigError(format!(
                "database.url: the SQLite database {} does not exist; check database.url, or make it with \
                 `gazette migrate`",
                file.display()
            ))),
            _ => Ok(()),
        }
    }

    /// [`SiteSettings::publisher`], or the publication when it is empty.
    pub fn publisher(&self) -> String {
        match self.site.publisher.trim() {
            "" => self.mail.publication(),
            publisher => publisher.to_owned(),
        }
    }

    /// [`SiteSettings::contact`], or `mail.from`'s address when it is empty.
    pub fn contact(&self) -> String {
        match self.site.contact.trim() {
            "" => self.mail.from.email.to_string(),
            contact => contact.to_owned(),
        }
    }

    /// Whether these settings were loaded with `GAZETTE_ENV=production`,
    /// where nothing may rely on a default secret.
    pub fn is_production(&self) -> bool {
        self.origin.environment == "production"
    }

    /// Every key of the layered configuration with its effective value,
    /// sorted, secrets masked: what `gazette config check` prints.
    pub fn effective(config_dir: &Path) -> Result<Vec<(String, String)>, ConfigError> {
        let values = layers(config_dir, &environment(), this_process_setting_variables())
            .build()
            .and_then(|c| config::Source::collect(&c))
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut flat = Vec::new();
        flatten("", values, &mut flat);
        flat.sort();
        Ok(flat)
    }

    /// In production nothing may rely on a default meant for trying
    /// Gazette out: a default secret, the file transport, a site on this
    /// machine, a database found relative to wherever a command runs.
    fn check_production(&self) -> Result<(), ConfigError> {
        for (key, relay) in self.mail.relay_keys() {
            let smtp = &relay.smtp;
            if !smtp.username.is_empty() && smtp.password.is_empty() {
                return Err(ConfigError(format!(
                    "{key}.password: must be set in production when {key}.username is set"
                )));
            }
        }
        if !self.server.base_url.is_https() && !self.server.allow_http_base_url {
            return Err(ConfigError(format!(
                "server.base_url: `{}` must be https:// in production (one-click unsubscribe, RFC 8058, \
                 requires it); set server.allow_http_base_url = true to allow http",
                self.server.base_url
            )));
        }
        if self.mail.transport == MailTransportKind::File {
            return Err(ConfigError(format!(
                "mail.transport: \"file\" writes mail into {} instead of sending it; production needs \"smtp\" \
                 and mail.smtp.host",
                self.mail.outbox_dir.display()
            )));
        }
        if base_url_host(self.server.base_url.as_str()).is_some_and(is_loopback_host) {
            return Err(ConfigError(format!(
                "server.base_url: `{}` is this machine; links in emails must reach the public site \
                 (e.g. https://news.example.org)",
                self.server.base_url
            )));
        }
        if self.database.sqlite_file().is_some_and(Path::is_relative) {
            return Err(ConfigError(format!(
                "database.url: `{}` is a path relative to the directory a command runs from; in production \
                 give an absolute one (sqlite:///var/lib/gazette/gazette.db) or a postgres:// URL",
                redact(&self.database.url)
            )));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres")) {
            return fail("database.url", "must start with sqlite:// or postgres://");
        }
        if self.database.max_connections == 0 {
            return fail("database.max_connections", "must be at least 1");
        }
        if self.delivery.concurrency == 0 {
            return fail("delivery.concurrency", "must be at least 1");
        }
        if !(1..=10_000).contains(&self.delivery.batch_size) {
            return fail("delivery.batch_size", "must be between 1 and 10000");
        }
        if self.delivery.lease_seconds == 0 {
            return fail("delivery.lease_seconds", "must be at least 1");
        }
        if self.delivery.max_attempts == 0 {
            return fail("delivery.max_attempts", "must be at least 1");
        }
        if !self.delivery.retry_base_seconds.is_finite() || self.delivery.retry_base_seconds <= 0.0 {
            return fail("delivery.retry_base_seconds", "must be more than 0");
        }
        if !self.delivery.retry_max_seconds.is_finite()
            || self.delivery.retry_max_seconds < self.delivery.retry_base_seconds
        {
            return fail("delivery.retry_max_seconds", "must be at least retry_base_seconds");
        }
        if self.delivery.poll_interval_ms == 0 {
            return fail("delivery.poll_interval_ms", "must be at least 1");
        }
        if self.subscriptions.confirmation_ttl_hours == 0 {
            return fail("subscriptions.confirmation_ttl_hours", "must be at least 1");
        }
        if self.subscriptions.confirmation_emails_per_day == 0 {
            return fail("subscriptions.confirmation_emails_per_day", "must be at least 1");
        }
        if !(40..=2000).contains(&self.digest.summary_max_chars) {
            return fail("digest.summary_max_chars", "must be between 40 and 2000");
        }
        if !(1..=100).contains(&self.digest.max_articles) {
            return fail("digest.max_articles", "must be between 1 and 100");
        }
        if !self.digest.unsubscribe_mailto.trim().is_empty() {
            return fail(
                "digest.unsubscribe_mailto",
                "is replaced by mail.bounce_domain: with it set, every digest's List-Unsubscribe carries a \
                 mailto: of the reader's own at that domain, which Gazette reads as inbound mail ([inbound]); \
                 one fixed address could not tell which reader wrote. Leave it empty",
            );
        }
        // Every return path and mailto is an address at this domain: one
        // that makes no address would stop the worker at its first message.
        let bounce_domain = self.mail.bounce_domain.trim();
        if !bounce_domain.is_empty() && lettre::Address::new("bounces", bounce_domain).is_err() {
            return fail(
                "mail.bounce_domain",
                "must be a domain name (e.g. `bounces.example.org`), or empty",
            );
        }
        let feedback_id = &self.mail.feedback_id;
        if feedback_id.len() > 200 || !feedback_id.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return fail(
                "mail.feedback_id",
                "must be one line of printable ASCII, at most 200 characters (e.g. `weekly:gazette`)",
            );
        }
        self.check_relays()?;
        if self.server.max_body_bytes < 1024 {
            return fail("server.max_body_bytes", "must be at least 1024");
        }
        if self.server.session_idle_minutes == 0 {
            return fail("server.session_idle_minutes", "must be at least 1");
        }
        if !(1..=3600).contains(&self.server.body_timeout_seconds) {
            return fail("server.body_timeout_seconds", "must be between 1 and 3600");
        }
        if self.server.session_max_hours == 0 {
            return fail("server.session_max_hours", "must be at least 1");
        }
        if !(1..=64).contains(&self.limits.concurrent_password_checks) {
            return fail("limits.concurrent_password_checks", "must be between 1 and 64");
        }
        if self.mail.transport == MailTransportKind::Smtp
            && self.mail.relays.0.is_empty()
            && self.mail.smtp.host.trim().is_empty()
        {
            return fail("mail.smtp.host", "must be set when mail.transport is \"smtp\"");
        }
        Ok(())
    }

    /// `mail.relays` and `mail.smtp` are two ways to say where mail goes:
    /// with both, one would be silently ignored. Each relay is checked as
    /// `mail.smtp` is, and no two may be the same host and port (the rate
    /// and the figures are kept per relay).
    fn check_relays(&self) -> Result<(), ConfigError> {
        if !self.mail.relays.0.is_empty() && self.mail.smtp != embedded_smtp_defaults() {
            return Err(ConfigError(
                "mail.relays and mail.smtp are both set: keep one (mail.relays lists every relay; \
                 mail.smtp is the single-relay form)"
                    .into(),
            ));
        }
        let mut seen = std::collections::BTreeMap::new();
        for (key, relay) in self.mail.relay_keys() {
            let smtp = &relay.smtp;
            if smtp.tls == SmtpTls::None && !smtp.username.is_empty() && !is_loopback_host(&smtp.host) {
                return Err(ConfigError(format!(
                    "{key}.tls: is \"none\" but {key}.username is set and {key}.host is not loopback: \
                     the password would cross the network unencrypted; use starttls or tls"
                )));
            }
            let identity = (smtp.host.trim().trim_end_matches('.').to_ascii_lowercase(), smtp.port);
            if let Some(first) = seen.insert(identity, key.clone()) {
                return Err(ConfigError(format!(
                    "{key}: {}:{} is also {first}; list each relay once",
                    smtp.host.escape_debug(),
                    smtp.port
                )));
            }
        }
        Ok(())
    }
}

impl MailSettings {
    /// Each relay with the key that names it in messages: `mail.smtp`, or
    /// `mail.relays[i]`.
    fn relay_keys(&self) -> Vec<(String, RelaySettings)> {
        if self.relays.0.is_empty() {
            return vec![("mail.smtp".into(), RelaySettings::single(&self.smtp))];
        }
        self.relays
            .0
            .iter()
            .enumerate()
            .map(|(i, relay)| (format!("mail.relays[{i}]"), relay.clone()))
            .collect()
    }
}

/// `mail.smtp` as the embedded defaults give it: what it is when nobody set it.
fn embedded_smtp_defaults() -> SmtpSettings {
    static DEFAULTS: std::sync::LazyLock<SmtpSettings> = std::sync::LazyLock::new(|| {
        config::Config::builder()
            .add_source(config::File::from_str(EMBEDDED_DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.get::<SmtpSettings>("mail.smtp"))
            .expect("the embedded defaults hold mail.smtp")
    });
    DEFAULTS.clone()
}

/// The host of an `http(s)://host[:port]/…` URL.
fn base_url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next();
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

/// `localhost`, 127.0.0.0/8 or ::1: a relay on this machine, where a
/// password sent without TLS never crosses a network.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_end_matches('.');
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_names_are_host_names_or_address_literals() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        assert_eq!(HeloName::parse("").unwrap(), HeloName::MachineName);
        assert_eq!(HeloName::parse("  ").unwrap(), HeloName::MachineName);
        assert_eq!(
            HeloName::parse("mail-1.example.org").unwrap(),
            HeloName::Host("mail-1.example.org".into())
        );
        assert_eq!(
            HeloName::parse("relayhost").unwrap(),
            HeloName::Host("relayhost".into())
        );
        let v4 = HeloName::Ipv4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(HeloName::parse("[192.0.2.1]").unwrap(), v4);
        assert_eq!(HeloName::parse("192.0.2.1").unwrap(), v4);
        let v6 = HeloName::Ipv6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(HeloName::parse("[IPv6:2001:db8::1]").unwrap(), v6);
        assert_eq!(HeloName::parse("[ipv6:2001:db8::1]").unwrap(), v6);
        assert_eq!(HeloName::parse("2001:db8::1").unwrap(), v6);
        for bad in [
            "mail example.org",
            "mail.example.org.",
            "-mail.example.org",
            "mail-.example.org",
            "mail..example.org",
            "mail_1.example.org",
            "192.0.2",
            "999.0.2.1",
            "[192.0.2.1",
            "[2001:db8::1]",
            "[IPv6:192.0.2.1]",
            "mail.example.org\r\nMAIL FROM:<x@y>",
            "bücher.example",
        ] {
            let error = HeloName::parse(bad).unwrap_err();
            assert!(error.contains("is not a host name"), "{bad}: {error}");
        }
        assert!(HeloName::parse(&format!("{}.org", "a".repeat(64))).is_err());
        assert!(HeloName::parse(&["abc"; 64].join(".")).is_err(), "longer than 253");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_known_one() {
        let serde = "unknown field `rate_per_sec`, expected one of `concurrency`, `rate_per_second`, \
                     `max_attempts` for key `delivery`";
        assert_eq!(
            unknown_key(serde).as_deref(),
            Some("unknown key `delivery.rate_per_sec`: did you mean `delivery.rate_per_second`?")
        );
        let far = "unknown field `colour`, expected `level` or `format` for key `log` in config/local.toml";
        assert_eq!(
            unknown_key(far).as_deref(),
            Some("unknown key `log.colour` in config/local.toml: the keys here are `log.level`, `log.format`")
        );
        let top = "unknown field `sever`, expected one of `server`, `database`";
        assert_eq!(
            unknown_key(top).as_deref(),
            Some("unknown key `sever`: did you mean `server`?")
        );
        assert_eq!(unknown_key("invalid type: string \"x\", expected u32"), None);
        assert_eq!(nearest("hots", &["host", "port"]), Some("host"));
        assert_eq!(nearest("zzzzzz", &["host", "port"]), None);
    }

    #[test]
    fn only_variables_with_a_section_set_keys() {
        let vars = [
            ("GAZETTE_ENV", "production"),
            ("GAZETTE_CONFIG_DIR", "/etc/gazette"),
            ("GAZETTE_TEST_POSTGRES_URL", "postgres://x"),
            ("GAZETTE_DELIVERY__RATE_PER_SEC", "5"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let kept: Vec<String> = setting_variables(vars.into_iter()).into_keys().collect();
        assert_eq!(kept, ["GAZETTE_DELIVERY__RATE_PER_SEC"]);
    }

    #[test]
    fn a_named_config_dir_must_exist_and_etc_gazette_comes_before_the_checkouts() {
        assert_eq!(choose_config_dir(None, true).unwrap(), PathBuf::from("/etc/gazette"));
        assert_eq!(choose_config_dir(None, false).unwrap(), PathBuf::from("config"));
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        assert_eq!(choose_config_dir(Some(here.clone()), true).unwrap(), here);
        let typo = choose_config_dir(Some(PathBuf::from("/etc/gazete")), true).unwrap_err();
        assert!(typo.to_string().contains("/etc/gazete"), "{typo}");
    }

    #[test]
    fn the_base_urls_host_is_found_past_userinfo_port_and_path() {
        assert_eq!(base_url_host("https://news.example.org"), Some("news.example.org"));
        assert_eq!(base_url_host("http://localhost:8000/x"), Some("localhost"));
        assert_eq!(base_url_host("http://u@127.0.0.1:80"), Some("127.0.0.1"));
        assert_eq!(base_url_host("http://[::1]:8000"), Some("[::1]"));
        assert!(base_url_host("http://[::1]:8000").is_some_and(is_loopback_host));
    }

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "smtp.example.org",
            "10.0.0.1",
            "localhost.example.org",
            "128.0.0.1",
            "::2",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn base_url_needs_a_scheme_and_loses_its_trailing_slash() {
        assert!(BaseUrl::parse("example.com").is_err());
        assert!(BaseUrl::parse("https://").is_err());
        let url = BaseUrl::parse("https://news.example.com/").unwrap();
        assert_eq!(url.as_str(), "https://news.example.com");
        assert!(url.is_https());
    }

    #[test]
    fn debug_of_the_whole_settings_shows_no_secret() {
        let settings = Settings::load_with(Path::new("/nonexistent"), |builder| {
            builder
                .set_override("mail.smtp.username", "mailer")
                .unwrap()
                .set_override("mail.smtp.password", "hunter2-smtp")
                .unwrap()
                .set_override("database.url", "postgres://gazette:db-secret-7@db/gazette")
                .unwrap()
        })
        .unwrap();
        let debug = format!("{settings:?} {settings:#?}");
        assert!(!debug.contains("hunter2-smtp"), "{debug}");
        assert!(!debug.contains("db-secret-7"), "{debug}");
        assert!(debug.contains("mailer") && debug.contains("gazette:***@db"), "{debug}");
    }

    #[test]
    fn a_bounce_domain_must_make_addresses() {
        let load = |domain: &str| {
            Settings::load_with(Path::new("/nonexistent"), |builder| {
                builder.set_override("mail.bounce_domain", domain).unwrap()
            })
        };
        for good in ["", "bounces.example.org", "[192.0.2.1]"] {
            assert!(load(good).is_ok(), "{good}");
        }
        for bad in ["bounces example.org", "a@b.example", "bounces..example"] {
            let error = load(bad).unwrap_err().to_string();
            assert!(error.contains("mail.bounce_domain"), "{bad}: {error}");
        }
    }

    #[test]
    fn digest_languages_is_all_or_reader_and_anything_else_is_named() {
        let load = |value: &str| {
            Settings::load_with(Path::new("/nonexistent"), |builder| {
                builder.set_override("digest.languages", value).unwrap()
            })
        };
        let defaults = Settings::load_with(Path::new("/nonexistent"), |builder| builder).unwrap();
        assert_eq!(defaults.digest.languages, DigestLanguages::All);
        assert_eq!(load("reader").unwrap().digest.languages, DigestLanguages::Reader);
        let error = load("mine").unwrap_err().to_string();
        assert!(
            error.contains("digest.languages") && error.contains("`mine`") && error.contains("\"reader\""),
            "{error}"
        );
    }

    fn load_local(toml: &str) -> Result<Settings, ConfigError> {
        let dir = std::env::temp_dir().join(format!("gazette-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("local.toml"), toml).unwrap();
        let settings = Settings::load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        settings
    }

    #[test]
    fn mail_relays_are_tables_in_a_file_and_mail_smtp_is_the_one_relay_without_them() {
        let settings = load_local(
            "[[mail.relays]]\nhost = \"relay-a.example.org\"\nport = 587\ntls = \"starttls\"\nweight = 3\n\
             rate_per_second = 20\n\n[[mail.relays]]\nhost = \"relay-b.example.org\"\nconnections = 2\n",
        )
        .unwrap();
        let relays = settings.mail.relay_list();
        assert_eq!(relays.len(), 2);
        assert_eq!(
            (relays[0].smtp.host.as_str(), relays[0].smtp.port, relays[0].smtp.tls),
            ("relay-a.example.org", 587, SmtpTls::Starttls)
        );
        assert_eq!((relays[0].weight, relays[0].rate_per_second), (3, Some(20)));
        assert_eq!((relays[1].smtp.port, relays[1].weight), (25, 1));
        assert_eq!(relays[1].connections.map(|c| c.get()), Some(2));
        assert_eq!(relays[1].smtp.timeout_seconds, 30);

        let single = load_local("[mail.smtp]\nhost = \"relay.example.org\"\nport = 2525\n").unwrap();
        let relays = single.mail.relay_list();
        assert_eq!(relays.len(), 1);
        assert_eq!(
            (relays[0].smtp.host.as_str(), relays[0].smtp.port),
            ("relay.example.org", 2525)
        );
        assert_eq!((relays[0].weight, relays[0].rate_per_second), (1, None));
    }

    #[test]
    fn bad_relay_lists_are_refused_with_the_key_named() {
        for (toml, named) in [
            (
                "[mail.smtp]\nhost = \"relay.example.org\"\n[[mail.relays]]\nhost = \"relay-b.example.org\"\n",
                "mail.relays and mail.smtp are both set",
            ),
            (
                "[[mail.relays]]\nhost = \"a.example.org\"\n[[mail.relays]]\nhost = \"A.example.org.\"\n",
                "mail.relays[1]: A.example.org.:25 is also mail.relays[0]",
            ),
            (
                "[[mail.relays]]\nhost = \"a.example.org\"\nusername = \"u\"\npassword = \"p\"\n",
                "mail.relays[0].tls: is \"none\"",
            ),
            ("[[mail.relays]]\nhost = \"\"\n", "mail.relays[0].host: must be set"),
            (
                "[[mail.relays]]\nhost = \"a.example.org\"\nwieght = 2\n",
                "mail.relays[0]: unknown field `wieght`",
            ),
            ("[mail]\nrelays = 5\n", "must be a list of relays"),
        ] {
            let error = load_local(toml).unwrap_err().to_string();
            assert!(error.contains(named), "{toml}: {error}");
        }
    }

    #[test]
    fn config_check_masks_the_relays_passwords_in_both_forms() {
        let flat = |toml: &str| {
            let values = config::Config::builder()
                .add_source(config::File::from_str(toml, config::FileFormat::Toml))
                .build()
                .and_then(|c| config::Source::collect(&c))
                .unwrap();
            let mut out = Vec::new();
            flatten("", values, &mut out);
            out
        };
        let tables = flat("[[mail.relays]]\nhost = \"a.example.org\"\npassword = \"hunter2\"\nweight = 3\n");
        assert!(
            tables.contains(&("mail.relays[0].password".into(), "***".into())),
            "{tables:?}"
        );
        assert!(
            tables.contains(&("mail.relays[0].weight".into(), "3".into())),
            "{tables:?}"
        );
        let urls = flat("[mail]\nrelays = \"smtp://u:hunter2@a.example.org?weight=3, smtp://b.example.org\"\n");
        let shown = &urls.iter().find(|(k, _)| k == "mail.relays").unwrap().1;
        assert!(
            !shown.contains("hunter2") && shown.contains("u:***@a.example.org"),
            "{shown}"
        );
    }

    #[test]
    fn smtp_password_is_masked_in_debug_output() {
        let smtp = SmtpSettings {
            host: "mail".into(),
            port: 25,
            tls: SmtpTls::None,
            username: "u".into(),
            password: "hunter2".into(),
            password_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            timeout_seconds: 1,
            max_messages_per_connection: 0,
        };
        assert!(!format!("{smtp:?}").contains("hunter2"));
    }
}
