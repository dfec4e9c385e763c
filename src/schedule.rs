//! The built-in scheduler of `gazette serve`: runs the weekly dispatch at
//! the times `schedule.cron` names, in `schedule.timezone` (their meaning is
//! in [`crate::config::ScheduleSettings`]), and at start-up makes up a run
//! missed while no process was up, within `schedule.grace_hours`.
//!
//! `gazette dispatch --scheduled`, run by a systemd timer or cron when the
//! built-in scheduler is off, makes the same decision through [`run_due`]:
//! `schedule.cron` in `schedule.timezone` is the one clock, and a late run
//! (a timer firing at boot, a process started after an outage) dispatches
//! the week of the run it makes up, as of that run's instant, never the
//! week it happens to run in.
//!
//! Just before a scheduled dispatch (a run on time, or one made up), every
//! feed source not polled since the run's instant is polled once more
//! ([`Poller::before_dispatch`]), so the issue has what the feeds published
//! up to then; `gazette dispatch` without `--scheduled` dispatches what is
//! already there.
//!
//! Staff may give a week's issue a time of its own at the editor's desk
//! ("send at", `db::issue_drafts`): it goes out then, dispatched as of that
//! instant ([`send_scheduled_issues`]), and the weekly run leaves that week
//! alone. Scheduled times live in the database, so the scheduler looks for
//! them every few seconds rather than being told.
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
use crate::db::{Db, issue_drafts, issues};
use crate::digest::dispatch::{self, DispatchError, Dispatched};
use crate::digest::poll::Poller;
use crate::domain::IssueWeek;

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

/// What [`run_due`] found the schedule asking for at `now`, and did.
pub enum ScheduledRun {
    /// `schedule.cron` never matched before `now`.
    NeverDue,
    /// The last scheduled run's week has its issue (sent by an earlier run,
    /// another process, or the staff's "send now").
    AlreadyDone { at: DateTime<Utc>, week: IssueWeek },
    /// The last scheduled run was missed and is within the grace period:
    /// dispatched as of its instant.
    Dispatched { at: DateTime<Utc>, outcome: Dispatched },
    /// The last scheduled run was missed more than `schedule.grace_hours`
    /// ago: its week is skipped.
    Skipped { at: DateTime<Utc>, week: IssueWeek },
    /// Staff gave the week's issue a time of its own (`send_at`): the
    /// weekly run leaves it to that time.
    LeftToStaff {
        at: DateTime<Utc>,
        week: IssueWeek,
        send_at: DateTime<Utc>,
    },
}

/// A week's issue that staff scheduled, and what came of its time.
pub struct ScheduledSend {
    pub week: IssueWeek,
    pub send_at: DateTime<Utc>,
    /// `None`: the time was missed more than `schedule.grace_hours` ago and
    /// the send was dropped.
    pub outcome: Option<Result<Dispatched, DispatchError>>,
}

