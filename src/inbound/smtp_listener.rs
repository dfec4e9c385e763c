//! The SMTP/LMTP listener (`inbound.smtp_listen`) the operator's MTA
//! hands the bounce domain to. Issue 15: filled in by the `listener` work.

use std::net::TcpListener;

use tokio::sync::watch;

use super::Inbound;

pub struct Listener {
    _listener: TcpListener,
    _inbound: Inbound,
}

impl Listener {
    pub fn new(listener: TcpListener, inbound: Inbound) -> Self {
        Self {
            _listener: listener,
            _inbound: inbound,
        }
    }

    /// Serves until `stopped` turns true.
    pub async fn run(self, _stopped: watch::Receiver<bool>) {}
}
