//! Provider webhooks (Amazon SES through SNS, Postmark, Mailgun): their
//! signatures, and their JSON read into a [`Report`].
//! The routes are in `crate::web::inbound_hooks`.

use serde_json::Value;

use crate::domain::{InboundKind, InboundSource};

use super::report::{Reason, Report};

/// Reads a provider's stored post (its body as it came). Anything it does
/// not understand is an `Unknown` report, kept for staff to look at.
pub fn report(source: InboundSource, body: &[u8]) -> Report {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Report::unknown(Vec::new());
    };
    match source {
        InboundSource::Mailgun => mailgun(&value),
        InboundSource::Postmark => postmark(&value),
        InboundSource::Ses => ses(&value),
        _ => Report::unknown(Vec::new()),
    }
}

/// Mailgun's `event-data`: `failed` (severity `permanent` or `temporary`)
/// and `complained`.
fn mailgun(post: &Value) -> Report {
    let event = &post["event-data"];
    let recipient = text(&event["recipient"]);
    let status = &event["delivery-status"];
    let enhanced = text(&status["enhanced-code"]).filter(|c| is_status_code(c));
    let message = text(&status["message"]).or_else(|| text(&status["description"]));
    let status_code = enhanced.or_else(|| message.as_deref().and_then(find_status_code));
    let smtp_code = status["code"].as_u64();
    let diagnostic = match (smtp_code, &message) {
        (Some(code), Some(m)) => Some(one_line(&format!("{code} {m}"))),
        (None, Some(m)) => Some(one_line(m)),
        (Some(code), None) => Some(code.to_string()),
        (None, None) => None,
    };
    let (kind, reason) = match event["event"].as_str() {
        Some("complained") => (InboundKind::Complaint, Reason::Feedback),
        Some("failed") => {
            let permanent = match event["severity"].as_str() {
                Some("permanent") => true,
                Some("temporary") => false,
                _ => return Report::unknown(Vec::new()),
            };
            failure(permanent, status_code.as_deref(), message.as_deref().unwrap_or(""))
        }
        _ => return Report::unknown(Vec::new()),
    };
    Report {
        kind,
        reason,
        recipient,
        status_code,
        diagnostic,
        addressed_to: Vec::new(),
        original_message_id: text(&event["message"]["headers"]["message-id"]),
    }
}

/// An SNS notification whose `Message` is SES's JSON: `Bounce`
/// (`Permanent`, `Transient`) and `Complaint`.
fn ses(post: &Value) -> Report {
    let Some(message) = post["Message"]
        .as_str()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
    else {
        return Report::unknown(Vec::new());
    };
    let kind = message["notificationType"].as_str().or(message["eventType"].as_str());
    let original_message_id = text(&message["mail"]["messageId"]);
    match kind {
        Some("Complaint") => Report {
            kind: InboundKind::Complaint,
            reason: Reason::Feedback,
            recipient: text(&message["complaint"]["complainedRecipients"][0]["emailAddress"]),
            status_code: None,
            diagnostic: text(&message["complaint"]["complaintFeedbackType"]),
            addressed_to: Vec::new(),
            original_message_id,
        },
        Some("Bounce") => {
            let bounce = &message["bounce"];
            let first = &bounce["bouncedRecipients"][0];
            let diagnostic = text(&first["diagnosticCode"]);
            let status_code = text(&first["status"])
                .filter(|c| is_status_code(c))
                .or_else(|| diagnostic.as_deref().and_then(find_status_code));
            let words = format!(
                "{} {}",
                bounce["bounceSubType"].as_str().unwrap_or(""),
                diagnostic.as_deref().unwrap_or("")
            );
            let (kind, reason) = match (bounce["bounceType"].as_str(), bounce["bounceSubType"].as_str()) {
                (Some("Permanent"), Some("Suppressed" | "OnAccountSuppressionList")) => {
                    (InboundKind::Hard, Reason::Suspend)
                }
                (Some("Permanent"), _) => failure(true, status_code.as_deref(), &words),
                (Some("Transient"), Some("MailboxFull")) => (InboundKind::Soft, Reason::MailboxFull),
                (Some("Transient"), Some("MessageTooLarge")) => (InboundKind::Soft, Reason::MesgTooBig),
                (Some("Transient"), Some("ContentRejected" | "AttachmentRejected")) => {
                    (InboundKind::Policy, Reason::ContentError)
                }
                (Some("Transient"), _) => failure(false, status_code.as_deref(), &words),
                _ => (InboundKind::Unknown, Reason::Undefined),
            };
            Report {
                kind,
                reason,
                recipient: text(&first["emailAddress"]),
                status_code,
                diagnostic: diagnostic.map(|d| one_line(&d)),
                addressed_to: Vec::new(),
                original_message_id,
            }
        }
        _ => Report::unknown(Vec::new()),
    }
}

