//! `schedule.cron` and `schedule.timezone`, parsed, and what they mean:
//! when the weekly dispatch runs and which issue week an instant falls in.
//! The scheduler (`crate::schedule`), `gazette dispatch` and the admin all
//! read the schedule here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;

use super::ScheduleSettings;
use crate::domain::IssueWeek;

/// A value of `schedule.cron` or `schedule.timezone` that cannot be used;
/// the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{raw}` is not a cron pattern (minute hour day month weekday): {why}")]
    Cron { raw: String, why: String },
    #[error("`{0}` is not an IANA time zone name (such as UTC or Europe/Berlin)")]
    Timezone(String),
}

/// A parsed cron pattern: the standard five fields (minute hour
/// day-of-month month day-of-week), or six with a leading seconds field.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    source: String,
}

impl CronSchedule {
    pub fn parse(raw: &str) -> Result<Self, ScheduleError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(raw).map_err(|e| ScheduleError::Cron {
            raw: raw.to_owned(),
            why: e.to_string(),
        })?;
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
    pub fn parse(raw: &str) -> Result<Self, ScheduleError> {
        Tz::from_str(raw.trim())
            .map(Self)
            .map_err(|_| ScheduleError::Timezone(raw.to_owned()))
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

    /// When the built-in scheduler will next dispatch, or `None` when it is
    /// turned off (`schedule.enabled = false`) or the pattern never matches
    /// again. For the admin dashboard; a `--no-scheduler` process cannot know
    /// whether another process runs the scheduler, so it answers from config.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        self.next_after(now)
    }

    /// The issue week `at` falls in: its ISO week on the calendar of
    /// `schedule.timezone`, so a run scheduled for Monday morning there is
    /// that Monday's week. The scheduler, `gazette dispatch` and the admin
    /// all ask here.
    pub fn issue_week(&self, at: DateTime<Utc>) -> IssueWeek {
        IssueWeek::of(at, self.timezone.0)
    }

    /// How late a missed run may still be made up at start-up.
    pub fn grace(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.grace_hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: &str) -> ScheduleSettings {
        ScheduleSettings {
            enabled: true,
            cron: CronSchedule::parse(cron).unwrap(),
            timezone: ScheduleTimezone::parse(tz).unwrap(),
            grace_hours: 24,
        }
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn friday_nine_follows_the_time_zone_and_its_daylight_saving() {
        let berlin = schedule("0 9 * * FRI", "Europe/Berlin");
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
                .unwrap_or_else(|| panic!("`{bad}` parsed"))
                .to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert!(ScheduleTimezone::parse("Mars/Olympus").is_err());
        assert!(ScheduleTimezone::parse("UTC").is_ok());
    }
}
