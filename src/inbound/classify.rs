//! Reading a bounce, a complaint, an auto-reply or a reader's mail from
//! its raw bytes (RFC 5322, with RFC 3464 DSNs and RFC 5965 ARF reports).
//!
//! The order matters: a report part (delivery status, feedback report) is
//! believed first; then the wordings of the MTAs that bounce without one
//! (qmail, Exim, Exchange, Gmail, Yahoo, postfix without a DSN part); then
//! the auto-reply marks, which bounces carry too (postfix and Exim set
//! `Auto-Submitted: auto-replied` on their bounces). Reasons use sisimai's
//! names and, where it can be done in a few lines, its rules: the status
//! code names the reason unless it is a vague one, where the wording decides.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::report::{Reason, Report};
use crate::domain::InboundKind;

/// Only so much of a body is searched for wordings and addresses: a huge
/// message (a returned digest with its images) must not cost more than a
/// small one.
const TEXT_LIMIT: usize = 64 * 1024;

/// Reads one message as it arrived; `envelope_to` are its envelope
/// recipients where the source knows them.
pub fn message(raw: &[u8], envelope_to: &[String]) -> Report {
    read(raw, envelope_to, 0)
}

fn read(raw: &[u8], envelope_to: &[String], depth: usize) -> Report {
    let mut addressed = Addressed::default();
    for to in envelope_to {
        addressed.push(to);
    }
    if !looks_like_mail(raw) {
        return Report::unknown(addressed.0);
    }
    let Some(parsed) = MessageParser::default().parse(raw) else {
        return Report::unknown(addressed.0);
    };
    for name in ["Delivered-To", "X-Original-To"] {
        for value in header_texts(&parsed, name) {
            addressed.push(&value);
        }
    }
    for address in parsed.to().into_iter().flat_map(|a| a.iter()) {
        if let Some(a) = address.address() {
            addressed.push(a);
        }
    }

    let mut report = if let Some(report) = feedback_report(&parsed, &mut addressed) {
        report
    } else if let Some(report) = delivery_status(&parsed) {
        report
    } else if is_bounce(&parsed) {
        plain_bounce(&parsed)
    } else if is_auto_reply(&parsed) {
        Report {
            kind: InboundKind::AutoReply,
            reason: Reason::Vacation,
            // Who is away (sisimai names them too).
            recipient: sender(&parsed),
            original_message_id: header_texts(&parsed, "In-Reply-To")
                .into_iter()
                .next()
                .map(strip_brackets),
            ..Report::unknown(Vec::new())
        }
    } else {
        Report::unknown(Vec::new())
    };
    if report.kind == InboundKind::Unknown
        && report.reason == Reason::Undefined
        && let Some(inner) = forwarded(&parsed, depth)
    {
        // A bounce someone forwarded as an attachment.
        for to in &inner.addressed_to {
            addressed.push(to);
        }
        report = inner;
    }
    returned_addresses(&parsed, &mut addressed, depth);
    report.addressed_to = addressed.0;
    report
}

/// The first attached message that reads as something, read once more
/// (one level deep: a bounce's own attachment is our message).
fn forwarded(message: &Message<'_>, depth: usize) -> Option<Report> {
    if depth > 0 {
        return None;
    }
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(nested) => {
            let report = read(nested.raw_message(), &[], depth + 1);
            (report.kind != InboundKind::Unknown).then_some(report)
        }
        _ => None,
    })
}

fn sender(message: &Message<'_>) -> Option<String> {
    message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_owned)
}

/// Mail starts with a header field (`Name: value`) or an mbox `From ` line;
/// anything else (a PDF, a JSON post, nothing at all) is not mail.
fn looks_like_mail(raw: &[u8]) -> bool {
    let first = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    if first.starts_with(b"From ") {
        return true;
    }
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

/// Addresses in the order they were found, each once.
#[derive(Default)]
struct Addressed(Vec<String>);

impl Addressed {
    fn push(&mut self, raw: &str) {
        let address = strip_brackets(raw.trim().trim_start_matches("rfc822;").trim().to_owned());
        if address.is_empty() || !address.contains('@') || address.chars().any(char::is_whitespace) {
            return;
        }
        if !self.0.iter().any(|known| known.eq_ignore_ascii_case(&address)) {
            self.0.push(address);
        }
    }
}

fn strip_brackets(text: String) -> String {
    let trimmed = text.trim().trim_start_matches('<').trim_end_matches('>').trim();
    match trimmed.len() == text.len() {
        true => text,
        false => trimmed.to_owned(),
    }
}

/// Every value of a header field, as text (unparsed: mail-parser would
/// otherwise read `Delivered-To` as an address list we do not need).
fn header_texts(message: &Message<'_>, name: &str) -> Vec<String> {
    message
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| unfold(v))
        .collect()
}

fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn content_type_is(part: &MessagePart<'_>, ty: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ty)
            && ct
                .subtype()
                .is_some_and(|sub| subtypes.iter().any(|s| sub.eq_ignore_ascii_case(s)))
    })
}

/// Every part of `message` and of the messages nested in it, shallowest
/// first (a forwarded bounce still reads as the bounce it carries).
fn all_parts<'a, 'x>(message: &'a Message<'x>) -> Vec<&'a MessagePart<'x>> {
    let mut found: Vec<&'a MessagePart<'x>> = message.parts.iter().collect();
    let mut i = 0;
    while i < found.len() && found.len() < 1000 {
        if let PartType::Message(nested) = &found[i].body {
            found.extend(nested.parts.iter());
        }
        i += 1;
    }
    found
}

/// Fields of a report part (`message/delivery-status`,
/// `message/feedback-report`): groups separated by blank lines, each a
/// list of unfolded (name, value) pairs.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `rfc822; user@example.org` → `user@example.org`.
fn typed_address(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    let address = strip_brackets(address.trim().to_owned());
    address.contains('@').then_some(address)
}

fn part_text(part: &MessagePart<'_>) -> String {
    let bytes = part.contents();
    String::from_utf8_lossy(&bytes[..bytes.len().min(TEXT_LIMIT)]).into_owned()
}

/// The first enhanced status code (`5.1.1`) in `text`.
fn find_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'2' || b == b'4' || b == b'5')
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            continue;
        }
        let rest = &text[i..];
        let mut pieces = rest.splitn(3, '.');
        let (Some(class), Some(subject), Some(tail)) = (pieces.next(), pieces.next(), pieces.next()) else {
            continue;
        };
        let detail: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let after = tail[detail.len()..].chars().next();
        if class.len() == 1
            && (1..=3).contains(&subject.len())
            && subject.chars().all(|c| c.is_ascii_digit())
            && (1..=3).contains(&detail.len())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return Some(format!("{class}.{subject}.{detail}"));
        }
    }
    None
}

/// A three-digit SMTP reply code (`550`) at the start of a word.
fn find_reply_code(text: &str) -> Option<u16> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() == 3)
        .filter_map(|word| word.parse::<u16>().ok())
        .find(|code| (421..=554).contains(code))
}

fn one_line(text: &str) -> String {
    let line = unfold(text);
    match line.char_indices().nth(500) {
        Some((cut, _)) => line[..cut].to_owned(),
        None => line,
    }
}

// ---------------------------------------------------------------- ARF

fn feedback_report(message: &Message<'_>, addressed: &mut Addressed) -> Option<Report> {
    let parts = all_parts(message);
    let report_part = parts
        .iter()
        .find(|p| content_type_is(p, "message", &["feedback-report"]))?;
    let fields: Vec<(String, String)> = field_groups(&part_text(report_part)).concat();
    let returned = returned_message(&parts);
    if let Some(from) = field(&fields, "original-mail-from") {
        addressed.push(from);
    }
    let recipient = field(&fields, "original-rcpt-to")
        .or_else(|| field(&fields, "removal-recipient"))
        .and_then(typed_address)
        .or_else(|| returned.as_ref().and_then(|r| r.to.clone()));
    Some(Report {
        kind: InboundKind::Complaint,
        reason: Reason::Feedback,
        recipient,
        status_code: None,
        diagnostic: field(&fields, "feedback-type").map(one_line),
        addressed_to: Vec::new(),
        original_message_id: returned.and_then(|r| r.message_id),
    })
}

/// What the returned copy of our message says (a `message/rfc822` part or
/// `text/rfc822-headers`).
struct Returned {
    to: Option<String>,
    message_id: Option<String>,
    return_path: Option<String>,
}

