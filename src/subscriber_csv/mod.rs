//! Subscribers as CSV: the import (`gazette subscribers import` and the
//! staff area's upload) and the export (`gazette subscribers export` and
//! the staff area's download).
//!
//! An import file has the columns `email,name`, with or without a header
//! row (a header may name them in either order; other columns are
//! ignored, so an export imports again), or is the export of another tool
//! ([`formats`]: Mailchimp, Substack, listmonk, Buttondown, Ghost), whose
//! columns and readers' standing are found by the header's names. Commas,
//! semicolons or tabs between fields, UTF-8 (with or without a byte order
//! mark) or UTF-16, CRLF line endings and quoted fields are fine
//! ([`input`]); a quote never closed is reported at the line it opened on.
//! Each row goes through the same parsers as the signup form; a rejected
//! row is reported with its line number and the reason, and the rest
//! import. The file is read as a stream on a blocking thread while batches
//! are written, each batch in one transaction, so memory stays flat however
//! long the file is.

mod formats;
mod input;

pub use formats::{Format, Standing};

use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::db::Db;
use crate::db::new_readers::NewReader;
use crate::db::subscriber_admin::{self, ExportedSubscriber, Filter};
use crate::db::subscriber_import::{self, Consent};
use crate::domain::{AddressPolicy, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::i18n::Language;
use formats::Layout;
use input::{Decoded, QuoteWatch};

/// Readers per batch (and per transaction).
pub const BATCH_ROWS: usize = 5_000;

/// A row of an import file, parsed.
#[derive(Debug, Clone)]
pub struct CsvReader {
    /// The row's line in the file, counting from 1.
    pub line: u64,
    pub email: SubscriberEmail,
    pub name: SubscriberName,
    /// What the file says of the reader (a tool's export may say they
    /// left, or never confirmed).
    pub standing: Standing,
}

/// A row that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The file itself could not be read (an I/O error); rows before `line`
/// were read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read line {line}: {message}")]
pub struct ReadError {
    pub line: u64,
    pub message: String,
}

/// A row's field that is not UTF-8 text.
#[derive(Debug, thiserror::Error)]
#[error("the row is not UTF-8 text (save the file as UTF-8)")]
struct NotUtf8;

/// The rows of an import file, read as they are needed.
pub struct CsvRows<R> {
    reader: csv::Reader<Tail<Decoded<R>>>,
    record: csv::ByteRecord,
    layout: Option<Layout>,
    policy: AddressPolicy,
}

impl<R: Read> CsvRows<R> {
    /// Opens `input`, reading its start to learn its encoding and
    /// delimiter.
    pub fn new(input: R, policy: AddressPolicy) -> Result<Self, ReadError> {
        let opened = input::open(input).map_err(|e| ReadError {
            line: 1,
            message: e.to_string(),
        })?;
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(opened.delimiter)
            .buffer_capacity(CSV_BUFFER)
            .from_reader(Tail::new(opened.bytes, QuoteWatch::new(opened.delimiter)));
        Ok(Self {
            reader,
            record: csv::ByteRecord::new(),
            layout: None,
            policy,
        })
    }

    /// What the file was recognised as, once its first row is read.
    pub fn format(&self) -> Option<Format> {
        self.layout.as_ref().map(|layout| layout.format)
    }

    fn field(&self, index: usize) -> Result<&str, NotUtf8> {
        let raw = self.record.get(index).unwrap_or_default();
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(raw);
        std::str::from_utf8(raw).map(str::trim).map_err(|_| NotUtf8)
    }

    /// The header's layout, if the row is a header.
    fn header(&self) -> Option<Layout> {
        let names: Vec<&str> = (0..self.record.len())
            .map(|i| self.field(i).unwrap_or_default())
            .collect();
        Layout::from_header(&names)
    }

    fn parse(&self, line: u64, layout: &Layout) -> Result<CsvReader, RejectedRow> {
        let reject = |reason: String| RejectedRow { line, reason };
        if layout.text_columns().any(|i| self.field(i).is_err()) {
            return Err(reject(NotUtf8.to_string()));
        }
        // Other columns only say yes or no: one that is not UTF-8 says
        // nothing.
        let cell = |index: usize| from_spreadsheet(self.field(index).unwrap_or_default());
        let raw_email = cell(layout.email());
        let raw_name = layout.name(cell);
        match (
            SubscriberEmail::parse(raw_email, self.policy),
            SubscriberName::parse_optional(&raw_name),
        ) {
            (Ok(email), Ok(name)) => Ok(CsvReader {
                line,
                email,
                name,
                standing: layout.standing(cell),
            }),
            (email, name) => {
                let reasons = [
                    email.err().map(|e| format!("email {}: {e}", quoted(raw_email))),
                    name.err().map(|e| format!("name {}: {e}", quoted(&raw_name))),
                ];
                Err(reject(reasons.into_iter().flatten().collect::<Vec<_>>().join("; ")))
            }
        }
    }
}

/// What the csv reader reads at a time; [`Tail`] keeps more than this.
const CSV_BUFFER: usize = 8 * 1024;
const TAIL_BYTES: usize = 4 * CSV_BUFFER;

/// The input, remembering the last bytes read and following their quoting.
/// The csv reader reports where reading a record began, which is before
/// the blank lines and the `\n` of a CRLF it skipped; a row's own line is
/// found from where the record ended instead, and whether it ended on a
/// `\n`. The csv reader ends a quoted field that is never closed at the end
/// of the file, without a word: the [`QuoteWatch`] says so.
struct Tail<R> {
    inner: R,
    read: u64,
    last: Box<[u8]>,
    quotes: QuoteWatch,
    at_end: bool,
}

impl<R> Tail<R> {
    fn new(inner: R, quotes: QuoteWatch) -> Self {
        Self {
            inner,
            read: 0,
            last: vec![0; TAIL_BYTES].into_boxed_slice(),
            quotes,
            at_end: false,
        }
    }

    /// The byte at `offset`, if it is among the last ones read.
    fn byte_at(&self, offset: u64) -> Option<u8> {
        (offset < self.read && self.read - offset <= TAIL_BYTES as u64)
            .then(|| self.last[(offset % TAIL_BYTES as u64) as usize])
    }

    /// The line a quoted field began on that the file ended inside.
    fn unclosed_quote(&self) -> Option<u64> {
        self.at_end.then(|| self.quotes.open_since()).flatten()
    }
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        for &byte in &buf[..n] {
            self.last[(self.read % TAIL_BYTES as u64) as usize] = byte;
            self.read += 1;
            self.quotes.feed(byte);
        }
        Ok(n)
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Result<CsvReader, RejectedRow>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_line = self.reader.position().line();
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(next_line, |p| p.line());
                    return Some(Err(ReadError {
                        line,
                        message: e.to_string(),
                    }));
                }
            }
            if let Some(line) = self.reader.get_ref().unclosed_quote() {
                return Some(Err(ReadError {
                    line,
                    message: "a quoted field begins on this line and is never closed (a closing \" is missing)".into(),
                }));
            }
            let end = self.reader.position();
            let inner_newlines: u64 = self
                .record
                .iter()
                .map(|f| f.iter().filter(|b| **b == b'\n').count() as u64)
                .sum();
            let ended_on_newline = end.byte() > 0 && self.reader.get_ref().byte_at(end.byte() - 1) == Some(b'\n');
            let line = end
                .line()
                .saturating_sub(inner_newlines + u64::from(ended_on_newline))
                .max(1);
            if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue; // a blank line
            }
            let layout = match self.layout.take() {
                Some(layout) => layout,
                None => match self.header() {
                    Some(header) => {
                        self.layout = Some(header);
                        continue;
                    }
                    None => Layout::headerless(),
                },
            };
            let parsed = self.parse(line, &layout);
            self.layout = Some(layout);
            return Some(Ok(parsed));
        }
    }
}

