//! Turns what a message is about (a reader, a link, a copy of an issue)
//! into a MIME message: askama templates for the confirmation, the issue's
//! copies as [`RenderedIssue`] makes them, and the headers every message
//! carries. Every URL comes from [`Links`].

use std::sync::Arc;

use askama::Template;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};
use uuid::Uuid;

use super::dkim::{DkimSigner, SignError};
use super::message::OutgoingMessage;

use crate::config::Settings;
use crate::domain::{IssueWeek, RenderedIssue, UnsubscribeToken};
use crate::links::Links;

/// Builds messages with the sender and site address from the settings.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    links: Links,
    publication: String,
    confirmation_ttl_hours: u32,
    feedback_id: Option<String>,
    dkim: Option<Arc<DkimSigner>>,
}

/// The two renderings of one message, encoded for the wire.
struct Parts {
    text: Body,
    html: Body,
}

/// An issue made ready once for all its readers ([`Composer::prepare`]):
/// the text of its parts between the link places is quoted-printable
/// already, and what its headers say about the issue is written, so a
/// reader's copy costs encoding one URL instead of the whole issue.
pub struct PreparedIssue {
    week: IssueWeek,
    encoded: RenderedIssue,
    list_archive: String,
}

impl PreparedIssue {
    pub fn week(&self) -> IssueWeek {
        self.week
    }

    /// A reader's copy, ready for the wire. Soft line breaks on either side
    /// of the encoded URL keep each segment's line lengths as they were.
    fn reader_parts(&self, unsubscribe_url: &str) -> Parts {
        let link = format!("=\r\n{}=\r\n", quoted_printable(unsubscribe_url));
        let copy = self.encoded.reader_copy(&link);
        let encoded =
            |part: String| Body::dangerous_pre_encoded(part.into_bytes(), ContentTransferEncoding::QuotedPrintable);
        Parts {
            text: encoded(copy.text),
            html: encoded(copy.html),
        }
    }
}

/// Quoted-printable (RFC 2045 §6.7) with CRLF line ends, wrapped one column
/// short of the limit so a soft break may follow the last line.
fn quoted_printable(text: &str) -> String {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let options = quoted_printable::Options::default()
        .input_mode(quoted_printable::InputMode::Text)
        .line_length_limit(75);
    quoted_printable::encode_with_options(crlf, options)
}

/// A message ready for a transport, with the Message-ID it carries.
pub struct Composed {
    pub message: OutgoingMessage,
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("recipient address `{0}` is not valid")]
    Recipient(String),
    #[error(transparent)]
    Sign(#[from] SignError),
}

#[derive(Template)]
#[template(path = "email/confirmation.html")]
struct ConfirmationHtml<'a> {
    publication: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    publication: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

impl Composer {
    pub fn new(from: Mailbox, publication: String, links: Links, confirmation_ttl_hours: u32) -> Self {
        Self {
            from,
            links,
            publication,
            confirmation_ttl_hours,
            feedback_id: None,
            dkim: None,
        }
    }

    /// The composer the settings describe, signing with `dkim` (the key
    /// `mail.dkim` names, read once at start-up) when there is one.
    pub fn from_settings(settings: &Settings, dkim: Option<DkimSigner>) -> Self {
        let composer = Self::new(
            settings.mail.from.clone(),
            settings.mail.publication(),
            Links::new(settings.server.base_url.clone()),
            settings.subscriptions.confirmation_ttl_hours,
        )
        .with_feedback_id(&settings.mail.feedback_id);
        match dkim {
            Some(signer) => composer.with_dkim(signer),
            None => composer,
        }
    }

    /// A `Feedback-ID` header on every message (empty: none), for the
    /// complaint reports of large mailbox providers.
    pub fn with_feedback_id(mut self, feedback_id: &str) -> Self {
        let feedback_id = feedback_id.trim();
        self.feedback_id = (!feedback_id.is_empty()).then(|| feedback_id.to_owned());
        self
    }

    /// Signs every message with this DKIM key.
    pub fn with_dkim(mut self, signer: DkimSigner) -> Self {
        self.dkim = Some(Arc::new(signer));
        self
    }

