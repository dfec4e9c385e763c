//! Workers prove they are alive, so a killed worker's claims go back to
//! the queue within seconds (not when their lease runs out), a live but
//! slow worker's claims are never taken, and a worker that loses its proof
//! (its database connection dropped) stops sending what it claimed under
//! it and keeps every outcome until the database takes it. The lease is set
//! to 300 s in each test, so only the proof of life can explain recovery
//! in seconds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::engine::queue_issue;
use crate::helpers::{Backend, TestApp, WorkerProcess, spawn_web_only, wait_until};
use crate::smtp_server::Received;

fn reader(i: usize) -> String {
    format!("reader{i}@example.com")
}

async fn wait_for_issue_sent(app: &TestApp, limit: Duration) {
    wait_until(limit, "the issue to be delivered to every reader", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
}

/// The Message-ID header of a message as the server received it.
fn message_id(received: &Received) -> String {
    let text = String::from_utf8_lossy(&received.raw);
    text.split("\r\n")
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id").then(|| value.trim().to_owned())
        })
        .expect("every copy has a Message-ID")
}

/// Each reader's copies at the server, by address.
fn copies_by_reader(app: &TestApp) -> BTreeMap<String, Vec<Received>> {
    let mut by_reader: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for received in app.smtp.received() {
        for recipient in &received.recipients {
            by_reader.entry(recipient.clone()).or_default().push(received.clone());
        }
    }
    by_reader
}

/// Every reader got the issue; the readers who got it twice, each of whose
/// copies carry the same Message-ID (so their mail program shows one).
fn check_copies(app: &TestApp, readers: &[String]) -> usize {
    let by_reader = copies_by_reader(app);
    let missing: Vec<&String> = readers.iter().filter(|r| !by_reader.contains_key(*r)).collect();
    assert!(missing.is_empty(), "{} readers got nothing: {missing:?}", missing.len());
    let mut repeated = 0;
    for (reader, copies) in &by_reader {
        assert!(copies.len() <= 2, "{reader} got {} copies", copies.len());
        if copies.len() == 2 {
            repeated += 1;
            assert_eq!(
                message_id(&copies[0]),
                message_id(&copies[1]),
                "{reader}'s two copies are one message"
            );
        }
    }
    repeated
}

const CONCURRENCY: usize = 8;
const BATCH: usize = 50;

fn fast_env() -> Vec<(&'static str, String)> {
    vec![
        ("GAZETTE_DELIVERY__RATE_PER_SECOND", "100".into()),
        ("GAZETTE_DELIVERY__BATCH_SIZE", BATCH.to_string()),
        ("GAZETTE_DELIVERY__CONCURRENCY", CONCURRENCY.to_string()),
        ("GAZETTE_DELIVERY__LEASE_SECONDS", "300".into()),
    ]
}

fn start_worker(backend: &Backend, app: &TestApp, env: &[(&'static str, String)]) -> WorkerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    WorkerProcess::start_with(backend, app.smtp.port, &env)
}

/// The copies the server has taken so far, once the server has finished
/// reading what a killed client had already written (a message whose end
/// arrived just before the kill is still being stored).
async fn settled_received(app: &TestApp) -> usize {
    let mut last = app.smtp.received().len();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = app.smtp.received().len();
        if now == last {
            return now;
        }
        last = now;
    }
}

pub async fn a_killed_workers_claims_are_sent_within_seconds_not_after_its_lease(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..400).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let env = fast_env();
    let worker = start_worker(&backend, &app, &env);
    wait_until(Duration::from_secs(20), "the first copies to arrive", || async {
        app.smtp.received().len() >= 100
    })
    .await;
    drop(worker); // SIGKILL: no chance to record or release anything
    let received = settled_received(&app).await;
    assert!(received < readers.len(), "the kill came mid-issue");
    let recorded = app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await as usize;
    let claimed = app
        .count("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'")
        .await;
    assert!(claimed > 0, "the dead worker left claimed rows behind");
    // What may be sent twice: the copies the server took whose outcome the
    // dead worker had not recorded. Measured at the server; bounded by the
    // senders' messages in flight, the outcome queue (two batches) and the
    // recorder's batch being written.
    let unrecorded = received - recorded;
    assert!(
        unrecorded <= CONCURRENCY + 3 * BATCH,
        "{unrecorded} sent but unrecorded at the kill"
    );

    let restarted = Instant::now();
    let worker = start_worker(&backend, &app, &env);
    // 300-odd copies at 100 a second: a few seconds, where waiting out the
    // lease would take 300.
    wait_for_issue_sent(&app, Duration::from_secs(25)).await;
    let took = restarted.elapsed();
    assert!(worker.stop().await.success());
    let repeated = check_copies(&app, &readers);
    assert!(
        repeated <= unrecorded,
        "{repeated} readers got two copies; {unrecorded} were sent but unrecorded at the kill"
    );
    eprintln!(
        "kill -9 ({}): {received} sent at the kill, {unrecorded} of them unrecorded, {claimed} claimed; \
         the restarted worker finished in {took:?}; {repeated} second copies",
        backend.database_url().split(':').next().unwrap_or("")
    );
}

