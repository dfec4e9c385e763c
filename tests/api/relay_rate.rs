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
    let busiest = busiest_second(&arrivals);
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

/// The most arrivals within any one second.
fn busiest_second(arrivals: &[std::time::Instant]) -> usize {
    arrivals
        .iter()
        .map(|&start| {
            arrivals
                .iter()
                .filter(|&&at| at >= start && at < start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// With `mail.relays` (given in the environment, as relay URLs), each
/// relay's own `rate_per_second` is held by both workers together, at that
/// relay's server; and a `gazette worker` serves its own metrics, with its
/// relays' figures, on `metrics.listen`.
pub async fn two_workers_keep_each_relays_own_rate(backend: Backend) {
    const FAST: usize = 8;
    const FAST_BURST: usize = 2;
    const SLOW: usize = 4;
    const SLOW_BURST: usize = 1;
    let app = spawn_web_only(&backend).await;
    let other = crate::helpers::SmtpSink::start();
    let readers: Vec<String> = (0..40).map(|i| format!("reader{i}@example.com")).collect();
    queue_issue(&backend, &readers).await;
    let relays = format!(
        "smtp://127.0.0.1:{}?rate_per_second={FAST}&weight=2, smtp://127.0.0.1:{}?rate_per_second={SLOW}",
        app.smtp.port, other.port
    );
    let metrics_port = crate::helpers::free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    // mail.smtp stays at its defaults (127.0.0.1:25): setting it as well
    // as mail.relays is refused.
    let worker = |listen: &str| {
        WorkerProcess::start_with(
            &backend,
            25,
            &[
                ("GAZETTE_MAIL__RELAYS", relays.as_str()),
                ("GAZETTE_DELIVERY__BATCH_SIZE", "5"),
                ("GAZETTE_DELIVERY__CONCURRENCY", "4"),
                ("GAZETTE_METRICS__LISTEN", listen),
            ],
        )
    };
    let workers = [worker(&listen), worker("127.0.0.1:0")];
    app.wait_until_the_issue_and_all_mail_are_sent().await;

    let scrape = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .expect("the worker serves /metrics")
        .text()
        .await
        .unwrap();
    for worker in workers {
        assert!(worker.stop().await.success());
    }
    let mut counts = app.smtp.counts();
    for (reader, n) in other.counts() {
        *counts.entry(reader).or_default() += n;
    }
    for reader in &readers {
        assert_eq!(counts.get(reader), Some(&1), "{reader}: exactly one message");
    }
    for (sink, rate, burst) in [(&app.smtp, FAST, FAST_BURST), (&other, SLOW, SLOW_BURST)] {
        let mut arrivals: Vec<_> = sink.received().iter().map(|m| m.at).collect();
        arrivals.sort();
        // Weights 2 and 1 over 40: ~13 on the slower, below 3 about once in 5 000 runs.
        assert!(arrivals.len() >= 3, "each relay took a share: {}", arrivals.len());
        let busiest = busiest_second(&arrivals);
        assert!(
            busiest <= rate + burst,
            "{busiest} messages arrived within one second at the relay of rate {rate} (burst {burst})"
        );
        let span = *arrivals.last().unwrap() - arrivals[0];
        let least = Duration::from_secs_f64((arrivals.len() - burst - 1) as f64 / rate as f64);
        assert!(
            span >= least,
            "{} messages reached the relay of rate {rate} in {span:?}, under {least:?}",
            arrivals.len()
        );
    }
    for port in [app.smtp.port, other.port] {
        let series = format!("gazette_relay_messages_total{{relay=\"smtp://127.0.0.1:{port}\",outcome=\"sent\"}}");
        assert!(scrape.contains(&series), "{series} in the worker's metrics:\n{scrape}");
    }
    assert!(scrape.contains("gazette_smtp_send_seconds_bucket"), "{scrape}");
}
