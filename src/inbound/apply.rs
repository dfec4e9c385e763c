//! What a read message does: to the reader it names (bounced, complained,
//! unsubscribed; soft bounces counted), to the stored row (its status and
//! reading), and to the reader's history (`subscriber_events`), all in one
//! transaction (`db::inbound::apply_reading`).
//!
//! Finding the reader, most trustworthy first:
//! 1. an unsubscribe address (`unsubscribe+{token}@…`) among the addresses
//!    the message went to: that reader is unsubscribed, whatever the
//!    message says;
//! 2. a return path (`bounces+{id}.{mac}@…`): the reader (and issue) of
//!    the copy it was sent with;
//! 3. the failed recipient's address (`email_key`): what provider webhooks
//!    give. For mail (SMTP, IMAP) only while no bounce domain is set: with
//!    one, Gazette's mail always carries a MAC'd return path, and a message
//!    without one could name anybody (anyone can write a fake DSN), so it
//!    is kept as `unknown` for staff to look at instead.
//!
//! The policy: a hard bounce makes the reader `bounced` at once; a soft
//! one after `soft_bounce_limit` of them within `soft_bounce_days` with no
//! copy delivered in between; a policy block (the receiver refused the
//! sender) never changes the reader; a complaint unsubscribes them at once
//! and marks them complained; an auto-reply or a report of a delivery is
//! ignored; what nobody could read, or names nobody, is `unknown`.

use chrono::{DateTime, Duration, Utc};

use crate::db::Db;
use crate::db::inbound::{self as stored, Decision, Found, ReaderChange, ReaderKey, Reading, SentCopy, StoredInbound};
use crate::db::subscriber_events::EventKind;
use crate::domain::{AddressPolicy, InboundKind, InboundSource, InboundStatus, SubscriberEmail, SubscriberStatus};
use crate::mail::verp::{Addressed, Origin, ReturnPaths};

use super::Policy;
use super::report::{Reason, Report};

pub async fn apply(
    db: &Db,
    paths: Option<&ReturnPaths>,
    policy: &Policy,
    message: &StoredInbound,
    report: &Report,
) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    let key = reader_key(paths, message.source, report);
    let (kind, reason) = kind_and_reason(&key, report);
    let diagnostic = report.diagnostic.as_deref().map(one_line);
    let reading = Reading {
        kind,
        reason: reason.as_str(),
        recipient: report.recipient.as_deref().map(|r| cut(r.trim(), 320)),
        status_code: report.status_code.as_deref().map(|c| cut(c.trim(), 32)),
        diagnostic: diagnostic.as_deref(),
    };
    let soft_since = (kind == InboundKind::Soft).then(|| now - Duration::days(i64::from(policy.soft_bounce_days)));
    let applied = stored::apply_reading(db, message.id, &key, &reading, soft_since, now, |found| {
        decide(kind, report, *policy, found)
    })
    .await?;
    if let Some((found, decision)) = applied {
        tracing::info!(
            inbound_message = %message.id,
            source = %message.source,
            kind = %kind,
            reason = %reason,
            subscriber = ?found.reader.as_ref().map(|r| r.id),
            status = %decision.status,
            "inbound message read"
        );
    }
    Ok(())
}

/// What the message is, once it is known whom it names: mail to a
/// reader's unsubscribe address is an unsubscribe, whatever it says.
pub fn kind_and_reason(key: &ReaderKey, report: &Report) -> (InboundKind, Reason) {
    match key {
        ReaderKey::Token { .. } => (InboundKind::Unsubscribe, Reason::Unsubscribe),
        _ if report.kind == InboundKind::Unsubscribe => (InboundKind::Unsubscribe, Reason::Unsubscribe),
        _ => (report.kind, report.reason),
    }
}

