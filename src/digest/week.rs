use std::fmt;

use chrono::{DateTime, Datelike, Utc};

/// An ISO week, the unit of the weekly digest: one issue per week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssueWeek {
    year: i32,
    week: u32,
}

impl IssueWeek {
    pub fn of(moment: DateTime<Utc>) -> Self {
        let iso = moment.iso_week();
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
        assert_eq!(IssueWeek::of(at(2026, 11, 28)).to_string(), "2026-W48");
        // 1 January 2027 is a Friday: it belongs to the last week of 2026.
        assert_eq!(IssueWeek::of(at(2027, 1, 1)).to_string(), "2026-W53");
        assert_eq!(IssueWeek::of(at(2024, 12, 30)).to_string(), "2025-W01");
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
