//! A reader's own preferences, reached by their unsubscribe secret (the
//! link in their welcome email): name, language, a pause of the digest,
//! leaving. Each change is written with its event in
//! `subscriber_events`, in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::subscriber_events::{self, EventKind};
use crate::domain::{SearchKey, SubscriberName, SubscriberStatus, UnsubscribeToken};
use crate::i18n::Language;
use crate::with_pool;

/// A reader as their preferences page shows them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Preferences {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub status: SubscriberStatus,
    /// As stored; a tag without a catalogue reads as the site's default.
    pub language: String,
    /// Issues dispatched before this instant skip the reader.
    pub paused_until: Option<DateTime<Utc>>,
}

impl Preferences {
    pub fn is_unsubscribed(&self) -> bool {
        self.status == SubscriberStatus::Unsubscribed
    }

    /// The end of the pause, if the reader is paused at `now`.
    pub fn paused_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.paused_until.filter(|until| *until > now)
    }
}

/// One change the page asks for, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The name (possibly none) and the language of every mail and page.
    Details {
        name: SubscriberName,
        language: Language,
    },
    /// No issue until `until`.
    Pause {
        until: DateTime<Utc>,
    },
    /// Issues again from the next one.
    Resume,
    Unsubscribe,
}

const FIND: &str = "SELECT id, name, email, status, language, paused_until FROM subscribers
     WHERE id = $1 AND unsubscribe_secret = $2";

/// Takes the reader's row for the change before reading it: a write first
/// holds SQLite's write lock (no upgrade from a read lock to fail) and
/// PostgreSQL's row lock, so two changes at once apply one after the other.
const LOCK: &str = "UPDATE subscribers SET id = id WHERE id = $1 AND unsubscribe_secret = $2";

/// The reader behind the link, read without changing anything.
pub async fn find(db: &Db, token: &UnsubscribeToken) -> Result<Option<Preferences>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(FIND)
            .bind(token.subscriber_id())
            .bind(token.secret())
            .fetch_optional(pool)
            .await
    })
}

/// Applies `change` for the reader behind the link and records what it
/// changed as events, in one transaction; a change that changes nothing
/// (the same name, resuming when not paused) writes nothing. A reader who
/// has left changes nothing: they sign up again. `None` when no reader has
/// this link.
pub async fn apply(
    db: &Db,
    token: &UnsubscribeToken,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Option<Preferences>, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let locked = sqlx::query(LOCK)
            .bind(token.subscriber_id())
            .bind(token.secret())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let before: Preferences = sqlx::query_as(FIND)
            .bind(token.subscriber_id())
            .bind(token.secret())
            .fetch_one(&mut *tx)
            .await?;
        let events = if before.is_unsubscribed() { Vec::new() } else { events(&before, change, now) };
        for (kind, detail) in &events {
            match kind {
                EventKind::NameChanged => {
                    let Change::Details { name, .. } = change else { continue };
                    sqlx::query("UPDATE subscribers SET name = $2, search_key = $3 WHERE id = $1")
                        .bind(before.id)
                        .bind(name.as_str())
                        .bind(SearchKey::of_reader(&before.email, name.as_str()).as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                EventKind::LanguageChanged => {
                    let Change::Details { language, .. } = change else { continue };
                    sqlx::query("UPDATE subscribers SET language = $2 WHERE id = $1")
                        .bind(before.id)
                        .bind(language.tag())
                        .execute(&mut *tx)
                        .await?;
                }
                EventKind::Paused => {
                    let Change::Pause { until } = change else { continue };
                    sqlx::query("UPDATE subscribers SET paused_until = $2 WHERE id = $1")
                        .bind(before.id)
                        .bind(until)
                        .execute(&mut *tx)
                        .await?;
                }
                EventKind::Resumed => {
                    sqlx::query("UPDATE subscribers SET paused_until = NULL WHERE id = $1")
                        .bind(before.id)
                        .execute(&mut *tx)
                        .await?;
                }
                EventKind::Unsubscribed => {
                    let left = sqlx::query(
                        "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2
                         WHERE id = $1 AND status <> 'unsubscribed'",
                    )
                    .bind(before.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if left == 1 {
                        crate::db::webhooks::record_webhook!(
                            &mut *tx,
                            crate::domain::WebhookEvent::SubscriberUnsubscribed,
                            before.id,
                            now
                        )?;
                    }
                }
                EventKind::Bounced
                | EventKind::SoftBounce
                | EventKind::Complained
                | EventKind::AddressChanged
                | EventKind::ConsentRecorded => continue,
            }
            sqlx::query(subscriber_events::INSERT)
                .bind(Uuid::now_v7())
                .bind(before.id)
                .bind(now)
                .bind(kind.as_str())
                .bind(detail)
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .execute(&mut *tx)
                .await?;
        }
        let after: Preferences = sqlx::query_as(FIND)
            .bind(token.subscriber_id())
            .bind(token.secret())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(after))
    })
}

/// What `change` changes for a reader who is `before`, as the events that
/// record it (with their detail), in the order they are applied.
fn events(before: &Preferences, change: &Change, now: DateTime<Utc>) -> Vec<(EventKind, String)> {
    const FROM_PAGE: &str = "on the preferences page";
    match change {
        Change::Details { name, language } => {
            let mut events = Vec::new();
            if name.as_str() != before.name {
                events.push((EventKind::NameChanged, FROM_PAGE.to_owned()));
            }
            if language.tag() != before.language {
                let detail = format!("{} → {}", before.language, language.tag());
                events.push((EventKind::LanguageChanged, detail));
            }
            events
        }
        Change::Pause { until } => vec![(EventKind::Paused, format!("until {}", until.to_rfc3339()))],
        Change::Resume => match before.paused_at(now) {
            Some(until) => vec![(
                EventKind::Resumed,
                format!("early, was paused until {}", until.to_rfc3339()),
            )],
            None => Vec::new(),
        },
        Change::Unsubscribe => vec![(EventKind::Unsubscribed, FROM_PAGE.to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(name: &str, paused_until: Option<DateTime<Utc>>) -> Preferences {
        Preferences {
            id: Uuid::nil(),
            name: name.to_owned(),
            email: "ada@example.org".to_owned(),
            status: SubscriberStatus::Confirmed,
            language: "en".to_owned(),
            paused_until,
        }
    }

    #[test]
    fn only_what_changes_is_an_event() {
        let now = Utc::now();
        let same = Change::Details {
            name: SubscriberName::parse_optional("Ada").unwrap(),
            language: Language::ENGLISH,
        };
        assert!(events(&reader("Ada", None), &same, now).is_empty());
        let renamed = Change::Details {
            name: SubscriberName::parse_optional("").unwrap(),
            language: Language::ENGLISH,
        };
        let kinds: Vec<_> = events(&reader("Ada", None), &renamed, now)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kinds, [EventKind::NameChanged]);
        // A pause that ran out is no pause to resume from.
        let ran_out = reader("Ada", Some(now - chrono::Duration::days(1)));
        assert!(events(&ran_out, &Change::Resume, now).is_empty());
        let paused = reader("Ada", Some(now + chrono::Duration::days(1)));
        assert_eq!(events(&paused, &Change::Resume, now)[0].0, EventKind::Resumed);
    }
}
