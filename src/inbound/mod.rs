//! Inbound mail: bounces, complaints, auto-replies and mail to a reader's
//! unsubscribe address, arriving by the SMTP/LMTP listener, an IMAP
//! mailbox or a provider's webhook. Every way in ends in one pipeline
//! ([`Inbound::accept`]): the message is stored as it came (so nothing is
//! lost if the reading fails or the process dies), then read
//! ([`classify`]) and applied to the reader it names ([`apply`]).

pub mod apply;
pub mod classify;
pub mod imap;
pub mod providers;
pub mod report;
pub mod smtp_listener;

use chrono::Utc;
use uuid::Uuid;

use crate::config::Settings;
use crate::db::Db;
use crate::db::inbound::{self as stored, NewInbound, Stored};
use crate::domain::InboundSource;
use crate::mail::verp::ReturnPaths;

pub use report::{Reason, Report};

/// What bounces do to a reader (`inbound.soft_bounce_*`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub soft_bounce_limit: u32,
    pub soft_bounce_days: u32,
}

/// One message as it arrived, before it is stored.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub source: InboundSource,
    /// See [`NewInbound::dedupe_key`].
    pub dedupe_key: Option<String>,
    pub envelope_to: Vec<String>,
    pub raw: Vec<u8>,
}

/// The pipeline every way in hands its messages to.
#[derive(Debug, Clone)]
pub struct Inbound {
    db: Db,
    paths: Option<ReturnPaths>,
    policy: Policy,
}

impl Inbound {
    /// Reads the shared return-path key from the database when
    /// `mail.bounce_domain` is set.
    pub async fn new(db: Db, settings: &Settings) -> Result<Self, sqlx::Error> {
        let domain = settings.mail.bounce_domain.trim();
        let paths = match domain.is_empty() {
            true => None,
            false => Some(ReturnPaths::new(domain, &stored::return_path_secret(&db).await?)),
        };
        Ok(Self {
            db,
            paths,
            policy: Policy {
                soft_bounce_limit: settings.inbound.soft_bounce_limit,
                soft_bounce_days: settings.inbound.soft_bounce_days,
            },
        })
    }

    pub fn return_paths(&self) -> Option<&ReturnPaths> {
        self.paths.as_ref()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores `arrival`, then reads and applies it. Returns once it is
    /// stored: a failure to read or apply it leaves it `received`, for
    /// [`Inbound::process_received`] to take up again, and is logged.
    pub async fn accept(&self, arrival: Arrival) -> Result<Stored, sqlx::Error> {
        let stored = stored::store(
            &self.db,
            &NewInbound {
                source: arrival.source,
                dedupe_key: arrival.dedupe_key.as_deref(),
                envelope_to: &arrival.envelope_to,
                raw: &arrival.raw,
                received_at: Utc::now(),
            },
        )
        .await?;
        if let Stored::New(id) = stored
            && let Err(e) = self.process(id).await
        {
            tracing::warn!(inbound_message = %id, error = %e, "an inbound message was stored but not applied; it will be retried");
        }
        Ok(stored)
    }

    /// Reads and applies one stored message.
    pub async fn process(&self, id: Uuid) -> Result<(), sqlx::Error> {
        let Some(message) = stored::load(&self.db, id).await? else {
            return Ok(());
        };
        let report = classify(message.source, &message.raw, &message.envelope_recipients());
        apply::apply(&self.db, self.paths.as_ref(), &self.policy, &message, &report).await
    }

    /// Applies every message left `received` (by a crash between storing
    /// and applying), each once; returns how many were read. One that
    /// fails again stays `received` (and is logged) for the next start.
    pub async fn process_received(&self) -> Result<usize, sqlx::Error> {
        let mut done = 0;
        let mut after = None;
        loop {
            let ids = stored::received(&self.db, after, 100).await?;
            let Some(last) = ids.last().copied() else {
                return Ok(done);
            };
            for id in ids {
                if let Err(e) = self.process(id).await {
                    tracing::warn!(inbound_message = %id, error = %e, "an inbound message left unread could not be applied");
                }
                done += 1;
            }
            after = Some(last);
        }
    }
}

/// Reads a stored message: mail by its MIME structure, a provider's post
/// by its JSON.
pub fn classify(source: InboundSource, raw: &[u8], envelope_to: &[String]) -> Report {
    match source {
        InboundSource::Smtp | InboundSource::Imap => classify::message(raw, envelope_to),
        InboundSource::Ses | InboundSource::Postmark | InboundSource::Mailgun => providers::report(source, raw),
    }
}