fn returned_message(parts: &[&MessagePart<'_>]) -> Option<Returned> {
    for part in parts {
        if let PartType::Message(nested) = &part.body {
            return Some(Returned {
                to: nested
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .map(str::to_owned),
                message_id: nested.message_id().map(str::to_owned),
                return_path: header_texts(nested, "Return-Path").into_iter().next(),
            });
        }
        if content_type_is(part, "text", &["rfc822-headers"]) || content_type_is(part, "message", &["rfc822-headers"]) {
            let fields: Vec<(String, String)> = field_groups(&part_text(part)).concat();
            return Some(Returned {
                to: field(&fields, "to").and_then(first_address),
                message_id: field(&fields, "message-id").map(|m| strip_brackets(m.to_owned())),
                return_path: field(&fields, "return-path").map(str::to_owned),
            });
        }
    }
    None
}

/// Adds the return paths of the returned message (our VERP address when
/// the bounce carries our headers), also from quoted text.
fn returned_addresses(message: &Message<'_>, addressed: &mut Addressed, depth: usize) {
    let parts = all_parts(message);
    if let Some(returned) = returned_message(&parts)
        && let Some(path) = returned.return_path
    {
        addressed.push(&path);
    }
    if depth > 0 {
        return;
    }
    // Quoted headers in a plain bounce (qmail, Exim, Gmail quote them).
    for part in parts.iter().filter(|p| p.is_text() && !p.is_text_html()) {
        for line in part_text(part).lines() {
            let line = line.trim_start_matches(['>', ' ', '\t']);
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("Return-Path")
            {
                addressed.push(value);
            }
        }
    }
}

fn first_address(text: &str) -> Option<String> {
    addresses_in(text).into_iter().next()
}

/// Addresses in free text: `<a@b>` or a bare `a@b` word.
fn addresses_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text
        .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | ',' | ';' | '[' | ']' | '\''))
    {
        let word = word.trim_matches(|c: char| matches!(c, '.' | ':' | '!' | '?'));
        let Some((local, domain)) = word.split_once('@') else {
            continue;
        };
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'));
        let local_ok = !local.is_empty() && local.chars().all(|c| !c.is_control() && c != ':');
        if domain_ok && local_ok {
            found.push(word.to_owned());
        }
    }
    found
}

// ---------------------------------------------------------------- DSN

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Failed,
    Delayed,
    Delivered,
    Other,
}

fn delivery_status(message: &Message<'_>) -> Option<Report> {
    let parts = all_parts(message);
    let status_part = parts
        .iter()
        .find(|p| content_type_is(p, "message", &["delivery-status", "global-delivery-status"]))?;
    let groups = field_groups(&part_text(status_part));
    // Per-recipient groups name a recipient; the first that failed tells
    // most, then one delayed, then whatever there is.
    let recipients: Vec<&Vec<(String, String)>> = groups
        .iter()
        .filter(|g| field(g, "final-recipient").is_some() || field(g, "original-recipient").is_some())
        .collect();
    let action_of = |g: &[(String, String)]| match field(g, "action").map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if a.starts_with("failed") => Action::Failed,
        Some(a) if a.starts_with("delayed") => Action::Delayed,
        Some(a) if a.starts_with("delivered") || a.starts_with("relayed") || a.starts_with("expanded") => {
            Action::Delivered
        }
        _ => Action::Other,
    };
    let chosen = recipients
        .iter()
        .find(|g| action_of(g) == Action::Failed)
        .or_else(|| recipients.iter().find(|g| action_of(g) == Action::Delayed))
        .or_else(|| recipients.first())?;
    let returned = returned_message(&parts);
    let recipient = field(chosen, "final-recipient")
        .and_then(typed_address)
        .or_else(|| field(chosen, "original-recipient").and_then(typed_address));
    let diagnostic = field(chosen, "diagnostic-code").map(|d| {
        let d = d
            .split_once(';')
            .map_or(d, |(kind, rest)| match kind.trim().len() < 12 {
                true => rest,
                false => d,
            });
        one_line(d)
    });
    let mut status = field(chosen, "status").and_then(find_status);
    let mut action = action_of(chosen);
    if action == Action::Other {
        action = match status.as_deref().map(|s| s.as_bytes()[0]) {
            Some(b'2') => Action::Delivered,
            Some(b'4') => Action::Delayed,
            _ => Action::Failed,
        };
    }
    // A vague status (5.0.0) with a precise one in the server's words.
    if status.as_deref().is_none_or(|s| s.ends_with(".0.0"))
        && let Some(better) = diagnostic.as_deref().and_then(find_status)
        && status
            .as_deref()
            .is_none_or(|s| s.as_bytes()[0] == better.as_bytes()[0])
    {
        status = Some(better);
    }
    if action == Action::Delivered {
        return Some(Report {
            kind: InboundKind::Unknown,
            reason: Reason::Delivered,
            recipient,
            status_code: status,
            diagnostic,
            addressed_to: Vec::new(),
            original_message_id: returned.and_then(|r| r.message_id),
        });
    }
    let mut words = diagnostic.clone().unwrap_or_default();
    if words.is_empty() {
        // Some relays put the reason only in the human-readable part.
        words = human_text(message);
    }
    let reason = reason_for(status.as_deref(), &words, action == Action::Delayed);
    Some(Report {
        kind: kind_for(reason, status.as_deref(), action == Action::Delayed),
        reason,
        recipient,
        status_code: status,
        diagnostic,
        addressed_to: Vec::new(),
        original_message_id: returned.and_then(|r| r.message_id),
    })
}

