//! A reader's change of address: asked for on their preferences page (by
//! their unsubscribe secret), confirmed by the link mailed to the new
//! address. The request and its email are written in one transaction; the
//! confirmation changes the reader's address and records the change in
//! their history in another. The reader's consent record (when, where and
//! how they signed up and confirmed) is left as it is: the change is one
//! more event, not a new signup.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::subscriber_events::{self, EventKind};
use crate::domain::{SearchKey, SubscriberEmail, SubscriberStatus, Token, UnsubscribeToken};
use crate::with_pool;

/// How long a link works and how many a reader may ask for in a day
/// (`subscriptions.confirmation_ttl_hours` and
/// `subscriptions.confirmation_emails_per_day`, as for signups).
#[derive(Debug, Clone, Copy)]
pub struct ChangeRules {
    pub token_ttl: Duration,
    pub per_day: u32,
}

/// A request for a new address, parsed, with where it came from.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub new_email: SubscriberEmail,
    /// The network address the request came from, for the record.
    pub ip: Option<String>,
    /// The link's secret; only its hash is kept here, the token itself
    /// waits in its email's `outgoing_mail` row until it is sent.
    pub token: Token,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Recorded, and the link's email queued to the new address; earlier
    /// links of the reader stop working.
    Queued,
    /// The new address is the reader's own already: nothing written.
    SameAddress,
    /// The reader asked for as many links as a day allows: nothing written.
    DailyCapReached,
    /// The reader has left the list: nothing written.
    ReaderLeft,
}

/// Takes the reader's row before reading it (see `db::preferences`): two
/// requests at once apply one after the other.
const LOCK_READER: &str = "UPDATE subscribers SET id = id WHERE id = $1 AND unsubscribe_secret = $2";
const READER: &str = "SELECT email_key, status FROM subscribers WHERE id = $1";
/// Takes reader `$1`'s row and reads their name.
const NAME_TAKEN: &str = "UPDATE subscribers SET id = id WHERE id = $1 RETURNING name";
const ASKED_SINCE: &str = "SELECT COUNT(*) FROM address_changes WHERE subscriber_id = $1 AND requested_at > $2";
/// Ends reader `$1`'s open requests at `$2`.
const END_OPEN: &str = "UPDATE address_changes SET expires_at = $2
     WHERE subscriber_id = $1 AND confirmed_at IS NULL AND expires_at > $2";
/// An ended request's email that has not left yet would carry a dead link.
const DROP_UNSENT: &str =
    "DELETE FROM outgoing_mail WHERE subscriber_id = $1 AND kind = 'address_change' AND status = 'queued'";
const INSERT: &str = "INSERT INTO address_changes (token_hash, subscriber_id, new_email, new_email_key,
                                                   requested_at, requested_ip, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The link's email, to the new address and no name, in the reader's
/// language (read when it is claimed, like a confirmation's).
const QUEUE_MAIL: &str =
    "INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
                                next_attempt_at, created_at)
     VALUES ($1, 'address_change', $2, $3, '', $4, 'queued', 0, $5, $5)";

/// Records the request of the reader behind `reader` and queues its
/// email, in one transaction. Whether another reader has the new address
/// is not looked at here: the answer must be the same for every address,
/// and the confirmation refuses it. `None` when no reader has this link.
pub async fn request(
    db: &Db,
    reader: &UnsubscribeToken,
    request: &ChangeRequest,
    rules: ChangeRules,
    now: DateTime<Utc>,
) -> Result<Option<Requested>, sqlx::Error> {
    let id = reader.subscriber_id();
    let new_key = request.new_email.dedupe_key();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let locked = sqlx::query(LOCK_READER)
            .bind(id)
            .bind(reader.secret())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let (email_key, status): (String, SubscriberStatus) =
            sqlx::query_as(READER).bind(id).fetch_one(&mut *tx).await?;
        let asked: i64 = sqlx::query_scalar(ASKED_SINCE)
            .bind(id)
            .bind(now - Duration::hours(24))
            .fetch_one(&mut *tx)
            .await?;
        let refused = if status == SubscriberStatus::Unsubscribed {
            Some(Requested::ReaderLeft)
        } else if email_key == new_key {
            Some(Requested::SameAddress)
        } else if asked >= i64::from(rules.per_day) {
            Some(Requested::DailyCapReached)
        } else {
            None
        };
        if let Some(refused) = refused {
            tx.rollback().await?;
            return Ok(Some(refused));
        }
        sqlx::query(END_OPEN).bind(id).bind(now).execute(&mut *tx).await?;
        sqlx::query(DROP_UNSENT).bind(id).execute(&mut *tx).await?;
        sqlx::query(INSERT)
            .bind(request.token.hash())
            .bind(id)
            .bind(request.new_email.as_str())
            .bind(&new_key)
            .bind(now)
            .bind(request.ip.as_deref())
            .bind(now + rules.token_ttl)
            .execute(&mut *tx)
            .await?;
        sqlx::query(QUEUE_MAIL)
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(request.new_email.as_str())
            .bind(request.token.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Requested::Queued))
    })
}

