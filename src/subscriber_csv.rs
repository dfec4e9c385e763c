//! Readers in and out as CSV (`email,name`): the importer behind the admin
//! import page (and meant for `gazette subscribers import`), and the rows
//! of the export. Every row is parsed with the signup form's parsers; a bad
//! row is rejected with its line number and reason and the rest import.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::db::subscriber_admin::{self, ListedSubscriber};
use crate::db::subscribers::{self, SignupPolicy, SignupRow};
use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus, Token};

/// A row that parsed: a reader to add.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub email: SubscriberEmail,
    pub name: SubscriberName,
}

/// A row that did not import, and why, in words for staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

/// Whether the people in the file already consented elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Each new reader gets the opt-in email, as if they had signed up.
    AskByEmail,
    /// Staff vouch for their consent: they are confirmed at once.
    AlreadyGiven,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    /// New or pending readers who were sent an opt-in email.
    pub invited: usize,
    /// Readers added (or pending ones marked) confirmed.
    pub confirmed: usize,
    /// Readers already confirmed: nothing to do.
    pub already_subscribed: usize,
    pub rejected: Vec<RejectedRow>,
}

/// Parses `email,name` rows; a first row `email,name` is a header. An
/// address given twice is imported once (the later line is rejected).
pub fn parse(bytes: &[u8]) -> Vec<Result<ImportRow, RejectedRow>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    for (index, record) in reader.byte_records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| line_at(bytes, p.byte()))
                    .unwrap_or(index as u64 + 1);
                rows.push(Err(RejectedRow {
                    line,
                    reason: format!("the line cannot be read as CSV: {e}"),
                }));
                continue;
            }
        };
        // The reader's own line count skips blank lines; count them from
        // the record's byte offset so the numbers match an editor's.
        let line = record
            .position()
            .map(|p| line_at(bytes, p.byte()))
            .unwrap_or(index as u64 + 1);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default());
        let (Ok(email), Ok(name)) = (field(0), field(1)) else {
            rows.push(Err(RejectedRow {
                line,
                reason: "the line is not UTF-8 text".into(),
            }));
            continue;
        };
        if index == 0 && email.eq_ignore_ascii_case("email") {
            continue;
        }
        let reject = |reason: String| Err(RejectedRow { line, reason });
        if record.len() > 2 {
            rows.push(reject(format!(
                "expected 2 columns (email,name), found {}",
                record.len()
            )));
            continue;
        }
        let email = match SubscriberEmail::parse(email) {
            Ok(email) => email,
            Err(e) => {
                rows.push(reject(format!("email: {e}")));
                continue;
            }
        };
        let name = match SubscriberName::parse(name) {
            Ok(name) => name,
            Err(e) => {
                rows.push(reject(format!("name: {e}")));
                continue;
            }
        };
        if let Some(first) = seen.get(&email.dedupe_key()) {
            rows.push(reject(format!("the same address as line {first}")));
            continue;
        }
        seen.insert(email.dedupe_key(), line);
        rows.push(Ok(ImportRow { line, email, name }));
    }
    rows
}

fn line_at(bytes: &[u8], offset: u64) -> u64 {
    let mut end = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
    // A record's offset can point at the blank lines before it.
    while end < bytes.len() && matches!(bytes[end], b'\r' | b'\n') {
        end += 1;
    }
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Imports parsed rows. Readers who unsubscribed or bounced are left alone
/// (and reported): an import never subscribes someone who left.
pub async fn import(
    db: &Db,
    rows: Vec<Result<ImportRow, RejectedRow>>,
    consent: Consent,
    policy: SignupPolicy,
    now: DateTime<Utc>,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport::default();
    let mut invitations = Vec::new();
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(rejected) => {
                report.rejected.push(rejected);
                continue;
            }
        };
        let status = subscriber_admin::status_of(db, &row.email.dedupe_key())
            .await?
            .and_then(|s| SubscriberStatus::parse(&s));
        match (status, consent) {
            (Some(SubscriberStatus::Confirmed), _) => report.already_subscribed += 1,
            (Some(left @ (SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced)), _) => {
                report.rejected.push(RejectedRow {
                    line: row.line,
                    reason: format!(
                        "{} is {}: an import does not subscribe them again",
                        row.email,
                        left.as_str()
                    ),
                });
            }
            (_, Consent::AlreadyGiven) => {
                subscriber_admin::add_confirmed(db, &row.email, &row.name, "import", now).await?;
                report.confirmed += 1;
            }
            (_, Consent::AskByEmail) => {
                invitations.push(SignupRow::new(
                    &row.email,
                    &row.name,
                    None,
                    "import",
                    &Token::generate(),
                ));
                report.invited += 1;
            }
        }
    }
    subscribers::record_signups(db, &invitations, policy, now).await?;
    Ok(report)
}

pub const EXPORT_HEADER: &str = "email,name,status,signed_up_at,confirmed_at\r\n";

/// Export rows as CSV. A cell that starts like a formula is prefixed with
/// `'` so a spreadsheet shows it as text instead of running it.
pub fn export_rows(rows: &[ListedSubscriber]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        let confirmed = row.confirmed_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        let record = [
            cell(&row.email),
            cell(&row.name),
            row.status.clone(),
            row.signed_up_at.to_rfc3339(),
            confirmed,
        ];
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(&record);
    }
    writer.into_inner().unwrap_or_default()
}

fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_line_numbers_and_reasons() {
        let csv = "email,name\nada@example.com,Ada\nnot-an-address,Bob\n\nzoe@example.com,\nADA@example.com,Ada again\n\"x@example.com\",\"Lovelace, Ada\"\n";
        let rows = parse(csv.as_bytes());
        let ok: Vec<_> = rows
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| (r.line, r.name.as_str()))
            .collect();
        assert_eq!(ok, vec![(2, "Ada"), (7, "Lovelace, Ada")]);
        let bad: Vec<_> = rows.iter().filter_map(|r| r.as_ref().err()).map(|r| r.line).collect();
        assert_eq!(bad, vec![3, 5, 6]);
        let reasons: Vec<_> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|r| r.reason.clone())
            .collect();
        assert!(reasons[0].starts_with("email:"), "{reasons:?}");
        assert!(reasons[1].starts_with("name:"), "{reasons:?}");
        assert_eq!(reasons[2], "the same address as line 2");
    }

    #[test]
    fn formula_cells_are_defused_in_the_export() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("Ada"), "Ada");
    }
}