/// The first text part of a message (the human-readable part of a
/// bounce), cut to [`TEXT_LIMIT`].
fn human_text(message: &Message<'_>) -> String {
    let part = message
        .text_bodies()
        .find(|p| !content_type_is(p, "text", &["rfc822-headers"]))
        .or_else(|| message.html_bodies().next());
    part.map(part_text).unwrap_or_default()
}

// ---------------------------------------------------------------- plain bounces

/// A bounce without a report part: sent by the mail system (null return
/// path, a mailer-daemon sender) with one of the usual subjects.
fn is_bounce(message: &Message<'_>) -> bool {
    let from = sender(message).unwrap_or_default().to_ascii_lowercase();
    let daemon = ["mailer-daemon@", "postmaster@", "mail-daemon@", "mailer_daemon@"]
        .iter()
        .any(|p| from.starts_with(p))
        || from == "mailer-daemon";
    let subject = message.subject().unwrap_or_default().to_lowercase();
    let bounce_subject = [
        "undelivered mail",
        "undeliverable",
        "delivery status notification (failure)",
        "delivery status notification (delay)",
        "delivery failure",
        "mail delivery failed",
        "failure notice",
        "returned mail",
        "mail delivery subsystem",
        "delivery notification",
        "non remis",
        "message not delivered",
        "недоставленное сообщение",
        "не доставлено",
    ]
    .iter()
    .any(|s| subject.contains(s));
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    bounce_subject || report || (daemon && !subject.is_empty() && !subject.contains("out of office"))
}

/// Where the quoted original starts in a plain bounce: nothing after it is
/// the mail system's own words.
const QUOTE_MARKERS: &[&str] = &[
    "--- below this line is a copy of the message",
    "------ this is a copy of the message",
    "--- original message",
    "----- original message -----",
    "original message headers",
    "--- enclosed is a copy of the message",
    "----- transcript of session follows",
    "--- the header of the original message",
    "------ original message ------",
    "\nreceived: ",
    "\nreturn-path: ",
];

fn plain_bounce(message: &Message<'_>) -> Report {
    let text = human_text(message);
    let lower = text.to_lowercase();
    let end = QUOTE_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(lower.len());
    let own = &text[..end];
    let from = sender(message).unwrap_or_default().to_ascii_lowercase();
    let recipient = addresses_in(own).into_iter().find(|a| {
        let a = a.to_ascii_lowercase();
        a != from && !a.starts_with("mailer-daemon@") && !a.starts_with("postmaster@")
    });
    // The line with the server's words: the first with a status code, a
    // reply code or a known wording.
    let status = find_status(own);
    let diagnostic = own
        .lines()
        .map(str::trim)
        .find(|line| find_status(line).is_some() || find_reply_code(line).is_some())
        .map(one_line);
    let status = status.or_else(|| {
        find_reply_code(own).map(|code| match code / 100 {
            4 => "4.0.0".to_owned(),
            _ => "5.0.0".to_owned(),
        })
    });
    let subject = message.subject().unwrap_or_default().to_lowercase();
    let delayed = subject.contains("delay")
        || lower[..end].contains("will continue to be attempted")
        || lower[..end].contains("will retry")
        || lower[..end].contains("this is a warning message only")
        || lower[..end].contains("has been delayed");
    let status = match (status, delayed) {
        (None, true) => Some("4.0.0".to_owned()),
        (status, _) => status,
    };
    let reason = reason_for(status.as_deref(), own, delayed);
    let kind = match (reason, &status) {
        (Reason::Undefined, None) => InboundKind::Unknown,
        _ => kind_for(reason, status.as_deref(), delayed),
    };
    Report {
        kind,
        reason,
        recipient,
        status_code: status,
        diagnostic,
        addressed_to: Vec::new(),
        original_message_id: returned_message(&all_parts(message)).and_then(|r| r.message_id),
    }
}

