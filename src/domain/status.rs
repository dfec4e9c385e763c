//! The states rows move through, as enums. Each is stored as the text the
//! migrations' CHECK constraints list (on SQLite and PostgreSQL alike), so
//! the word is written once here and the database only ever sees one of
//! them; code compares variants, never strings.

use std::fmt;

/// An enum stored in a TEXT column: one word per variant, the same in the
/// database, in `as_str` and in `parse`.
///
/// `type_name = "text"`: without it sqlx's derive declares a PostgreSQL
/// type named after the enum, which these TEXT columns are not (sqlx
/// issues 2969 and 3630); SQLite stores any derived enum as text.
macro_rules! stored_as_text {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
        #[sqlx(type_name = "text")]
        pub enum $name {
            $($(#[$variant_meta])* #[sqlx(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every state, in the order of the life cycle.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_as_text! {
    /// A reader's state in the subscription life cycle.
    pub enum SubscriberStatus {
        Pending = "pending",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
        /// Their address refused mail for good.
        Bounced = "bounced",
    }
}

stored_as_text! {
    /// What a message in the transactional queue (`outgoing_mail`) is.
    pub enum MailKind {
        /// The link a new reader confirms their address with.
        Confirmation = "confirmation",
        /// A draft issue a staff member sends to themselves.
        DigestTest = "digest_test",
        /// What a reader who just confirmed can expect, and their
        /// preferences link (`signup.welcome`).
        Welcome = "welcome",
        /// The link a reader confirms a new address with, sent to that
        /// address (asked for on their preferences page).
        AddressChange = "address_change",
    }
}

stored_as_text! {
    /// Where one message is on its way out, in both queues: a reader's copy
    /// of an issue (`deliveries`) and a transactional message
    /// (`outgoing_mail`, which is never skipped).
    pub enum DeliveryStatus {
        Queued = "queued",
        /// Claimed by a worker until its lease runs out.
        Sending = "sending",
        Sent = "sent",
        /// Given up.
        Failed = "failed",
        /// Not sent on purpose (the reader left, or staff cancelled the send).
        Skipped = "skipped",
    }
}

stored_as_text! {
    /// Where an inbound message came from (`inbound_messages.source`).
    pub enum InboundSource {
        /// The SMTP/LMTP listener (`inbound.smtp_listen`).
        Smtp = "smtp",
        /// The IMAP mailbox (`inbound.imap_url`).
        Imap = "imap",
        /// Amazon SES through an SNS notification.
        Ses = "ses",
        Postmark = "postmark",
        Mailgun = "mailgun",
    }
}

stored_as_text! {
    /// Where an inbound message is: stored as it came, then read.
    pub enum InboundStatus {
        /// Stored, not read yet (a crash in between leaves it here; the
        /// next start reads it).
        Received = "received",
        /// Read, and what it says was done to the reader it names.
        Applied = "applied",
        /// Read, and nothing is to be done (an auto-reply, a reader who
        /// already left, a delivery report that is not a failure).
        Ignored = "ignored",
        /// Read but not understood, or naming no reader Gazette knows:
        /// kept and shown to staff.
        Unknown = "unknown",
    }
}

stored_as_text! {
    /// What an inbound message is, as `gazette inbound classify` prints it.
    pub enum InboundKind {
        /// The address does not exist or refuses mail for good.
        Hard = "hard",
        /// A temporary failure (mailbox full, 4.x.x).
        Soft = "soft",
        /// The receiver refused the sender (reputation, spam filters, 5.7.x):
        /// never the reader's fault.
        Policy = "policy",
        /// The reader reported the message as spam.
        Complaint = "complaint",
        /// Mail to the reader's `unsubscribe+…` address.
        Unsubscribe = "unsubscribe",
        /// Out of office, vacation, `Auto-Submitted`.
        AutoReply = "auto_reply",
        Unknown = "unknown",
    }
}

stored_as_text! {
    /// An issue as stored: still going out, or every copy settled. Pausing
    /// and cancelling are recorded beside it (see [`IssueState`]).
    pub enum IssueStatus {
        Sending = "sending",
        Sent = "sent",
    }
}

/// What staff see of an issue's send; worked out from the stored
/// [`IssueStatus`] and the pause and cancel times, never stored itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueState {
    Sending,
    Paused,
    Cancelled,
    Sent,
}

impl IssueState {
    /// A cancelled send is cancelled whatever else is true; a pause only
    /// means something while copies are still going out.
    pub fn of(status: IssueStatus, paused: bool, cancelled: bool) -> Self {
        match (status, paused, cancelled) {
            (_, _, true) => Self::Cancelled,
            (IssueStatus::Sending, true, false) => Self::Paused,
            (IssueStatus::Sending, false, false) => Self::Sending,
            (IssueStatus::Sent, _, false) => Self::Sent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Sent => "sent",
        }
    }
}

impl fmt::Display for IssueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

stored_as_text! {
    /// Where a feed import started from the staff area is.
    pub enum FeedImportStatus {
        Queued = "queued",
        Fetching = "fetching",
        Parsing = "parsing",
        Saving = "saving",
        Done = "done",
        Failed = "failed",
    }
}

impl FeedImportStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// What an import file says of a reader's standing in the tool it came
/// from (`crate::subscriber_csv`), which decides how they are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// On the list: imported with the import's consent.
    Subscribed,
    /// Never confirmed there: asked to confirm, never added confirmed.
    Unconfirmed,
    /// Unsubscribed, bounced or blocklisted there: imported as
    /// unsubscribed, never mailed.
    Left,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_word() {
        fn round_trip<T: Copy + PartialEq + fmt::Debug>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for &state in all {
                assert_eq!(parse(as_str(state)), Some(state));
            }
            assert_eq!(parse("nope"), None);
        }
        round_trip(
            &SubscriberStatus::ALL,
            SubscriberStatus::as_str,
            SubscriberStatus::parse,
        );
        round_trip(&MailKind::ALL, MailKind::as_str, MailKind::parse);
        round_trip(&DeliveryStatus::ALL, DeliveryStatus::as_str, DeliveryStatus::parse);
        round_trip(&IssueStatus::ALL, IssueStatus::as_str, IssueStatus::parse);
        round_trip(
            &FeedImportStatus::ALL,
            FeedImportStatus::as_str,
            FeedImportStatus::parse,
        );
        assert_eq!(MailKind::DigestTest.to_string(), "digest_test");
    }

    #[test]
    fn a_cancelled_send_reads_cancelled_even_when_paused() {
        assert_eq!(IssueState::of(IssueStatus::Sending, true, true), IssueState::Cancelled);
        assert_eq!(IssueState::of(IssueStatus::Sent, false, true), IssueState::Cancelled);
        assert_eq!(IssueState::of(IssueStatus::Sending, true, false), IssueState::Paused);
        assert_eq!(IssueState::of(IssueStatus::Sent, false, false), IssueState::Sent);
    }
}