/// Postmark's `Bounce` (by its `Type`) and `SpamComplaint` records.
fn postmark(post: &Value) -> Report {
    let recipient = text(&post["Email"]);
    let details = text(&post["Details"]);
    let description = text(&post["Description"]);
    let words = format!(
        "{} {}",
        details.as_deref().unwrap_or(""),
        description.as_deref().unwrap_or("")
    );
    let status_code = find_status_code(&words);
    let (kind, reason) = match (post["RecordType"].as_str(), post["Type"].as_str()) {
        (Some("SpamComplaint"), _) | (Some("Bounce"), Some("SpamComplaint")) => {
            (InboundKind::Complaint, Reason::Feedback)
        }
        (Some("Bounce"), Some(kind)) => match kind {
            "HardBounce" | "BadEmailAddress" => failure(true, status_code.as_deref(), &words),
            "SoftBounce" | "Transient" => failure(false, status_code.as_deref(), &words),
            "DnsError" => (InboundKind::Soft, Reason::HostUnknown),
            "Blocked" => (InboundKind::Policy, Reason::Blocked),
            "DMARCPolicy" => (InboundKind::Policy, Reason::PolicyViolation),
            "SpamNotification" => (InboundKind::Policy, Reason::SpamDetected),
            "AutoResponder" => (InboundKind::AutoReply, Reason::Vacation),
            _ => (InboundKind::Unknown, Reason::Undefined),
        },
        _ => (InboundKind::Unknown, Reason::Undefined),
    };
    Report {
        kind,
        reason,
        recipient,
        status_code,
        diagnostic: details.or(description).map(|d| one_line(&d)),
        addressed_to: Vec::new(),
        original_message_id: text(&post["MessageID"]),
    }
}

/// A failed delivery's kind and reason from its status code and the
/// receiver's words. Refusals of the sender (5.7.x, spam, reputation) are
/// `Policy` whatever the provider called them: never the reader's fault.
fn failure(permanent: bool, status_code: Option<&str>, words: &str) -> (InboundKind, Reason) {
    let words = words.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| words.contains(n));
    let code = status_code.unwrap_or("");
    if code.starts_with("5.7.") || code.starts_with("4.7.") || has(&["spam", "blocked", "blacklist", "blocklist"]) {
        let reason = match has(&["spam"]) {
            true => Reason::SpamDetected,
            false => Reason::Blocked,
        };
        return (InboundKind::Policy, reason);
    }
    if code == "5.2.2" || code == "4.2.2" || has(&["mailbox full", "mailbox is full", "quota", "over quota"]) {
        return (InboundKind::Soft, Reason::MailboxFull);
    }
    if !permanent || code.starts_with("4.") {
        let reason = match has(&["expired", "too long", "retry timeout"]) {
            true => Reason::Expired,
            false => Reason::Undefined,
        };
        return (InboundKind::Soft, reason);
    }
    let reason = match code {
        "5.1.1" | "5.1.0" | "5.1.6" => Reason::UserUnknown,
        "5.1.2" | "5.4.4" => Reason::HostUnknown,
        "5.2.1" => Reason::Suspend,
        _ if has(&[
            "no such user",
            "user unknown",
            "does not exist",
            "unknown user",
            "no mailbox",
        ]) =>
        {
            Reason::UserUnknown
        }
        _ if has(&["host not found", "domain not found", "no mx", "unrouteable"]) => Reason::HostUnknown,
        _ if has(&["disabled", "deactivated", "suspended", "inactive"]) => Reason::Suspend,
        _ => Reason::Undefined,
    };
    (InboundKind::Hard, reason)
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `5.1.1`: class 2/4/5, then one to three and one to three digits.
fn is_status_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The first enhanced status code in `text`.
fn find_status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .find(|w| is_status_code(w))
        .map(str::to_owned)
}

