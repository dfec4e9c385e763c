//! Turns what a message is about (a reader, a link) into a MIME message:
//! askama templates for both parts, and the headers every message carries.

use std::sync::Arc;

use askama::Template;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, DkimConfig, Mailbox, MultiPart};
use uuid::Uuid;

use crate::config::{BaseUrl, Settings};
use crate::digest::render::DigestSnapshot;
use crate::digest::week::IssueWeek;
use crate::domain::UnsubscribeToken;

/// Builds messages with the sender and site address from the settings.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    base_url: BaseUrl,
    publication: String,
    confirmation_ttl_hours: u32,
    unsubscribe_mailto: Option<String>,
    dkim: Option<Dkim>,
}

/// The signing key stays out of `Debug` output, whatever the key type prints.
#[derive(Clone)]
struct Dkim(Arc<DkimConfig>);

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dkim(***)")
    }
}

/// The two renderings of one message, encoded for the wire.
struct Parts {
    text: Body,
    html: Body,
}

/// An issue's snapshot encoded once for all its readers: each part's
/// segments (the text between the link places the render recorded) are
/// quoted-printable already, so a reader's copy costs encoding one URL
/// instead of the whole issue.
pub struct PreparedIssue {
    week: IssueWeek,
    subject: String,
    html: Vec<String>,
    text: Vec<String>,
}

impl PreparedIssue {
    pub fn new(week: IssueWeek, snapshot: &DigestSnapshot) -> Self {
        let encoded = |segments: &[String]| segments.iter().map(|s| quoted_printable(s)).collect();
        Self {
            week,
            subject: snapshot.subject.clone(),
            html: encoded(snapshot.html.segments()),
            text: encoded(snapshot.text.segments()),
        }
    }

    pub fn week(&self) -> IssueWeek {
        self.week
    }