/// Who the message names, as far as the message itself says (see the
/// module's notes for the order).
pub fn reader_key(paths: Option<&ReturnPaths>, source: InboundSource, report: &Report) -> ReaderKey {
    if let Some(paths) = paths {
        let read: Vec<Addressed> = report.addressed_to.iter().filter_map(|a| paths.read(a)).collect();
        if let Some(token) = read.iter().find_map(|a| match a {
            Addressed::Unsubscribe(token) => Some(token),
            Addressed::Bounce(_) => None,
        }) {
            return ReaderKey::Token {
                subscriber: token.subscriber_id(),
                secret: token.secret().to_vec(),
            };
        }
        if let Some(origin) = read.iter().find_map(|a| match a {
            Addressed::Bounce(origin) => Some(*origin),
            Addressed::Unsubscribe(_) => None,
        }) {
            return match origin {
                Origin::Digest { week, subscriber } => ReaderKey::Digest {
                    subscriber,
                    week: week.to_string(),
                },
                Origin::Mail { id } => ReaderKey::Mail(id),
            };
        }
    }
    let by_address = match source {
        InboundSource::Ses | InboundSource::Postmark | InboundSource::Mailgun => true,
        InboundSource::Smtp | InboundSource::Imap => paths.is_none(),
    };
    match report.recipient.as_deref().map(email_key) {
        Some(Some(key)) if by_address => ReaderKey::Address(key),
        _ => ReaderKey::Nobody,
    }
}

/// The key a reader's address is stored under, as signups make it; a
/// string no signup could have made finds nobody.
fn email_key(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    SubscriberEmail::parse(address, AddressPolicy::LOOKUP)
        .ok()
        .map(|e| e.dedupe_key())
}

/// What to do, given what the transaction found.
pub fn decide(kind: InboundKind, report: &Report, policy: Policy, found: &Found) -> Decision {
    let nothing = |status| Decision {
        status,
        change: ReaderChange::Nothing,
        event: None,
    };
    let Some(reader) = &found.reader else {
        // Kept and shown: nobody could tell who it is about. A report that
        // says the mail was delivered, and an auto-reply, need nobody.
        return match kind {
            InboundKind::AutoReply => nothing(InboundStatus::Ignored),
            InboundKind::Unknown if report.reason == Reason::Delivered => nothing(InboundStatus::Ignored),
            _ => nothing(InboundStatus::Unknown),
        };
    };
    // Mail still goes to pending and confirmed readers only.
    let mailed = matches!(reader.status, SubscriberStatus::Pending | SubscriberStatus::Confirmed);
    let code = report
        .status_code
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    let why = format!("{code} ({})", report.reason);
    match kind {
        InboundKind::Unsubscribe if reader.status == SubscriberStatus::Unsubscribed || reader.erased => {
            nothing(InboundStatus::Ignored)
        }
        InboundKind::Unsubscribe => Decision {
            status: InboundStatus::Applied,
            change: ReaderChange::Unsubscribe,
            event: Some((EventKind::Unsubscribed, "wrote to their unsubscribe address".into())),
        },
        InboundKind::Complaint if reader.complained || reader.erased => nothing(InboundStatus::Ignored),
        InboundKind::Complaint => Decision {
            status: InboundStatus::Applied,
            change: ReaderChange::Complain,
            event: Some((EventKind::Complained, "reported a message as spam: unsubscribed".into())),
        },
        InboundKind::Hard if !mailed => nothing(InboundStatus::Ignored),
        InboundKind::Hard => Decision {
            status: InboundStatus::Applied,
            change: ReaderChange::Bounce,
            event: Some((EventKind::Bounced, format!("hard bounce{why}"))),
        },
        InboundKind::Soft if !mailed => nothing(InboundStatus::Ignored),
        InboundKind::Soft => {
            let history = found.soft.clone().unwrap_or_default();
            let count = soft_bounces_in_a_row(&history.bounces, &history.copies, found.issue_id);
            let limit = policy.soft_bounce_limit.max(1) as usize;
            let of = format!("{count} of {limit} within {} days", policy.soft_bounce_days);
            if count >= limit {
                Decision {
                    status: InboundStatus::Applied,
                    change: ReaderChange::Bounce,
                    event: Some((EventKind::Bounced, format!("soft bounce{why}, {of}"))),
                }
            } else {
                Decision {
                    status: InboundStatus::Applied,
                    change: ReaderChange::Nothing,
                    event: Some((EventKind::SoftBounce, format!("soft bounce{why}, {of}"))),
                }
            }
        }
        // Counted per receiving domain (the dashboard), never held against
        // the reader: the receiver refused the sender.
        InboundKind::Policy => nothing(InboundStatus::Applied),
        InboundKind::AutoReply => nothing(InboundStatus::Ignored),
        InboundKind::Unknown if report.reason == Reason::Delivered => nothing(InboundStatus::Ignored),
        InboundKind::Unknown => nothing(InboundStatus::Unknown),
    }
}