/// Mailgun's webhook signature: hex HMAC-SHA256 of `timestamp` followed by
/// `token`, under the webhook signing key; compared in constant time.
pub fn mailgun_signature_ok(signing_key: &[u8], timestamp: &str, token: &str, signature: &str) -> bool {
    let Some(tag) = hex_bytes(signature.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing_key);
    let mut data = Vec::with_capacity(timestamp.len() + token.len());
    data.extend_from_slice(timestamp.as_bytes());
    data.extend_from_slice(token.as_bytes());
    ring::hmac::verify(&key, &data, &tag).is_ok()
}

/// Postmark's webhooks carry HTTP Basic credentials: whether the
/// `Authorization` header names `username` and `password`. Both are compared
/// through an HMAC under a random key, so in constant time.
pub fn postmark_credentials_ok(authorization: Option<&str>, username: &str, password: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
    }) else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let expected = format!("{username}:{password}");
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng) else {
        return false;
    };
    let tag = ring::hmac::sign(&key, expected.as_bytes());
    ring::hmac::verify(&key, &given, tag.as_ref()).is_ok()
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailgun_post(event: &str, severity: &str, code: u64, enhanced: &str, message: &str) -> Vec<u8> {
        serde_json::json!({
            "signature": {"timestamp": "1700000000", "token": "t", "signature": "s"},
            "event-data": {
                "event": event, "severity": severity, "id": "ev1",
                "recipient": "reader@example.org",
                "delivery-status": {"code": code, "enhanced-code": enhanced, "message": message},
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn mailgun_failures_and_complaints_are_read() {
        let hard = report(
            InboundSource::Mailgun,
            &mailgun_post("failed", "permanent", 550, "5.1.1", "No such user here"),
        );
        assert_eq!(hard.kind, InboundKind::Hard);
        assert_eq!(hard.reason, Reason::UserUnknown);
        assert_eq!(hard.recipient.as_deref(), Some("reader@example.org"));
        assert_eq!(hard.status_code.as_deref(), Some("5.1.1"));
        assert_eq!(hard.diagnostic.as_deref(), Some("550 No such user here"));

        let full = report(
            InboundSource::Mailgun,
            &mailgun_post("failed", "temporary", 452, "", "4.2.2 Mailbox full"),
        );
        assert_eq!((full.kind, full.reason), (InboundKind::Soft, Reason::MailboxFull));
        assert_eq!(full.status_code.as_deref(), Some("4.2.2"));

        let blocked = report(
            InboundSource::Mailgun,
            &mailgun_post("failed", "permanent", 554, "5.7.1", "Message rejected as spam"),
        );
        assert_eq!(
            (blocked.kind, blocked.reason),
            (InboundKind::Policy, Reason::SpamDetected)
        );

        let complaint = report(InboundSource::Mailgun, &mailgun_post("complained", "", 0, "", ""));
        assert_eq!(
            (complaint.kind, complaint.reason),
            (InboundKind::Complaint, Reason::Feedback)
        );
        assert_eq!(complaint.recipient.as_deref(), Some("reader@example.org"));

        let delivered = report(InboundSource::Mailgun, &mailgun_post("delivered", "", 250, "", "OK"));
        assert_eq!(delivered.kind, InboundKind::Unknown);
        assert_eq!(report(InboundSource::Mailgun, b"not json").kind, InboundKind::Unknown);
    }

    #[test]
    fn ses_bounces_and_complaints_are_read() {
        let notification = |message: serde_json::Value| {
            serde_json::json!({"Type": "Notification", "Message": message.to_string()})
                .to_string()
                .into_bytes()
        };
        let hard = report(
            InboundSource::Ses,
            &notification(serde_json::json!({
                "notificationType": "Bounce",
                "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [
                    {"emailAddress": "reader@example.org", "status": "5.1.1",
                     "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
                "mail": {"messageId": "m1"},
            })),
        );
        assert_eq!((hard.kind, hard.reason), (InboundKind::Hard, Reason::UserUnknown));
        assert_eq!(hard.recipient.as_deref(), Some("reader@example.org"));
        assert_eq!(hard.status_code.as_deref(), Some("5.1.1"));
        let complaint = report(
            InboundSource::Ses,
            &notification(serde_json::json!({
                "notificationType": "Complaint",
                "complaint": {"complainedRecipients": [{"emailAddress": "reader@example.org"}]},
            })),
        );
        assert_eq!(complaint.kind, InboundKind::Complaint);
        assert_eq!(complaint.recipient.as_deref(), Some("reader@example.org"));
    }

    #[test]
    fn postmark_bounces_and_complaints_are_read() {
        let post = |record: &str, kind: &str, details: &str| {
            serde_json::json!({
                "RecordType": record, "Type": kind, "ID": 42, "Email": "reader@example.org",
                "Description": "The server was unable to deliver your message", "Details": details,
            })
            .to_string()
            .into_bytes()
        };
        let hard = report(
            InboundSource::Postmark,
            &post(
                "Bounce",
                "HardBounce",
                "smtp;550 5.1.1 The email account does not exist",
            ),
        );
        assert_eq!((hard.kind, hard.reason), (InboundKind::Hard, Reason::UserUnknown));
        assert_eq!(hard.status_code.as_deref(), Some("5.1.1"));
        assert_eq!(hard.recipient.as_deref(), Some("reader@example.org"));
        let soft = report(InboundSource::Postmark, &post("Bounce", "SoftBounce", "mailbox full"));
        assert_eq!((soft.kind, soft.reason), (InboundKind::Soft, Reason::MailboxFull));
        let complaint = report(InboundSource::Postmark, &post("SpamComplaint", "SpamComplaint", ""));
        assert_eq!(complaint.kind, InboundKind::Complaint);
        let odd = report(InboundSource::Postmark, &post("Delivery", "", ""));
        assert_eq!(odd.kind, InboundKind::Unknown);
    }

    // The expected values were computed with Python's hmac and base64.
    #[test]
    fn a_mailgun_signature_is_checked_against_timestamp_and_token() {
        let good = "630460d97afb5ee3316160c5ccc9c70b26eff90bd0c8bf1a497de0311d3451ce";
        assert!(mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", good));
        assert!(mailgun_signature_ok(
            b"key-3ax6",
            "1700000000",
            "c0ffee",
            &good.to_uppercase()
        ));
        assert!(!mailgun_signature_ok(b"key-3ax7", "1700000000", "c0ffee", good));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000001", "c0ffee", good));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", &good[..62]));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", "zz"));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", ""));
    }

    #[test]
    fn postmark_basic_credentials_must_match_exactly() {
        let header = "Basic Z2F6ZXR0ZTpww6Rzczp3b3Jk"; // gazette:päss:word
        assert!(postmark_credentials_ok(Some(header), "gazette", "päss:word"));
        assert!(postmark_credentials_ok(
            Some("basic  Z2F6ZXR0ZTpww6Rzczp3b3Jk "),
            "gazette",
            "päss:word"
        ));
        assert!(!postmark_credentials_ok(Some(header), "gazette", "päss:wor"));
        assert!(!postmark_credentials_ok(Some(header), "gazett", "päss:word"));
        assert!(!postmark_credentials_ok(
            Some("Bearer Z2F6ZXR0ZTpww6Rzczp3b3Jk"),
            "gazette",
            "päss:word"
        ));
        assert!(!postmark_credentials_ok(Some("Basic !!!"), "gazette", "päss:word"));
        assert!(!postmark_credentials_ok(None, "gazette", "päss:word"));
    }
}
