//! The built-in scheduler of `gazette serve`: runs the weekly dispatch at
//! the times `schedule.cron` names, in `schedule.timezone`.
//!
//! Any number of processes may run it against one database: every process
//! dispatches for the same scheduled instant, the dispatches are serialised
//! by a PostgreSQL advisory lock (SQLite has one writer anyway), and
//! `issues.week` is unique, so a week gets one issue whoever fires first.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;
use tokio::sync::watch;

use crate::config::{ScheduleSettings, Settings};
use crate::db::{Db, issues};
use crate::digest::dispatch::{self, Dispatched};
use crate::domain::IssueWeek;

/// A parsed cron pattern: the standard five fields (minute hour
/// day-of-month month day-of-week), or six with a leading seconds field.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    source: String,
}

impl CronSchedule {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(raw)
            .map_err(|e| format!("`{raw}` is not a cron pattern (minute hour day month weekday): {e}"))?;
        Ok(Self {
            cron,
            source: raw.trim().to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        CronSchedule::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone name such as `Europe/Berlin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleTimezone(pub Tz);

impl ScheduleTimezone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Tz::from_str(raw.trim())
            .map(Self)
            .map_err(|_| format!("`{raw}` is not an IANA time zone name (such as UTC or Europe/Berlin)"))
    }
}

impl<'de> Deserialize<'de> for ScheduleTimezone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ScheduleTimezone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl ScheduleSettings {
    /// The first scheduled run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .cron
            .find_next_occurrence(&after.with_timezone(&self.timezone.0), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The last scheduled run at or before `now`.
    pub fn last_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .cron
            .find_previous_occurrence(&now.with_timezone(&self.timezone.0), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The issue week `at` falls in: its ISO week on the calendar of
    /// `schedule.timezone`, so a run scheduled for Monday morning there is
    /// that Monday's week. The scheduler, `gazette dispatch` and the admin
    /// all ask here.
    pub fn issue_week(&self, at: DateTime<Utc>) -> IssueWeek {
        IssueWeek::of(at, self.timezone.0)
    }

    fn grace(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.grace_hours))
    }
}

/// When the built-in scheduler will next dispatch, or `None` when it is
/// turned off (`schedule.enabled = false`) or the pattern never matches
/// again. For the admin dashboard; a `--no-scheduler` process cannot know
/// whether another process runs the scheduler, so it answers from config.
pub fn next_run(settings: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !settings.schedule.enabled {
        return None;
    }
    settings.schedule.next_after(now)
}

/// What a process starting at `now` does about the last scheduled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// No run was missed (the pattern never matched before, or that run's
    /// week has its issue).
    NothingMissed,
    /// The run at this instant was missed and is still within the grace
    /// period: dispatch as of then.
    Dispatch(DateTime<Utc>),
    /// The run at this instant was missed too long ago: skip it.
    Skip(DateTime<Utc>),
}

/// Decides the catch-up, given the last scheduled run and whether its week
/// has an issue already.
pub fn catch_up(
    schedule: &ScheduleSettings,
    last_run: Option<DateTime<Utc>>,
    week_has_issue: bool,
    now: DateTime<Utc>,
) -> CatchUp {
    match last_run {
        None => CatchUp::NothingMissed,
        Some(_) if week_has_issue => CatchUp::NothingMissed,
        Some(at) if now - at <= schedule.grace() => CatchUp::Dispatch(at),
        Some(at) => CatchUp::Skip(at),
    }
}

/// An arbitrary, fixed key for the PostgreSQL advisory lock every
/// dispatching process takes (the scheduler and `gazette dispatch`).
const DISPATCH_LOCK_KEY: i64 = 0x6761_7a65_7474_6501;

/// Runs [`dispatch::dispatch`] while holding the dispatch lock, so that
/// dispatches by several processes run one after the other: the second
/// finds the week's issue and queues nothing. The lock is transaction-scoped
/// on a connection of its own, so it is released even if this future is
/// dropped half-way (the transaction rolls back).
pub async fn dispatch_exclusive(db: &Db, settings: &Settings, at: DateTime<Utc>) -> Result<Dispatched, String> {
    match db {
        Db::Postgres(pool) => {
            let mut lock = pool
                .begin()
                .await
                .map_err(|e| format!("cannot take the dispatch lock: {e}"))?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(DISPATCH_LOCK_KEY)
                .execute(&mut *lock)
                .await
                .map_err(|e| format!("cannot take the dispatch lock: {e}"))?;
            let done = dispatch::dispatch(db, settings, at).await;
            let _ = lock.rollback().await;
            done
        }
        // SQLite's single connection serialises writers already, and the
        // unique week settles a race between processes on one file.
        Db::Sqlite(_) => dispatch::dispatch(db, settings, at).await,
    }
}

/// The scheduler task: catches up on a missed run, then sleeps until each
/// scheduled time and dispatches, until `stop` turns true.
pub struct Scheduler {
    db: Db,
    settings: Settings,
}

/// The longest single sleep: the wall clock is checked again after it, so
/// a changed system clock or a suspended machine delays a run by at most this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Scheduler {
    pub fn new(db: Db, settings: Settings) -> Self {
        Self { db, settings }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let schedule = &self.settings.schedule;
        let now = Utc::now();
        self.catch_up(now).await;
        let Some(mut next) = schedule.next_after(now) else {
            tracing::warn!(
                cron = schedule.cron.as_str(),
                "schedule.cron never matches again; no dispatch will run"
            );
            return;
        };
        log_next(schedule, next);
        loop {
            let now = Utc::now();
            if now >= next {
                self.fire(next).await;
                // A dispatch that took longer than the interval does not
                // replay the runs it overlapped.
                let Some(after) = schedule.next_after(next.max(Utc::now())) else {
                    return;
                };
                next = after;
                log_next(schedule, next);
                continue;
            }
            let wait = (next - now).to_std().unwrap_or_default().min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    async fn catch_up(&self, now: DateTime<Utc>) {
        let schedule = &self.settings.schedule;
        let last = schedule.last_at_or_before(now);
        let week_has_issue = match last {
            Some(at) => match issues::exists(&self.db, schedule.issue_week(at)).await {
                Ok(exists) => exists,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler: cannot read the issues; no catch-up");
                    return;
                }
            },
            None => false,
        };
        match catch_up(schedule, last, week_has_issue, now) {
            CatchUp::NothingMissed => {}
            CatchUp::Dispatch(at) => {
                tracing::info!(missed = %at, "scheduler: catching up on the run missed while stopped");
                self.fire(at).await;
            }
            CatchUp::Skip(at) => tracing::warn!(
                missed = %at,
                week = %schedule.issue_week(at),
                grace_hours = schedule.grace_hours,
                "scheduler: the run was missed more than schedule.grace_hours ago; skipping that week"
            ),
        }
    }

    /// Dispatches as of the scheduled instant `at`, so every process firing
    /// for it builds the same issue.
    async fn fire(&self, at: DateTime<Utc>) {
        match dispatch_exclusive(&self.db, &self.settings, at).await {
            Ok(Dispatched::Queued {
                week,
                recipients,
                articles,
            }) => tracing::info!(%week, recipients, articles, "scheduler: issue queued"),
            Ok(Dispatched::AlreadyDispatched { week }) => {
                tracing::info!(%week, "scheduler: already dispatched; nothing queued")
            }
            Ok(Dispatched::NothingNew { week, since }) => {
                tracing::info!(%week, %since, "scheduler: no new articles; nothing to send")
            }
            Err(e) => tracing::error!(error = %e, "scheduler: dispatch failed"),
        }
    }
}

fn log_next(schedule: &ScheduleSettings, next: DateTime<Utc>) {
    tracing::info!(
        cron = schedule.cron.as_str(),
        timezone = %schedule.timezone.0,
        next_run = %next.with_timezone(&schedule.timezone.0),
        "scheduler: next dispatch"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: &str, grace_hours: u32) -> ScheduleSettings {
        ScheduleSettings {
            enabled: true,
            cron: CronSchedule::parse(cron).unwrap(),
            timezone: ScheduleTimezone::parse(tz).unwrap(),
            grace_hours,
        }
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn friday_nine_follows_the_time_zone_and_its_daylight_saving() {
        let berlin = schedule("0 9 * * FRI", "Europe/Berlin", 24);
        // 28 November 2026 is a Saturday; Berlin is UTC+1 in winter.
        assert_eq!(
            berlin.next_after(at("2026-11-28T12:00:00Z")),
            Some(at("2026-12-04T08:00:00Z"))
        );
        // In summer it is UTC+2.
        assert_eq!(
            berlin.next_after(at("2026-06-01T00:00:00Z")),
            Some(at("2026-06-05T07:00:00Z"))
        );
        assert_eq!(
            berlin.last_at_or_before(at("2026-11-28T12:00:00Z")),
            Some(at("2026-11-27T08:00:00Z"))
        );
    }

    #[test]
    fn bad_patterns_and_zones_are_refused_with_the_value() {
        for bad in ["", "every friday", "0 9 * *", "61 9 * * FRI", "0 9 * * FRI 2027"] {
            let err = CronSchedule::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("`{bad}` parsed"));
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert!(ScheduleTimezone::parse("Mars/Olympus").is_err());
        assert!(ScheduleTimezone::parse("UTC").is_ok());
    }

    #[test]
    fn a_missed_run_is_caught_up_within_the_grace_period_and_skipped_after_it() {
        let weekly = schedule("0 9 * * FRI", "UTC", 24);
        let missed = at("2026-11-27T09:00:00Z");
        assert_eq!(
            catch_up(&weekly, Some(missed), false, at("2026-11-28T08:59:00Z")),
            CatchUp::Dispatch(missed)
        );
        assert_eq!(
            catch_up(&weekly, Some(missed), false, at("2026-11-28T09:01:00Z")),
            CatchUp::Skip(missed)
        );
        assert_eq!(
            catch_up(&weekly, Some(missed), true, at("2026-11-27T10:00:00Z")),
            CatchUp::NothingMissed
        );
        assert_eq!(catch_up(&weekly, None, false, missed), CatchUp::NothingMissed);
    }
}
