//! Several relays (`mail.relays`): the worker spreads an issue over them
//! by weight, sends past a relay it cannot reach without losing or
//! repeating anyone and without costing an attempt, puts that relay on a
//! cool-down the operator sees on `/metrics` and the dashboard, and uses it
//! again once it is back. Each relay is a real SMTP server of its own.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use gazette::config::{RelayList, RelaySettings, Settings};

use crate::admin::staff_session;
use crate::engine::queue_issue;
use crate::helpers::{Backend, Outage, SmtpSink, TestApp, free_port, spawn_app_with_smtp, wait_until};

fn readers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("reader{i}@example.com")).collect()
}

/// A relay on this machine's `port`, with `mail.smtp`'s other settings.
fn relay(settings: &Settings, port: u16, weight: u32, rate: Option<u32>) -> RelaySettings {
    let mut relay = RelaySettings::single(&settings.mail.smtp);
    relay.smtp.port = port;
    relay.weight = weight;
    relay.rate_per_second = rate;
    relay
}

fn identity(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

/// Copies per reader over every relay together.
fn copies(sinks: &[&SmtpSink]) -> BTreeMap<String, usize> {
    let mut all = BTreeMap::new();
    for sink in sinks {
        for (reader, n) in sink.counts() {
            *all.entry(reader).or_insert(0) += n;
        }
    }
    all
}

async fn wait_for_issue_sent(app: &TestApp) {
    wait_until(Duration::from_secs(40), "the issue to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
}

/// What `check` gives once it gives something, within 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics(app: &TestApp) -> String {
    app.scrape_metrics().await.text().await.unwrap()
}

/// The value of one series of the exposition, if it is there.
fn series(text: &str, name_and_labels: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

pub async fn a_relay_down_from_the_start_cools_down_and_every_reader_gets_the_issue_once_through_the_other(
    backend: Backend,
) {
    const READERS: usize = 200;
    const CONCURRENCY: usize = 4;
    let up = SmtpSink::start();
    let down = free_port();
    let app = spawn_app_with_smtp(&backend, up.clone(), |s| {
        // 20 a second: the issue takes about ten seconds, long enough for
        // the down relay's cool-downs to grow to 4 and 8 s while it goes
        // out (1, 2, 4, 8 s: one failed trial after each).
        s.mail.relays = RelayList(vec![relay(s, up.port, 1, Some(20)), relay(s, down, 1, None)]);
        s.delivery.concurrency = CONCURRENCY;
    })
    .await;
    let mut staff = staff_session(&app).await;
    let everyone = readers(READERS);
    queue_issue(&backend, &everyone).await;

    let dashboard_row = |page: &str, port: u16| {
        page.split("<tr>")
            .find(|row| row.contains(&identity(port)))
            .map(str::to_owned)
    };
    // A cool-down with at least 3 s left, so that /metrics, read next,
    // must show it too: a shorter one may end between the two reads.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = dashboard_row(&staff.page("/admin").await, down);
        let until = row.as_deref().and_then(|r| {
            let at = r.split("cooling down until ").nth(1)?.get(..8)?;
            chrono::NaiveTime::parse_from_str(at, "%H:%M:%S").ok()
        });
        let left = until.map(|until| until - chrono::Utc::now().time());
        if left.is_some_and(|left| left >= chrono::TimeDelta::seconds(3)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed the down relay cooling down for 3 s more: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cooling = format!("gazette_relay_cooling_down{{relay=\"{}\"}}", identity(down));
    let seen_cooling = metrics(&app).await;
    assert_eq!(
        series(&seen_cooling, &cooling),
        Some(1),
        "/metrics shows the down relay cooling down, as the dashboard did:\n{seen_cooling}"
    );
    wait_for_issue_sent(&app).await;

    let counts = up.counts();
    for reader in &everyone {
        assert_eq!(
            counts.get(reader),
            Some(&1),
            "{reader}: one copy, through the relay that is up"
        );
    }
    assert_eq!(up.received().len(), READERS, "nothing else arrived");
    // The relay it could not reach cost no attempt: each copy went out on
    // its first claim.
    assert_eq!(
        app.count("SELECT CAST(MAX(attempts) AS BIGINT) FROM deliveries").await,
        1
    );

    // Tried only until it cooled down (the sends already on their way,
    // and one try after each cool-down: 1, 2, 4 s), not for every other
    // message as a weight of 1 against 1 would without a cool-down (~100).
    let unreachable = format!(
        "gazette_relay_messages_total{{relay=\"{}\",outcome=\"unreachable\"}}",
        identity(down)
    );
    let sent = format!(
        "gazette_relay_messages_total{{relay=\"{}\",outcome=\"sent\"}}",
        identity(up.port)
    );
    let text = eventually("the workers' last figures", || async {
        let text = metrics(&app).await;
        (series(&text, &sent) == Some(READERS as u64)).then_some(text)
    })
    .await;
    let tries = series(&text, &unreachable).expect("the down relay's figures");
    assert!(
        (2..=CONCURRENCY as u64 + 6).contains(&tries),
        "the down relay was tried {tries} times for {READERS} messages:\n{text}"
    );

    let dashboard = staff.page("/admin").await;
    let row = dashboard_row(&dashboard, down).expect("the dashboard lists the down relay");
    assert!(
        row.contains(&format!("<td data-label=\"Unreachable\">{tries}</td>")),
        "its tries: {row}"
    );
    let up_row = dashboard_row(&dashboard, up.port).expect("the dashboard lists the relay that is up");
    assert!(
        up_row.contains("healthy") && up_row.contains(&format!("<td data-label=\"Sent\">{READERS}</td>")),
        "{up_row}"
    );
    assert!(
        seen_cooling.contains(&format!(
            "gazette_relay_cooling_down_until_seconds{{relay=\"{}\"}}",
            identity(down)
        )),
        "{seen_cooling}"
    );
}

pub async fn a_relay_that_goes_down_mid_issue_and_comes_back_is_used_again_and_nobody_is_lost(backend: Backend) {
    const READERS: usize = 160;
    let a = SmtpSink::start();
    let b = SmtpSink::start();
    let app = spawn_app_with_smtp(&backend, a.clone(), |s| {
        let mut b_relay = relay(s, b.port, 1, Some(15));
        // Bounds what can be in flight on B when it goes down.
        b_relay.connections = NonZeroUsize::new(2);
        s.mail.relays = RelayList(vec![relay(s, a.port, 1, Some(15)), b_relay]);
        s.delivery.concurrency = 4;
    })
    .await;
    let everyone = readers(READERS);
    queue_issue(&backend, &everyone).await;

    wait_until(Duration::from_secs(20), "B to take a share of the issue", || async {
        b.received().len() >= 10
    })
    .await;
    b.go_down();
    let a_then = a.received().len();
    wait_until(Duration::from_secs(20), "A to send on alone", || async {
        a.received().len() >= a_then + 20
    })
    .await;
    let b_before = b.received().len();
    b.come_back();
    wait_for_issue_sent(&app).await;

    let counts = copies(&[&a, &b]);
    for reader in &everyone {
        assert!(counts.contains_key(reader), "{reader} got nothing");
    }
    // A copy B had taken in as it went down, whose answer never arrived,
    // is sent again: at most B's two connections' worth.
    let total: usize = counts.values().sum();
    assert!(
        total - READERS <= 2,
        "{} second copies; at most the 2 in flight on B when it went down",
        total - READERS
    );
    let b_after = b.received().len();
    assert!(
        b_after > b_before,
        "B is used again once it is back: {b_before} copies before, {b_after} after"
    );
}

pub async fn messages_are_spread_over_the_relays_by_weight(backend: Backend) {
    const READERS: usize = 400;
    let heavy = SmtpSink::start();
    let light = SmtpSink::start();
    let app = spawn_app_with_smtp(&backend, heavy.clone(), |s| {
        s.mail.relays = RelayList(vec![relay(s, heavy.port, 3, None), relay(s, light.port, 1, None)]);
    })
    .await;
    let everyone = readers(READERS);
    queue_issue(&backend, &everyone).await;
    wait_for_issue_sent(&app).await;

    let counts = copies(&[&heavy, &light]);
    assert!(everyone.iter().all(|r| counts.get(r) == Some(&1)), "one copy each");
    // Weights 3 and 1: 300 expected on the heavy one, with a standard
    // deviation of about 8.7; 265..=335 is four of them either way (an even
    // spread, 200, is far outside).
    let on_heavy = heavy.received().len();
    assert!(
        (265..=335).contains(&on_heavy),
        "{on_heavy} of {READERS} through the relay of weight 3, {} through the one of weight 1",
        light.received().len()
    );
}

pub async fn a_relay_that_answers_421_at_the_greeting_passes_its_mail_to_the_other_at_no_attempt(backend: Backend) {
    const READERS: usize = 30;
    let up = SmtpSink::start();
    let busy = SmtpSink::start();
    busy.go_down_as(Outage::Busy);
    let app = spawn_app_with_smtp(&backend, up.clone(), |s| {
        s.mail.relays = RelayList(vec![relay(s, busy.port, 1, None), relay(s, up.port, 1, None)]);
        s.delivery.concurrency = 4;
    })
    .await;
    let everyone = readers(READERS);
    queue_issue(&backend, &everyone).await;
    wait_for_issue_sent(&app).await;

    let counts = up.counts();
    assert!(
        everyone.iter().all(|r| counts.get(r) == Some(&1)),
        "one copy each, through the relay that greets: {counts:?}"
    );
    assert!(busy.received().is_empty());
    // Tried (the messages that picked it while it was not yet cooling down
    // may have waited on one connection together, so one is enough).
    assert!(
        busy.connections() >= 1,
        "the busy relay was tried: {}",
        busy.connections()
    );
    assert_eq!(
        app.count("SELECT CAST(MAX(attempts) AS BIGINT) FROM deliveries").await,
        1
    );
}
