//! `digest.subject`: the digest's subject line as a template, parsed once
//! into text and placeholders. Filling it writes each placeholder's value
//! in its place, so a lead story's title that happens to contain `{week}`
//! stays as it was written (substituting by searching the text would have
//! replaced it).

use std::fmt;

use serde::Deserialize;

/// One piece of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `{date}`: the date, written out.
    Date,
    /// `{lead_title}`: the first story's title.
    LeadTitle,
    /// `{week}`: `2026-W48`.
    Week,
    /// `{publication}`: the publication's name.
    Publication,
}

const PLACEHOLDERS: &str = "{lead_title}, {publication}, {date} and {week}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    parts: Vec<Part>,
}

/// What a subject line is filled with.
pub struct SubjectValues<'a> {
    pub date: &'a str,
    pub lead_title: &'a str,
    pub week: &'a str,
    pub publication: &'a str,
}

impl SubjectTemplate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() || raw.contains(['\r', '\n']) {
            return Err("must be one line of text".into());
        }
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("has a `{{` that is never closed; placeholders are {PLACEHOLDERS}"))?;
            parts.push(match &after[..close] {
                "date" => Part::Date,
                "lead_title" => Part::LeadTitle,
                "week" => Part::Week,
                "publication" => Part::Publication,
                other => return Err(format!("has an unknown placeholder `{{{other}}}`; use {PLACEHOLDERS}")),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The subject line for these values.
    pub fn fill(&self, values: &SubjectValues<'_>) -> String {
        let mut subject = String::new();
        for part in &self.parts {
            subject.push_str(match part {
                Part::Text(text) => text,
                Part::Date => values.date,
                Part::LeadTitle => values.lead_title,
                Part::Week => values.week,
                Part::Publication => values.publication,
            });
        }
        subject
    }
}

impl fmt::Display for SubjectTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Date => f.write_str("{date}")?,
                Part::LeadTitle => f.write_str("{lead_title}")?,
                Part::Week => f.write_str("{week}")?,
                Part::Publication => f.write_str("{publication}")?,
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for SubjectTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SubjectTemplate::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(lead_title: &'a str) -> SubjectValues<'a> {
        SubjectValues {
            date: "28 November 2026",
            lead_title,
            week: "2026-W48",
            publication: "The Weekly",
        }
    }

    #[test]
    fn placeholders_are_filled_where_they_stand() {
        let template = SubjectTemplate::parse("{lead_title} — {publication} ({week}, {date})").unwrap();
        assert_eq!(
            template.fill(&values("Floods")),
            "Floods — The Weekly (2026-W48, 28 November 2026)"
        );
        assert_eq!(template.to_string(), "{lead_title} — {publication} ({week}, {date})");
    }

    #[test]
    fn a_title_that_looks_like_a_placeholder_is_left_as_written() {
        let template = SubjectTemplate::parse("{lead_title} — {publication}").unwrap();
        assert_eq!(
            template.fill(&values("Why {week} and {publication} matter")),
            "Why {week} and {publication} matter — The Weekly"
        );
    }

    #[test]
    fn a_bad_template_is_refused_saying_why() {
        for (raw, why) in [
            ("", "one line"),
            ("a\nb", "one line"),
            ("{lead_title", "never closed"),
            ("{title} weekly", "unknown placeholder `{title}`"),
        ] {
            let error = SubjectTemplate::parse(raw).unwrap_err();
            assert!(error.contains(why), "{raw:?}: {error}");
        }
    }
}