/// A value for a message: quoted, escaped, and cut short if long.
fn quoted(raw: &str) -> String {
    const MAX_CHARS: usize = 80;
    match raw.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{:?}…", &raw[..end]),
        None => format!("{raw:?}"),
    }
}

/// How an import runs.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    pub consent: Consent,
    /// How long confirmation links work (`subscriptions.confirmation_ttl_hours`).
    pub token_ttl: chrono::Duration,
    pub batch_rows: usize,
    /// Which addresses the rows may have (`subscriptions.allow_test_domains`).
    pub address_policy: AddressPolicy,
    /// The imported readers' language (`site.default_language`).
    pub language: Language,
}

impl ImportOptions {
    pub fn new(
        consent: Consent,
        token_ttl: chrono::Duration,
        address_policy: AddressPolicy,
        language: Language,
    ) -> Self {
        Self {
            consent,
            token_ttl,
            batch_rows: BATCH_ROWS,
            address_policy,
            language,
        }
    }
}

/// What an import did, so far or in all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// What the file was recognised as, once a row was read.
    pub format: Option<Format>,
    /// Rows read (not counting a header or blank lines).
    pub rows: u64,
    /// New readers.
    pub added: u64,
    /// New readers added unsubscribed: the file says they left the list
    /// it came from (counted in `added` too).
    pub left: u64,
    /// Pending readers confirmed (with [`Consent::ConfirmedElsewhere`]).
    pub confirmed: u64,
    /// Rows whose address was on the list already (or earlier in the
    /// file): left as they were.
    pub already_present: u64,
    pub rejected: u64,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(format) = self.format {
            write!(f, "{format}, ")?;
        }
        write!(f, "{} rows: {} added", self.rows, self.added)?;
        if self.left > 0 {
            write!(f, " ({} of them unsubscribed, as in the file)", self.left)?;
        }
        write!(f, ", ")?;
        if self.confirmed > 0 {
            write!(f, "{} pending readers confirmed, ", self.confirmed)?;
        }
        write!(
            f,
            "{} already present, {} rejected",
            self.already_present, self.rejected
        )
    }
}