// ---------------------------------------------------------------- auto-replies

fn is_auto_reply(message: &Message<'_>) -> bool {
    let first = |name: &str| {
        header_texts(message, name)
            .into_iter()
            .next()
            .map(|v| v.to_ascii_lowercase())
    };
    let subject = message.subject().unwrap_or_default().to_lowercase();
    let vacation_subject = [
        "out of office",
        "out of the office",
        "automatic reply",
        "auto-reply",
        "autoreply",
        "auto reply",
        "auto:",
        "vacation",
        "away from my mail",
        "абонент в отпуске",
        "автоответ",
        "автоматический ответ",
        "в отпуске",
        "нет на месте",
        "вне офиса",
    ]
    .iter()
    .any(|s| subject.contains(s));
    let auto_submitted = first("Auto-Submitted");
    auto_submitted.as_deref().is_some_and(|v| v.starts_with("auto-replied"))
        || first("X-Autoreply").is_some_and(|v| v != "no")
        || first("X-Autorespond").is_some()
        || first("X-Autogenerated").is_some_and(|v| v.contains("reply"))
        || first("Precedence").is_some_and(|v| v.contains("auto_reply"))
        || (vacation_subject && auto_submitted.as_deref().is_some_and(|v| v != "no"))
        || (vacation_subject && first("Precedence").is_some_and(|v| v.contains("bulk") || v.contains("junk")))
        || subject.starts_with("out of office")
        || subject.starts_with("automatic reply")
        || subject.starts_with("автоответ")
        || subject.starts_with("автоматический ответ")
}

// ---------------------------------------------------------------- reasons

/// sisimai's reasons for the standard status codes (`Sisimai::SMTP::Status`).
fn reason_of_status(status: &str) -> Option<Reason> {
    use Reason::*;
    Some(match status {
        "4.1.6" | "5.1.6" | "5.7.17" | "5.7.18" => HasMoved,
        "4.1.7" | "4.1.8" | "5.1.7" | "5.1.8" => Rejected,
        // sisimai's table says `filtered` for 5.2.1, its own Gmail reading
        // and RFC 3463 say the mailbox is disabled.
        "4.2.1" | "5.2.1" | "5.7.13" => Suspend,
        "4.2.2" | "5.2.2" => MailboxFull,
        "4.2.3" | "5.2.3" => ExceedLimit,
        "4.2.4" | "5.1.4" | "5.2.0" | "5.2.4" => Filtered,
        "4.3.1" | "4.4.5" | "5.3.1" => SystemFull,
        "4.3.2" | "5.3.2" => NotAccept,
        "4.1.9" | "4.3.3" | "4.3.5" | "4.5.3" | "4.5.5" | "5.1.9" | "5.3.0" | "5.3.3" | "5.3.5" | "5.4.3" | "5.5.4"
        | "5.5.5" => SystemError,
        "4.4.1" | "4.4.7" => Expired,
        "4.4.2" | "4.4.4" | "4.4.6" | "5.4.0" => NetworkError,
        "4.6.0" | "4.6.2" | "4.6.5" => ContentError,
        "4.7.1" | "4.7.2" | "4.7.25" | "5.7.25" => Blocked,
        "4.7.16" | "5.3.4" | "5.7.16" => MesgTooBig,
        "5.1.0" | "5.1.1" | "5.1.3" => UserUnknown,
        "5.1.2" | "5.4.4" => HostUnknown,
        "5.5.3" => TooManyConn,
        s if s.starts_with("5.6.") => ContentError,
        s if s.starts_with("5.7.") || s.starts_with("4.7.") => SecurityError,
        _ => return None,
    })
}

