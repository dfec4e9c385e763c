//! Feed sources: feeds registered once (`gazette feeds add`, the staff's
//! Sources page) and polled by Gazette itself.
//!
//! One poll of a source: take its claim (`db::feed_sources::claim`, so one
//! process polls it at a time), fetch it with the validators of the last
//! answer (`If-None-Match`, `If-Modified-Since`: a 304 is recorded as "not
//! modified" and costs no parsing and no article writes), parse it as
//! `gazette articles import URL` does, attribute the entries to the source
//! (its URL is the feed's identity, its name the name the digest shows;
//! the language staff declared for it, if any, is every entry's whatever
//! the feed says), save them, and record the outcome, giving the claim
//! back. A failure puts the next poll off exponentially:
//! `feeds.poll_minutes` × 2^failures, capped at a day, so a source failing
//! for days is shown as failing with its last error and tried a few times
//! a day, not every minute.
//!
//! Who polls: the poller role of `gazette serve` ([`Poller::run`]) polls
//! the due sources, woken every minute or at the next due time; the
//! scheduler polls every source once more just before the scheduled
//! dispatch ([`Poller::before_dispatch`]); `gazette feeds poll` and the
//! staff's "poll now" poll at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::watch;
use url::Url;

use crate::config::Settings;
use crate::db::Db;
use crate::db::feed_sources::{self, FeedSource, Outcome as Recorded, Want};
use crate::digest::fetch::{Conditional, FetchError, FetchPolicy, Fetcher, Validators};
use crate::digest::import::{self, FeedRules, Loaded, PlainTextDetails};
use crate::domain::ImportReport;
use crate::i18n::Language;

/// How long a claim holds: a fetch gives up after 30 seconds, and parsing
/// and saving even a large feed take well under this. A process that dies
/// mid-poll holds its sources this long.
const CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// The longest backoff of a failing source (unless `feeds.poll_minutes` is
/// longer still).
const MAX_BACKOFF: chrono::Duration = chrono::Duration::days(1);

/// Sources polled at once by one process.
const CONCURRENT_POLLS: usize = 4;

/// Due sources claimed per round of the poller role.
const ROUND: i64 = 64;

/// The longest sleep of the poller role: sources added by another process
/// (the CLI) are found within this long.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The shortest: a claim that ran out or a clock between two database
/// reads never makes the loop spin.
const MIN_SLEEP: Duration = Duration::from_millis(200);

/// How long the poll before a dispatch waits for sources that other
/// processes are polling, before dispatching without them.
const BEFORE_DISPATCH_WAIT: Duration = Duration::from_secs(90);

/// The longest source name kept (a feed's title can be anything).
pub const MAX_NAME_CHARS: usize = 200;

/// Why a source cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("give the feed's http:// or https:// address")]
    NoAddress,
    #[error("`{0}` is not an http:// or https:// address of a feed")]
    NotWeb(String),
    #[error(transparent)]
    Refused(FetchError),
    #[error("`{url}` is already registered, as source {id} (“{name}”)")]
    AlreadyRegistered { url: String, id: i64, name: String },
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("the name `{0}` holds control characters")]
    NameControl(String),
    #[error("cannot register the source: {0}")]
    Database(#[from] sqlx::Error),
}

/// The address of a source as the importer writes it, checked to be a web
/// address with a host.
pub fn source_url(raw: &str) -> Result<Url, AddError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(AddError::NoAddress);
    }
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        _ => Err(AddError::NotWeb(raw.to_owned())),
    }
}

/// A name staff gave: trimmed, `None` when empty.
fn given_name(raw: Option<&str>) -> Result<Option<String>, AddError> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().any(char::is_control) {
        return Err(AddError::NameControl(name.to_owned()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AddError::NameTooLong);
    }
    Ok(Some(name.to_owned()))
}

/// A feed's own title as a source name: one line, of a sane length.
fn name_from_title(title: &str) -> Option<String> {
    let one_line: String = title
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name: String = one_line.chars().take(MAX_NAME_CHARS).collect();
    (!name.is_empty()).then_some(name)
}

/// How long after its `failures`-th failure in a row a source is polled
/// again; the regular interval when it is not failing.
pub fn backoff(poll_minutes: u32, failures: u32) -> chrono::Duration {
    let interval = chrono::Duration::minutes(i64::from(poll_minutes.max(1)));
    let cap = MAX_BACKOFF.max(interval);
    // 2^20 intervals of a minute are already past any cap.
    let factor = 1i32 << failures.min(20);
    (interval * factor).min(cap)
}

