//! What a read message does: to the reader it names (bounced, complained,
//! unsubscribed; soft bounces counted), to the stored row (its status and
//! reading), and to the reader's history (`subscriber_events`).
//! Issue 15: filled in by the `policy` work.

use crate::db::Db;
use crate::db::inbound::StoredInbound;
use crate::mail::verp::ReturnPaths;

use super::Policy;
use super::report::Report;

pub async fn apply(
    _db: &Db,
    _paths: Option<&ReturnPaths>,
    _policy: &Policy,
    _message: &StoredInbound,
    _report: &Report,
) -> Result<(), sqlx::Error> {
    Ok(())
}