/// The reader's open request, if any: the new address and until when its
/// link works.
pub async fn open_request(
    db: &Db,
    subscriber_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT new_email, expires_at FROM address_changes
             WHERE subscriber_id = $1 AND confirmed_at IS NULL AND expires_at > $2
             ORDER BY requested_at DESC LIMIT 1",
        )
        .bind(subscriber_id)
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// What a confirmation link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// No such link (never issued, or its reader was erased).
    Unknown,
    /// Waiting to be confirmed: the address it moves the reader to.
    Open { new_email: String },
    /// Confirmed by this very call ([`confirm`] only).
    Changed { new_email: String },
    /// Confirmed before: the reader's address has been this one since.
    Used { new_email: String },
    /// Past its expiry, or ended by a newer request.
    Expired,
    /// The reader has left the list since asking.
    ReaderLeft,
    /// Another reader has the new address: two readers are never merged.
    Taken,
}

/// A request with its reader, as a link finds them.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Found {
    subscriber_id: Uuid,
    new_email: String,
    new_email_key: String,
    requested_at: DateTime<Utc>,
    requested_ip: Option<String>,
    expires_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    email: String,
    status: SubscriberStatus,
    /// Whether another reader's row holds the new address.
    taken: bool,
}

const FIND: &str = "SELECT c.subscriber_id, c.new_email, c.new_email_key, c.requested_at, c.requested_ip,
            c.expires_at, c.confirmed_at, s.email, s.status,
            EXISTS (SELECT 1 FROM subscribers o WHERE o.email_key = c.new_email_key AND o.id <> c.subscriber_id)
                AS taken
     FROM address_changes c JOIN subscribers s ON s.id = c.subscriber_id
     WHERE c.token_hash = $1";

impl Found {
    /// The link's state at `now`, as it stands.
    fn state(&self, now: DateTime<Utc>) -> LinkState {
        if self.confirmed_at.is_some() {
            LinkState::Used {
                new_email: self.new_email.clone(),
            }
        } else if self.status == SubscriberStatus::Unsubscribed {
            LinkState::ReaderLeft
        } else if self.expires_at <= now {
            LinkState::Expired
        } else if self.taken {
            LinkState::Taken
        } else {
            LinkState::Open {
                new_email: self.new_email.clone(),
            }
        }
    }
}

/// What the link points at, read without changing anything.
pub async fn link_state(db: &Db, token: &Token, now: DateTime<Utc>) -> Result<LinkState, sqlx::Error> {
    let found: Option<Found> = with_pool!(db, pool => {
        sqlx::query_as(FIND).bind(token.hash()).fetch_optional(pool).await?
    });
    Ok(found.map_or(LinkState::Unknown, |found| found.state(now)))
}