/// What one poll of a source did.
#[derive(Debug)]
pub enum Outcome {
    /// The feed was read: what saving its entries did.
    Read(ImportReport),
    /// The server answered 304 Not Modified.
    NotModified,
    Failed(String),
    /// Another process holds the source's claim (or, for the periodic poll,
    /// polled it first): this one left it.
    Busy,
    /// There is no source with this id (any more).
    Unknown,
}

/// A poll and the source as it stands after it.
#[derive(Debug)]
pub struct Polled {
    pub id: i64,
    /// The source after the poll; `None` when it is unknown.
    pub source: Option<FeedSource>,
    pub outcome: Outcome,
}

impl Polled {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }

    /// What happened, in the words of the import report: `3 added, 1
    /// updated, 5 unchanged, 0 rejected`, `not modified`, `failed: …`.
    pub fn summary(&self) -> String {
        match &self.outcome {
            Outcome::Read(report) => format!(
                "{} added, {} updated, {} unchanged, {} rejected",
                report.added,
                report.updated,
                report.unchanged + report.kept_staff_edit,
                report.rejected.len()
            ),
            Outcome::NotModified => "not modified (HTTP 304)".to_owned(),
            Outcome::Failed(error) => {
                let streak = self.source.as_ref().map(failing_streak).unwrap_or_default();
                format!("failed: {error}{streak}")
            }
            Outcome::Busy => "being polled by another process right now".to_owned(),
            Outcome::Unknown => "no such source".to_owned(),
        }
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `; failing since … (3 polls in a row), next try …` for a failing
/// source, else nothing.
pub fn failing_streak(source: &FeedSource) -> String {
    if source.failures == 0 {
        return String::new();
    }
    let since = source
        .failing_since
        .map(|t| format!(" since {}", when(t)))
        .unwrap_or_default();
    let polls = match source.failures {
        1 => "1 poll".to_owned(),
        n => format!("{n} polls in a row"),
    };
    format!("; failing{since} ({polls}), next try {}", when(source.next_poll_at))
}

/// Polls sources for one process.
#[derive(Clone)]
pub struct Poller {
    db: Db,
    fetcher: Fetcher,
    rules: FeedRules,
    poll_minutes: u32,
    /// Who this poller is in the claims it takes.
    holder: String,
}

impl Poller {
    /// A poller with the settings' address policy, rules and interval.
    pub fn from_settings(db: Db, settings: &Settings) -> Self {
        let fetcher = Fetcher::new(FetchPolicy::new(settings.feeds.allow_private_addresses));
        Self::new(
            db,
            fetcher,
            FeedRules::from_settings(settings),
            settings.feeds.poll_minutes,
        )
    }

    pub fn new(db: Db, fetcher: Fetcher, rules: FeedRules, poll_minutes: u32) -> Self {
        let holder = format!("pid {} ({})", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            db,
            fetcher,
            rules,
            poll_minutes,
            holder,
        }
    }

    /// Registers the feed at `raw_url` under `name` (else, until its first
    /// poll names it by its own title, under the address's host), its
    /// articles in `language` (else in the language the feed declares).
    /// The address must be one the fetch policy would fetch.
    pub async fn add(
        &self,
        raw_url: &str,
        name: Option<&str>,
        language: Option<Language>,
    ) -> Result<FeedSource, AddError> {
        let url = source_url(raw_url)?;
        let given = given_name(name)?;
        self.fetcher.check_address(&url).await.map_err(AddError::Refused)?;
        let (name, named_by_staff) = match given {
            Some(name) => (name, true),
            None => (url.host_str().unwrap_or_default().to_owned(), false),
        };
        match feed_sources::add(&self.db, url.as_str(), &name, named_by_staff, language, Utc::now()).await? {
            Ok(source) => {
                tracing::info!(source = source.id, url = %source.url, "feed source added");
                Ok(source)
            }
            Err(existing) => Err(AddError::AlreadyRegistered {
                url: existing.url,
                id: existing.id,
                name: existing.name,
            }),
        }
    }

    /// Polls source `id` now, whenever it is due, unless another process
    /// is polling it.
    pub async fn poll_now(&self, id: i64) -> Result<Polled, sqlx::Error> {
        self.poll(id, Want::NotPolledSince(Utc::now())).await
    }

    /// Polls every source now, a few at a time; `each` sees each result as
    /// it comes, in the order of the sources' ids.
    pub async fn poll_all_now(&self, mut each: impl FnMut(&Polled)) -> Result<Vec<Polled>, sqlx::Error> {
        let now = Utc::now();
        let ids: Vec<i64> = feed_sources::list(&self.db).await?.iter().map(|s| s.id).collect();
        let mut polls = futures_util::stream::iter(ids)
            .map(|id| self.poll(id, Want::NotPolledSince(now)))
            .buffered(CONCURRENT_POLLS);
        let mut all = Vec::new();
        while let Some(polled) = polls.next().await {
            let polled = polled?;
            each(&polled);
            all.push(polled);
        }
        Ok(all)
    }

    /// Claims source `id` now and polls it in the background: the staff's
    /// "poll now", which returns before the fetch. `Ok(None)` when the
    /// source is unknown or another process is polling it.
    pub async fn start_poll_now(&self, id: i64) -> Result<Option<FeedSource>, sqlx::Error> {
        let now = Utc::now();
        let Some(source) = self.claim(id, now, Want::NotPolledSince(now)).await? else {
            return Ok(None);
        };
        self.poll_in_background(source.clone());
        Ok(Some(source))
    }

    /// Declares the language of source `id`'s articles (`None`: the
    /// language its feed declares) and polls it at once in the background,
    /// so that the articles still in its feed take it (see
    /// [`feed_sources::set_language`]). It takes the source's claim first:
    /// a poll running meanwhile would save the articles in the language
    /// the source had, and leave the feed's validators for the next poll
    /// to hear "not modified".
    pub async fn declare_language(&self, id: i64, language: Option<Language>) -> Result<Declared, sqlx::Error> {
        let now = Utc::now();
        if self.claim(id, now, Want::NotPolledSince(now)).await?.is_none() {
            return Ok(match feed_sources::find(&self.db, id).await? {
                Some(source) => Declared::Busy(source),
                None => Declared::Unknown,
            });
        }
        Ok(match feed_sources::set_language(&self.db, id, language).await? {
            Some(source) => {
                self.poll_in_background(source.clone());
                Declared::Polling(source)
            }
            // Removed between the claim and the change.
            None => Declared::Unknown,
        })
    }

    /// Polls a source this poller holds, returning before the fetch.
    fn poll_in_background(&self, claimed: FeedSource) {
        let poller = self.clone();
        let id = claimed.id;
        tokio::spawn(async move {
            if let Err(e) = poller.poll_claimed(claimed).await {
                tracing::error!(source = id, error = %e, "a feed poll could not record its outcome");
            }
        });
    }

    async fn claim(&self, id: i64, now: DateTime<Utc>, want: Want) -> Result<Option<FeedSource>, sqlx::Error> {
        feed_sources::claim(&self.db, id, &self.holder, now, now + CLAIM_LEASE, want).await
    }

    async fn poll(&self, id: i64, want: Want) -> Result<Polled, sqlx::Error> {
        let now = Utc::now();
        match self.claim(id, now, want).await? {
            Some(source) => self.poll_claimed(source).await,
            None => {
                let source = feed_sources::find(&self.db, id).await?;
                let outcome = match source {
                    Some(_) => Outcome::Busy,
                    None => Outcome::Unknown,
                };
                Ok(Polled { id, source, outcome })
            }
        }
    }

    /// Fetches, parses and saves a source this poller holds, and records
    /// the outcome.
    async fn poll_claimed(&self, source: FeedSource) -> Result<Polled, sqlx::Error> {
        let id = source.id;
        let read = self.read(&source).await;
        let now = Utc::now();
        let record =
            |next, outcome| async move { feed_sources::record(&self.db, id, &self.holder, now, next, &outcome).await };
        let (recorded, outcome) = match read {
            Ok(Read::NotModified) => {
                let next = now + backoff(self.poll_minutes, 0);
                (record(next, Recorded::NotModified).await?, Outcome::NotModified)
            }
            Ok(Read::Saved {
                report,
                name,
                validators,
            }) => {
                let next = now + backoff(self.poll_minutes, 0);
                let outcome = Recorded::Read {
                    added: report.added,
                    updated: report.updated,
                    rejected: report.rejected.len(),
                    name: &name,
                    etag: validators.etag.as_deref(),
                    last_modified: validators.last_modified.as_deref(),
                };
                (record(next, outcome).await?, Outcome::Read(report))
            }
            Err(error) => {
                let failures = u32::try_from(source.failures).unwrap_or(0).saturating_add(1);
                let next = now + backoff(self.poll_minutes, failures);
                (
                    record(next, Recorded::Failed { error: &error }).await?,
                    Outcome::Failed(error),
                )
            }
        };
        if !recorded {
            // Removed while it was polled (or the claim ran out and another
            // process took it): its articles are saved, its row is not ours.
            tracing::info!(
                source = id,
                "a polled source was removed or taken over before its outcome was recorded"
            );
        }
        match &outcome {
            Outcome::Failed(error) => tracing::warn!(source = id, url = %source.url, %error, "feed poll failed"),
            Outcome::Read(report) => tracing::info!(
                source = id,
                url = %source.url,
                added = report.added,
                updated = report.updated,
                rejected = report.rejected.len(),
                "feed polled"
            ),
            _ => tracing::debug!(source = id, url = %source.url, "feed not modified"),
        }
        let after = feed_sources::find(&self.db, id).await?;
        Ok(Polled {
            id,
            source: after.or(Some(source)),
            outcome,
        })
    }

    /// The conditional fetch, the parse and the save; `Err` is the reason
    /// it failed, in words staff can act on.
    async fn read(&self, source: &FeedSource) -> Result<Read, String> {
        let url = Url::parse(&source.url).map_err(|e| format!("`{}` is not a usable address: {e}", source.url))?;
        let validators = Validators {
            etag: source.etag.clone(),
            last_modified: source.last_modified.clone(),
        };
        let (fetched, validators) = match self.fetcher.fetch_if_modified(&url, &validators).await {
            Ok(Conditional::NotModified) => return Ok(Read::NotModified),
            Ok(Conditional::Modified { fetched, validators }) => (fetched, validators),
            Err(e) => return Err(e.to_string()),
        };
        let loaded = Loaded {
            bytes: fetched.body,
            base: Some(fetched.url),
            feed: source.url.clone(),
        };
        let parsed = import::parse(&source.url, loaded, &PlainTextDetails::default(), self.rules)
            .await
            .map_err(|e| e.to_string())?;
        let name = match (
            &source.named_by_staff,
            parsed.title.as_deref().and_then(name_from_title),
        ) {
            (false, Some(title)) => title,
            _ => source.name.clone(),
        };
        let parsed = parsed.attribute(&source.url, Some(&name));
        let parsed = match source.declared_language() {
            Some(language) => parsed.in_language(language),
            None => parsed,
        };
        let report = import::save_all(&self.db, parsed, |_, _| {})
            .await
            .map_err(|e| e.to_string())?;
        Ok(Read::Saved {
            report,
            name,
            validators,
        })
    }

    /// Polls the sources due now, a few at a time, until none is left or
    /// `stop` turns true; returns how many it polled.
    pub async fn poll_due(&self, stop: &watch::Receiver<bool>) -> Result<usize, sqlx::Error> {
        let mut polled = 0;
        loop {
            let now = Utc::now();
            let due = feed_sources::due(&self.db, now, ROUND).await?;
            if due.is_empty() || *stop.borrow() {
                return Ok(polled);
            }
            let mut polls = futures_util::stream::iter(due)
                .map(|id| async move {
                    if *stop.borrow() {
                        return Ok(None);
                    }
                    self.poll(id, Want::DueAt(Utc::now())).await.map(Some)
                })
                .buffer_unordered(CONCURRENT_POLLS);
            let mut claimed_any = false;
            while let Some(result) = polls.next().await {
                if let Some(p) = result?
                    && !matches!(p.outcome, Outcome::Busy | Outcome::Unknown)
                {
                    claimed_any = true;
                    polled += 1;
                }
            }
            // Every due source went to another process: nothing left here.
            if !claimed_any {
                return Ok(polled);
            }
        }
    }

    /// The poll just before a dispatch as of `at`: every source not polled
    /// since `at` is polled once (by this process or another), so that the
    /// issue has what the feeds published up to then. Waits for the ones
    /// other processes are polling, at most [`BEFORE_DISPATCH_WAIT`].
    pub async fn before_dispatch(&self, at: DateTime<Utc>) {
        let deadline = tokio::time::Instant::now() + BEFORE_DISPATCH_WAIT;
        loop {
            let now = Utc::now();
            let open = match feed_sources::not_polled_since(&self.db, at, now).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!(error = %e, "the poll before the dispatch cannot read the sources");
                    return;
                }
            };
            let mut polls = futures_util::stream::iter(open.iter().copied())
                .map(|id| self.poll(id, Want::NotPolledSince(at)))
                .buffer_unordered(CONCURRENT_POLLS);
            while let Some(result) = polls.next().await {
                if let Err(e) = result {
                    tracing::error!(error = %e, "the poll before the dispatch could not record a source");
                }
            }
            let elsewhere = feed_sources::being_polled_not_since(&self.db, at, Utc::now())
                .await
                .unwrap_or(0);
            if open.is_empty() && elsewhere == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    sources = elsewhere,
                    "the poll before the dispatch did not finish in time; dispatching without those sources"
                );
                return;
            }
            if open.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// The poller role: polls the due sources, then sleeps until the next
    /// one is due (at most a minute, so sources other processes add are
    /// found), until `stop` turns true. A poll in progress finishes.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            every_minutes = self.poll_minutes,
            "feed poller: polling the feed sources"
        );
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.poll_due(&stop).await {
                tracing::error!(error = %e, "feed poller: cannot read or record the sources");
            }
            let wait = match feed_sources::next_due(&self.db).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    tracing::error!(error = %e, "feed poller: cannot read when the next source is due");
                    MAX_SLEEP
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.clamp(MIN_SLEEP, MAX_SLEEP)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// What declaring a source's language did.
#[derive(Debug)]
pub enum Declared {
    /// Declared; the source, as it is now, is being polled.
    Polling(FeedSource),
    /// Another poll holds the source: nothing changed.
    Busy(FeedSource),
    /// There is no source with this id (any more).
    Unknown,
}