/// Reasons a status code names only vaguely: the wording may say better
/// (sisimai's `Reason->retry`).
fn vague(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Undefined
            | Reason::SystemError
            | Reason::SecurityError
            | Reason::NetworkError
            | Reason::HostUnknown
            | Reason::UserUnknown
    )
}

/// Wordings, in the order sisimai tries them; lower-case substrings.
const WORDINGS: &[(Reason, &[&str])] = &[
    (
        Reason::MailboxFull,
        &[
            "mailbox full",
            "mailbox is full",
            "over quota",
            "quota exceeded",
            "exceeded storage allocation",
            "mailbox size limit exceeded",
            "full mailbox",
            "does not have enough space",
            "user is over the quota",
            "insufficient system storage",
            "out of storage",
            "ящик переполнен",
        ],
    ),
    (
        Reason::MesgTooBig,
        &[
            "message size exceeds",
            "message too large",
            "message too big",
            "size limit exceeded",
            "message is too big",
        ],
    ),
    (
        Reason::Suspend,
        &[
            "is currently suspended",
            "has been suspended",
            "this mailbox is disabled",
            "mailbox currently suspended",
            "account has been disabled",
            "email account that you tried to reach is disabled",
            "account is disabled",
            "user suspended",
            "invalid/inactive user",
            "mailbox is frozen",
        ],
    ),
    (Reason::HasMoved, &["has been replaced by", "has moved"]),
    (
        Reason::NoRelaying,
        &[
            "relay access denied",
            "relaying denied",
            "not permitted to relay",
            "relay not permitted",
            "unable to relay",
        ],
    ),
    (
        Reason::UserUnknown,
        &[
            "user unknown",
            "unknown user",
            "no such user",
            "no such mailbox",
            "no such recipient",
            "no such person",
            "does not exist",
            "doesn't exist",
            "doesn't have a",
            "recipient unknown",
            "unknown recipient",
            "address unknown",
            "invalid recipient",
            "invalid mailbox",
            "mailbox unavailable",
            "mailbox not found",
            "recipient not found",
            "user not found",
            "no mailbox here by that name",
            "not a valid mailbox",
            "recipient address rejected: user unknown",
            "this user doesn't have a",
            "address rejected",
            "recipientnotfound",
            "no mailbox",
            "нет такого пользователя",
        ],
    ),
    (
        Reason::Filtered,
        &[
            "user reject",
            "refused due to recipient preferences",
            "you have been blocked by the recipient",
            "is not accepting any mail",
        ],
    ),
    (
        Reason::Rejected,
        &[
            "sender rejected",
            "sender address rejected",
            "invalid sender",
            "sender verify failed",
            "domain of sender address",
        ],
    ),
    (
        Reason::HostUnknown,
        &[
            "host unknown",
            "unknown host",
            "no such domain",
            "domain does not exist",
            "host or domain name not found",
            "name or service not known",
            "unroutable address",
            "unrouteable address",
        ],
    ),
    (
        Reason::SpamDetected,
        &[
            "as spam",
            "spam detected",
            "detected as spam",
            "looks like spam",
            "considered spam",
            "identified as spam",
            "spam content",
            "spam message",
            "spam score",
            "probability of spam",
            "probable spam",
            "due to spam",
            "unsolicited",
            "bulk email",
            "content filter rejection",
            "message content rejected",
            "message filtered",
            "suspicious",
        ],
    ),
    // Before `blocked`: "blocked because the sender is unauthenticated".
    (
        Reason::SecurityError,
        &[
            "unauthenticated",
            "authentication required",
            "spf",
            "dkim",
            "authentication failed",
        ],
    ),
    (
        Reason::TooManyConn,
        &["too many connections", "too many recipients", "too many simultaneous"],
    ),
    (
        Reason::Blocked,
        &[
            "blocked",
            "blacklisted",
            "blocklist",
            "block list",
            "rbl",
            "reputation",
            "ptr record",
            "reverse dns",
            "ip name lookup failed",
            "client host rejected",
            "access denied",
            "poor reputation",
            "denied by policy",
        ],
    ),
    (
        Reason::PolicyViolation,
        &["policy violation", "violates our policy", "dmarc policy"],
    ),
    (
        Reason::Expired,
        &[
            "delivery time expired",
            "giving up on",
            "retry timeout exceeded",
            "message timed out",
            "has been delayed",
            "could not be delivered for more than",
            "too long in the queue",
            "in the queue too long",
            "connection timed out",
        ],
    ),
    (Reason::SystemFull, &["mail system full", "insufficient disk space"]),
    (Reason::NotAccept, &["does not accept mail", "null mx"]),
    (
        Reason::NetworkError,
        &[
            "mail loops back",
            "routing loop",
            "too many hops",
            "mail for",
            "loops back to myself",
        ],
    ),
];

