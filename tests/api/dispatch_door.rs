//! Every way of sending the week's issue goes through the same door, the
//! dispatch lock: the staff's "send now" waits for a dispatch in progress
//! elsewhere (a scheduler or `gazette dispatch` in another process) just as
//! those wait for each other.

use std::time::Duration;

use gazette::db::Db;
use gazette::db::dispatch_lock::DispatchLock;

use crate::admin::{add_article, add_confirmed_reader, hidden_field, staff_session};
use crate::helpers::{Backend, spawn_web_only, test_settings, wait_until};

/// Requests for an advisory lock in this test's database that are waiting.
const WAITING_FOR_AN_ADVISORY_LOCK: &str = "SELECT COUNT(*) FROM pg_locks \
     WHERE locktype = 'advisory' AND NOT granted \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// PostgreSQL only: SQLite has no lock to wait for (its single writer and
/// the unique week keep a week to one issue there).
pub async fn staff_send_now_waits_for_a_dispatch_in_progress_in_another_process(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_article(&mut staff, "Floods in the north").await;
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");

    // Another process is dispatching: it holds the lock on its own connection.
    let other_process = Db::connect(&test_settings(&backend, 25).database).await.unwrap();
    let dispatching = DispatchLock::acquire(&other_process).await.unwrap();
    let send = tokio::spawn(async move { staff.post("/admin/issues/send", &[("key", &key)]).await });
    wait_until(
        Duration::from_secs(10),
        "the send to wait for the dispatch lock",
        || async { app.count(WAITING_FOR_AN_ADVISORY_LOCK).await == 1 },
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues").await,
        0,
        "nothing is queued while another dispatch runs"
    );

    dispatching.release().await;
    let response = send.await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 1);
    assert_eq!(app.count(WAITING_FOR_AN_ADVISORY_LOCK).await, 0);
    other_process.close().await;
}