/// What an import tells its caller as it goes.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    Rejected(&'a RejectedRow),
    /// After each batch is committed.
    Progress(&'a ImportReport),
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{source}; the {} rows before it were imported, and importing the file again is safe", .report.rows)]
    Read { source: ReadError, report: ImportReport },
    #[error("cannot write to the database: {source}; {} rows were imported before it, and importing the file again is safe", .report.rows)]
    Database { source: sqlx::Error, report: ImportReport },
}

/// What the reading thread hands to the writer.
enum Parsed {
    Batch(Batch),
    Failed(ReadError),
}

#[derive(Default)]
struct Batch {
    format: Option<Format>,
    readers: Vec<NewReader>,
    rejected: Vec<RejectedRow>,
    rows: u64,
    /// Rows whose address appeared earlier in this batch.
    repeated: u64,
}

/// Imports the CSV in `input` (see the module's documentation), calling
/// `on_event` with each rejected row and after each batch. Batches already
/// written stay written if a later one fails; importing again is safe,
/// since addresses already on the list are left alone.
pub async fn import<R: Read + Send + 'static>(
    db: &Db,
    input: R,
    options: ImportOptions,
    mut on_event: impl FnMut(ImportEvent<'_>),
) -> Result<ImportReport, ImportError> {
    // Reading and parsing run on a blocking thread while the previous batch
    // is written; the channel holds one batch, so memory stays bounded.
    let (batches, mut incoming) = mpsc::channel(1);
    let batch_rows = options.batch_rows.max(1);
    let (consent, policy, language) = (options.consent, options.address_policy, options.language);
    let reading =
        tokio::task::spawn_blocking(move || read_batches(input, consent, policy, language, batch_rows, batches));
    let mut report = ImportReport::default();
    while let Some(parsed) = incoming.recv().await {
        let batch = match parsed {
            Parsed::Batch(batch) => batch,
            Parsed::Failed(source) => return Err(ImportError::Read { source, report }),
        };
        for rejected in &batch.rejected {
            on_event(ImportEvent::Rejected(rejected));
        }
        report.format = batch.format.or(report.format);
        let written = subscriber_import::write_batch(db, batch.readers, consent, options.token_ttl, Utc::now())
            .await
            .map_err(|source| ImportError::Database { source, report })?;
        let rejected = batch.rejected.len() as u64;
        report.left += written.left;
        report.rows += batch.rows;
        report.rejected += rejected;
        report.added += written.added;
        report.confirmed += written.confirmed;
        report.already_present += batch.rows - rejected - written.added - written.confirmed;
        on_event(ImportEvent::Progress(&report));
    }
    let _ = reading.await;
    // Until the statistics know the new size, an export page (`email_key >
    // … ORDER BY email_key LIMIT …`) on PostgreSQL would scan and sort the
    // whole table instead of reading the next page of the index.
    if report.added > 0 {
        db.refresh_statistics(crate::db::Table::Subscribers).await;
    }
    Ok(report)
}

