//! Dates as feeds write them: RFC 822/2822 (RSS, with the obsolete zone
//! names), RFC 3339 and ISO 8601 (Atom, JSON Feed, Dublin Core), and the
//! variants real feeds use (no weekday, a wrong weekday, two-digit years,
//! no seconds, full month names, `+00:00` in an RFC 822 date, a date
//! without a time). A date without a time zone is UTC.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// `raw` as an instant, or `None` when it is not a date this reads.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if raw.len() > 100 {
        return None;
    }
    let starts_with_year = raw.len() >= 4 && raw.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if starts_with_year && let Some(date) = iso_8601(raw) {
        return Some(date);
    }
    rfc_822(raw)
}

/// `2026-11-26T08:30:00Z`, `2026-11-26 08:30:00.5+01:00`, `2026-11-26T08:30`
/// (UTC), `2026-11-26` (midnight UTC), `20261126T083000Z`, `2026-11`.
fn iso_8601(raw: &str) -> Option<DateTime<Utc>> {
    let mut s = Scan(raw);
    let year = s.digits(4, 4)?;
    let basic = !s.eat("-");
    let month = s.digits(2, 2)?;
    let day = if basic {
        s.digits(2, 2)?
    } else if s.eat("-") {
        s.digits(1, 2)?
    } else {
        1
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    if s.0.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    if !(s.eat("T") || s.eat("t") || s.eat(" ")) {
        return None;
    }
    let hour = s.digits(1, 2)?;
    if !basic {
        s.eat(":");
    }
    let minute = s.digits(2, 2)?;
    let mut second = 0;
    if s.eat(":") || (basic && s.0.starts_with(|c: char| c.is_ascii_digit())) {
        second = s.digits(2, 2)?;
    }
    let mut nanos = 0;
    if s.eat(".") || s.eat(",") {
        let fraction = s.take_while(|c| c.is_ascii_digit());
        if fraction.is_empty() {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..fraction.len().min(9)]);
        nanos = padded.parse().ok()?;
    }
    let time = time_of_day(hour, minute, second, nanos)?;
    let offset = match s.0.trim() {
        "" | "Z" | "z" | "UTC" | "GMT" => Some(0),
        zone => numeric_offset(zone),
    }?;
    Some(to_utc(date.and_time(time), offset))
}