/// How many soft bounces in a row this one makes: the earlier ones
/// (`bounces`, all within the window) received after the last copy that
/// got through, plus this one.
///
/// A copy "got through" when the relay took it and no bounce about it is
/// on record. The relay takes everything, so the copy this bounce is
/// about looks delivered too: it is left out, by its issue when the
/// bounce names one, else as the latest copy sent (the one a bounce
/// arriving now is most likely about).
pub fn soft_bounces_in_a_row(bounces: &[DateTime<Utc>], copies: &[SentCopy], this_issue: Option<uuid::Uuid>) -> usize {
    let mut copies: Vec<&SentCopy> = copies.iter().filter(|c| Some(c.issue_id) != this_issue).collect();
    copies.sort_by_key(|c| c.sent_at);
    if this_issue.is_none() {
        copies.pop();
    }
    let through = copies.iter().filter(|c| !c.bounced).map(|c| c.sent_at).max();
    1 + bounces.iter().filter(|&&at| through.is_none_or(|t| at > t)).count()
}

/// Outside text on one line, bounded: a diagnostic is a server's words.
fn one_line(text: &str) -> String {
    let joined: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    cut(&joined, 1000).to_owned()
}

fn cut(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::inbound::{Reader, SoftHistory};
    use crate::domain::{IssueWeek, UnsubscribeToken};
    use uuid::Uuid;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::hours(hours)
    }

    fn copy(issue: Uuid, hours: i64, bounced: bool) -> SentCopy {
        SentCopy {
            issue_id: issue,
            sent_at: at(hours),
            bounced,
        }
    }

    fn report(kind: InboundKind, reason: Reason) -> Report {
        Report {
            kind,
            reason,
            ..Report::unknown(vec![])
        }
    }

    fn reader(status: SubscriberStatus) -> Reader {
        Reader {
            id: Uuid::new_v4(),
            status,
            email: "ada@example.org".into(),
            email_key: "ada@example.org".into(),
            complained: false,
            erased: false,
        }
    }

    const POLICY: Policy = Policy {
        soft_bounce_limit: 3,
        soft_bounce_days: 30,
    };

    fn found(reader: Option<Reader>, soft: Option<SoftHistory>) -> Found {
        Found {
            reader,
            issue_id: None,
            soft,
        }
    }

    #[test]
    fn soft_bounces_count_until_a_copy_gets_through() {
        let (w1, w2, w3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // Three weekly copies, each bounced softly: the third makes three.
        let copies = [copy(w1, 0, true), copy(w2, 168, true), copy(w3, 336, false)];
        assert_eq!(soft_bounces_in_a_row(&[at(1), at(169)], &copies, Some(w3)), 3);
        // Without the issue, the latest copy is taken as this bounce's.
        assert_eq!(soft_bounces_in_a_row(&[at(1), at(169)], &copies, None), 3);
        // A copy that got through in between starts the count again.
        let copies = [copy(w1, 0, true), copy(w2, 168, false), copy(w3, 336, false)];
        assert_eq!(soft_bounces_in_a_row(&[at(1)], &copies, Some(w3)), 1);
        assert_eq!(soft_bounces_in_a_row(&[], &[], None), 1);
    }

    #[test]
    fn each_kind_does_what_the_policy_says() {
        let confirmed = || Some(reader(SubscriberStatus::Confirmed));
        let hard = decide(
            InboundKind::Hard,
            &report(InboundKind::Hard, Reason::UserUnknown),
            POLICY,
            &found(confirmed(), None),
        );
        assert_eq!(
            (hard.status, hard.change),
            (InboundStatus::Applied, ReaderChange::Bounce)
        );
        assert_eq!(hard.event.unwrap().0, EventKind::Bounced);
        let policy = decide(
            InboundKind::Policy,
            &report(InboundKind::Policy, Reason::Blocked),
            POLICY,
            &found(confirmed(), None),
        );
        assert_eq!((policy.change, policy.event), (ReaderChange::Nothing, None));
        let complaint = decide(
            InboundKind::Complaint,
            &report(InboundKind::Complaint, Reason::Feedback),
            POLICY,
            &found(Some(reader(SubscriberStatus::Unsubscribed)), None),
        );
        assert_eq!(
            complaint.change,
            ReaderChange::Complain,
            "a complaint counts even after leaving"
        );
        let auto = decide(
            InboundKind::AutoReply,
            &report(InboundKind::AutoReply, Reason::Vacation),
            POLICY,
            &found(confirmed(), None),
        );
        assert_eq!(
            (auto.status, auto.change),
            (InboundStatus::Ignored, ReaderChange::Nothing)
        );
        let delivered = decide(
            InboundKind::Unknown,
            &report(InboundKind::Unknown, Reason::Delivered),
            POLICY,
            &found(None, None),
        );
        assert_eq!(delivered.status, InboundStatus::Ignored);
        let nobody = decide(
            InboundKind::Hard,
            &report(InboundKind::Hard, Reason::UserUnknown),
            POLICY,
            &found(None, None),
        );
        assert_eq!(nobody.status, InboundStatus::Unknown);
        let gone = decide(
            InboundKind::Hard,
            &report(InboundKind::Hard, Reason::UserUnknown),
            POLICY,
            &found(Some(reader(SubscriberStatus::Unsubscribed)), None),
        );
        assert_eq!(
            (gone.status, gone.change),
            (InboundStatus::Ignored, ReaderChange::Nothing)
        );
    }

    #[test]
    fn the_third_soft_bounce_in_a_row_bounces_the_reader() {
        let soft = report(InboundKind::Soft, Reason::MailboxFull);
        let history = |n: i64| SoftHistory {
            bounces: (0..n).map(at).collect(),
            copies: vec![],
        };
        let second = decide(
            InboundKind::Soft,
            &soft,
            POLICY,
            &found(Some(reader(SubscriberStatus::Confirmed)), Some(history(1))),
        );
        assert_eq!(second.change, ReaderChange::Nothing);
        assert_eq!(second.event.as_ref().unwrap().0, EventKind::SoftBounce);
        assert!(second.event.unwrap().1.contains("2 of 3"));
        let third = decide(
            InboundKind::Soft,
            &soft,
            POLICY,
            &found(Some(reader(SubscriberStatus::Confirmed)), Some(history(2))),
        );
        assert_eq!(third.change, ReaderChange::Bounce);
    }

    #[test]
    fn the_unsubscribe_address_wins_then_the_return_path_then_the_address() {
        let paths = ReturnPaths::new("bounces.example.org", b"a key for the tests of apply");
        let subscriber = Uuid::new_v4();
        let token = UnsubscribeToken::generate(subscriber);
        let week = IssueWeek::parse("2026-W48").unwrap();
        let verp = paths.return_path(&Origin::Digest { week, subscriber }).to_string();
        let mut report = report(InboundKind::Hard, Reason::UserUnknown);
        report.recipient = Some("Ada@Example.org".into());
        report.addressed_to = vec![verp.clone(), paths.unsubscribe_address(&token).to_string()];
        assert!(matches!(
            reader_key(Some(&paths), InboundSource::Smtp, &report),
            ReaderKey::Token { subscriber: s, .. } if s == subscriber
        ));
        report.addressed_to = vec!["someone@else.example".into(), verp];
        assert_eq!(
            reader_key(Some(&paths), InboundSource::Imap, &report),
            ReaderKey::Digest {
                subscriber,
                week: "2026-W48".into()
            }
        );
        report.addressed_to = vec![];
        // Mail without a return path names nobody while there is a bounce
        // domain; a signed provider post names the address.
        assert_eq!(
            reader_key(Some(&paths), InboundSource::Smtp, &report),
            ReaderKey::Nobody
        );
        assert_eq!(
            reader_key(Some(&paths), InboundSource::Ses, &report),
            ReaderKey::Address("ada@example.org".into())
        );
        assert_eq!(
            reader_key(None, InboundSource::Imap, &report),
            ReaderKey::Address("ada@example.org".into())
        );
    }

    #[test]
    fn a_diagnostic_is_stored_on_one_bounded_line() {
        assert_eq!(
            one_line("550 5.1.1\r\n  no\tsuch\x1b[31m user"),
            "550 5.1.1 no such [31m user"
        );
        assert_eq!(one_line(&"é".repeat(5000)).chars().count(), 1000);
    }
}