    /// The segments joined by the encoded URL. Soft line breaks on either
    /// side of the URL keep each segment's line lengths as they were.
    fn fill(segments: &[String], encoded_url: &str) -> Body {
        let size = segments.iter().map(String::len).sum::<usize>() + segments.len() * (encoded_url.len() + 6);
        let mut out = Vec::with_capacity(size);
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"=\r\n");
                out.extend_from_slice(encoded_url.as_bytes());
                out.extend_from_slice(b"=\r\n");
            }
            out.extend_from_slice(segment.as_bytes());
        }
        Body::dangerous_pre_encoded(out, ContentTransferEncoding::QuotedPrintable)
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
    pub message: Message,
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
    pub fn new(from: Mailbox, publication: String, base_url: BaseUrl, confirmation_ttl_hours: u32) -> Self {
        Self {
            from,
            base_url,
            publication,
            confirmation_ttl_hours,
            unsubscribe_mailto: None,
            dkim: None,
        }
    }

    /// The composer the settings describe, DKIM signing included.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let mut composer = Self::new(
            settings.mail.from.clone(),
            settings.mail.publication(),
            settings.server.base_url.clone(),
            settings.subscriptions.confirmation_ttl_hours,
        )
        .with_unsubscribe_mailto(&settings.digest.unsubscribe_mailto);
        if let Some(config) = super::dkim::signing_config(&settings.mail.dkim)? {
            composer = composer.with_dkim(config);
        }
        Ok(composer)
    }

    /// An address whose mail unsubscribes the sender, for List-Unsubscribe.
    pub fn with_unsubscribe_mailto(mut self, address: &str) -> Self {
        let address = address.trim();
        self.unsubscribe_mailto = (!address.is_empty()).then(|| address.to_owned());
        self
    }

    /// Signs every message with this DKIM configuration.
    pub fn with_dkim(mut self, config: DkimConfig) -> Self {
        self.dkim = Some(Dkim(Arc::new(config)));
        self
    }

    /// The email that asks a new reader to confirm their subscription.
    ///
    /// It carries nothing the signup form's sender chose but the address
    /// itself: no name in `To:` or in the text, since anyone may type any
    /// address into the form, and a name like "Claim your prize at …"
    /// would turn this email into their message to a stranger.
    pub fn confirmation(&self, recipient: &str, token: &str) -> Result<Composed, ComposeError> {
        let confirm_url = format!("{}/subscriptions/confirm?token={token}", self.base_url);
        let (publication, site_url) = (self.publication.as_str(), self.base_url.as_str());
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

    /// A reader's copy of an issue: the issue's snapshot with the reader's
    /// unsubscribe link filled in at its link places, and the list headers
    /// mail programs use for their own unsubscribe button (RFC 2369, RFC 8058).
    pub fn digest(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        week: IssueWeek,
        snapshot: &DigestSnapshot,
    ) -> Result<Composed, ComposeError> {
        self.digest_prepared(recipient, name, unsubscribe, &PreparedIssue::new(week, snapshot))
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
        let unsubscribe_url = format!("{}/unsubscribe?token={}", self.base_url, unsubscribe.as_string());
        let encoded_url = quoted_printable(&unsubscribe_url);
        let parts = Parts {
            text: PreparedIssue::fill(&issue.text, &encoded_url),
            html: PreparedIssue::fill(&issue.html, &encoded_url),
        };
        let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        let headers = vec![
            header(
                "List-Id",
                format!("{} <weekly.{}>", self.publication, self.from.email.domain()),
            ),
            header(
                "List-Unsubscribe",
                match &self.unsubscribe_mailto {
                    Some(address) => format!("<{unsubscribe_url}>, <mailto:{address}?subject=unsubscribe>"),
                    None => format!("<{unsubscribe_url}>"),
                },
            ),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            header("List-Archive", format!("<{}/archive/{}>", self.base_url, issue.week)),
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
        self.build(recipient, name, &issue.subject, message_id, parts, headers)
    }

    /// A draft issue sent to staff as a test: marked in the subject, and
    /// its unsubscribe link leads to a page that unsubscribes nobody (a
    /// random token that matches no reader).
    pub fn digest_test(&self, recipient: &str, draft: &DigestSnapshot) -> Result<Composed, ComposeError> {
        let nobody = UnsubscribeToken::generate(Uuid::nil());
        let unsubscribe_url = format!("{}/unsubscribe?token={}", self.base_url, nobody.as_string());
        let html = draft.html.fill(&unsubscribe_url);
        let text = draft.text.fill(&unsubscribe_url);
        let message_id = format!("<{}@{}>", Uuid::new_v4(), self.from.email.domain());
        let subject = format!("[Test] {}", draft.subject);
        let parts = Parts {
            text: Body::new(text),
            html: Body::new(html),
        };
        self.build(recipient, "", &subject, message_id, parts, Vec::new())
    }

    fn build(
        &self,
        recipient: &str,
        name: &str,
        subject: &str,
        message_id: String,
        Parts { text, html }: Parts,
        headers: Vec<HeaderValue>,
    ) -> Result<Composed, ComposeError> {
        let address = recipient
            .parse()
            .map_err(|_| ComposeError::Recipient(recipient.to_owned()))?;
        let mut builder = Message::builder();
        for header in headers {
            builder = builder.raw_header(header);
        }
        let message = builder
            .from(self.from.clone())
            .to(Mailbox::new(Some(name.to_owned()), address))
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
        let mut message = message;
        if let Some(Dkim(dkim)) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Composed { message, message_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::snapshot::LinkedText;

    fn composer() -> Composer {
        Composer::new(
            "The Weekly <news@example.org>".parse().unwrap(),
            "The Weekly".into(),
            BaseUrl::parse("https://news.example.org/").unwrap(),
            48,
        )
    }

    #[test]
    fn confirmation_is_multipart_with_the_link_in_both_parts() {
        let composed = composer().confirmation("reader@example.com", "tok123").unwrap();
        let raw = composed.message.formatted();
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
        let link = "https://news.example.org/subscriptions/confirm?token=tok123";
        let text = parsed.body_text(0).unwrap();
        let html = parsed.body_html(0).unwrap();
        assert!(text.contains(link) && text.starts_with("Hello,"), "{text}");
        assert!(html.contains(link), "{html}");
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!((to.name(), to.address()), (None, Some("reader@example.com")));
    }

    #[test]
    fn a_dkim_signature_is_relaxed_and_covers_the_list_headers() {
        use base64::Engine;
        let dir = std::env::temp_dir().join(format!("gazette-dkim-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("dkim.key");
        std::fs::write(&key_file, base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        let settings = crate::config::DkimSettings {
            domain: "example.org".into(),
            selector: "weekly".into(),
            private_key_file: key_file,
            algorithm: crate::config::DkimAlgorithm::Ed25519,
        };
        let config = super::super::dkim::signing_config(&settings).unwrap().unwrap();
        let composer = composer().with_dkim(config);
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let snapshot = snapshot("<p>Hello</p>", "Hello");
        let raw = composer
            .digest("reader@example.com", "Ada", &token, week(), &snapshot)
            .unwrap()
            .message
            .formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let signature = parsed
            .header_raw("DKIM-Signature")
            .expect("a DKIM-Signature header")
            .split_whitespace()
            .collect::<String>();
        for tag in ["d=example.org;", "s=weekly;", "c=relaxed/relaxed;", "a=ed25519-sha256;"] {
            assert!(signature.contains(tag), "{tag} missing from {signature}");
        }
        let listed: Vec<String> = signature
            .split(';')
            .find_map(|tag| tag.strip_prefix("h="))
            .unwrap()
            .split(':')
            .map(str::to_ascii_lowercase)
            .collect();
        for header in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(listed.iter().any(|h| h == header), "{header} is not signed: {listed:?}");
        }
        // A key that is not what the algorithm needs is named at start-up.
        std::fs::write(&settings.private_key_file, "not a key").unwrap();
        let error = super::super::dkim::signing_config(&settings).unwrap_err();
        assert!(error.starts_with("mail.dkim.private_key_file:"), "{error}");
        std::fs::remove_dir_all(dir).ok();
    }

    fn week() -> IssueWeek {
        IssueWeek::parse("2026-W48").unwrap()
    }

    /// A snapshot whose parts are `html` and `text` cut at each `{LINK}`.
    fn snapshot(html: &str, text: &str) -> DigestSnapshot {
        let part = |s: &str| LinkedText::from_segments(s.split("{LINK}").map(str::to_owned).collect());
        DigestSnapshot {
            subject: "This week".into(),
            html: part(html),
            text: part(text),
            articles: 1,
        }
    }

    #[test]
    fn a_prepared_issue_decodes_to_the_snapshot_with_the_readers_link_at_its_places_only() {
        // The old placeholder, as an article may carry it, is text like any other.
        let long_line = "Ünïcödé — quoted “text” = sign, trailing space \n".repeat(3) + &"x".repeat(200);
        let text = format!(
            "Hello\n{long_line}\nhttps://evil.example/r?u=%%UNSUBSCRIBE_URL%%\nLeave: {{LINK}} now\n.\nAgain {{LINK}}"
        );
        let html = format!(
            "<p>{long_line}</p><a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a><a href=\"{{LINK}}\">Unsubscribe</a>"
        );
        let snapshot = snapshot(&html, &text);
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let composed = composer()
            .digest_prepared(
                "reader@example.com",
                "Ada",
                &token,
                &PreparedIssue::new(week(), &snapshot),
            )
            .unwrap();
        let raw = composed.message.formatted();
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