/// `Thu, 26 Nov 2026 08:30:00 +0000` and its relatives: the tokens are
/// read in any of the orders feeds use (`26 Nov 2026`, `Nov 26 2026`,
/// asctime's `Thu Nov 26 08:30:00 2026`), and the weekday is ignored.
fn rfc_822(raw: &str) -> Option<DateTime<Utc>> {
    let (mut day, mut month, mut year, mut time, mut offset) = (None, None, None, None, None);
    let mut afternoon = None;
    // "(Coordinated Universal Time)" and the like are comments.
    let without_comment = raw.split('(').next().unwrap_or(raw);
    let tokens = without_comment
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .flat_map(|t| {
            // `26-Nov-2026`: a cookie-style date; `-0500` stays a zone.
            let split = t.contains(|c: char| c.is_ascii_alphabetic()) && t.contains('-') && !t.starts_with('-');
            let parts: Vec<&str> = if split { t.split('-').collect() } else { vec![t] };
            parts
        });
    for token in tokens {
        let lower = token.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        if token.contains(':') && token.starts_with(|c: char| c.is_ascii_digit()) && time.is_none() {
            time = Some(clock(token)?);
        } else if let Some(m) = month_number(lower) {
            if month.replace(m).is_some() {
                return None;
            }
        } else if is_weekday(lower) {
        } else if lower == "am" || lower == "pm" {
            afternoon = Some(lower == "pm");
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = token.parse().ok()?;
            if day.is_none() && token.len() <= 2 && year.is_none() {
                day = Some(n);
            } else if year.is_none() {
                year = Some(match token.len() {
                    1 | 2 if n < 50 => 2000 + n,
                    1 | 2 => 1900 + n,
                    3 => 1900 + n,
                    4 => n,
                    _ => return None,
                });
            } else {
                return None;
            }
        } else if let Some(o) = zone_offset(token) {
            if offset.replace(o).is_some() {
                return None;
            }
        } else {
            return None;
        }
    }
    let (mut hour, minute, second) = time.unwrap_or((0, 0, 0));
    match afternoon {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = NaiveDate::from_ymd_opt(year? as i32, month?, day?)?;
    let time = time_of_day(hour, minute, second, 0)?;
    Some(to_utc(date.and_time(time), offset.unwrap_or(0)))
}

/// `08:30`, `8:30:00`, `08:30:00.000`.
fn clock(token: &str) -> Option<(u32, u32, u32)> {
    let token = token.split('.').next()?;
    let mut parts = token.split(':');
    let mut next = |max_len: usize| -> Option<u32> {
        let part = parts.next()?;
        (!part.is_empty() && part.len() <= max_len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let hour = next(2)?;
    let minute = next(2)?;
    let second = match parts.next() {
        None => 0,
        Some(s) if !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        Some(_) => return None,
    };
    Some((hour, minute, second))
}

fn time_of_day(hour: u32, minute: u32, second: u32, nanos: u32) -> Option<NaiveTime> {
    // A leap second (`23:59:60`) is the last second of the minute.
    NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)
}

/// Seconds east of UTC.
fn to_utc(local: NaiveDateTime, offset: i64) -> DateTime<Utc> {
    (local - Duration::seconds(offset)).and_utc()
}

/// `+0100`, `-05:00`, `+01`, `GMT+0100`, `UTC-5`.
fn numeric_offset(zone: &str) -> Option<i64> {
    let zone = zone
        .strip_prefix("GMT")
        .or_else(|| zone.strip_prefix("UTC"))
        .unwrap_or(zone);
    let sign = match zone.chars().next()? {
        '+' => 1,
        '-' | '−' => -1,
        _ => return None,
    };
    let digits: String = zone[zone.char_indices().nth(1)?.0..]
        .chars()
        .filter(|&c| c != ':')
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    if hours > 18 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// A numeric offset or a zone's name: RFC 822's (UT, GMT, the four US
/// zones, the military letters, which RFC 2822 §4.3 says to read as UTC)
/// and the few others feeds commonly write.
fn zone_offset(token: &str) -> Option<i64> {
    if let Some(offset) = numeric_offset(token) {
        return Some(offset);
    }
    let hours = match token.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" | "WET" => 0,
        "EST" => -5,
        "EDT" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "AKST" => -9,
        "AKDT" => -8,
        "HST" => -10,
        "BST" | "CET" | "WEST" => 1,
        "CEST" | "EET" => 2,
        "EEST" | "MSK" => 3,
        "JST" | "KST" => 9,
        "AEST" => 10,
        "AEDT" => 11,
        "NZST" => 12,
        "NZDT" => 13,
        military if military.len() == 1 && military.chars().all(|c| c.is_ascii_alphabetic() && c != 'J') => 0,
        _ => return None,
    };
    Some(hours * 3600)
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.len() < 3 {
        return None;
    }
    let word = if word == "sept" { "sep" } else { word };
    MONTHS.iter().position(|m| m.starts_with(word)).map(|i| i as u32 + 1)
}

fn is_weekday(word: &str) -> bool {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    word.len() >= 3 && DAYS.iter().any(|d| d.starts_with(word))
}

/// A cursor over a date being read.
struct Scan<'a>(&'a str);

impl<'a> Scan<'a> {
    fn eat(&mut self, prefix: &str) -> bool {
        match self.0.strip_prefix(prefix) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.0.find(|c: char| !keep(c)).unwrap_or(self.0.len());
        let (taken, rest) = self.0.split_at(end);
        self.0 = rest;
        taken
    }

    /// Between `min` and `max` ASCII digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self.0.bytes().take(max).take_while(u8::is_ascii_digit).count();
        if len < min {
            return None;
        }
        let (digits, rest) = self.0.split_at(len);
        self.0 = rest;
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dates_feeds_write() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let table = [
            // RFC 822 / 2822, as RSS writes them.
            ("Thu, 26 Nov 2026 08:30:00 +0000", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 GMT", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 UT", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 EST", "2026-11-26T13:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 PDT", "2026-11-26T15:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 Z", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 A", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 -0500", "2026-11-26T13:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00 +05:30", "2026-11-26T03:00:00Z"),
            // The variants: no weekday, a wrong one, a full one, no comma,
            // no seconds, one-digit day and hour, full month, two-digit
            // year, no zone, extra spaces, a trailing period.
            ("26 Nov 2026 08:30:00 +0000", "2026-11-26T08:30:00Z"),
            ("Mon, 26 Nov 2026 08:30:00 +0000", "2026-11-26T08:30:00Z"),
            ("Thursday, 26 November 2026 08:30:00 GMT", "2026-11-26T08:30:00Z"),
            ("Thu 26 Nov 2026 08:30 GMT", "2026-11-26T08:30:00Z"),
            ("Thu, 1 Oct 2026 8:05:09 GMT", "2026-10-01T08:05:09Z"),
            ("Thu, 26 Nov 26 08:30:00 GMT", "2026-11-26T08:30:00Z"),
            ("Fri, 26 Nov 99 08:30:00 GMT", "1999-11-26T08:30:00Z"),
            ("Thu, 26 Nov 2026 08:30:00", "2026-11-26T08:30:00Z"),
            ("  Thu,  26  Nov  2026  08:30:00  +0000 ", "2026-11-26T08:30:00Z"),
            ("Thu, 26 Sept. 2026 08:30:00 GMT", "2026-09-26T08:30:00Z"),
            ("Thu, 26 Nov 2026", "2026-11-26T00:00:00Z"),
            ("Thu, 26-Nov-2026 08:30:00 GMT", "2026-11-26T08:30:00Z"),
            ("Nov 26, 2026 8:30 PM", "2026-11-26T20:30:00Z"),
            ("Thu Nov 26 08:30:00 2026", "2026-11-26T08:30:00Z"),
            (
                "Thu Nov 26 2026 08:30:00 GMT+0100 (Central European Standard Time)",
                "2026-11-26T07:30:00Z",
            ),
            ("Thu, 26 Nov 2026 23:59:60 GMT", "2026-11-26T23:59:59Z"),
            // RFC 3339 / ISO 8601, as Atom, JSON Feed and dc:date write them.
            ("2026-11-26T08:30:00Z", "2026-11-26T08:30:00Z"),
            ("2026-11-26T08:30:00.123456789Z", "2026-11-26T08:30:00.123456789Z"),
            ("2026-11-26T09:30:00+01:00", "2026-11-26T08:30:00Z"),
            ("2026-11-26T09:30:00+0100", "2026-11-26T08:30:00Z"),
            ("2026-11-26T03:30:00-05", "2026-11-26T08:30:00Z"),
            ("2026-11-26t08:30:00z", "2026-11-26T08:30:00Z"),
            ("2026-11-26 08:30:00", "2026-11-26T08:30:00Z"),
            ("2026-11-26T08:30", "2026-11-26T08:30:00Z"),
            ("2026-11-26", "2026-11-26T00:00:00Z"),
            ("2026-11", "2026-11-01T00:00:00Z"),
            ("20261126T083000Z", "2026-11-26T08:30:00Z"),
            ("2026-11-26 08:30:00 UTC", "2026-11-26T08:30:00Z"),
        ];
        for (raw, expected) in table {
            assert_eq!(parse_date(raw), Some(utc(expected)), "{raw:?}");
        }
    }

    #[test]
    fn what_is_not_a_date_is_none() {
        for raw in [
            "",
            "last Tuesday",
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-02-30",
            "Thu, 31 Feb 2026 08:00:00 GMT",
            "Thu, 26 Nov 2026 25:00:00 GMT",
            "Thu, 26 Nov 2026 08:30:00 +9999",
            "26 2026 08:30:00",
            "Nov 2026",
            "2026-11-26T08:30:00 Mars/Olympus",
            "1764147000",
            "Thu, 26 Nov Nov 2026",
        ] {
            assert_eq!(parse_date(raw), None, "{raw:?}");
        }
    }
}
