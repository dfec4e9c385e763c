//! `delivery.rate_per_second` is the relay's rate, held by every worker
//! process together: two real `gazette worker` processes on one database
//! (one SQLite file, or one PostgreSQL database) send an issue and some
//! confirmations to one relay, the tests' SMTP server, which notes when
//! each message arrived.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::queue_issue;
use crate::helpers::{Backend, WorkerProcess, spawn_web_only, wait_until};

/// Slots 200 ms apart: far more than the jitter of a message's way to the
/// server, so the arrivals show the slots.
const RATE: usize = 5;
/// What the README promises for this rate: a quarter second's worth,
/// rounded up.
const BURST: usize = 2;
const READERS: usize = 25;
const SIGNUPS: usize = 5;

pub async fn two_workers_together_keep_to_the_relays_rate_confirmations_included(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..READERS).map(|i| format!("reader{i}@example.com")).collect();
    queue_issue(&backend, &readers).await;
    let rate = RATE.to_string();
    let worker = |feedback_id| {
        WorkerProcess::start_with(
            &backend,
            app.smtp.port,
            &[
                ("GAZETTE_DELIVERY__RATE_PER_SECOND", rate.as_str()),
                // Small claims and few senders, so both workers get a share
                // of the issue rather than the first taking it all.
                ("GAZETTE_DELIVERY__BATCH_SIZE", "5"),
                ("GAZETTE_DELIVERY__CONCURRENCY", "4"),
                // Tells the two workers' messages apart at the relay.
                ("GAZETTE_MAIL__FEEDBACK_ID", feedback_id),
            ],
        )
    };
    let workers = [worker("worker:a"), worker("worker:b")];
    wait_until(Duration::from_secs(20), "the issue to start going out", || async {
        !app.smtp.received().is_empty()
    })
    .await;
    // Confirmations go to the same relay: they take slots like digests.
    let newcomers: Vec<String> = (0..SIGNUPS).map(|i| format!("newcomer{i}@example.com")).collect();
    for newcomer in &newcomers {
        assert_eq!(app.sign_up("Newcomer", newcomer).await.status(), 200);
    }
    let total = READERS + SIGNUPS;
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    for worker in workers {
        assert!(worker.stop().await.success());
    }

    let received = app.smtp.received();
    let counts = app.smtp.counts();
    for address in readers.iter().chain(&newcomers) {
        assert_eq!(counts.get(address), Some(&1), "{address}: exactly one message");
    }
    assert_eq!(received.len(), total, "nothing else arrived");
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for message in &received {
        let id = message.parsed().header_raw("Feedback-ID").map(|v| v.trim().to_owned());
        *by_worker.entry(id.unwrap_or_default()).or_default() += 1;
    }
    assert!(
        by_worker.len() == 2 && by_worker.values().all(|&n| n >= total / 5),
        "both workers sent a share: {by_worker:?}"
    );

    // Together, never more than the rate plus the burst in any second; each
    // worker alone at the full rate would send about twice as many.
    let mut arrivals: Vec<_> = received.iter().map(|m| m.at).collect();
    arrivals.sort();
    let busiest = arrivals
        .iter()
        .map(|&start| {
            arrivals
                .iter()
                .filter(|&&at| at >= start && at < start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= RATE + BURST,
        "{busiest} messages arrived within one second; the relay allows {RATE} a second and a burst of {BURST}"
    );
    // And the whole send took as long as the rate says: all but the burst
    // one slot after another, less one slot for the lateness a reserved
    // slot is allowed (a quarter of one) and the first message's new
    // connection.
    let span = *arrivals.last().unwrap() - arrivals[0];
    let least = Duration::from_secs_f64((total - BURST - 1) as f64 / RATE as f64);
    assert!(span >= least, "{total} messages went out in {span:?}, under {least:?}");
}