fn read_batches<R: Read>(
    input: R,
    consent: Consent,
    policy: AddressPolicy,
    language: Language,
    batch_rows: usize,
    out: mpsc::Sender<Parsed>,
) {
    let mut batch = Batch::default();
    let mut addresses = HashSet::new();
    let mut rows = match CsvRows::new(input, policy) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = out.blocking_send(Parsed::Failed(e));
            return;
        }
    };
    while let Some(row) = rows.next() {
        batch.format = rows.format();
        match row {
            Err(e) => {
                let _ = out.blocking_send(Parsed::Batch(batch));
                let _ = out.blocking_send(Parsed::Failed(e));
                return;
            }
            Ok(Err(rejected)) => batch.rejected.push(rejected),
            Ok(Ok(row)) => {
                let reader = consent.reader(&row.email, &row.name, language, row.standing);
                if addresses.insert(reader.email_key().to_owned()) {
                    batch.readers.push(reader);
                } else {
                    batch.repeated += 1;
                }
            }
        }
        batch.rows += 1;
        if batch.readers.len() + batch.rejected.len() >= batch_rows {
            if out.blocking_send(Parsed::Batch(std::mem::take(&mut batch))).is_err() {
                return; // the writer gave up
            }
            addresses.clear();
        }
    }
    batch.format = rows.format();
    let _ = out.blocking_send(Parsed::Batch(batch));
}

/// The export's columns; `email,name` first, so an export imports again.
pub const EXPORT_HEADER: [&str; 7] = [
    "email",
    "name",
    "status",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
];

/// One subscriber as a row under [`EXPORT_HEADER`] (times in RFC 3339, UTC,
/// empty when unset): the CLI's export and the staff area's download.
/// Every cell goes through [`for_spreadsheet`].
pub fn export_record(s: &ExportedSubscriber) -> [String; 7] {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    [
        s.email.clone(),
        s.name.clone(),
        s.status.as_str().to_owned(),
        s.signup_source.clone(),
        time(Some(s.created_at)),
        time(s.confirmed_at),
        time(s.unsubscribed_at),
    ]
    .map(|cell| for_spreadsheet(&cell))
}

/// Characters a spreadsheet reads as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether the export guards `cell`: it starts like a formula once any
/// leading `'` are set aside. Counting the quotes that are already there
/// makes the guard undoable exactly: `'=x` (a name that really starts with
/// a quote) becomes `''=x`, and [`from_spreadsheet`] gives `'=x` back.
fn needs_guard(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// An exported cell: one that starts like a formula gets a leading `'`, so
/// a spreadsheet shows it as text instead of running it (an export is
/// usually opened in one, and names and addresses come from outside).
pub fn for_spreadsheet(cell: &str) -> String {
    if needs_guard(cell) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// An imported cell with the `'` that [`for_spreadsheet`] added taken off
/// again, and only that one: an export imports as the same readers.
pub fn from_spreadsheet(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(cell) => rest,
        _ => cell,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the subscribers: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot write the CSV: {0}")]
    Write(#[from] std::io::Error),
}

/// Readers read per query of an export.
const EXPORT_PAGE: i64 = 1_000;

/// The readers `filter` selects as CSV under [`EXPORT_HEADER`], in address
/// order: the header, then one chunk per page of readers as it is read.
/// The one export: `gazette subscribers export` writes it to stdout, the
/// staff area streams it as a download. After an error the stream ends.
pub fn export_chunks(db: Db, filter: Filter) -> impl Stream<Item = Result<Vec<u8>, sqlx::Error>> + 'static {
    enum Next {
        Header,
        After(Option<String>),
        Done,
    }
    futures_util::stream::unfold(Next::Header, move |next| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            match next {
                Next::Header => Some((Ok(csv_rows([EXPORT_HEADER.map(str::to_owned)])), Next::After(None))),
                Next::After(after) => match subscriber_admin::export_page(&db, &filter, after.as_deref(), EXPORT_PAGE)
                    .await
                {
                    Ok(page) if page.is_empty() => None,
                    Ok(page) => {
                        let next = match page.last() {
                            Some(last) if page.len() as i64 == EXPORT_PAGE => Next::After(Some(last.email_key.clone())),
                            _ => Next::Done,
                        };
                        Some((Ok(csv_rows(page.iter().map(export_record))), next))
                    }
                    Err(e) => Some((Err(e), Next::Done)),
                },
                Next::Done => None,
            }
        }
    })
}

/// The readers among `ids` as CSV, with the export's header and columns
/// (the staff's "export the selection").
pub async fn export_selected(db: &Db, ids: &[uuid::Uuid]) -> Result<Vec<u8>, sqlx::Error> {
    let rows = subscriber_admin::export_selected(db, ids).await?;
    let mut out = csv_rows([EXPORT_HEADER.map(str::to_owned)]);
    out.extend(csv_rows(rows.iter().map(export_record)));
    Ok(out)
}

