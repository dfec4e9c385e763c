use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

/// An ISO week, the unit of the weekly digest: one issue per week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssueWeek {
    year: i32,
    week: u32,
}

impl IssueWeek {
    /// The week `moment` falls in on the calendar of `zone`: a Monday
    /// morning in Tokyo is that Monday's week, though in UTC it is still
    /// Sunday. Every part of Gazette asks with `schedule.timezone`, through
    /// [`crate::config::ScheduleSettings::issue_week`].
    pub fn of(moment: DateTime<Utc>, zone: Tz) -> Self {
        let iso = moment.with_timezone(&zone).iso_week();
        Self {
            year: iso.year(),
            week: iso.week(),
        }
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn week(&self) -> u32 {
        self.week
    }

    /// The week after this one.
    pub fn following(self) -> Self {
        let monday = chrono::NaiveDate::from_isoywd_opt(self.year, self.week, chrono::Weekday::Mon)
            .expect("a parsed or computed week has a Monday");
        let iso = (monday + chrono::Duration::days(7)).iso_week();
        Self {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// Parses `2026-W48`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (year, week) = raw.trim().split_once("-W")?;
        let (year, week): (i32, u32) = (year.parse().ok()?, week.parse().ok()?);
        chrono::NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)?;
        (year >= 1000 && week.to_string().len() <= 2).then_some(Self { year, week })
    }
}

impl fmt::Display for IssueWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weeks_follow_iso_8601() {
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
        assert_eq!(IssueWeek::of(at(2026, 11, 28), Tz::UTC).to_string(), "2026-W48");
        // 1 January 2027 is a Friday: it belongs to the last week of 2026.
        assert_eq!(IssueWeek::of(at(2027, 1, 1), Tz::UTC).to_string(), "2026-W53");
        assert_eq!(IssueWeek::of(at(2024, 12, 30), Tz::UTC).to_string(), "2025-W01");
        assert_eq!(
            IssueWeek::of(at(2026, 11, 28), Tz::UTC).following().to_string(),
            "2026-W49"
        );
        assert_eq!(
            IssueWeek::parse("2026-W53").unwrap().following().to_string(),
            "2027-W01"
        );
    }

    /// The week of an instant in a zone, next to its week in UTC.
    fn weeks(rfc3339: &str, zone: Tz) -> (String, String) {
        let moment = DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc);
        (
            IssueWeek::of(moment, zone).to_string(),
            IssueWeek::of(moment, Tz::UTC).to_string(),
        )
    }

    #[test]
    fn the_week_turns_at_monday_midnight_in_the_zone_not_in_utc() {
        use chrono_tz::{America, Asia, Europe, Pacific};
        let cases = [
            // Monday 07:00 in Tokyo is Sunday 22:00 in UTC.
            ("2026-11-29T22:00:00Z", Asia::Tokyo, "2026-W49", "2026-W48"),
            ("2026-11-29T14:59:59Z", Asia::Tokyo, "2026-W48", "2026-W48"),
            ("2026-11-29T15:00:00Z", Asia::Tokyo, "2026-W49", "2026-W48"),
            // Berlin moved to summer time on Sunday 29 March 2026: its
            // Monday starts at 22:00 UTC that day, not 23:00.
            ("2026-03-29T21:59:59Z", Europe::Berlin, "2026-W13", "2026-W13"),
            ("2026-03-29T22:00:00Z", Europe::Berlin, "2026-W14", "2026-W13"),
            // And back on Sunday 25 October: Monday starts at 23:00 UTC.
            ("2026-10-25T22:30:00Z", Europe::Berlin, "2026-W43", "2026-W43"),
            ("2026-10-25T23:00:00Z", Europe::Berlin, "2026-W44", "2026-W43"),
            // New York, west of UTC: Sunday evening there is Monday in UTC.
            // Summer time began on 8 March and ended on 1 November 2026.
            ("2026-03-09T03:30:00Z", America::New_York, "2026-W10", "2026-W11"),
            ("2026-03-09T04:00:00Z", America::New_York, "2026-W11", "2026-W11"),
            ("2026-11-02T04:30:00Z", America::New_York, "2026-W44", "2026-W45"),
            ("2026-11-02T05:00:00Z", America::New_York, "2026-W45", "2026-W45"),
            // 2026 has 53 weeks: Auckland (summer, UTC+13) starts 2027-W01
            // while UTC is still in 2026-W53, and New York ends 2026-W53
            // after UTC began 2027-W01.
            ("2027-01-03T10:59:59Z", Pacific::Auckland, "2026-W53", "2026-W53"),
            ("2027-01-03T11:00:00Z", Pacific::Auckland, "2027-W01", "2026-W53"),
            ("2027-01-04T03:00:00Z", America::New_York, "2026-W53", "2027-W01"),
            ("2027-01-04T05:00:00Z", America::New_York, "2027-W01", "2027-W01"),
        ];
        for (instant, zone, local, utc) in cases {
            assert_eq!(
                weeks(instant, zone),
                (local.to_owned(), utc.to_owned()),
                "{instant} in {zone}"
            );
        }
    }

    #[test]
    fn labels_parse_back_and_nonsense_does_not() {
        assert_eq!(IssueWeek::parse("2026-W48").unwrap().to_string(), "2026-W48");
        assert_eq!(IssueWeek::parse("2026-W05").unwrap().to_string(), "2026-W05");
        for bad in [
            "",
            "2026",
            "2026-W54",
            "2025-W53",
            "2026-W0",
            "W48",
            "2026-W480",
            "abcd-W12",
        ] {
            assert!(IssueWeek::parse(bad).is_none(), "{bad:?}");
        }
    }
}