fn reason_of_words(words: &str) -> Option<Reason> {
    let lower = words.to_lowercase();
    WORDINGS
        .iter()
        .find(|(_, phrases)| phrases.iter().any(|p| lower.contains(p)))
        .map(|&(reason, _)| reason)
}

fn reason_for(status: Option<&str>, words: &str, delayed: bool) -> Reason {
    let by_status = status.and_then(reason_of_status);
    // 5.1.10 is a null MX in RFC 7505, and Exchange's "recipient not
    // found": the words tell which.
    let by_status = by_status.or((status == Some("5.1.10")).then_some(Reason::Undefined));
    let reason = match by_status {
        Some(reason) if !vague(reason) => reason,
        _ => match reason_of_words(words).or(by_status) {
            Some(Reason::Undefined) | None if status == Some("5.1.10") => Reason::NotAccept,
            other => other.unwrap_or(Reason::Undefined),
        },
    };
    // A delay that names no better reason is sisimai's `expired`.
    match (delayed, reason) {
        (true, Reason::Undefined | Reason::SystemError | Reason::NetworkError) => Reason::Expired,
        _ => reason,
    }
}

/// What a failure means for the reader: the address is gone (hard), may
/// come back (soft), or the receiver refused us (policy).
fn kind_for(reason: Reason, status: Option<&str>, delayed: bool) -> InboundKind {
    use Reason::*;
    match reason {
        Delivered => return InboundKind::Unknown,
        Feedback => return InboundKind::Complaint,
        Vacation => return InboundKind::AutoReply,
        Unsubscribe => return InboundKind::Unsubscribe,
        _ => {}
    }
    if delayed || status.is_some_and(|s| s.starts_with('4')) {
        return InboundKind::Soft;
    }
    match reason {
        UserUnknown | HostUnknown | Suspend | HasMoved | NotAccept | Filtered => InboundKind::Hard,
        MailboxFull | Expired | SystemFull | SystemError | NetworkError | ExceedLimit | MailerError => {
            InboundKind::Soft
        }
        Blocked | SpamDetected | BadReputation | Rejected | PolicyViolation | SecurityError | RequirePtr
        | NotCompliantRfc | AuthFailure | NoRelaying | Speeding | ContentError | MesgTooBig | SyntaxError
        | TooManyConn => InboundKind::Policy,
        _ => match status {
            Some(s) if s.starts_with("5.1.") => InboundKind::Hard,
            Some(s) if s.starts_with("5.7.") => InboundKind::Policy,
            Some(_) => InboundKind::Soft,
            None => InboundKind::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_in_words_and_not_in_versions() {
        assert_eq!(
            find_status("550 5.1.1 <a@b.example>: User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_status("#5.2.2 mailbox full").as_deref(), Some("5.2.2"));
        assert_eq!(find_status("version 15.2.1.3 of the server"), None);
        assert_eq!(find_status("IP 10.5.7.1 listed"), None);
        assert_eq!(find_status("5.7.133 x").as_deref(), Some("5.7.133"));
    }

    #[test]
    fn a_vague_status_gives_way_to_the_wording() {
        assert_eq!(reason_for(Some("5.1.1"), "mailbox is full", false), Reason::MailboxFull);
        assert_eq!(
            reason_for(Some("5.7.1"), "blocked using zen.spamhaus.org", false),
            Reason::Blocked
        );
        assert_eq!(reason_for(Some("5.2.2"), "user unknown", false), Reason::MailboxFull);
        assert_eq!(reason_for(None, "", true), Reason::Expired);
    }

    #[test]
    fn mailbox_full_is_soft_even_when_permanent_and_5_7_is_policy() {
        assert_eq!(kind_for(Reason::MailboxFull, Some("5.2.2"), false), InboundKind::Soft);
        assert_eq!(kind_for(Reason::UserUnknown, Some("4.1.1"), false), InboundKind::Soft);
        assert_eq!(
            kind_for(Reason::SecurityError, Some("5.7.1"), false),
            InboundKind::Policy
        );
        assert_eq!(kind_for(Reason::Filtered, Some("5.2.1"), false), InboundKind::Hard);
    }

    #[test]
    fn not_mail_is_unknown_and_keeps_the_envelope() {
        let report = message(b"%PDF-1.4\n...", &["bounces+x@b.example".to_owned()]);
        assert_eq!(report.kind, InboundKind::Unknown);
        assert_eq!(report.addressed_to, vec!["bounces+x@b.example".to_owned()]);
        assert_eq!(message(b"", &[]).kind, InboundKind::Unknown);
    }
}

/// The corpus in `tests/fixtures/inbound/`: every message with what it
/// must read as, in `expected.tsv` beside it.
#[cfg(test)]
mod corpus {
    use std::path::Path;

    use super::message;

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inbound")
    }

    /// `file kind recipient status reason`, `-` where there is none.
    fn expected() -> Vec<(String, [String; 4])> {
        let table = std::fs::read_to_string(dir().join("expected.tsv")).unwrap();
        table
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|line| {
                let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
                assert_eq!(cells.len(), 5, "expected.tsv: {line:?} needs 5 tab-separated cells");
                (
                    cells[0].to_owned(),
                    [cells[1], cells[2], cells[3], cells[4]].map(str::to_owned),
                )
            })
            .collect()
    }

    fn reading(file: &str) -> [String; 4] {
        let raw = std::fs::read(dir().join(file)).unwrap();
        let report = message(&raw, &[]);
        let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
        [
            report.kind.as_str().to_owned(),
            or_dash(report.recipient.as_deref()),
            or_dash(report.status_code.as_deref()),
            report.reason.as_str().to_owned(),
        ]
    }

    /// The pipeline finds the reader by the return path: every bounce and
    /// complaint in the corpus must lead back to it, from the envelope
    /// headers, the returned copy or the quoted headers.
    #[test]
    fn every_failure_and_complaint_names_the_return_path() {
        const VERP: &str = "bounces+2026w48-k3v9qd7m2xgtae0a.f4r8hz2kqm@bounces.gazette.example";
        for (file, want) in expected() {
            if !["hard", "soft", "policy", "complaint"].contains(&want[0].as_str()) {
                continue;
            }
            let raw = std::fs::read(dir().join(&file)).unwrap();
            let report = message(&raw, &[]);
            assert!(
                report.addressed_to.iter().any(|a| a == VERP),
                "{file}: {:?}",
                report.addressed_to
            );
        }
        // Only in the quoted headers of a plain bounce.
        let raw = b"From: MAILER-DAEMON@mx.example\nSubject: failure notice\n\n<gone@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <bounces+x.y@b.example>\nTo: gone@example.org\n";
        let report = message(raw, &[]);
        assert_eq!(report.addressed_to, vec!["bounces+x.y@b.example".to_owned()]);
        assert_eq!(report.recipient.as_deref(), Some("gone@example.org"));
    }

    #[test]
    fn every_fixture_reads_as_its_table_says() {
        let expected = expected();
        let mut problems = Vec::new();
        for (file, want) in &expected {
            let got = reading(file);
            if &got != want {
                problems.push(format!("{file}\t{}\n   expected\t{}", got.join("\t"), want.join("\t")));
            }
        }
        // A fixture without a row would be tested by nothing.
        for entry in std::fs::read_dir(dir()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".eml") && !expected.iter().any(|(f, _)| *f == name) {
                problems.push(format!("{name}: no row in expected.tsv"));
            }
        }
        assert!(
            problems.is_empty(),
            "{} disagreements:\n{}",
            problems.len(),
            problems.join("\n")
        );
        assert!(expected.len() >= 30, "the corpus has {} messages", expected.len());
    }
}
