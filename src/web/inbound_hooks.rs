//! The provider webhooks (`POST /inbound/mailgun`, `POST /inbound/postmark`):
//! a post is authenticated (Mailgun's HMAC signature, Postmark's Basic
//! credentials), then handed as it came to the inbound pipeline, which
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
}

/// Whether any provider webhook is configured (and so the inbound
/// pipeline must be built for the web server).
pub fn configured(settings: &InboundSettings) -> bool {
    !settings.mailgun_signing_key_file.as_os_str().is_empty() || !settings.postmark_password_file.as_os_str().is_empty()
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
        if (mailgun_key.is_some() || postmark.is_some()) && inbound.is_none() {
            return Err("a provider webhook is configured but the inbound pipeline was not built".into());
        }
        Ok(Self {
            inbound,
            mailgun_key,
            postmark,
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
    PageError::public(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. It may have moved, or the link may be mistyped.",
    )
}

fn unauthorized() -> PageError {
    PageError::public(
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
