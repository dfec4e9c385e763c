//! Turns what a message is about (a reader, a link, a copy of an issue)
//! into a MIME message: askama templates for the confirmation and lettre's
//! builder for it and the staff's test sends; an issue's copies from
//! pieces made once per issue ([`PreparedIssue`]), which write what
//! lettre's builder writes (the tests hold them to it); and the headers
//! every message carries. Every URL comes from [`Links`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use askama::Template;
use lettre::Message;
use lettre::address::{Address, Envelope};
use lettre::message::header::{self, ContentType, Header, HeaderName, HeaderValue, Headers};
use lettre::message::{Body, Mailbox, Mailboxes, MultiPart};
use uuid::Uuid;

use super::dkim::{BodyHash, CanonicalPiece, DkimSigner, SignError};
use super::message::{OutgoingMessage, Piece};
use super::verp::{Origin, ReturnPaths};

use crate::config::Settings;
use crate::domain::{IssueWeek, ReaderPlace, ReaderText, RenderedIssue, UnsubscribeToken, html_escape};
use crate::i18n::{Greeting, Language};
use crate::links::Links;

/// Builds messages with the sender and site address from the settings.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    links: Links,
    publication: String,
    confirmation_ttl_hours: u32,
    /// `site.default_language`: mail to a reader whose language has no
    /// catalogue (any more) is in it.
    default_language: Language,
    feedback_id: Option<String>,
    dkim: Option<Arc<DkimSigner>>,
    /// `mail.bounce_domain`, when set: the worker reads the shared key
    /// from the database at start and gives the composer its
    /// [`ReturnPaths`] ([`Composer::with_return_paths`]).
    bounce_domain: Option<String>,
    /// With a bounce domain, every message's envelope sender is a VERP
    /// address naming it, and digests add the reader's `mailto:`
    /// unsubscribe address to `List-Unsubscribe`.
    return_paths: Option<Arc<ReturnPaths>>,
}

/// The two renderings of one message, encoded for the wire.
struct Parts {
    text: Body,
    html: Body,
}

/// An issue made ready once for all its readers ([`Composer::prepare`]):
/// its MIME structure and the quoted-printable text of its parts between
/// the reader places are made once, as shared, dot-stuffed [`Piece`]s, and
/// so are the headers that say the same in every copy. A reader's copy adds
/// only its header block and one piece per kind of place, so it costs
/// encoding two URLs and a greeting instead of the whole issue; with DKIM,
/// its body hash only feeds cached canonical bytes besides those.
pub struct PreparedIssue {
    week: IssueWeek,
    /// The header text every copy shares, in the four runs that the
    /// reader's own headers go between (see [`Composer::digest_at`]).
    head: [String; 4],
    /// The body between the reader places, in order: a piece of the
    /// reader's own goes between each two. Every piece but the last ends
    /// with a soft line break, so the reader's piece begins at a line start.
    body: Vec<Arc<Piece>>,
    /// What of the reader's goes between each two body pieces, and whether
    /// it stands in the HTML part (where it is written escaped).
    places: Vec<(ReaderPlace, bool)>,
    /// The greeting in the issue's language.
    greeting: Greeting,
    dkim: Option<PreparedBodyHash>,
}

/// The body's DKIM hash, as far as every copy shares it.
struct PreparedBodyHash {
    /// The hash state after the body's first piece.
    after_first: BodyHash,
    /// The canonical form of every body piece after the first.
    rest: Vec<CanonicalPiece>,
}

impl PreparedIssue {
    pub fn week(&self) -> IssueWeek {
        self.week
    }
}

/// The boundary between an issue's parts. Quoted-printable text cannot hold
/// `=_` (an `=` is always encoded or ends a line), so no line of a part can
/// match it, and one boundary serves every copy of the issue; the random
/// rest keeps it from matching a boundary of another message.
fn issue_boundary() -> String {
    use rand::Rng;
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(38)
        .map(char::from)
        .collect();
    format!("=_{random}")
}

/// How lettre writes a header (encoded, folded), so the prepared path says
/// exactly what lettre's builder says.
fn header_text<H: Header>(header: H) -> String {
    let mut headers = Headers::with_capacity(1);
    headers.set(header);
    headers.to_string()
}

fn raw_header_text(name: &'static str, value: String) -> String {
    let mut headers = Headers::with_capacity(1);
    headers.insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
    headers.to_string()
}

/// Quoted-printable (RFC 2045 §6.7) with CRLF line ends, wrapped one column
/// short of the limit so a soft break may follow the last line.
fn quoted_printable(text: &str) -> String {
    // A reader's own lines (their links, their greeting) rarely hold a
    // line end: then there is nothing to rewrite and nothing to copy.
    let crlf = if text.contains('\n') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\n', "\r\n"))
    } else {
        Cow::Borrowed(text)
    };
    let options = quoted_printable::Options::default()
        .input_mode(quoted_printable::InputMode::Text)
        .line_length_limit(75);
    quoted_printable::encode_with_options(crlf.as_bytes(), options)
}

/// The `Message-ID` field, as lettre writes it: an ASCII id without
/// spaces (ours always is) has nothing to encode or fold, so it is written
/// directly rather than through a header map per copy.
fn message_id_field(id: &str) -> String {
    if id.is_ascii() && !id.contains(char::is_whitespace) {
        format!("Message-ID: {id}\r\n")
    } else {
        header_text(header::MessageId::from(id.to_owned()))
    }
}

/// Appends the `Date` field of a message composed at `now`, as lettre
/// writes it. Every copy sent within the same second has the same one, so
/// each thread keeps the last it wrote rather than formatting it per copy.
fn push_date_field(head: &mut String, now: SystemTime) {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, String)>> = const { std::cell::RefCell::new(None) };
    }
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST.with_borrow_mut(|last| {
        if !matches!(last, Some((at, _)) if *at == second) {
            // Whole seconds: the field has no finer precision anyway.
            let at = UNIX_EPOCH + std::time::Duration::from_secs(second);
            *last = Some((second, header_text(header::Date::new(at))));
        }
        if let Some((_, field)) = last {
            head.push_str(field);
        }
    });
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
    lang: Language,
    publication: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/welcome.html")]
struct WelcomeHtml<'a> {
    lang: Language,
    publication: &'a str,
    preferences_url: &'a str,
    archive_url: &'a str,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/welcome.txt")]