/// Sends every issue staff scheduled for `now` or before, each as of its
/// own time (within `schedule.grace_hours`; older ones are dropped, and
/// said so), and records that its time came. Run it as often as you like:
/// a time is acted on once, and a week gets one issue whoever fires first.
pub async fn send_scheduled_issues(
    db: &Db,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<ScheduledSend>, DispatchError> {
    let mut sent = Vec::new();
    while let Some((week, send_at)) = issue_drafts::next_scheduled(db)
        .await
        .map_err(DispatchError::ReadIssues)?
    {
        if send_at > now {
            break;
        }
        let outcome = if now - send_at <= settings.schedule.grace() {
            Poller::from_settings(db.clone(), settings)
                .before_dispatch(send_at)
                .await;
            Some(dispatch::dispatch(db, settings, send_at).await)
        } else {
            None
        };
        // A failed dispatch keeps its time, to be tried on the next look.
        if matches!(outcome, Some(Err(_))) {
            sent.push(ScheduledSend { week, send_at, outcome });
            break;
        }
        let recorded = issue_drafts::mark_fired(db, week, send_at, Utc::now())
            .await
            .map_err(DispatchError::ReadIssues)?;
        sent.push(ScheduledSend { week, send_at, outcome });
        // Staff changed the time meanwhile (or another process recorded
        // it): the next look reads it afresh, rather than this loop.
        if !recorded {
            break;
        }
    }
    Ok(sent)
}

/// When staff scheduled `week`'s issue to go out, if they did and its time
/// has not come and gone.
async fn staff_time(db: &Db, week: IssueWeek) -> Result<Option<DateTime<Utc>>, DispatchError> {
    Ok(issue_drafts::find(db, week)
        .await
        .map_err(DispatchError::ReadIssues)?
        .send_at)
}

/// Makes sure the last run `schedule.cron` names at or before `now` has
/// happened: dispatches as of that run's instant if its week has no issue
/// and it is within `schedule.grace_hours`. Run it as often as you like;
/// it dispatches a week at most once. A run made up on Monday for the
/// Friday before is that Friday's week, with the articles published up to
/// that Friday's scheduled time; the ones after go into the next issue.
pub async fn run_due(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<ScheduledRun, DispatchError> {
    let schedule = &settings.schedule;
    let Some(last) = schedule.last_at_or_before(now) else {
        return Ok(ScheduledRun::NeverDue);
    };
    let week = schedule.issue_week(last);
    let week_has_issue = issues::exists(db, week).await.map_err(DispatchError::ReadIssues)?;
    if !week_has_issue && let Some(send_at) = staff_time(db, week).await? {
        return Ok(ScheduledRun::LeftToStaff {
            at: last,
            week,
            send_at,
        });
    }
    Ok(match catch_up(schedule, Some(last), week_has_issue, now) {
        CatchUp::NothingMissed => ScheduledRun::AlreadyDone { at: last, week },
        CatchUp::Dispatch(at) => {
            Poller::from_settings(db.clone(), settings).before_dispatch(at).await;
            ScheduledRun::Dispatched {
                at,
                outcome: dispatch::dispatch(db, settings, at).await?,
            }
        }
        CatchUp::Skip(at) => ScheduledRun::Skipped { at, week },
    })
}

/// `gazette dispatch --scheduled` was asked to keep the schedule while the
/// configuration also has `gazette serve` keep it: two clocks, refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "schedule.enabled is true, so `gazette serve` dispatches on schedule by itself; to have a timer or \
     cron run `gazette dispatch --scheduled` instead, set schedule.enabled = false in the configuration \
     every process reads (or GAZETTE_SCHEDULE__ENABLED=false)"
)]
pub struct BuiltInSchedulerIsOn;

/// The check `gazette dispatch --scheduled` makes before anything else.
pub fn external_scheduling_allowed(schedule: &ScheduleSettings) -> Result<(), BuiltInSchedulerIsOn> {
    if schedule.enabled {
        Err(BuiltInSchedulerIsOn)
    } else {
        Ok(())
    }
}

/// The scheduler task: catches up on a missed run, then sleeps until each
/// scheduled time, polls the feed sources and dispatches, until `stop`
/// turns true.
pub struct Scheduler {
    db: Db,
    settings: Settings,
    poller: Poller,
}

/// The longest single sleep: the wall clock is checked again after it, so
/// a changed system clock or a suspended machine delays a run by at most this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How often the database is asked for issues staff scheduled: a send goes
/// out at most this late.
const STAFF_TIMES_EVERY: Duration = Duration::from_secs(2);