/// Confirms the change the link asks for, in one transaction: the
/// reader's address becomes the new one (a reader marked bounced because
/// of the old address gets mail again), their other open requests end, and
/// an event records the old and new address with where the request and
/// the confirmation came from (`ip`). Anything but an open link changes
/// nothing and reports its state; so does a link whose address another
/// reader took meanwhile.
pub async fn confirm(db: &Db, token: &Token, ip: Option<&str>, now: DateTime<Utc>) -> Result<LinkState, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // Taking the request first makes it single-use: a second
        // confirmation at the same moment waits, then finds it used.
        let taken_up = sqlx::query(
            "UPDATE address_changes SET confirmed_at = $2, confirmed_ip = $3
             WHERE token_hash = $1 AND confirmed_at IS NULL AND expires_at > $2",
        )
        .bind(token.hash())
        .bind(now)
        .bind(ip)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let found: Option<Found> = sqlx::query_as(FIND).bind(token.hash()).fetch_optional(&mut *tx).await?;
        let Some(found) = found.filter(|_| taken_up == 1) else {
            tx.rollback().await?;
            return link_state(db, token, now).await;
        };
        // As it was before this call took it up.
        let before = Found { confirmed_at: None, ..found.clone() }.state(now);
        if !matches!(before, LinkState::Open { .. }) {
            tx.rollback().await?;
            return Ok(before);
        }
        // The name is read as the reader's row is taken: a change of name
        // at the same moment (the preferences page) comes wholly before or
        // after, so the search key is made of the name that stays.
        let name: String = sqlx::query_scalar(NAME_TAKEN)
            .bind(found.subscriber_id)
            .fetch_one(&mut *tx)
            .await?;
        let moved = sqlx::query(
            "UPDATE subscribers SET email = $2, email_key = $3, search_key = $4,
                 status = CASE WHEN status = 'bounced' THEN 'confirmed' ELSE status END
             WHERE id = $1",
        )
        .bind(found.subscriber_id)
        .bind(&found.new_email)
        .bind(&found.new_email_key)
        .bind(SearchKey::of_reader(&found.new_email, &name).as_str())
        .execute(&mut *tx)
        .await;
        match moved {
            Ok(_) => {}
            // A signup for the address between the check and the change.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                return Ok(LinkState::Taken);
            }
            Err(e) => return Err(e),
        }
        sqlx::query(END_OPEN).bind(found.subscriber_id).bind(now).execute(&mut *tx).await?;
        sqlx::query(subscriber_events::INSERT)
            .bind(Uuid::now_v7())
            .bind(found.subscriber_id)
            .bind(now)
            .bind(EventKind::AddressChanged.as_str())
            .bind(event_detail(&found, ip))
            .bind(None::<Uuid>)
            .bind(None::<Uuid>)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LinkState::Changed { new_email: found.new_email })
    })
}

/// The event's detail: the change, and the proof of who made it, as the
/// signup's consent record keeps it (when, from which network address).
fn event_detail(found: &Found, confirmed_from: Option<&str>) -> String {
    let unknown = "an unknown address";
    let mut detail = format!(
        "{} → {}; asked at {} from {}, confirmed from {}",
        found.email,
        found.new_email,
        found.requested_at.to_rfc3339(),
        found.requested_ip.as_deref().unwrap_or(unknown),
        confirmed_from.unwrap_or(unknown),
    );
    if found.status == SubscriberStatus::Bounced {
        detail.push_str("; no longer bounced");
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(now: DateTime<Utc>) -> Found {
        Found {
            subscriber_id: Uuid::nil(),
            new_email: "ada@new.example".into(),
            new_email_key: "ada@new.example".into(),
            requested_at: now - Duration::hours(1),
            requested_ip: Some("192.0.2.1".into()),
            expires_at: now + Duration::hours(1),
            confirmed_at: None,
            email: "ada@old.example".into(),
            status: SubscriberStatus::Confirmed,
            taken: false,
        }
    }

    #[test]
    fn a_link_is_open_only_while_unused_unexpired_its_reader_subscribed_and_the_address_free() {
        let now = Utc::now();
        let open = LinkState::Open {
            new_email: "ada@new.example".into(),
        };
        assert_eq!(found(now).state(now), open);
        let bounced = Found {
            status: SubscriberStatus::Bounced,
            ..found(now)
        };
        assert_eq!(
            bounced.state(now),
            open,
            "a new address is how a bounced reader comes back"
        );
        let used = Found {
            confirmed_at: Some(now),
            ..found(now)
        };
        assert!(matches!(used.state(now), LinkState::Used { .. }));
        let expired = Found {
            expires_at: now,
            ..found(now)
        };
        assert_eq!(expired.state(now), LinkState::Expired);
        let left = Found {
            status: SubscriberStatus::Unsubscribed,
            ..found(now)
        };
        assert_eq!(left.state(now), LinkState::ReaderLeft);
        let taken = Found {
            taken: true,
            ..found(now)
        };
        assert_eq!(taken.state(now), LinkState::Taken);
    }

    #[test]
    fn the_event_names_both_addresses_and_both_network_addresses() {
        let now = Utc::now();
        let detail = event_detail(&found(now), Some("198.51.100.4"));
        assert!(
            detail.starts_with("ada@old.example → ada@new.example; asked at "),
            "{detail}"
        );
        assert!(
            detail.contains("from 192.0.2.1, confirmed from 198.51.100.4"),
            "{detail}"
        );
    }
}
