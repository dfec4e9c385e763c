//! What an inbound message says, read from its bytes (or a provider's
//! JSON) before anyone looks up a reader.

use crate::domain::InboundKind;

/// One message's reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: InboundKind,
    /// Why, in the words of sisimai (the bounce-parsing library with the
    /// largest public set of real bounces), so operators can compare.
    pub reason: Reason,
    /// The address that failed or complained, as the report names it
    /// (a DSN's `Final-Recipient`, an ARF report's original recipient, a
    /// provider's recipient field).
    pub recipient: Option<String>,
    /// The enhanced status code (`5.1.1`), where one was given.
    pub status_code: Option<String>,
    /// The receiving server's own words (`Diagnostic-Code`), one line.
    pub diagnostic: Option<String>,
    /// Where the message was sent, most telling first: the envelope
    /// recipients, then `Delivered-To`, `X-Original-To`, `To`; the inbound
    /// pipeline looks for a return path (`mail::verp`) among them.
    pub addressed_to: Vec<String>,
    /// The `Message-ID` of the message this one is about (from a DSN's or
    /// ARF report's returned headers, `In-Reply-To` of a reply).
    pub original_message_id: Option<String>,
}

impl Report {
    /// A message nobody could read.
    pub fn unknown(addressed_to: Vec<String>) -> Self {
        Self {
            kind: InboundKind::Unknown,
            reason: Reason::Undefined,
            recipient: None,
            status_code: None,
            diagnostic: None,
            addressed_to,
            original_message_id: None,
        }
    }
}

macro_rules! reasons {
    ($($(#[$meta:meta])* $variant:ident = $text:literal,)+) => {
        /// sisimai's reason names (`Sisimai::Reason`), the ones Gazette
        /// tells apart.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$meta])* $variant,)+
        }

        impl Reason {
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
    };
}

reasons! {
    UserUnknown = "userunknown",
    HostUnknown = "hostunknown",
    MailboxFull = "mailboxfull",
    Filtered = "filtered",
    Blocked = "blocked",
    SpamDetected = "spamdetected",
    Suspend = "suspend",
    Expired = "expired",
    Rejected = "rejected",
    PolicyViolation = "policyviolation",
    SecurityError = "securityerror",
    MesgTooBig = "mesgtoobig",
    ExceedLimit = "exceedlimit",
    SystemError = "systemerror",
    SystemFull = "systemfull",
    NetworkError = "networkerror",
    NotAccept = "notaccept",
    HasMoved = "hasmoved",
    MailerError = "mailererror",
    NoRelaying = "norelaying",
    SyntaxError = "syntaxerror",
    TooManyConn = "toomanyconn",
    Speeding = "speeding",
    BadReputation = "badreputation",
    RequirePtr = "requireptr",
    NotCompliantRfc = "notcompliantrfc",
    AuthFailure = "authfailure",
    ContentError = "contenterror",
    /// A complaint (ARF feedback report).
    Feedback = "feedback",
    /// An auto-reply.
    Vacation = "vacation",
    /// A delivery report that says the message was delivered.
    Delivered = "delivered",
    /// Mail to the unsubscribe address (not a sisimai reason).
    Unsubscribe = "unsubscribe",
    Undefined = "undefined",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