/// Records as CSV text.
fn csv_rows(records: impl IntoIterator<Item = [String; 7]>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in records {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(record);
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes every subscriber (or those with `status`) to `out`: the CSV of
/// [`export_chunks`].
pub async fn export(db: &Db, status: Option<SubscriberStatus>, mut out: impl Write) -> Result<(), ExportError> {
    let filter = Filter {
        query: String::new(),
        status,
    };
    let mut chunks = std::pin::pin!(export_chunks(db.clone(), filter));
    while let Some(chunk) = chunks.next().await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, email or the rejection's reason) for each row.
    fn rows(input: &[u8]) -> Vec<(u64, String)> {
        CsvRows::new(input, AddressPolicy::default())
            .expect("readable")
            .map(|row| match row.expect("readable") {
                Ok(reader) => (reader.line, reader.email.as_str().to_owned()),
                Err(rejected) => (rejected.line, format!("rejected: {}", rejected.reason)),
            })
            .collect()
    }

    #[test]
    fn rows_keep_their_own_line_numbers_across_blank_lines_crlf_and_quoted_breaks() {
        for newline in ["\n", "\r\n"] {
            let input = [
                "email,name",
                "a@example.com,A",
                "",
                "",
                "b@example.com,\"B",
                "two\"",
                "bad,C",
                "c@example.com,C",
            ]
            .join(newline);
            let found = rows(input.as_bytes());
            assert_eq!(found.len(), 4, "{newline:?}: {found:?}");
            assert_eq!(found[0], (2, "a@example.com".into()), "{newline:?}");
            assert_eq!(found[1].0, 5, "{newline:?}: {found:?}");
            assert!(found[1].1.contains("control characters"), "{found:?}");
            assert_eq!(found[2].0, 7, "{newline:?}");
            assert!(found[2].1.starts_with("rejected: email \"bad\": "), "{found:?}");
            assert_eq!(found[3], (8, "c@example.com".into()), "{newline:?}");
        }
    }

    #[test]
    fn a_header_may_name_the_columns_in_any_order_after_a_byte_order_mark() {
        let found = rows(b"\xEF\xBB\xBFName,Signed up,E-mail\nAda,2020,ada@example.com\n");
        assert_eq!(found, [(2, "ada@example.com".to_owned())]);
        let no_header = rows(b"\xEF\xBB\xBFada@example.com,Ada\n");
        assert_eq!(no_header, [(1, "ada@example.com".to_owned())]);
    }

    #[test]
    fn a_row_that_is_not_utf8_is_rejected_and_the_next_one_reads() {
        let found = rows(b"ada@example.com,Ad\xFFa\nbob@example.com,Bob\n");
        assert_eq!(found[0].0, 1);
        assert!(found[0].1.contains("not UTF-8"), "{found:?}");
        assert_eq!(found[1], (2, "bob@example.com".to_owned()));
    }

    #[test]
    fn the_formula_guard_is_undone_exactly_on_import() {
        for (value, exported) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+1", "'+1"),
            ("-x@example.org", "'-x@example.org"),
            ("'=x", "''=x"),
            ("'quoted", "'quoted"),
            ("Ada", "Ada"),
            ("", ""),
        ] {
            assert_eq!(for_spreadsheet(value), exported, "{value:?}");
            assert_eq!(from_spreadsheet(exported), value, "{exported:?}");
        }
        assert_eq!(from_spreadsheet("'o'brien@example.ie"), "'o'brien@example.ie");
    }

    #[test]
    fn formula_cells_are_defused_in_the_export() {
        let row = |name: &str| ExportedSubscriber {
            email_key: "ada@example.org".into(),
            email: "ada@example.org".into(),
            name: name.into(),
            status: SubscriberStatus::Confirmed,
            signup_source: "form".into(),
            created_at: Utc::now(),
            confirmed_at: None,
            unsubscribed_at: None,
        };
        let rows = [row("=HYPERLINK(\"x\")"), row("@SUM(A1)"), row("Ada")];
        let csv = String::from_utf8(csv_rows(rows.iter().map(export_record))).unwrap();
        assert!(csv.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{csv}");
        assert!(csv.contains(",'@SUM(A1),"), "{csv}");
        assert!(csv.contains(",Ada,"), "{csv}");
    }

    #[test]
    fn long_values_are_cut_short_in_reasons() {
        let long = "x".repeat(500);
        let found = rows(format!("{long},Name\n").as_bytes());
        assert!(found[0].1.len() < 300, "{}", found[0].1);
    }
}
