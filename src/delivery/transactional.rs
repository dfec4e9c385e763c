//! The lane for transactional mail (confirmations, welcome emails, links to
//! confirm a new address, and staff test sends of a draft issue): small
//! batches, sent as soon as they are queued, on their own so a large issue
//! never delays them. Outcomes are written whatever it takes: a sent
//! confirmation whose outcome were lost would be sent again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

use super::{Sent, Shared};
use crate::db::outgoing_mail::{self, QueuedMail};
use crate::domain::{MailKind, RenderedIssue, UnsubscribeToken};
use crate::mail::{ComposeError, Composed, Composer, is_hard_bounce};

/// Messages claimed at once; transactional mail comes a few at a time.
const BATCH: i64 = 32;
/// Sent at once in this lane.
const CONCURRENCY: usize = 4;

pub(super) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        // Nothing is claimed without a proof of life (see `super::liveness`).
        let Some(me) = shared.liveness.current() else {
            shared.idle(&mut shutdown, Duration::ZERO).await;
            continue;
        };
        let now = Utc::now();
        let lease_until = shared.lease_until(now);
        match outgoing_mail::claim_due(&shared.db, now, lease_until, BATCH, me).await {
            Ok(batch) if batch.is_empty() => shared.idle_or_woken(&mut shutdown).await,
            Ok(batch) => {
                let shutdown = &shutdown;
                futures_util::stream::iter(batch)
                    .for_each_concurrent(CONCURRENCY, |mail| deliver(&shared, mail, me, lease_until, shutdown))
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim mail from the database; trying again shortly");
                shared.idle(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
    }
}

/// Why a queued message could not be turned into an email; the message is
/// given up with this as its error.
#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error("a link email without its token")]
    NoToken,
    #[error("a welcome email whose reader is gone")]
    NoReader,
    #[error("a test send without its draft")]
    NoDraft,
    #[error("cannot read the test send: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the test send's draft is gone")]
    DraftGone,
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

async fn deliver(
    shared: &Arc<Shared>,
    mail: QueuedMail,
    claimed_by: Uuid,
    lease_until: DateTime<Utc>,
    shutdown: &watch::Receiver<bool>,
) {
    let composed = match render(shared, &mail).await {
        Ok(composed) => composed,
        Err(why) => {
            tracing::error!(mail_id = %mail.id, kind = %mail.kind, error = %why, "cannot render message; giving it up");
            record_failed(shared, &mail, &why.to_string(), None).await;
            return;
        }
    };
    // Confirmations take slots of the relay's rate like digests do: the
    // relay counts every message, whatever it is.
    match shared
        .send(&composed, mail.attempts, lease_until, claimed_by, shutdown)
        .await
    {
        Sent::Delivered => {
            let message_id = &composed.message_id;
            tracing::info!(mail_id = %mail.id, kind = %mail.kind, %message_id, "mail sent");
            let now = Utc::now();
            persist(&mail, || outgoing_mail::mark_sent(&shared.db, mail.id, message_id, now)).await;
        }
        Sent::Retry(reply) => {
            tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt = mail.attempts, %reply, "mail not sent; will retry");
            let next = shared.next_attempt_at(mail.attempts);
            persist(&mail, || {
                outgoing_mail::schedule_retry(&shared.db, mail.id, mail.attempts, next, &reply)
            })
            .await;
        }
        Sent::Failed(reply) => {
            tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt = mail.attempts, %reply, "mail refused for good");
            // A hard bounce marks the reader `bounced` with the failure, so
            // later issues skip them; any other refusal leaves them be. A
            // new address's confirmation is not sent to the reader's own.
            let bounced = mail
                .subscriber_id
                .filter(|_| is_hard_bounce(&reply) && mail.kind != MailKind::AddressChange);
            if let Some(reader) = bounced {
                tracing::info!(%reader, %reply, "the address bounced; the reader is marked bounced");
            }
            record_failed(shared, &mail, &reply, bounced).await;
        }
        Sent::NoSlot => {
            // Back in the queue at once, for the next claim here or in
            // another worker (the claim counted an attempt; none was made).
            let why = "not sent: no send slot of the relay's rate before the lease ran short, the worker stopped, \
                       or it lost its proof of life";
            let now = Utc::now();
            persist(&mail, || {
                outgoing_mail::schedule_retry(&shared.db, mail.id, mail.attempts, now, why)
            })
            .await;
        }
    }
}

async fn record_failed(shared: &Shared, mail: &QueuedMail, error: &str, bounced: Option<Uuid>) {
    persist(mail, || {
        outgoing_mail::mark_failed(&shared.db, mail.id, mail.attempts, error, bounced)
    })
    .await;
}

/// The longest wait between two tries to record an outcome.
const MAX_WRITE_DELAY: Duration = Duration::from_secs(2);

/// Writes one message's outcome, trying until the database takes it (it
/// may be restarting).
async fn persist<F, W>(mail: &QueuedMail, write: W)
where
    W: Fn() -> F,
    F: Future<Output = Result<(), sqlx::Error>>,
{
    let mut delay = Duration::from_millis(200);
    for attempt in 1u32.. {
        match write().await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(mail_id = %mail.id, error = %e, attempt,
                    "cannot record the outcome of a message; keeping it and trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_WRITE_DELAY);
            }
        }
    }
}

async fn render(shared: &Arc<Shared>, mail: &QueuedMail) -> Result<Composed, RenderError> {
    // The draft lives in its own table, rendered once for every recipient.
    let draft = match (mail.kind, mail.test_send_id) {
        (MailKind::DigestTest, Some(id)) => Some(
            crate::db::test_sends::find(&shared.db, id)
                .await?
                .ok_or(RenderError::DraftGone)?,
        ),
        _ => None,
    };
    let mail = mail.clone();
    shared.compose(move |composer| compose(composer, &mail, draft)).await
}

fn compose(composer: &Composer, mail: &QueuedMail, draft: Option<RenderedIssue>) -> Result<Composed, RenderError> {
    let language = composer.language(mail.language.as_deref());
    match mail.kind {
        MailKind::Confirmation => {
            let token = mail.token.as_deref().ok_or(RenderError::NoToken)?;
            Ok(composer.confirmation(mail.id, &mail.recipient, token, language)?)
        }
        MailKind::AddressChange => {
            let token = mail.token.as_deref().ok_or(RenderError::NoToken)?;
            Ok(composer.address_change(mail.id, &mail.recipient, token, language)?)
        }
        MailKind::Welcome => {
            let reader = mail
                .subscriber_id
                .zip(mail.unsubscribe_secret.as_deref())
                .and_then(|(id, secret)| UnsubscribeToken::from_parts(id, secret))
                .ok_or(RenderError::NoReader)?;
            Ok(composer.welcome(mail.id, &mail.recipient, &reader, language)?)
        }
        MailKind::DigestTest => {
            let draft = draft.ok_or(RenderError::NoDraft)?;
            Ok(composer.digest_test(mail.id, &mail.recipient, &draft)?)
        }
    }
}