/// What reading a claimed source found, before it is recorded.
enum Read {
    NotModified,
    Saved {
        report: ImportReport,
        name: String,
        validators: Validators,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_up_to_a_day() {
        let minutes = |d: chrono::Duration| d.num_minutes();
        assert_eq!(minutes(backoff(60, 0)), 60);
        assert_eq!(minutes(backoff(60, 1)), 120);
        assert_eq!(minutes(backoff(60, 2)), 240);
        assert_eq!(minutes(backoff(60, 4)), 960);
        assert_eq!(minutes(backoff(60, 5)), 24 * 60);
        assert_eq!(minutes(backoff(60, 500)), 24 * 60);
        // A longer interval than a day is never shortened.
        assert_eq!(minutes(backoff(3 * 24 * 60, 3)), 3 * 24 * 60);
        // 0 (serve polls nothing by itself) still spaces failures out.
        assert_eq!(minutes(backoff(0, 1)), 2);
    }

    #[test]
    fn a_source_is_a_web_address_with_a_host() {
        assert_eq!(
            source_url(" https://example.org/feed.xml ").unwrap().as_str(),
            "https://example.org/feed.xml"
        );
        // The string the importer writes for the same address.
        assert_eq!(
            source_url("HTTP://Example.org").unwrap().as_str(),
            "http://example.org/"
        );
        for bad in [
            "example.org/feed",
            "ftp://example.org/feed",
            "file:///etc/passwd",
            "http://",
        ] {
            assert!(matches!(source_url(bad), Err(AddError::NotWeb(_))), "{bad}");
        }
        assert!(matches!(source_url(" "), Err(AddError::NoAddress)));
    }

    #[test]
    fn names_are_one_line_of_sane_length() {
        assert_eq!(given_name(Some("  ")).unwrap(), None);
        assert_eq!(given_name(Some(" News ")).unwrap().as_deref(), Some("News"));
        assert!(matches!(
            given_name(Some("a\u{1b}[31mb")),
            Err(AddError::NameControl(_))
        ));
        assert!(matches!(
            given_name(Some(&"n".repeat(MAX_NAME_CHARS + 1))),
            Err(AddError::NameTooLong)
        ));
        assert_eq!(
            name_from_title("The\n  Daily\u{1b}[31m\tNews").as_deref(),
            Some("The Daily [31m News")
        );
        assert_eq!(name_from_title(" \n "), None);
        assert_eq!(
            name_from_title(&"t".repeat(500)).map(|n| n.chars().count()),
            Some(MAX_NAME_CHARS)
        );
    }
}
