//! `/admin/inbound`: the bounces, complaints and replies that came back,
//! those nobody could read first, and one message with its raw text (as it
//! arrived: outside text, escaped like all of it).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::session::Staff;
use crate::db::inbound;
use crate::domain::InboundStatus;
use crate::web::error::PageError;

/// How many messages the list shows.
const LIST_SIZE: i64 = 200;
/// The most of a raw message the page shows; the rest is cut, and says so.
const MAX_RAW_CHARS: usize = 256 * 1024;

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub struct Row {
    pub id: Uuid,
    pub received: String,
    pub source: String,
    pub status: String,
    pub unknown: bool,
    pub kind: String,
    pub reason: String,
    pub status_code: String,
    pub recipient: String,
    pub subscriber_id: Option<Uuid>,
    pub email: String,
}

#[derive(Template)]
#[template(path = "web/admin/inbound.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    counts: Vec<(String, i64)>,
    unknown: i64,
}

pub async fn list(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let counts = inbound::count_by_status(&state.db).await?;
    let unknown = counts
        .iter()
        .find(|(s, _)| *s == InboundStatus::Unknown)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    let counts = InboundStatus::ALL
        .into_iter()
        .map(|status| {
            let n = counts.iter().find(|(s, _)| *s == status).map(|(_, n)| *n).unwrap_or(0);
            (status.as_str().to_owned(), n)
        })
        .collect();
    let rows = inbound::recent(&state.db, LIST_SIZE)
        .await?
        .into_iter()
        .map(|m| Row {
            id: m.id,
            received: when(m.received_at),
            source: m.source.to_string(),
            status: m.status.to_string(),
            unknown: m.status == InboundStatus::Unknown,
            kind: m.kind.map(|k| k.to_string()).unwrap_or_default(),
            reason: m.reason.unwrap_or_default(),
            status_code: m.status_code.unwrap_or_default(),
            recipient: m.recipient.unwrap_or_default(),
            subscriber_id: m.subscriber_id,
            email: m.email.unwrap_or_default(),
        })
        .collect();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Inbound);
    Ok(html(
        StatusCode::OK,
        &ListPage {
            c,
            rows,
            counts,
            unknown,
        },
    ))
}

#[derive(Template)]
#[template(path = "web/admin/inbound_message.html")]
struct MessagePage {
    c: Chrome,
    m: inbound::Detail,
    received: String,
    processed: String,
    kind: String,
    envelope_to: Vec<String>,
    raw: String,
    cut: bool,
    size: usize,
}

pub async fn view(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let not_found = || PageError::not_found("inbound message");
    let id = Uuid::parse_str(&path).map_err(|_| not_found())?;
    let m = inbound::detail(&state.db, id).await?.ok_or_else(not_found)?;
    let size = m.raw.len();
    let (raw, cut) = visible(&m.raw);
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Inbound);
    Ok(html(
        StatusCode::OK,
        &MessagePage {
            c,
            received: when(m.received_at),
            processed: m.processed_at.map(when).unwrap_or_default(),
            kind: m.kind.map(|k| k.to_string()).unwrap_or_default(),
            envelope_to: m
                .envelope_to
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            raw,
            cut,
            size,
            m,
        },
    ))
}

/// A raw message as text for the page: invalid UTF-8 as U+FFFD, control
/// characters (but line breaks and tabs) shown as `\xNN` so they can
/// neither hide text nor reach the browser, and at most [`MAX_RAW_CHARS`].
/// The template escapes the rest.
fn visible(raw: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len().min(MAX_RAW_CHARS));
    for (n, c) in text.chars().enumerate() {
        if n == MAX_RAW_CHARS {
            return (out, true);
        }
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_text_shows_control_characters_and_is_cut() {
        let (text, cut) = super::visible(b"Subject: hi\r\n\x1b[31mred\x00\xff\r\n");
        assert_eq!(text, "Subject: hi\n\\u{1b}[31mred\\u{0}\u{fffd}\n");
        assert!(!cut);
        let (text, cut) = super::visible(&vec![b'a'; super::MAX_RAW_CHARS + 10]);
        assert!(cut && text.len() == super::MAX_RAW_CHARS);
    }
}