    /// The email that asks a new reader to confirm their subscription.
    ///
    /// It carries nothing the signup form's sender chose but the address
    /// itself: no name in `To:` or in the text, since anyone may type any
    /// address into the form, and a name like "Claim your prize at …"
    /// would turn this email into their message to a stranger.
    pub fn confirmation(&self, recipient: &str, token: &str) -> Result<Composed, ComposeError> {
        let confirm_url = self.links.confirm(token);
        let (publication, site_url) = (self.publication.as_str(), self.links.home());
        let ttl_hours = self.confirmation_ttl_hours;
        let html = ConfirmationHtml {
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let text = ConfirmationText {
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let subject = format!("Please confirm your subscription to {publication}");
        let message_id = format!("<{}@{}>", Uuid::new_v4(), self.from.email.domain());
        let parts = Parts {
            text: Body::new(text),
            html: Body::new(html),
        };
        self.build(recipient, "", &subject, message_id, parts, Vec::new())
    }

    /// A reader's copy of an issue: the reader's unsubscribe link at the
    /// issue's link places, and the list headers mail programs use for
    /// their own unsubscribe button (RFC 2369, RFC 8058).
    pub fn digest(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        week: IssueWeek,
        issue: &RenderedIssue,
    ) -> Result<Composed, ComposeError> {
        self.digest_prepared(recipient, name, unsubscribe, &self.prepare(week, issue))
    }

    /// The week's issue made ready for [`Composer::digest_prepared`], once
    /// for all its readers.
    pub fn prepare(&self, week: IssueWeek, issue: &RenderedIssue) -> PreparedIssue {
        PreparedIssue {
            week,
            encoded: issue.encoded(quoted_printable),
            list_archive: format!("<{}>", self.links.archive_issue(week)),
        }
    }

    /// Like [`Composer::digest`], from an issue encoded once for all its
    /// readers (the worker's path: per reader, only the link is encoded).
    pub fn digest_prepared(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        issue: &PreparedIssue,
    ) -> Result<Composed, ComposeError> {
        let unsubscribe_url = self.links.unsubscribe(unsubscribe);
        let parts = issue.reader_parts(&unsubscribe_url);
        let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        let headers = vec![
            header(
                "List-Id",
                format!("{} <weekly.{}>", self.publication, self.from.email.domain()),
            ),
            // No mailto: until Gazette processes mail sent to one, a mailto
            // would advertise an unsubscribe that does nothing.
            header("List-Unsubscribe", format!("<{unsubscribe_url}>")),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            header("List-Archive", issue.list_archive.clone()),
            header("Precedence", "bulk".into()),
            header("Auto-Submitted", "auto-generated".into()),
        ];
        // One Message-ID per (issue, reader), the same on every attempt: if a
        // crash makes a copy go out twice, mail programs can tell.
        let message_id = format!(
            "<{}.{}@{}>",
            issue.week,
            unsubscribe.subscriber_id().simple(),
            self.from.email.domain()
        );
        self.build(recipient, name, &issue.encoded.subject, message_id, parts, headers)
    }

    /// A draft issue sent to staff as a test: its unsubscribe link leads
    /// to a page that unsubscribes nobody (a random token that matches no
    /// reader).
    pub fn digest_test(&self, recipient: &str, draft: &RenderedIssue) -> Result<Composed, ComposeError> {
        let nobody = UnsubscribeToken::generate(Uuid::nil());
        let copy = draft.test_copy(&self.links.unsubscribe(&nobody));
        let message_id = format!("<{}@{}>", Uuid::new_v4(), self.from.email.domain());
        let parts = Parts {
            text: Body::new(copy.text),
            html: Body::new(copy.html),
        };
        self.build(recipient, "", &copy.subject, message_id, parts, Vec::new())
    }

    fn build(
        &self,
        recipient: &str,
        name: &str,
        subject: &str,
        message_id: String,
        Parts { text, html }: Parts,
        mut headers: Vec<HeaderValue>,
    ) -> Result<Composed, ComposeError> {
        let address = recipient
            .parse()
            .map_err(|_| ComposeError::Recipient(recipient.to_owned()))?;
        if let Some(feedback_id) = &self.feedback_id {
            headers.push(HeaderValue::new(
                HeaderName::new_from_ascii_str("Feedback-ID"),
                feedback_id.clone(),
            ));
        }
        let mut builder = Message::builder();
        for header in headers {
            builder = builder.raw_header(header);
        }
        // No name, no display-name phrase: a bare `To: reader@example.com`.
        let display_name = (!name.is_empty()).then(|| name.to_owned());
        let message = builder
            .from(self.from.clone())
            .to(Mailbox::new(display_name, address))
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date_now()
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        lettre::message::SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        lettre::message::SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )?;
        let formatted = message.formatted();
        let bytes = match &self.dkim {
            Some(signer) => signer.sign(&formatted, unix_now())?,
            None => formatted,
        };
        let message = OutgoingMessage::from_bytes(message.envelope().clone(), bytes);
        Ok(Composed { message, message_id })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseUrl;
    use crate::domain::LinkedText;

    fn composer() -> Composer {
        Composer::new(
            "The Weekly <news@example.org>".parse().unwrap(),
            "The Weekly".into(),
            Links::new(BaseUrl::parse("https://news.example.org/").unwrap()),
            48,
        )
    }

    #[test]
    fn confirmation_is_multipart_with_the_link_in_both_parts() {
        let composed = composer().confirmation("reader@example.com", "tok123").unwrap();
        let raw = composed.message.bytes().to_vec();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        use mail_parser::MimeHeaders;
        let content_type = parsed.content_type().unwrap();
        assert_eq!(content_type.subtype(), Some("alternative"));
        assert_eq!(parsed.message_id(), Some(composed.message_id.trim_matches(['<', '>'])));
        assert!(composed.message_id.ends_with("@example.org>"));
        assert!(parsed.date().is_some());
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("news@example.org")
        );
        assert_eq!(parsed.subject(), Some("Please confirm your subscription to The Weekly"));
        // The bare address: no display-name phrase, not even an empty one.
        let to = String::from_utf8_lossy(&raw)
            .lines()
            .find(|l| l.starts_with("To:"))
            .map(str::to_owned);
        assert_eq!(to.as_deref(), Some("To: reader@example.com"));
        let link = "https://news.example.org/subscriptions/confirm?token=tok123";
        let text = parsed.body_text(0).unwrap();
        let html = parsed.body_html(0).unwrap();
        assert!(text.contains(link) && text.starts_with("Hello,"), "{text}");
        assert!(html.contains(link), "{html}");
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!((to.name(), to.address()), (None, Some("reader@example.com")));
    }

    #[test]
    fn a_digest_advertises_only_the_https_unsubscribe_and_carries_the_feedback_id() {
        // Whether signatures verify is checked by an independent verifier
        // in tests/api/trust_dkim.rs; here, what the headers say.
        let tagged = composer().with_feedback_id(" 2026:weekly:gazette ");
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let issue = issue("<p>Hello</p>", "Hello");
        let raw = tagged
            .digest("reader@example.com", "Ada", &token, week(), &issue)
            .unwrap()
            .message
            .bytes()
            .to_vec();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            parsed.header_raw("Feedback-ID").map(str::trim),
            Some("2026:weekly:gazette")
        );
        let unsubscribe = parsed.header_raw("List-Unsubscribe").unwrap().trim();
        assert_eq!(
            unsubscribe,
            format!("<https://news.example.org/unsubscribe?token={}>", token.as_string())
        );
        assert!(parsed.header_raw("DKIM-Signature").is_none(), "no key, no signature");
        let plain = composer()
            .confirmation("reader@example.com", "t")
            .unwrap()
            .message
            .bytes();
        let parsed_plain = mail_parser::MessageParser::default().parse(&plain).unwrap();
        assert!(parsed_plain.header_raw("Feedback-ID").is_none());
    }