struct WelcomeText<'a> {
    lang: Language,
    publication: &'a str,
    preferences_url: &'a str,
    archive_url: &'a str,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    lang: Language,
    publication: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/address_change.html")]
struct AddressChangeHtml<'a> {
    lang: Language,
    publication: &'a str,
    confirm_url: &'a str,
    ttl_hours: u32,
    site_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/address_change.txt")]
struct AddressChangeText<'a> {
    lang: Language,
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
            default_language: Language::ENGLISH,
            feedback_id: None,
            dkim: None,
            bounce_domain: None,
            return_paths: None,
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
        let bounce_domain = settings.mail.bounce_domain.trim();
        let composer = Self {
            bounce_domain: (!bounce_domain.is_empty()).then(|| bounce_domain.to_owned()),
            default_language: settings.site.default_language,
            ..composer
        };
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

    /// The bounce domain whose key the composer still needs: `Some` when
    /// `mail.bounce_domain` is set and [`Composer::with_return_paths`] has
    /// not been called yet.
    pub fn needs_return_paths(&self) -> Option<&str> {
        self.bounce_domain.as_deref().filter(|_| self.return_paths.is_none())
    }

    /// Sends every message with a return path at `paths`' domain that
    /// names it (VERP), and adds the reader's `mailto:` unsubscribe address
    /// to every digest's `List-Unsubscribe`.
    pub fn with_return_paths(mut self, paths: ReturnPaths) -> Self {
        self.bounce_domain = Some(paths.domain().to_owned());
        self.return_paths = Some(Arc::new(paths));
        self
    }

    /// The envelope sender for the message `origin` names: its VERP address
    /// with a bounce domain, else `mail.from`.
    fn sender(&self, origin: &Origin) -> Address {
        match &self.return_paths {
            Some(paths) => paths.return_path(origin),
            None => self.from.email.clone(),
        }
    }

    /// The language of mail to a reader whose stored language is `stored`:
    /// it, when there is a catalogue for it, else `site.default_language`.
    pub fn language(&self, stored: Option<&str>) -> Language {
        stored.and_then(Language::parse).unwrap_or(self.default_language)
    }

    /// Whether composing a message costs a slow signature (RSA: 0.5–1.6 ms
    /// of CPU, where an unsigned copy takes ~10 µs and an Ed25519-signed
    /// one ~60 µs, its body hash included).
    pub fn is_slow(&self) -> bool {
        self.dkim.as_ref().is_some_and(|signer| signer.is_slow())
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
    /// `mail_id` is its `outgoing_mail` row, which its return path names.
    pub fn confirmation(
        &self,
        mail_id: Uuid,
        recipient: &str,
        token: &str,
        lang: Language,
    ) -> Result<Composed, ComposeError> {
        let confirm_url = self.links.confirm(token);
        let (publication, site_url) = (self.publication.as_str(), self.links.home());
        let ttl_hours = self.confirmation_ttl_hours;
        let html = ConfirmationHtml {
            lang,
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let text = ConfirmationText {
            lang,
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let subject = lang.text1("confirmation-subject", "publication", publication);
        self.transactional(mail_id, recipient, &subject, text, html)
    }

    /// The email a reader gets once they confirm: what to expect, where
    /// the archive is, and the link to their preferences page (which
    /// carries their unsubscribe secret). Like the confirmation, it names
    /// nobody: the name came from the signup form.
    /// `mail_id` is its `outgoing_mail` row, which its return path names.
    pub fn welcome(
        &self,
        mail_id: Uuid,
        recipient: &str,
        reader: &UnsubscribeToken,
        lang: Language,
    ) -> Result<Composed, ComposeError> {
        let preferences_url = self.links.preferences(reader);
        let archive_url = self.links.archive();
        let (publication, site_url) = (self.publication.as_str(), self.links.home());
        let html = WelcomeHtml {
            lang,
            publication,
            preferences_url: &preferences_url,
            archive_url: &archive_url,
            site_url,
        }
        .render()?;
        let text = WelcomeText {
            lang,
            publication,
            preferences_url: &preferences_url,
            archive_url: &archive_url,
            site_url,
        }
        .render()?;
        let subject = lang.text1("welcome-subject", "publication", publication);
        self.transactional(mail_id, recipient, &subject, text, html)
    }

    /// The email that asks the owner of a new address to confirm that a
    /// reader's mail goes there from now on, sent to that address. Like
    /// the confirmation, it names nobody and not the old address: whoever
    /// holds a reader's preferences link may type any address.
    /// `mail_id` is its `outgoing_mail` row, which its return path names.
    pub fn address_change(
        &self,
        mail_id: Uuid,
        recipient: &str,
        token: &str,
        lang: Language,
    ) -> Result<Composed, ComposeError> {
        let confirm_url = self.links.confirm_address(token);
        let (publication, site_url) = (self.publication.as_str(), self.links.home());
        let ttl_hours = self.confirmation_ttl_hours;
        let html = AddressChangeHtml {
            lang,
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let text = AddressChangeText {
            lang,
            publication,
            confirm_url: &confirm_url,
            ttl_hours,
            site_url,
        }
        .render()?;
        let subject = lang.text1("address-change-subject", "publication", publication);
        self.transactional(mail_id, recipient, &subject, text, html)
    }

    /// A reader's copy of an issue rendered in `language`: the reader's
    /// unsubscribe and preferences links and their greeting at the issue's
    /// reader places, and the list headers mail programs use for their own
    /// unsubscribe button (RFC 2369, RFC 8058).
    pub fn digest(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        week: IssueWeek,
        issue: &RenderedIssue,
        language: Language,
    ) -> Result<Composed, ComposeError> {
        self.digest_prepared(recipient, name, unsubscribe, &self.prepare(week, issue, language))
    }

    /// The week's issue, rendered in `language`, made ready for
    /// [`Composer::digest_prepared`] once for all its readers.
    pub fn prepare(&self, week: IssueWeek, issue: &RenderedIssue, language: Language) -> PreparedIssue {
        let domain = self.from.email.domain();
        let boundary = issue_boundary();
        let list_archive = format!("<{}>", self.links.archive_issue(week));
        let mut middle = raw_header_text("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into())
            + &raw_header_text("List-Archive", list_archive)
            + &raw_header_text("Precedence", "bulk".into())
            + &raw_header_text("Auto-Submitted", "auto-generated".into());
        if let Some(feedback_id) = &self.feedback_id {
            middle += &raw_header_text("Feedback-ID", feedback_id.clone());
        }
        middle += &header_text(header::From::from(Mailboxes::from(self.from.clone())));
        let multipart = ContentType::parse(&format!("multipart/alternative; boundary=\"{boundary}\""))
            .expect("a boundary of letters, digits, `=` and `_` makes a valid Content-Type");
        let head = [
            raw_header_text("List-Id", format!("{} <weekly.{domain}>", self.publication)),
            middle,
            header_text(header::Subject::from(issue.subject.clone())),
            header_text(header::MIME_VERSION_1_0) + &header_text(multipart) + "\r\n",
        ];

        // The parts as lettre's multipart writes them, cut at the link
        // places; a link sits between two soft line breaks, so the cut
        // falls at line starts.
        let encoded = issue.encoded(quoted_printable);
        let part_head = |content_type: ContentType| {
            format!(
                "--{boundary}\r\n{}Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                header_text(content_type)
            )
        };
        let mut body = Vec::new();
        let mut places = Vec::new();
        let mut current = part_head(ContentType::TEXT_PLAIN);
        for (part, in_html, next) in [
            (&encoded.text, false, part_head(ContentType::TEXT_HTML)),
            (&encoded.html, true, format!("--{boundary}--\r\n")),
        ] {
            let segments = part.segments();
            for (i, segment) in segments.iter().enumerate() {
                current += segment;
                if let Some(place) = part.places().get(i) {
                    current += "=\r\n";
                    body.push(std::mem::take(&mut current));
                    places.push((*place, in_html));
                }
            }
            current += "\r\n";
            current += &next;
        }
        body.push(current);

        let dkim = self.dkim.as_ref().map(|_| {
            let mut after_first = BodyHash::new();
            after_first.feed(body[0].as_bytes());
            PreparedBodyHash {
                after_first,
                rest: body[1..]
                    .iter()
                    .map(|piece| CanonicalPiece::new(piece.as_bytes()))
                    .collect(),
            }
        });
        PreparedIssue {
            week,
            head,
            body: body
                .into_iter()
                .map(|piece| Arc::new(Piece::new(piece.into_bytes())))
                .collect(),
            places,
            greeting: language.greeting(),
            dkim,
        }
    }

    /// Like [`Composer::digest`], from an issue made ready once for all its
    /// readers (the worker's path): per reader, only the header block, the
    /// links and the greeting are made.
    pub fn digest_prepared(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        issue: &PreparedIssue,
    ) -> Result<Composed, ComposeError> {
        self.digest_at(recipient, name, unsubscribe, issue, SystemTime::now())
    }

    /// [`Composer::digest_prepared`] as if it were `now` (the Date header
    /// and the signature's time).
    fn digest_at(
        &self,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        issue: &PreparedIssue,
        now: SystemTime,
    ) -> Result<Composed, ComposeError> {
        let address: Address = recipient
            .parse()
            .map_err(|_| ComposeError::Recipient(recipient.to_owned()))?;
        // The copy's own links name its issue, so the reader's history can
        // say which issue they left from.
        let unsubscribe_url = self.links.unsubscribe_from(unsubscribe, issue.week);
        // One Message-ID per (issue, reader), the same on every attempt: if a
        // crash makes a copy go out twice, mail programs can tell.
        let message_id = format!(
            "<{}.{}@{}>",
            issue.week,
            unsubscribe.subscriber_id().simple(),
            self.from.email.domain()
        );
        let origin = Origin::Digest {
            week: issue.week,
            subscriber: unsubscribe.subscriber_id(),
        };
        let envelope = Envelope::new(Some(self.sender(&origin)), vec![address.clone()])?;
        // No name, no display-name phrase: a bare `To: reader@example.com`.
        let display_name = (!name.is_empty()).then(|| name.to_owned());
        let [list_id, middle, subject, tail] = &issue.head;
        let mut head = String::with_capacity(list_id.len() + middle.len() + subject.len() + tail.len() + 400);
        head += list_id;
        // The https link first (RFC 8058's one-click needs it, and mail
        // programs take the first they can use); the mailto only with a
        // bounce domain, whose mail Gazette reads (`crate::inbound`).
        head += &raw_header_text("List-Unsubscribe", self.list_unsubscribe(&unsubscribe_url, unsubscribe));
        head += middle;
        head += &header_text(header::To::from(Mailboxes::from(Mailbox::new(display_name, address))));
        head += subject;
        head += &message_id_field(&message_id);
        push_date_field(&mut head, now);
        head += tail;

        let pieces_of = |text: &str| {
            let piece = |text: &str| {
                let mut encoded = quoted_printable(text);
                encoded.push_str("=\r\n");
                Arc::new(Piece::new(encoded.into_bytes()))
            };
            let in_text = piece(text);
            let in_html = match html_escape(text) {
                Cow::Borrowed(_) => in_text.clone(),
                Cow::Owned(escaped) => piece(&escaped),
            };
            [in_text, in_html]
        };
        let unsubscribe_links = pieces_of(&unsubscribe_url);
        let preferences_links = pieces_of(&self.links.preferences(unsubscribe));
        let greetings = pieces_of(&issue.greeting.for_name(name));
        let link = |(place, in_html): (ReaderPlace, bool)| match place {
            ReaderPlace::Unsubscribe => &unsubscribe_links[usize::from(in_html)],
            ReaderPlace::Preferences => &preferences_links[usize::from(in_html)],
            ReaderPlace::Greeting => &greetings[usize::from(in_html)],
        };
        let head = match (&self.dkim, &issue.dkim) {
            (Some(signer), Some(prepared)) => {
                let mut body_hash = prepared.after_first.clone();
                for (piece, place) in prepared.rest.iter().zip(&issue.places) {
                    body_hash.feed(link(*place).plain());
                    body_hash.feed_canonical(piece);
                }
                let now_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let headers = &head.as_bytes()[..head.len() - 2];
                let mut signed = signer.signature_field(headers, &body_hash.finish(), now_unix)?;
                signed.extend_from_slice(head.as_bytes());
                signed
            }
            _ => head.into_bytes(),
        };
        let mut pieces = Vec::with_capacity(issue.body.len() * 2);
        pieces.push(Arc::new(Piece::new(head)));
        for (i, piece) in issue.body.iter().enumerate() {
            if i > 0 {
                pieces.push(link(issue.places[i - 1]).clone());
            }
            pieces.push(piece.clone());
        }
        let message = OutgoingMessage::new(envelope, pieces);
        Ok(Composed { message, message_id })
    }

    /// A draft issue sent to staff as a test: its unsubscribe and
    /// preferences links belong to no reader and lead to the page that
    /// says it was a test (`links.test_send()`).
    /// `mail_id` is its `outgoing_mail` row, which its return path names.
    pub fn digest_test(&self, mail_id: Uuid, recipient: &str, draft: &RenderedIssue) -> Result<Composed, ComposeError> {
        let explanation = self.links.test_send();
        // Staff are greeted as a reader without a name is.
        let greeting = self.default_language.greeting();
        let copy = draft.test_copy(ReaderText {
            unsubscribe: &explanation,
            preferences: &explanation,
            greeting: greeting.nameless(),
        });
        self.transactional(mail_id, recipient, &copy.subject, copy.text, copy.html)
    }

    /// A message of the transactional queue (`outgoing_mail` row
    /// `mail_id`, which its return path names), to an address and no name.
    fn transactional(
        &self,
        mail_id: Uuid,
        recipient: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<Composed, ComposeError> {
        let message_id = format!("<{}@{}>", Uuid::new_v4(), self.from.email.domain());
        let parts = Parts {
            text: Body::new(text),
            html: Body::new(html),
        };
        let origin = Origin::Mail { id: mail_id };
        self.build(recipient, "", subject, message_id, parts, Vec::new(), &origin)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        recipient: &str,
        name: &str,
        subject: &str,
        message_id: String,
        Parts { text, html }: Parts,
        mut headers: Vec<HeaderValue>,
        origin: &Origin,
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
        let envelope = Envelope::new(Some(self.sender(origin)), message.envelope().to().to_vec())?;
        let message = OutgoingMessage::from_bytes(envelope, bytes);
        Ok(Composed { message, message_id })
    }
}

impl Composer {
    /// The `List-Unsubscribe` value of a reader's copy.
    fn list_unsubscribe(&self, unsubscribe_url: &str, token: &UnsubscribeToken) -> String {
        match &self.return_paths {
            Some(paths) => format!("<{unsubscribe_url}>, <mailto:{}>", paths.unsubscribe_address(token)),
            None => format!("<{unsubscribe_url}>"),
        }
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
    use crate::config::{BaseUrl, DkimAlgorithm, DkimSettings};
    use crate::domain::{LinkedText, Marker};
    use proptest::prelude::*;

    #[test]
    fn fields_written_directly_are_the_ones_lettre_writes() {
        for id in [
            "<2026-W49.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b@example.com>",
            "<2026-W49.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b@a-rather-long-newsroom-domain.example.co.uk>",
        ] {
            assert_eq!(
                message_id_field(id),
                header_text(header::MessageId::from(id.to_owned()))
            );
        }
        for at in [0, 1_764_547_199, 1_796_083_200] {
            let second = UNIX_EPOCH + std::time::Duration::from_secs(at);
            let later = second + std::time::Duration::from_millis(999);
            let lettre = header_text(header::Date::new(second));
            let date_field = |at| {
                let mut head = String::new();
                push_date_field(&mut head, at);
                head
            };
            assert_eq!(date_field(second), lettre);
            assert_eq!(date_field(later), lettre, "the same second, the same field");
        }
    }

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
        let composed = composer()
            .confirmation(Uuid::now_v7(), "reader@example.com", "tok123", Language::ENGLISH)
            .unwrap();
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
    fn a_welcome_links_the_readers_preferences_and_the_archive_in_both_parts_and_names_nobody() {
        let reader = UnsubscribeToken::generate(Uuid::now_v7());
        let composed = composer()
            .with_feedback_id("welcome:gazette")
            .welcome(Uuid::now_v7(), "reader@example.com", &reader, Language::ENGLISH)
            .unwrap();
        let raw = composed.message.bytes().to_vec();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Welcome to The Weekly"));
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!((to.name(), to.address()), (None, Some("reader@example.com")));
        assert!(String::from_utf8_lossy(&raw).contains("Feedback-ID: welcome:gazette"));
        let preferences = format!("https://news.example.org/preferences?token={}", reader.as_string());
        let archive = "https://news.example.org/archive";
        let (text, html) = (parsed.body_text(0).unwrap(), parsed.body_html(0).unwrap());
        assert!(text.contains(&preferences) && text.contains(archive), "{text}");
        assert!(html.contains(&format!(r#"href="{preferences}""#)), "{html}");
        assert!(html.contains(&format!(r#"href="{archive}""#)), "{html}");
    }

    #[test]
    fn an_address_change_links_its_confirmation_page_in_both_parts_and_names_nobody() {
        let composed = composer()
            .address_change(Uuid::now_v7(), "ada@new.example", "tok123", Language::ENGLISH)
            .unwrap();
        let raw = composed.message.bytes().to_vec();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Confirm your new address for The Weekly"));
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!((to.name(), to.address()), (None, Some("ada@new.example")));
        let link = "https://news.example.org/preferences/address?token=tok123";
        let (text, html) = (parsed.body_text(0).unwrap(), parsed.body_html(0).unwrap());
        assert!(text.contains(link) && text.contains("48 hours"), "{text}");
        assert!(html.contains(&format!(r#"href="{link}""#)), "{html}");
    }

    #[test]
    fn a_digest_advertises_only_the_https_unsubscribe_and_carries_the_feedback_id() {
        // Whether signatures verify is checked by an independent verifier
        // in tests/api/trust_dkim.rs; here, what the headers say.
        let tagged = composer().with_feedback_id(" 2026:weekly:gazette ");
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let issue = issue("<p>Hello</p>", "Hello");
        let raw = tagged
            .digest("reader@example.com", "Ada", &token, week(), &issue, Language::ENGLISH)
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
            format!(
                "<https://news.example.org/unsubscribe?token={}&issue=2026-W48>",
                token.as_string()
            )
        );
        assert!(parsed.header_raw("DKIM-Signature").is_none(), "no key, no signature");
        let plain = composer()
            .confirmation(Uuid::now_v7(), "reader@example.com", "t", Language::ENGLISH)
            .unwrap()
            .message
            .bytes();
        let parsed_plain = mail_parser::MessageParser::default().parse(&plain).unwrap();
        assert!(parsed_plain.header_raw("Feedback-ID").is_none());
    }

    fn week() -> IssueWeek {
        IssueWeek::parse("2026-W48").unwrap()
    }

    /// An issue whose parts are `html` and `text` cut at each `{LINK}` (an
    /// unsubscribe place), `{PREFS}` (a preferences place) and `{GREET}` (a
    /// greeting).
    fn issue(html: &str, text: &str) -> RenderedIssue {
        let part = |s: &str| {
            let markers = [
                ("{LINK}", ReaderPlace::Unsubscribe),
                ("{PREFS}", ReaderPlace::Preferences),
                ("{GREET}", ReaderPlace::Greeting),
            ]
            .map(|(text, link)| Marker {
                text,
                link,
                expected: s.matches(text).count(),
            });
            LinkedText::cut(s, &markers).unwrap()
        };
        RenderedIssue {
            subject: "This week".into(),
            html: part(html),
            text: part(text),
            articles: 1,
            web: None,
        }
    }

    #[test]
    fn a_prepared_issue_decodes_to_the_issue_with_the_readers_links_at_their_places_only() {
        // The old placeholder, as an article may carry it, is text like any other.
        let long_line = "Ünïcödé — quoted “text” = sign, trailing space \n".repeat(3) + &"x".repeat(200);
        let text = format!(
            "Hello\n{long_line}\nhttps://evil.example/r?u=%%UNSUBSCRIBE_URL%%\nSettings: {{PREFS}}\nLeave: {{LINK}} now\n.\nAgain {{LINK}}"
        );
        let html = format!(
            "<p>{long_line}</p><a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a><a href=\"{{PREFS}}\">Settings</a><a href=\"{{LINK}}\">Unsubscribe</a>"
        );
        let issue = issue(&html, &text);
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let composed = composer()
            .digest_prepared(
                "reader@example.com",
                "Ada",
                &token,
                &composer().prepare(week(), &issue, Language::ENGLISH),
            )
            .unwrap();
        let raw = composed.message.bytes().to_vec();
        let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for line in raw[body_start..].split(|&b| b == b'\n') {
            assert!(line.len() <= 78, "{}", String::from_utf8_lossy(line));
        }
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let url = format!(
            "https://news.example.org/unsubscribe?token={}&issue=2026-W48",
            token.as_string()
        );
        let html_url = url.replace('&', "&amp;");
        let preferences = format!("https://news.example.org/preferences?token={}", token.as_string());
        let filled = |part: &str, url: &str| part.replace("{LINK}", url).replace("{PREFS}", &preferences);
        assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), filled(&text, &url));
        assert_eq!(
            parsed.body_html(0).unwrap().replace("\r\n", "\n"),
            filled(&html, &html_url)
        );
        assert_eq!(parsed.body_html(0).unwrap().matches(&html_url).count(), 1);
        assert_eq!(parsed.body_html(0).unwrap().matches(&preferences).count(), 1);
    }

    /// A reader's copy as Gazette made it before issue 14: the issue's
    /// parts (`encoded` once per issue by the caller) filled in whole and
    /// given to lettre's builder, the message signed whole. The prepared
    /// path must say the same.
    fn digest_via_lettre(
        composer: &Composer,
        recipient: &str,
        name: &str,
        unsubscribe: &UnsubscribeToken,
        week: IssueWeek,
        encoded_issue: &RenderedIssue,
    ) -> Composed {
        let unsubscribe_url = composer.links.unsubscribe_from(unsubscribe, week);
        let preferences_url = composer.links.preferences(unsubscribe);
        let greeting = Language::ENGLISH.greeting().for_name(name);
        let link = |url: &str| format!("=\r\n{}=\r\n", quoted_printable(url));
        let copy = encoded_issue.copy_with(
            ReaderText {
                unsubscribe: &link(&unsubscribe_url),
                preferences: &link(&preferences_url),
                greeting: &link(&greeting),
            },
            ReaderText {
                unsubscribe: &link(&html_escape(&unsubscribe_url)),
                preferences: &link(&html_escape(&preferences_url)),
                greeting: &link(&html_escape(&greeting)),
            },
        );
        let encoded = |part: String| {
            Body::dangerous_pre_encoded(
                part.into_bytes(),
                lettre::message::header::ContentTransferEncoding::QuotedPrintable,
            )
        };
        let parts = Parts {
            text: encoded(copy.text),
            html: encoded(copy.html),
        };
        let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        let headers = vec![
            header(
                "List-Id",
                format!("{} <weekly.{}>", composer.publication, composer.from.email.domain()),
            ),
            header(
                "List-Unsubscribe",
                composer.list_unsubscribe(&unsubscribe_url, unsubscribe),
            ),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            header("List-Archive", format!("<{}>", composer.links.archive_issue(week))),
            header("Precedence", "bulk".into()),
            header("Auto-Submitted", "auto-generated".into()),
        ];
        let message_id = format!(
            "<{}.{}@{}>",
            week,
            unsubscribe.subscriber_id().simple(),
            composer.from.email.domain()
        );
        composer
            .build(
                recipient,
                name,
                &encoded_issue.subject,
                message_id,
                parts,
                headers,
                &Origin::Digest {
                    week,
                    subscriber: unsubscribe.subscriber_id(),
                },
            )
            .unwrap()
    }

    /// The message with its MIME boundary and its Date made constant:
    /// the two things two copies of one issue may differ in.
    fn normalised(raw: &[u8]) -> String {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let start = text.find("boundary=\"").unwrap() + "boundary=\"".len();
        let boundary = &text[start..start + text[start..].find('"').unwrap()];
        let date_start = text.find("\r\nDate: ").unwrap() + 2;
        let date_end = date_start + text[date_start..].find("\r\n").unwrap();
        let text = format!("{}Date: DATE{}", &text[..date_start], &text[date_end..]);
        text.replace(boundary, "BOUNDARY")
    }

    /// What mail-parser reads in a message: every header but Date (name
    /// and value, the Content-Type without its boundary), and each part's
    /// headers and decoded text.
    fn as_parsed(raw: &[u8]) -> Vec<String> {
        use mail_parser::{HeaderName as Name, HeaderValue as Value};
        let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
        let mut seen = Vec::new();
        for (i, part) in parsed.parts.iter().enumerate() {
            for header in &part.headers {
                let value = match (&header.name, &header.value) {
                    (Name::Date, _) => continue,
                    (_, Value::ContentType(content_type)) => {
                        let mut content_type = content_type.clone();
                        if let Some(attributes) = content_type.attributes.as_mut() {
                            attributes.retain(|a| a.name != "boundary");
                        }
                        format!("{content_type:?}")
                    }
                    (_, value) => format!("{value:?}"),
                };
                seen.push(format!("{i} {}: {value}", header.name.as_str()));
            }
            seen.push(format!("{i} body: {:?}", part.text_contents()));
        }
        seen
    }

    fn ed25519_signer() -> DkimSigner {
        use base64::Engine;
        let dir = std::env::temp_dir().join(format!("gazette-compose-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ed25519.key");
        let seed: [u8; 32] = rand::random();
        std::fs::write(&file, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
        let signer = signer(DkimAlgorithm::Ed25519, &file);
        let _ = std::fs::remove_dir_all(dir);
        signer
    }

    fn rsa_signer() -> DkimSigner {
        signer(
            DkimAlgorithm::Rsa,
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim-rsa.pem")),
        )
    }

    fn signer(algorithm: DkimAlgorithm, file: &std::path::Path) -> DkimSigner {
        DkimSigner::from_settings(&DkimSettings {
            domain: "example.org".into(),
            selector: "weekly".into(),
            private_key_file: file.to_owned(),
            algorithm,
        })
        .unwrap()
        .unwrap()
    }

    /// The prepared copy says what the lettre-built copy says, byte for
    /// byte but for the boundary and the Date, and mail-parser reads the
    /// same headers and parts in both; signed with Ed25519 (deterministic),
    /// its signature is the one signing the whole message gives.
    fn assert_same_as_lettre(issue: &RenderedIssue, name: &str, feedback_id: &str) {
        assert_same_as_lettre_from(composer().with_feedback_id(feedback_id), issue, name);
    }

    fn assert_same_as_lettre_from(composer: Composer, issue: &RenderedIssue, name: &str) {
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let now = SystemTime::now();
        let prepared = composer
            .digest_at(
                "reader@example.com",
                name,
                &token,
                &composer.prepare(week(), issue, Language::ENGLISH),
                now,
            )
            .unwrap();
        let encoded = issue.encoded(quoted_printable);
        let reference = digest_via_lettre(&composer, "reader@example.com", name, &token, week(), &encoded);
        let (ours, theirs) = (prepared.message.bytes(), reference.message.bytes());
        assert_eq!(normalised(&ours), normalised(&theirs));
        assert_eq!(as_parsed(&ours), as_parsed(&theirs));
        assert_eq!(prepared.message_id, reference.message_id);
        assert_eq!(prepared.message.envelope(), reference.message.envelope());
        assert_eq!(prepared.message.len(), ours.len());
        // What goes on the wire is the message dot-stuffed.
        let wire: Vec<u8> = prepared.message.wire_pieces().flatten().copied().collect();
        assert_eq!(wire, Piece::new(ours.clone()).wire());

        let signer = ed25519_signer();
        let signing = composer.clone().with_dkim(signer);
        let signed = signing
            .digest_at(
                "reader@example.com",
                name,
                &token,
                &signing.prepare(week(), issue, Language::ENGLISH),
                now,
            )
            .unwrap()
            .message
            .bytes();
        let unsigned_at = signed.windows(4).position(|w| w == b"\r\nLi").unwrap() + 2;
        let now_unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let whole = signing
            .dkim
            .as_ref()
            .unwrap()
            .sign(&signed[unsigned_at..], now_unix)
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&signed), String::from_utf8_lossy(&whole));
    }

    /// A digest shaped like the templates' (articles, then a footer with
    /// the link) made of the fixture article and text that makes trouble.
    fn fixture_issue() -> RenderedIssue {
        let article = include_str!("../../tests/fixtures/article-tajikistan-multi-vector.txt");
        let awkward = "Ünïcödé “news” — .NET 10 ships;\n.NET tools   and\ttabs \n\n\n.\n".repeat(4) + &"x".repeat(1100);
        let text = format!(
            "The Weekly\n\n{{GREET}}\n\n{article}\n{awkward}\n\n-- \nSettings: {{PREFS}}\nUnsubscribe: {{LINK}}\n\n\n"
        );
        let html = format!(
            "<html><body><p>{{GREET}}</p><p>{}</p><pre>{awkward}</pre><a href=\"{{PREFS}}\">Settings</a> <a href=\"{{LINK}}\">Unsubscribe</a>\n<a href=\"{{LINK}}\">again</a></body></html>\n",
            article.replace('\n', "</p>\n<p>")
        );
        RenderedIssue {
            subject:
                "Weekly digest — 28 November 2026: Tajikistan’s “multi-vector” policy tests the Kremlin’s patience"
                    .into(),
            ..issue(&html, &text)
        }
    }

    #[test]
    fn a_prepared_copy_of_the_fixture_issue_is_the_copy_lettre_makes() {
        assert_same_as_lettre(
            &fixture_issue(),
            "Ada Lovelace-Byron, Gräfin von Ünïcödé",
            "2026:weekly",
        );
        assert_same_as_lettre(&fixture_issue(), "", "");
        // No link place at all (an issue stored before they were recorded).
        assert_same_as_lettre(&issue(".html\n", ". text\n\n"), "Ada", "");
        // With a bounce domain: the return path and the mailto.
        assert_same_as_lettre_from(composer().with_return_paths(return_paths()), &fixture_issue(), "Ada");
    }

    fn return_paths() -> ReturnPaths {
        ReturnPaths::new("bounces.example.org", b"a return-path key for the tests")
    }

    #[test]
    fn with_a_bounce_domain_each_message_has_a_return_path_naming_it_and_a_digest_a_mailto() {
        let paths = return_paths();
        let composer = composer().with_return_paths(return_paths());
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let digest = composer
            .digest(
                "reader@example.com",
                "Ada",
                &token,
                week(),
                &issue("<p>Hi {LINK}</p>", "Hi {LINK}"),
                Language::ENGLISH,
            )
            .unwrap();
        let sender = digest.message.envelope().from().unwrap().to_string();
        assert!(
            sender.starts_with("bounces+") && sender.ends_with("@bounces.example.org"),
            "{sender}"
        );
        assert_eq!(
            paths.read(&sender),
            Some(crate::mail::verp::Addressed::Bounce(Origin::Digest {
                week: week(),
                subscriber: token.subscriber_id(),
            }))
        );
        let raw = digest.message.bytes();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let unsubscribe: String = parsed
            .header_raw("List-Unsubscribe")
            .unwrap()
            .split_whitespace()
            .collect();
        let mailto = paths.unsubscribe_address(&token).to_string();
        assert_eq!(
            unsubscribe,
            format!(
                "<https://news.example.org/unsubscribe?token={}&issue=2026-W48>,<mailto:{mailto}>",
                token.as_string()
            ),
            "the https link first, then the reader's own mailto"
        );
        assert_eq!(
            paths.read(&mailto),
            Some(crate::mail::verp::Addressed::Unsubscribe(token.clone()))
        );
        // The From header stays the publication's.
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("news@example.org")
        );

        let id = Uuid::now_v7();
        for composed in [
            composer
                .confirmation(id, "reader@example.com", "t", Language::ENGLISH)
                .unwrap(),
            composer
                .digest_test(id, "editor@example.com", &issue("x {LINK}", "x {LINK}"))
                .unwrap(),
        ] {
            let sender = composed.message.envelope().from().unwrap().to_string();
            assert_eq!(
                paths.read(&sender),
                Some(crate::mail::verp::Addressed::Bounce(Origin::Mail { id }))
            );
            let raw = composed.message.bytes();
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            assert!(parsed.header_raw("List-Unsubscribe").is_none());
        }
    }

    #[test]
    fn without_a_bounce_domain_the_return_path_is_the_sender() {
        let composer = composer();
        assert!(composer.needs_return_paths().is_none());
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let digest = composer
            .digest(
                "reader@example.com",
                "Ada",
                &token,
                week(),
                &issue("x", "x"),
                Language::ENGLISH,
            )
            .unwrap();
        let confirmation = composer
            .confirmation(Uuid::now_v7(), "reader@example.com", "t", Language::ENGLISH)
            .unwrap();
        for composed in [digest, confirmation] {
            assert_eq!(
                composed.message.envelope().from().map(ToString::to_string).as_deref(),
                Some("news@example.org")
            );
        }
    }

    /// Text of the kinds that make trouble for QP, canonicalisation and
    /// dot-stuffing: dots, spaces and tabs at line starts and ends, empty
    /// lines, `=`, non-ASCII, long lines.
    fn awkward_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just(".".to_owned()),
                Just(" ".to_owned()),
                Just("\t".to_owned()),
                Just("\n".to_owned()),
                Just("\r\n".to_owned()),
                Just("=".to_owned()),
                Just("x".repeat(90)),
                "[a-zA-Z0-9 .=]{1,12}",
                "[ÄÖÜéè—“”ü ]{1,4}",
            ],
            0..24,
        )
        .prop_map(|pieces| pieces.concat())
    }

    fn awkward_part() -> impl Strategy<Value = LinkedText> {
        (
            proptest::collection::vec(awkward_text(), 1..4),
            proptest::collection::vec(0..3u8, 3),
        )
            .prop_map(|(segments, kinds)| {
                let places = kinds
                    .into_iter()
                    .map(|kind| match kind {
                        0 => ReaderPlace::Unsubscribe,
                        1 => ReaderPlace::Preferences,
                        _ => ReaderPlace::Greeting,
                    })
                    .collect();
                LinkedText::with_places(segments, places)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn a_prepared_copy_of_any_issue_is_the_copy_lettre_makes(
            html in awkward_part(),
            text in awkward_part(),
            subject in "[a-zA-Z .Ü—]{1,90}",
            name in "[a-zA-Z .,Ü]{0,30}",
        ) {
            let issue = RenderedIssue { subject, html, text, articles: 1, web: None };
            assert_same_as_lettre(&issue, name.trim(), "feedback");
        }
    }

    /// Why dkimpy cannot verify here, if it cannot; in CI it must.
    fn dkimpy_missing() -> Option<String> {
        let missing = match std::process::Command::new("python3")
            .args(["-c", "import dkim, nacl"])
            .output()
        {
            Ok(output) if output.status.success() => return None,
            Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            Err(e) => format!("python3 does not run: {e}"),
        };
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!in_ci, "CI=true but dkimpy cannot run (.ci/run installs it): {missing}");
        Some(missing)
    }

    /// dkimpy's verdict on each of `messages`, signed by `signer`: one
    /// Python for them all (it takes most of a second to start), with the
    /// public key given instead of looked up in DNS.
    fn dkimpy(messages: &[Vec<u8>], signer: &DkimSigner) -> Vec<bool> {
        use std::io::Write;
        const VERIFY_EACH: &str = r#"
import struct, sys, dkim
name, record = sys.argv[1].encode(), sys.argv[2].encode()
dns = lambda query, timeout=5: record if query.rstrip(b".").lower() == name.lower() else None
data = sys.stdin.buffer.read()
while data:
    (size,) = struct.unpack(">I", data[:4])
    message, data = data[4:4 + size], data[4 + size:]
    try:
        ok = dkim.verify(message, dnsfunc=dns)
    except Exception:
        ok = False
    print("pass" if ok else "fail")
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", VERIFY_EACH, &signer.dns_name(), &signer.dns_record()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = Vec::new();
        for message in messages {
            input.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
            input.extend_from_slice(message);
        }
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let verdicts: Vec<bool> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l == "pass")
            .collect();
        assert_eq!(verdicts.len(), messages.len(), "one verdict per message");
        verdicts
    }

    #[test]
    fn prepared_copies_verify_with_dkimpy_rsa_and_ed25519() {
        if let Some(why) = dkimpy_missing() {
            eprintln!("skipping: dkimpy cannot run here (`python3 -m pip install dkimpy PyNaCl`): {why}");
            return;
        }
        // Issues whose cuts at the link places fall where canonicalisation
        // and dot-stuffing have work to do: trailing spaces and tabs, empty
        // lines and dots on either side of a link, and at the body's end.
        let issues = [
            fixture_issue(),
            issue(".{LINK}.\n\n\n", "x \t\n\n\n{LINK}\n\n.{LINK}\t \n\n"),
            issue("{LINK}", "{LINK}{LINK}"),
            issue("", ""),
        ];
        for (what, signer, bounce_domain) in [
            ("rsa-sha256", rsa_signer(), false),
            ("ed25519-sha256", ed25519_signer(), false),
            ("rsa-sha256 with the mailto", rsa_signer(), true),
            ("ed25519-sha256 with the mailto", ed25519_signer(), true),
        ] {
            let composer = composer().with_feedback_id("2026:weekly").with_dkim(signer);
            let composer = match bounce_domain {
                true => composer.with_return_paths(return_paths()),
                false => composer,
            };
            let signer = composer.dkim.as_deref().unwrap();
            let mut copies = Vec::new();
            for issue in &issues {
                let prepared = composer.prepare(week(), issue, Language::ENGLISH);
                for name in ["", "Zoë “Ünïcödé” Überlänge-Nachname, Gräfin von und zu Ünïcödé"] {
                    let token = UnsubscribeToken::generate(Uuid::new_v4());
                    let composed = composer
                        .digest_prepared("reader@example.com", name, &token, &prepared)
                        .unwrap();
                    copies.push((token, composed.message.bytes()));
                }
            }
            // The check can fail: another reader's link, in the header or
            // in the body of a copy, does not verify.
            let (token, copy) = &copies[1];
            let text = String::from_utf8(copy.clone()).unwrap();
            let (mine, theirs) = (
                composer.links.unsubscribe_from(token, week()),
                composer
                    .links
                    .unsubscribe_from(&UnsubscribeToken::generate(Uuid::new_v4()), week()),
            );
            assert!(text.contains(&format!("<{mine}>")), "the link is in the header");
            let forged_header = text.replacen(&format!("<{mine}>"), &format!("<{theirs}>"), 1);
            let (mine, theirs) = (quoted_printable(&mine), quoted_printable(&theirs));
            assert!(text.contains(&mine), "the link is in the body");
            let forged_body = text.replacen(&mine, &theirs, 1);

            let mut messages: Vec<Vec<u8>> = copies.iter().map(|(_, raw)| raw.clone()).collect();
            messages.extend([forged_header.into_bytes(), forged_body.into_bytes()]);
            if bounce_domain {
                // Another reader's mailto in the header.
                let paths = return_paths();
                let mine = paths.unsubscribe_address(token).to_string();
                let theirs = paths
                    .unsubscribe_address(&UnsubscribeToken::generate(Uuid::new_v4()))
                    .to_string();
                assert!(
                    text.contains(&format!("<mailto:{mine}>")),
                    "the mailto is in the header"
                );
                messages.push(text.replacen(&mine, &theirs, 1).into_bytes());
            }
            let verdicts = dkimpy(&messages, signer);
            for (i, raw) in messages.iter().enumerate().take(copies.len()) {
                assert!(
                    verdicts[i],
                    "{what}: prepared copy {i} does not verify:\n{}",
                    String::from_utf8_lossy(raw)
                );
            }
            assert!(
                verdicts[copies.len()..].iter().all(|verified| !verified),
                "{what}: a forged copy verified: {:?}",
                &verdicts[copies.len()..]
            );
        }
    }

    /// `bench/compose`: the time a reader's copy of an issue of typical
    /// size costs, before issue 14 (lettre's builder over the issue encoded
    /// once, the whole message signed) and now (shared pieces, the body
    /// hash fed cached canonical bytes), unsigned and signed with each
    /// algorithm. Run in release: `bench/compose`.
    #[test]
    #[ignore = "a benchmark: bench/compose runs it in release"]
    fn bench_compose() {
        use std::time::Instant;
        // Eight articles of the fixture's size: about the HTML Gazette
        // sends each week, well under the Gmail clipping size.
        let article = include_str!("../../tests/fixtures/article-tajikistan-multi-vector.txt");
        let text = format!("The Weekly\n\n{}\n-- \nUnsubscribe: {{LINK}}\n", article.repeat(8));
        let html = format!(
            "<html><body><p>{}</p><a href=\"{{LINK}}\">Unsubscribe</a></body></html>\n",
            article.replace('\n', "</p>\n<p>").repeat(8)
        );
        let issue = issue(&html, &text);
        let encoded = issue.encoded(quoted_printable);
        let tokens: Vec<UnsubscribeToken> = (0..64).map(|_| UnsubscribeToken::generate(Uuid::new_v4())).collect();
        let size = composer()
            .digest("r@example.com", "Ada", &tokens[0], week(), &issue, Language::ENGLISH)
            .unwrap()
            .message
            .len();
        println!(
            "issue: {} bytes per copy (text {} + html {} before encoding)",
            size,
            text.len(),
            html.len()
        );
        for (what, copies, signing) in [
            ("unsigned", 20_000, None),
            ("ed25519-sha256", 10_000, Some(ed25519_signer())),
            ("rsa-sha256 (2048)", 1_000, Some(rsa_signer())),
        ] {
            let composer = match signing {
                Some(signer) => composer().with_dkim(signer),
                None => composer(),
            };
            let prepared = composer.prepare(week(), &issue, Language::ENGLISH);
            let time = |copy: &dyn Fn(&UnsubscribeToken) -> Composed| {
                for token in &tokens {
                    std::hint::black_box(copy(token));
                }
                let start = Instant::now();
                for i in 0..copies {
                    std::hint::black_box(copy(&tokens[i % tokens.len()]));
                }
                start.elapsed().as_nanos() / copies as u128
            };
            let before = time(&|token| digest_via_lettre(&composer, "r@example.com", "Ada", token, week(), &encoded));
            let after = time(&|token| {
                composer
                    .digest_prepared("r@example.com", "Ada", token, &prepared)
                    .unwrap()
            });
            println!(
                "{what:<18} before {before:>9} ns/copy   after {after:>9} ns/copy   ({:.1}x)",
                before as f64 / after as f64
            );
            // What a signed copy's body hash costs now: the bytes after the
            // first link place, which no copy shares with another.
            if let Some(hash) = &prepared.dkim {
                let link = Piece::new(b"https://news.example.org/unsubscribe?token=0123456789=\r\n".to_vec());
                let start = Instant::now();
                for _ in 0..copies {
                    let mut body_hash = hash.after_first.clone();
                    for piece in &hash.rest {
                        body_hash.feed(link.plain());
                        body_hash.feed_canonical(piece);
                    }
                    std::hint::black_box(body_hash.finish());
                }
                println!(
                    "{:<18} of which the body hash {:>9} ns/copy",
                    "",
                    start.elapsed().as_nanos() / copies as u128
                );
            }
        }
    }
}
