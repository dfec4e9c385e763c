//! Turns what a message is about (a reader, a link) into a MIME message:
//! askama templates for both parts, and the headers every message carries.

use askama::Template;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use uuid::Uuid;

use crate::config::BaseUrl;
use crate::digest::render;
use crate::domain::UnsubscribeToken;

/// An issue's stored snapshot, as the sender reads it.
pub struct IssueSnapshot<'a> {
    pub week: &'a str,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
}

/// Builds messages with the sender and site address from the settings.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    base_url: BaseUrl,
    publication: String,
    confirmation_ttl_hours: u32,
    unsubscribe_mailto: Option<String>,
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
    name: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    publication: &'a str,
    name: &'a str,
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
        }
    }

    /// An address whose mail unsubscribes the sender, for List-Unsubscribe.
    pub fn with_unsubscribe_mailto(mut self, address: &str) -> Self {
        let address = address.trim();
        self.unsubscribe_mailto = (!address.is_empty()).then(|| address.to_owned());
        self
    }

    /// The email that asks a new reader to confirm their subscription.
    pub fn confirmation(&self, recipient: &str, name: &str, token: &str) -> Result<Composed, ComposeError> {
        let confirm_url = format!("{}/subscriptions/confirm?token={token}", self.base_url);
        let (publication, site_url) = (self.publication.as_str(), self.base_url.as_str());
        let ttl_hours = self.confirmation_ttl_hours;
        let html = ConfirmationHtml {
            publication,
            name,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let text = ConfirmationText {
            publication,
            name,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let subject = format!("Please confirm your subscription to {publication}");
        self.build(recipient, name, &subject, text, html, Vec::new())
    }

    /// A reader's copy of an issue: the issue's snapshot with the reader's
    /// unsubscribe link filled in, and the list headers mail programs use
    /// for their own unsubscribe button (RFC 2369, RFC 8058).
    pub fn digest(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        snapshot: &IssueSnapshot<'_>,
    ) -> Result<Composed, ComposeError> {
        let unsubscribe_url = format!("{}/unsubscribe?token={}", self.base_url, unsubscribe.as_string());
        let html = snapshot.html.replace(render::UNSUBSCRIBE_URL, &unsubscribe_url);
        let text = snapshot.text.replace(render::UNSUBSCRIBE_URL, &unsubscribe_url);
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
            header("List-Archive", format!("<{}/archive/{}>", self.base_url, snapshot.week)),
            header("Precedence", "bulk".into()),
            header("Auto-Submitted", "auto-generated".into()),
        ];
        self.build(recipient, name, snapshot.subject, text, html, headers)
    }

    /// A draft issue sent to staff as a test: marked in the subject, and
    /// its unsubscribe link leads to a page that unsubscribes nobody (a
    /// random token that matches no reader).
    pub fn digest_test(
        &self,
        recipient: &str,
        subject: &str,
        html: &str,
        text: &str,
    ) -> Result<Composed, ComposeError> {
        let nobody = UnsubscribeToken::generate(Uuid::nil());
        let unsubscribe_url = format!("{}/unsubscribe?token={}", self.base_url, nobody.as_string());
        let html = html.replace(render::UNSUBSCRIBE_URL, &unsubscribe_url);
        let text = text.replace(render::UNSUBSCRIBE_URL, &unsubscribe_url);
        self.build(recipient, "", &format!("[Test] {subject}"), text, html, Vec::new())
    }

    fn build(
        &self,
        recipient: &str,
        name: &str,
        subject: &str,
        text: String,
        html: String,
        headers: Vec<HeaderValue>,
    ) -> Result<Composed, ComposeError> {
        let address = recipient
            .parse()
            .map_err(|_| ComposeError::Recipient(recipient.to_owned()))?;
        let message_id = format!("<{}@{}>", Uuid::new_v4(), self.from.email.domain());
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
        Ok(Composed { message, message_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let composed = composer()
            .confirmation("reader@example.com", "Ada <Lovelace>", "tok123")
            .unwrap();
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
        assert!(text.contains(link) && text.contains("Hello Ada <Lovelace>,"), "{text}");
        assert!(html.contains(link), "{html}");
        // The reader's name is escaped in the HTML part, never raw markup.
        assert!(
            html.contains("Ada &#60;Lovelace&#62;") || html.contains("Ada &lt;Lovelace&gt;"),
            "{html}"
        );
    }
}
