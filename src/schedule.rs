//! The built-in scheduler of `gazette serve`: runs the weekly dispatch at
//! the times `schedule.cron` names, in `schedule.timezone` (their meaning is
//! in [`crate::config::ScheduleSettings`]), and at start-up makes up a run
//! missed while no process was up, within `schedule.grace_hours`.
//!
//! Any number of processes may run it against one database: every process
//! fires for the same scheduled instant and dispatches as of that instant;
//! [`dispatch::dispatch`] runs one dispatch at a time (PostgreSQL's advisory
//! lock; SQLite has a single writer) and `issues.week` is unique, so a week
//! gets one issue whoever fires first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::{ScheduleSettings, Settings};
use crate::db::{Db, issues};
use crate::digest::dispatch::{self, Dispatched};

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
        match dispatch::dispatch(&self.db, &self.settings, at).await {
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
    use crate::config::{CronSchedule, ScheduleTimezone};

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
