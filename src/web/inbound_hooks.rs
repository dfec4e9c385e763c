//! The provider webhooks (`POST /inbound/mailgun`, `POST /inbound/postmark`,
//! `POST /inbound/ses`): a post is authenticated (Mailgun's HMAC signature,
//! Postmark's Basic credentials, SNS's RSA signature under the certificate
//! at its `SigningCertURL`), then handed as it came to the inbound pipeline, which
//! stores it and reads it with `inbound::providers::report`. A route
//! answers 404 while its setting is empty; a post that cannot be
//! authenticated gets 401 and stores nothing.

use std::path::Path;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::config::InboundSettings;
use crate::db::inbound::Stored;
use crate::domain::InboundSource;
use crate::inbound::{Arrival, Inbound};
use crate::web::error::PageError;
use crate::web::form;

/// A provider's post is a small JSON document (Mailgun's largest events
/// carry the message's headers): this is ample, and keeps a forged post
/// from making us buffer much before it is refused.
pub const MAX_HOOK_BODY_BYTES: usize = 256 * 1024;

/// Mailgun's signature must be this recent (its documented advice), so a
/// captured post cannot be replayed later with a fresh token.
const MAILGUN_MAX_AGE_SECONDS: i64 = 5 * 60;

/// What the webhook routes need: the pipeline and each provider's secret,
/// read from their files once at start.
#[derive(Default)]
pub struct Hooks {
    inbound: Option<Inbound>,
    mailgun_key: Option<Vec<u8>>,
    postmark: Option<(String, String)>,
    ses: Option<Ses>,
}

/// Amazon SES through SNS: the topics taken, where certificates may come
/// from, and the certificates already fetched (by URL).
struct Ses {
    topics: Vec<String>,
    extra_cert_url_prefix: String,
    client: reqwest::Client,
    certificates: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

/// Whether any provider webhook is configured (and so the inbound
/// pipeline must be built for the web server).
pub fn configured(settings: &InboundSettings) -> bool {
    !settings.mailgun_signing_key_file.as_os_str().is_empty()
        || !settings.postmark_password_file.as_os_str().is_empty()
        || !settings.ses_topic_arns.is_empty()
}

impl Hooks {
    /// Reads the secrets the settings name; `inbound` is the pipeline,
    /// built when [`configured`] says so.
    pub fn from_settings(settings: &InboundSettings, inbound: Option<Inbound>) -> Result<Self, String> {
        let mailgun_key = match settings.mailgun_signing_key_file.as_os_str().is_empty() {
            true => None,
            false => {
                Some(read_secret(&settings.mailgun_signing_key_file, "inbound.mailgun_signing_key_file")?.into_bytes())
            }
        };
        let postmark = match settings.postmark_password_file.as_os_str().is_empty() {
            true => None,
            false => {
                let password = read_secret(&settings.postmark_password_file, "inbound.postmark_password_file")?;
                if settings.postmark_username.trim().is_empty() {
                    return Err("inbound.postmark_password_file is set but inbound.postmark_username is empty".into());
                }
                Some((settings.postmark_username.clone(), password))
            }
        };
        let ses = match settings.ses_topic_arns.is_empty() {
            true => None,
            false => Some(Ses {
                topics: settings.ses_topic_arns.clone(),
                extra_cert_url_prefix: settings.ses_extra_cert_url_prefix.trim().to_owned(),
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("inbound.ses_topic_arns: cannot build an HTTP client: {e}"))?,
                certificates: Default::default(),
            }),
        };
        if (mailgun_key.is_some() || postmark.is_some() || ses.is_some()) && inbound.is_none() {
            return Err("a provider webhook is configured but the inbound pipeline was not built".into());
        }
        Ok(Self {
            inbound,
            mailgun_key,
            postmark,
            ses,
        })
    }
}

fn read_secret(file: &Path, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{key}: cannot read {}: {e}", file.display()))?;
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    if text.trim().is_empty() {
        return Err(format!("{key}: {} is empty", file.display()));
    }
    Ok(text)
}

fn not_found() -> PageError {
    PageError::public(StatusCode::NOT_FOUND, "error-not-found-title", "error-not-found")
}

/// Machines read these answers: in English, like the staff area's.
fn unauthorized() -> PageError {
    PageError::staff(
        StatusCode::UNAUTHORIZED,
        "Not signed",
        "This address takes only posts signed by the mail provider.",
    )
}

/// Mailgun's webhook post (the JSON kind): the part read before storing.
#[derive(Deserialize)]
struct MailgunPost {
    signature: MailgunSignature,
    #[serde(rename = "event-data")]
    event_data: serde_json::Value,
}

#[derive(Deserialize)]
struct MailgunSignature {
    timestamp: String,
    token: String,
    signature: String,
}