impl Scheduler {
    pub fn new(db: Db, settings: Settings) -> Self {
        let poller = Poller::from_settings(db.clone(), &settings);
        Self { db, settings, poller }
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
            self.send_scheduled().await;
            let now = Utc::now();
            if now >= next {
                // Woken long after the run (a suspended machine, a stopped
                // process): the same grace as at start-up.
                if now - next <= schedule.grace() {
                    self.fire(next).await;
                } else {
                    log_skipped(schedule, next);
                }
                // A dispatch that took longer than the interval does not
                // replay the runs it overlapped.
                let Some(after) = schedule.next_after(next.max(Utc::now())) else {
                    return;
                };
                next = after;
                log_next(schedule, next);
                continue;
            }
            let wait = (next - now)
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP)
                .min(STAFF_TIMES_EVERY);
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
        match run_due(&self.db, &self.settings, now).await {
            Ok(ScheduledRun::NeverDue | ScheduledRun::AlreadyDone { .. } | ScheduledRun::LeftToStaff { .. }) => {}
            Ok(ScheduledRun::Dispatched { at, outcome }) => {
                tracing::info!(missed = %at, "scheduler: catching up on the run missed while stopped");
                log_outcome(Ok(outcome));
            }
            Ok(ScheduledRun::Skipped { at, .. }) => log_skipped(schedule, at),
            Err(e) => tracing::error!(error = %e, "scheduler: catching up failed"),
        }
    }

    /// Polls the feed sources once more, then dispatches as of the
    /// scheduled instant `at`, so every process firing for it builds the
    /// same issue.
    async fn fire(&self, at: DateTime<Utc>) {
        let week = self.settings.schedule.issue_week(at);
        match staff_time(&self.db, week).await {
            Ok(Some(send_at)) => {
                tracing::info!(%week, %send_at, "scheduler: staff scheduled this week's issue; the weekly run leaves it to that time");
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: cannot read whether staff scheduled the issue; running as usual")
            }
        }
        self.poller.before_dispatch(at).await;
        log_outcome(dispatch::dispatch(&self.db, &self.settings, at).await);
    }

    /// Sends the issues staff scheduled whose time has come.
    async fn send_scheduled(&self) {
        match send_scheduled_issues(&self.db, &self.settings, Utc::now()).await {
            Ok(sent) => {
                for send in sent {
                    match send.outcome {
                        Some(outcome) => {
                            tracing::info!(week = %send.week, send_at = %send.send_at, "scheduler: the time staff chose has come");
                            log_outcome(outcome);
                        }
                        None => tracing::warn!(
                            week = %send.week,
                            send_at = %send.send_at,
                            grace_hours = self.settings.schedule.grace_hours,
                            "scheduler: the time staff chose was missed more than schedule.grace_hours ago; not sent"
                        ),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduler: cannot look for issues staff scheduled"),
        }
    }
}

fn log_outcome(outcome: Result<Dispatched, DispatchError>) {
    match outcome {
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

fn log_skipped(schedule: &ScheduleSettings, at: DateTime<Utc>) {
    tracing::warn!(
        missed = %at,
        week = %schedule.issue_week(at),
        grace_hours = schedule.grace_hours,
        "scheduler: the run was missed more than schedule.grace_hours ago; skipping that week"
    );
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

    #[test]
    fn fridays_run_made_up_on_monday_is_fridays_week_as_of_fridays_time() {
        // Friday 27 November 2026, 09:00 in Berlin (08:00 UTC), is in
        // 2026-W48; the machine comes back on Monday 30 November (2026-W49).
        let weekly = schedule("0 9 * * FRI", "Europe/Berlin", 96);
        let monday = at("2026-11-30T07:30:00Z");
        let last = weekly.last_at_or_before(monday);
        assert_eq!(last, Some(at("2026-11-27T08:00:00Z")));
        assert_eq!(
            catch_up(&weekly, last, false, monday),
            CatchUp::Dispatch(at("2026-11-27T08:00:00Z"))
        );
        assert_eq!(weekly.issue_week(last.unwrap()).to_string(), "2026-W48");
        assert_eq!(weekly.issue_week(monday).to_string(), "2026-W49");
        // With the default day of grace the weekend was too long.
        let strict = schedule("0 9 * * FRI", "Europe/Berlin", 24);
        assert_eq!(catch_up(&strict, last, false, monday), CatchUp::Skip(last.unwrap()));
    }

    #[test]
    fn external_scheduling_needs_the_built_in_scheduler_off() {
        let mut weekly = schedule("0 9 * * FRI", "UTC", 24);
        assert!(external_scheduling_allowed(&weekly).is_err());
        weekly.enabled = false;
        assert!(external_scheduling_allowed(&weekly).is_ok());
    }
}
