//! What happened to a reader (`subscriber_events`): bounces, complaints and
//! unsubscribes by mail, each with the inbound message that caused it, and
//! the reader's own changes on their preferences page. Written by
//! [`crate::db::inbound::apply_reading`], [`crate::db::preferences::apply`]
//! and [`crate::db::address_changes::confirm`] in the transaction that
//! changes the reader; read for the reader's page in the staff area.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::with_pool;

/// What an event says happened. Stored as its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The reader became `bounced` (a hard bounce, or the last soft bounce
    /// of a run).
    Bounced,
    /// A soft bounce that was counted but changed nothing yet.
    SoftBounce,
    /// The reader reported a message as spam, and is unsubscribed.
    Complained,
    /// The reader wrote to their unsubscribe address, or left from their
    /// preferences page (the detail says which).
    Unsubscribed,
    /// The reader changed their name on their preferences page.
    NameChanged,
    /// The reader changed their language (the detail: from → to).
    LanguageChanged,
    /// The reader paused the digest (the detail: until when).
    Paused,
    /// The reader ended their pause early.
    Resumed,
    /// The reader confirmed a new address (the detail: from → to, and
    /// where the request and the confirmation came from).
    AddressChanged,
    /// A reader added confirmed through the API: the detail is the
    /// consent note the caller gave (where and how the reader agreed).
    ConsentRecorded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounced => "bounced",
            Self::SoftBounce => "soft_bounce",
            Self::Complained => "complained",
            Self::Unsubscribed => "unsubscribed",
            Self::NameChanged => "name_changed",
            Self::LanguageChanged => "language_changed",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::AddressChanged => "address_changed",
            Self::ConsentRecorded => "consent_recorded",
        }
    }
}

/// Binds: `$1` id, `$2` subscriber, `$3` at, `$4` kind, `$5` detail,
/// `$6` inbound message, `$7` issue.
pub(crate) const INSERT: &str =
    "INSERT INTO subscriber_events (id, subscriber_id, at, kind, detail, inbound_message_id, issue_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// One event as the reader's page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
    pub inbound_message_id: Option<Uuid>,
    /// The week of the issue it is about, when known.
    pub week: Option<String>,
}

/// A reader's events, newest first, at most `limit`.
pub async fn for_subscriber(db: &Db, subscriber_id: Uuid, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT e.at, e.kind, e.detail, e.inbound_message_id, i.week
             FROM subscriber_events e LEFT JOIN issues i ON i.id = e.issue_id
             WHERE e.subscriber_id = $1 ORDER BY e.at DESC, e.id DESC LIMIT $2",
        )
        .bind(subscriber_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