/// `POST /inbound/mailgun`.
pub async fn mailgun(
    req: HttpRequest,
    payload: web::Payload,
    hooks: web::Data<Hooks>,
) -> Result<HttpResponse, PageError> {
    let (Some(key), Some(inbound)) = (&hooks.mailgun_key, &hooks.inbound) else {
        return Err(not_found());
    };
    let body = form::read_body(&req, payload, MAX_HOOK_BODY_BYTES).await?;
    // The signature is inside the JSON: a body that is not JSON, or has
    // no signature, cannot be authenticated.
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| unauthorized())?;
    let Some(signature) = value
        .get("signature")
        .and_then(|s| serde_json::from_value::<MailgunSignature>(s.clone()).ok())
    else {
        return Err(unauthorized());
    };
    if !crate::inbound::providers::mailgun_signature_ok(
        key,
        &signature.timestamp,
        &signature.token,
        &signature.signature,
    ) {
        return Err(unauthorized());
    }
    let fresh = signature
        .timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= MAILGUN_MAX_AGE_SECONDS);
    if !fresh {
        return Err(unauthorized());
    }
    let post: MailgunPost = serde_json::from_value(value).map_err(|_| malformed())?;
    if !post.event_data.is_object() {
        return Err(malformed());
    }
    // A replayed post carries the same token: the dedupe key stores it once.
    let dedupe_key = format!("mailgun:{}", post.signature.token);
    store(inbound, InboundSource::Mailgun, dedupe_key, &body).await
}

fn malformed() -> PageError {
    PageError::bad_request("Not understood", "The post is not a webhook this address understands.")
}

/// `POST /inbound/postmark`.
pub async fn postmark(
    req: HttpRequest,
    payload: web::Payload,
    hooks: web::Data<Hooks>,
) -> Result<HttpResponse, PageError> {
    let (Some((username, password)), Some(inbound)) = (&hooks.postmark, &hooks.inbound) else {
        return Err(not_found());
    };
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !crate::inbound::providers::postmark_credentials_ok(authorization, username, password) {
        // HTTP requires a 401 to name the scheme it wants.
        return Ok(HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                "Basic realm=\"gazette inbound\", charset=\"UTF-8\"",
            ))
            .content_type("text/plain; charset=utf-8")
            .body("This address takes only posts with the configured credentials.\n"));
    }
    let body = form::read_body(&req, payload, MAX_HOOK_BODY_BYTES).await?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| malformed())?;
    let record_type = value.get("RecordType").and_then(|v| v.as_str());
    let id = value.get("ID").and_then(|v| match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    });
    let (Some(record_type), Some(id)) = (record_type, id) else {
        return Err(malformed());
    };
    let dedupe_key = format!("postmark:{record_type}:{id}");
    store(inbound, InboundSource::Postmark, dedupe_key, &body).await
}

async fn store(
    inbound: &Inbound,
    source: InboundSource,
    dedupe_key: String,
    body: &[u8],
) -> Result<HttpResponse, PageError> {
    let stored = inbound
        .accept(Arrival {
            source,
            dedupe_key: Some(dedupe_key),
            envelope_to: Vec::new(),
            raw: body.to_vec(),
        })
        .await?;
    // A duplicate is answered 200 too: the provider stops retrying, and
    // the copy it sent before is the one applied.
    let text = match stored {
        Stored::New(_) => "stored\n",
        Stored::Duplicate(_) => "already stored\n",
    };
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text))
}

/// An SNS message, as posted (the fields its signature covers and the
/// signature).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    subject: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
}

impl SnsMessage {
    /// The string SNS signs: chosen fields as `Name\nvalue\n`, in order.
    fn string_to_sign(&self) -> Option<String> {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.extend([("Timestamp", self.timestamp.as_str()), ("TopicArn", &self.topic_arn)]);
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => fields.extend([
                ("SubscribeURL", self.subscribe_url.as_deref()?),
                ("Timestamp", &self.timestamp),
                ("Token", self.token.as_deref()?),
                ("TopicArn", &self.topic_arn),
            ]),
            _ => return None,
        }
        fields.push(("Type", &self.kind));
        Some(
            fields
                .iter()
                .map(|(name, value)| format!("{name}\n{value}\n"))
                .collect(),
        )
    }
}