pub async fn a_live_but_slow_worker_keeps_its_claims(backend: Backend) {
    // Four messages a second (the relay's rate, shared by both workers)
    // keep the first worker's claimed rows waiting for seconds.
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..40).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let env = vec![
        ("GAZETTE_DELIVERY__RATE_PER_SECOND", "4".to_owned()),
        ("GAZETTE_DELIVERY__BATCH_SIZE", "10".to_owned()),
        ("GAZETTE_DELIVERY__CONCURRENCY", "2".to_owned()),
        ("GAZETTE_DELIVERY__LEASE_SECONDS", "300".to_owned()),
    ];
    let slow = start_worker(&backend, &app, &env);
    wait_until(Duration::from_secs(20), "the first copy to arrive", || async {
        !app.smtp.received().is_empty()
    })
    .await;
    let first: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM workers").fetch_one(pool).await.unwrap()
    })
    .to_string();
    let claimed_by_first = || async {
        gazette::with_pool!(&app.db, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sending' AND claimed_by = $1",
            )
            .bind(uuid::Uuid::parse_str(&first).unwrap())
            .fetch_one(pool)
            .await
            .unwrap()
        })
    };
    let second = start_worker(&backend, &app, &env);
    wait_until(Duration::from_secs(10), "the second worker to prove itself", || async {
        app.count("SELECT COUNT(*) FROM workers").await == 2
    })
    .await;
    // The second worker sweeps dead workers every second; three sweeps
    // later, the first worker still holds rows it claimed before.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = claimed_by_first().await;
    assert!(
        still > 0,
        "the live worker's claims were taken from it while it waited for the rate"
    );
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(slow.stop().await.success());
    assert!(second.stop().await.success());
    let repeated = check_copies(&app, &readers);
    assert_eq!(repeated, 0, "no reader gets a second copy from two live workers");
}

/// Stops the test's own PostgreSQL database as a restart would, without
/// touching the server other tests share: new connections are refused and
/// every open one is ended. Returns the connection that did it, the only
/// one left.
async fn take_database_down(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let name = database_name(url);
    // From another database: PostgreSQL refuses to close the one a
    // connection is in.
    let (server, _) = url.rsplit_once('/').unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    // The name is checked to be a plain identifier (see `database_name`).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    admin
}

async fn bring_database_back(url: &str, mut admin: sqlx::PgConnection) {
    use sqlx::Connection;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
        database_name(url)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
}

fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap();
    let name = path.split('?').next().unwrap();
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
    name.to_owned()
}

pub async fn a_database_outage_mid_issue_loses_no_outcome_and_everyone_reconnects(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..300).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = start_worker(&backend, &app, &fast_env());
    wait_until(Duration::from_secs(20), "the first copies to arrive", || async {
        app.smtp.received().len() >= 80
    })
    .await;
    let proven_before: uuid::Uuid = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM workers").fetch_one(pool).await.unwrap()
    });

    let admin = take_database_down(backend.database_url()).await;
    let health = app.get("/health_check").await;
    assert_eq!(health.status(), 503, "the outage is reported while it lasts");
    assert_eq!(health.text().await.unwrap(), "database unavailable\n");
    // The worker notices within a second that its proof is gone and starts
    // no send after that: a row it claimed may be another worker's now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = app.smtp.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.smtp.received().len(),
        during,
        "no send started while the worker had no proof of life"
    );
    assert!(during < readers.len(), "the outage came mid-issue");
    bring_database_back(backend.database_url(), admin).await;

    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert_eq!(app.get("/health_check").await.status(), 200, "serve reconnected");
    let proven_after: uuid::Uuid = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM workers").fetch_one(pool).await.unwrap()
    });
    assert_ne!(proven_after, proven_before, "the worker proved itself again");
    assert!(worker.stop().await.success());
    // Every outcome was kept through the outage and written after it, so
    // no copy went out twice.
    let repeated = check_copies(&app, &readers);
    assert_eq!(repeated, 0, "readers with a second copy");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await,
        readers.len() as i64
    );
}
