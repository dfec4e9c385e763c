//! Polling an IMAP mailbox (`inbound.imap_url`) for the bounce domain's
//! mail. Issue 15: filled in by the `imap-webhooks` work.

use tokio::sync::watch;

use crate::config::InboundSettings;

use super::Inbound;

pub struct Poller {
    _inbound: Inbound,
}

impl Poller {
    /// `None` when `inbound.imap_url` is empty.
    pub fn from_settings(settings: &InboundSettings, inbound: Inbound) -> Result<Option<Self>, String> {
        if settings.imap_url.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(Self { _inbound: inbound }))
    }

    /// Polls until `stopped` turns true.
    pub async fn run(self, _stopped: watch::Receiver<bool>) {}
}