    fn week() -> IssueWeek {
        IssueWeek::parse("2026-W48").unwrap()
    }

    /// An issue whose parts are `html` and `text` cut at each `{LINK}`.
    fn issue(html: &str, text: &str) -> RenderedIssue {
        let part = |s: &str| LinkedText::from_segments(s.split("{LINK}").map(str::to_owned).collect());
        RenderedIssue {
            subject: "This week".into(),
            html: part(html),
            text: part(text),
            articles: 1,
        }
    }

    #[test]
    fn a_prepared_issue_decodes_to_the_issue_with_the_readers_link_at_its_places_only() {
        // The old placeholder, as an article may carry it, is text like any other.
        let long_line = "Ünïcödé — quoted “text” = sign, trailing space \n".repeat(3) + &"x".repeat(200);
        let text = format!(
            "Hello\n{long_line}\nhttps://evil.example/r?u=%%UNSUBSCRIBE_URL%%\nLeave: {{LINK}} now\n.\nAgain {{LINK}}"
        );
        let html = format!(
            "<p>{long_line}</p><a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a><a href=\"{{LINK}}\">Unsubscribe</a>"
        );
        let issue = issue(&html, &text);
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let composed = composer()
            .digest_prepared("reader@example.com", "Ada", &token, &composer().prepare(week(), &issue))
            .unwrap();
        let raw = composed.message.bytes().to_vec();
        let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for line in raw[body_start..].split(|&b| b == b'\n') {
            assert!(line.len() <= 78, "{}", String::from_utf8_lossy(line));
        }
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let url = format!("https://news.example.org/unsubscribe?token={}", token.as_string());
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            text.replace("{LINK}", &url)
        );
        assert_eq!(
            parsed.body_html(0).unwrap().replace("\r\n", "\n"),
            html.replace("{LINK}", &url)
        );
        assert_eq!(parsed.body_html(0).unwrap().matches(&url).count(), 1);
    }
}