impl Ses {
    /// Whether `url` is one SNS signs with or subscribes from: https on
    /// `sns.<region>.amazonaws.com`, or under the configured extra prefix.
    fn trusted_url(&self, url: &str) -> bool {
        if !self.extra_cert_url_prefix.is_empty() && url.starts_with(&self.extra_cert_url_prefix) {
            return true;
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        let host = parsed.host_str().unwrap_or("");
        let region_ok = host
            .strip_prefix("sns.")
            .and_then(|h| h.strip_suffix(".amazonaws.com"))
            .is_some_and(|region| {
                !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        parsed.scheme() == "https" && region_ok && parsed.port().is_none() && parsed.username().is_empty()
    }

    /// The public key (PKCS#1) of the certificate at `url`.
    async fn public_key(&self, url: &str) -> Result<Vec<u8>, String> {
        if let Some(key) = self.certificates.lock().expect("not poisoned").get(url) {
            return Ok(key.clone());
        }
        let response = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let pem = response.bytes().await.map_err(|e| e.to_string())?;
        if pem.len() > 64 * 1024 {
            return Err("the certificate is too large".into());
        }
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
        let certificate = pem.parse_x509().map_err(|e| e.to_string())?;
        let key = certificate.public_key().subject_public_key.data.to_vec();
        self.certificates
            .lock()
            .expect("not poisoned")
            .insert(url.to_owned(), key.clone());
        Ok(key)
    }

    async fn signature_ok(&self, message: &SnsMessage) -> bool {
        use base64::Engine;
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match message.signature_version.as_str() {
            "1" => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return false,
        };
        let (Some(text), Ok(signature)) = (
            message.string_to_sign(),
            base64::engine::general_purpose::STANDARD.decode(message.signature.trim()),
        ) else {
            return false;
        };
        if !self.trusted_url(&message.signing_cert_url) {
            return false;
        }
        match self.public_key(&message.signing_cert_url).await {
            Ok(key) => ring::signature::UnparsedPublicKey::new(algorithm, key)
                .verify(text.as_bytes(), &signature)
                .is_ok(),
            Err(e) => {
                tracing::warn!(error = %crate::terminal::escape(&e), "cannot fetch SNS's signing certificate");
                false
            }
        }
    }
}

/// `POST /inbound/ses`: SNS notifications (SES `Bounce` and `Complaint`)
/// from a topic in `inbound.ses_topic_arns`, and the subscription's
/// confirmation.
pub async fn ses(req: HttpRequest, payload: web::Payload, hooks: web::Data<Hooks>) -> Result<HttpResponse, PageError> {
    let (Some(ses), Some(inbound)) = (&hooks.ses, &hooks.inbound) else {
        return Err(not_found());
    };
    let body = form::read_body(&req, payload, MAX_HOOK_BODY_BYTES).await?;
    let Ok(message) = serde_json::from_slice::<SnsMessage>(&body) else {
        return Err(unauthorized());
    };
    if !ses.topics.iter().any(|t| t == &message.topic_arn) || !ses.signature_ok(&message).await {
        return Err(unauthorized());
    }
    match message.kind.as_str() {
        "Notification" => {
            let dedupe_key = format!("ses:{}", message.message_id);
            store(inbound, InboundSource::Ses, dedupe_key, &body).await
        }
        "SubscriptionConfirmation" => {
            let url = message.subscribe_url.as_deref().unwrap_or("");
            if !ses.trusted_url(url) {
                return Err(malformed());
            }
            let confirmed = ses.client.get(url).send().await.is_ok_and(|r| r.status().is_success());
            if !confirmed {
                return Err(PageError::staff(
                    StatusCode::BAD_GATEWAY,
                    "Not confirmed",
                    "The subscription could not be confirmed.",
                ));
            }
            tracing::info!(topic = %crate::terminal::escape(&message.topic_arn), "confirmed the SNS subscription");
            Ok(HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("confirmed\n"))
        }
        _ => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ignored\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ses(prefix: &str) -> Ses {
        Ses {
            topics: Vec::new(),
            extra_cert_url_prefix: prefix.to_owned(),
            client: reqwest::Client::new(),
            certificates: Default::default(),
        }
    }

    #[test]
    fn sns_certificates_come_only_from_sns_over_https_or_the_configured_prefix() {
        let ses = ses("");
        assert!(ses.trusted_url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"));
        assert!(ses.trusted_url("https://sns.us-gov-west-1.amazonaws.com/x.pem"));
        for url in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "https://user@sns.eu-west-1.amazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "http://127.0.0.1:8080/cert.pem",
            "not a url",
        ] {
            assert!(!ses.trusted_url(url), "{url}");
        }
        let with_prefix = self::ses("http://127.0.0.1:8080/");
        assert!(with_prefix.trusted_url("http://127.0.0.1:8080/cert.pem"));
        assert!(!with_prefix.trusted_url("http://127.0.0.1:8081/cert.pem"));
    }

    #[test]
    fn the_sns_string_to_sign_follows_the_documented_order() {
        let message: SnsMessage = serde_json::from_value(serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "hi",
            "Timestamp": "ts", "SignatureVersion": "1", "Signature": "", "SigningCertURL": "",
            "Subject": "s",
        }))
        .unwrap();
        assert_eq!(
            message.string_to_sign().unwrap(),
            "Message\nhi\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
    }
}
