//! Inbound mail (`[inbound]`): where bounces, complaints and mailto
//! unsubscribes come in, and what they do to a reader. The return-path
//! domain itself is `mail.bounce_domain`: without it nothing is sent with a
//! return path Gazette could read, and no listener starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSettings {
    /// The SMTP/LMTP listener the operator's MTA hands the bounce domain
    /// to; `None` (empty): none.
    #[serde(deserialize_with = "super::deserialize_listen")]
    pub smtp_listen: Option<SocketAddr>,
    /// A message larger than this is refused (552) by the listener and
    /// skipped (left in place) in the IMAP mailbox.
    pub max_message_bytes: usize,
    /// At most this many listener connections at once; more get 421.
    pub max_connections: usize,
    /// `imap://` or `imaps://user@host[:port]/MAILBOX`; empty: no polling.
    pub imap_url: String,
    /// The IMAP password, read from this file (never from the config).
    pub imap_password_file: PathBuf,
    /// A PEM file with extra root certificates to trust for `imaps://`
    /// (a server with a private CA's certificate); empty: public roots.
    pub imap_ca_file: PathBuf,
    /// Processed messages are moved here; empty: deleted.
    pub imap_done_folder: String,
    /// The mailbox is polled this often (and watched with IDLE in between
    /// where the server offers it).
    pub imap_poll_seconds: u64,
    /// A reader becomes `bounced` after this many soft bounces …
    pub soft_bounce_limit: u32,
    /// … within this many days, with no delivery accepted in between.
    pub soft_bounce_days: u32,
    /// Amazon SES through SNS: the topic ARNs whose notifications are
    /// accepted at `POST /inbound/ses`; empty: the route answers 404.
    pub ses_topic_arns: Vec<String>,
    /// Postmark's bounce and spam-complaint webhooks at
    /// `POST /inbound/postmark` carry HTTP Basic credentials (Postmark's
    /// documented way to authenticate them): this user name …
    pub postmark_username: String,
    /// … and the password, read from this file; empty: the route answers 404.
    pub postmark_password_file: PathBuf,
    /// Mailgun's webhook signing key (HMAC-SHA256 over timestamp and
    /// token), read from this file; empty: `POST /inbound/mailgun` answers 404.
    pub mailgun_signing_key_file: PathBuf,
    /// Where an SNS message's `SigningCertURL` may point besides
    /// `https://sns.<region>.amazonaws.com/…`: a URL prefix
    /// (`http://127.0.0.1:PORT/`). For tests and private deployments only:
    /// empty in production.
    pub ses_extra_cert_url_prefix: String,
}
