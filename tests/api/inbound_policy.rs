//! What mail coming back does to readers (issue 15, policy): a hard bounce
//! bounces the reader at once, soft bounces after the limit, a policy block
//! never, a complaint unsubscribes and marks them, mail to the unsubscribe
//! address unsubscribes whatever it says; each change is an event on the
//! reader's page, the dashboard shows the last issue's rates and the
//! policy blocks per domain, `/metrics` counts messages by kind, and a
//! bounced or complained reader gets no further copy.
//!
//! Messages to the unsubscribe address go through the whole pipeline
//! (`Inbound::accept`: stored, read, applied). The bounces and complaints
//! are read by the classify work; here their readings are given as
//! `Report`s and applied to stored messages, as the pipeline does.

use std::time::Duration;

use chrono::Utc;
use gazette::db::Db;
use gazette::db::inbound::{self as stored, NewInbound, Stored};
use gazette::domain::{InboundKind, InboundSource, IssueWeek, UnsubscribeToken};
use gazette::inbound::{Arrival, Inbound, Policy, Reason, Report, apply};
use gazette::mail::verp::{Origin, ReturnPaths};
use gazette::with_pool;
use uuid::Uuid;

use crate::admin::{add_confirmed_readers, first_id, staff_session};
use crate::cli::{FIXTURE, FIXTURE_URL, import_fixture, run, text};
use crate::helpers::{Backend, TestApp, WorkerProcess, spawn_app, spawn_web_only, test_settings, wait_until};

const BOUNCE_DOMAIN: &str = "bounces.gazette.test";
const POLICY: Policy = Policy {
    soft_bounce_limit: 3,
    soft_bounce_days: 30,
};

/// The pipeline as the listener and the IMAP poller get it, on the app's
/// database, with a bounce domain.
async fn inbound(app: &TestApp, backend: &Backend) -> Inbound {
    let mut settings = test_settings(backend, app.smtp.port);
    settings.mail.bounce_domain = BOUNCE_DOMAIN.into();
    settings.inbound.soft_bounce_limit = POLICY.soft_bounce_limit;
    settings.inbound.soft_bounce_days = POLICY.soft_bounce_days;
    Inbound::new(app.db.clone(), &settings)
        .await
        .expect("the pipeline starts")
}

async fn readers(app: &TestApp, emails: &[&str]) {
    let readers: Vec<(String, String)> = emails
        .iter()
        .map(|e| (e.to_string(), e.split('@').next().unwrap().to_owned()))
        .collect();
    add_confirmed_readers(app, &readers).await;
}

async fn subscriber_id(db: &Db, email_key: &str) -> Uuid {
    with_pool!(db, pool => sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
        .bind(email_key)
        .fetch_one(pool)
        .await
        .unwrap())
}

async fn status_of(app: &TestApp, email_key: &str) -> String {
    app.subscriber_status(email_key).await.expect("the reader exists")
}

/// The reader's events, oldest first, as `kind: detail`.
async fn events(db: &Db, email_key: &str) -> Vec<String> {
    let rows: Vec<(String, String)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT e.kind, e.detail FROM subscriber_events e JOIN subscribers s ON s.id = e.subscriber_id
         WHERE s.email_key = $1 ORDER BY e.at, e.id")
        .bind(email_key)
        .fetch_all(pool)
        .await
        .unwrap());
    rows.into_iter().map(|(k, d)| format!("{k}: {d}")).collect()
}

/// The stored row's status, kind, reader and issue.
async fn row(db: &Db, id: Uuid) -> (String, Option<String>, Option<Uuid>, Option<Uuid>) {
    with_pool!(db, pool => sqlx::query_as(
        "SELECT status, kind, subscriber_id, issue_id FROM inbound_messages WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap())
}

/// Stores `raw` as the listener would and applies `report` to it, as the
/// pipeline does once the message is read.
async fn arrive(inbound: &Inbound, source: InboundSource, envelope_to: &[String], raw: &str, report: Report) -> Uuid {
    let stored = stored::store(
        inbound.db(),
        &NewInbound {
            source,
            dedupe_key: None,
            envelope_to,
            raw: raw.as_bytes(),
            received_at: Utc::now(),
        },
    )
    .await
    .unwrap();
    let Stored::New(id) = stored else {
        panic!("a new message")
    };
    let message = stored::load(inbound.db(), id).await.unwrap().unwrap();
    apply::apply(inbound.db(), inbound.return_paths(), &POLICY, &message, &report)
        .await
        .unwrap();
    id
}

fn report(kind: InboundKind, reason: Reason, recipient: &str, code: Option<&str>, addressed_to: &[String]) -> Report {
    Report {
        kind,
        reason,
        recipient: Some(recipient.to_owned()),
        status_code: code.map(str::to_owned),
        diagnostic: code.map(|c| format!("550 {c} <{recipient}>: Recipient address rejected")),
        addressed_to: addressed_to.to_vec(),
        original_message_id: None,
    }
}

fn digest_path(paths: &ReturnPaths, week: &str, subscriber: Uuid) -> String {
    let week = IssueWeek::parse(week).unwrap();
    paths.return_path(&Origin::Digest { week, subscriber }).to_string()
}

/// Value of the metric line that starts with `series`.
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

pub async fn bounces_complaints_and_blocks_each_do_what_the_policy_says_and_show_in_the_staff_area(backend: Backend) {
    let app = spawn_app(&backend).await;
    let inbound = inbound(&app, &backend).await;
    let paths = inbound.return_paths().expect("a bounce domain").clone();
    let all = [
        "ada@example.com",
        "bob@example.com",
        "cal@example.net",
        "dan@example.com",
        "eve@example.com",
    ];
    readers(&app, &all).await;
    import_fixture(&backend, Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    let (issue, week): (Uuid, String) =
        with_pool!(&app.db, pool => sqlx::query_as("SELECT id, week FROM issues").fetch_one(pool).await.unwrap());
    let verp = |id| vec![digest_path(&paths, &week, id)];
    let (ada, bob, cal, dan) = (
        subscriber_id(&app.db, "ada@example.com").await,
        subscriber_id(&app.db, "bob@example.com").await,
        subscriber_id(&app.db, "cal@example.net").await,
        subscriber_id(&app.db, "dan@example.com").await,
    );

    // Ada's address is gone: bounced at once, with the issue it was about.
    let raw = "From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered <script>alert(1)</script>\r\n\r\nno such user\x1b[31m\r\n";
    let hard = arrive(
        &inbound,
        InboundSource::Smtp,
        &verp(ada),
        raw,
        report(
            InboundKind::Hard,
            Reason::UserUnknown,
            "ada@example.com",
            Some("5.1.1"),
            &verp(ada),
        ),
    )
    .await;
    assert_eq!(status_of(&app, "ada@example.com").await, "bounced");
    assert_eq!(
        row(&app.db, hard).await,
        ("applied".into(), Some("hard".into()), Some(ada), Some(issue))
    );
    assert_eq!(
        events(&app.db, "ada@example.com").await,
        ["bounced: hard bounce 5.1.1 (userunknown)"]
    );

    // Bob's mailbox is full: the third soft bounce in a row bounces him.
    for n in 1..=3 {
        assert_eq!(
            status_of(&app, "bob@example.com").await,
            "confirmed",
            "before soft bounce {n}"
        );
        arrive(
            &inbound,
            InboundSource::Imap,
            &[],
            "Subject: Delivery delayed\r\n\r\nmailbox full\r\n",
            report(
                InboundKind::Soft,
                Reason::MailboxFull,
                "bob@example.com",
                Some("4.2.2"),
                &verp(bob),
            ),
        )
        .await;
    }
    assert_eq!(status_of(&app, "bob@example.com").await, "bounced");
    assert_eq!(
        events(&app.db, "bob@example.com").await,
        [
            "soft_bounce: soft bounce 4.2.2 (mailboxfull), 1 of 3 within 30 days",
            "soft_bounce: soft bounce 4.2.2 (mailboxfull), 2 of 3 within 30 days",
            "bounced: soft bounce 4.2.2 (mailboxfull), 3 of 3 within 30 days",
        ]
    );

    // Cal's provider refused the newsletter itself: never held against him.
    let blocked = arrive(
        &inbound,
        InboundSource::Smtp,
        &verp(cal),
        "Subject: blocked\r\n\r\n554 5.7.1 blocked\r\n",
        report(
            InboundKind::Policy,
            Reason::Blocked,
            "cal@example.net",
            Some("5.7.1"),
            &verp(cal),
        ),
    )
    .await;
    assert_eq!(status_of(&app, "cal@example.net").await, "confirmed");
    assert_eq!(row(&app.db, blocked).await.0, "applied");
    assert!(events(&app.db, "cal@example.net").await.is_empty());

    // Dan reported the issue as spam: unsubscribed and marked at once.
    arrive(
        &inbound,
        InboundSource::Imap,
        &[],
        "Subject: FW: spam report\r\n\r\nfeedback report\r\n",
        report(
            InboundKind::Complaint,
            Reason::Feedback,
            "dan@example.com",
            None,
            &verp(dan),
        ),
    )
    .await;
    assert_eq!(status_of(&app, "dan@example.com").await, "unsubscribed");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE complained_at IS NOT NULL AND unsubscribed_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        events(&app.db, "dan@example.com").await,
        ["complained: reported a message as spam: unsubscribed"]
    );

    // Eve is on holiday: ignored. A bounce naming Eve without a return path
    // (anyone can write one) changes nothing and waits for staff.
    let holiday = arrive(
        &inbound,
        InboundSource::Smtp,
        &[],
        "Subject: Out of office\r\n\r\nBack on Monday.\r\n",
        report(InboundKind::AutoReply, Reason::Vacation, "eve@example.com", None, &[]),
    )
    .await;
    assert_eq!(row(&app.db, holiday).await.0, "ignored");
    let forged = arrive(
        &inbound,
        InboundSource::Smtp,
        &[],
        "Subject: Undelivered\r\n\r\nno such user\r\n",
        report(
            InboundKind::Hard,
            Reason::UserUnknown,
            "eve@example.com",
            Some("5.1.1"),
            &[],
        ),
    )
    .await;
    assert_eq!(status_of(&app, "eve@example.com").await, "confirmed");
    assert_eq!(
        row(&app.db, forged).await,
        ("unknown".into(), Some("hard".into()), None, None)
    );

    // Applying a message twice does nothing twice.
    let message = stored::load(&app.db, hard).await.unwrap().unwrap();
    let again = report(
        InboundKind::Hard,
        Reason::UserUnknown,
        "ada@example.com",
        Some("5.1.1"),
        &verp(ada),
    );
    apply::apply(&app.db, Some(&paths), &POLICY, &message, &again)
        .await
        .unwrap();
    assert_eq!(events(&app.db, "ada@example.com").await.len(), 1);

    // The staff area: the unknown message first, the raw text escaped.
    let mut staff = staff_session(&app).await;
    let list = staff.page("/admin/inbound").await;
    assert!(
        list.contains("1 unknown") && list.contains("could not be read"),
        "{list}"
    );
    assert_eq!(
        first_id(&list, "/admin/inbound/"),
        forged.to_string(),
        "the unknown one first"
    );
    assert!(list.contains("ada@example.com") && list.contains("userunknown") && list.contains("mailboxfull"));
    let page = staff.page(&format!("/admin/inbound/{hard}")).await;
    // askama escapes < and > as numeric references
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{page}");
    assert!(!page.contains("<script>alert(1)") && !page.contains('\x1b'), "{page}");
    assert!(page.contains("\\u{1b}[31m") && page.contains(&week) && page.contains("userunknown"));
    assert_eq!(
        staff.get(&format!("/admin/inbound/{}", Uuid::now_v7())).await.status(),
        404
    );
    assert_eq!(staff.get("/admin/inbound/not-an-id").await.status(), 404);
    let reader = staff.page(&format!("/admin/subscribers/{bob}")).await;
    assert!(
        reader.contains("soft bounce 4.2.2 (mailboxfull), 3 of 3 within 30 days")
            && reader.contains(&format!("/admin/issues/{week}"))
            && reader.contains("/admin/inbound/"),
        "{reader}"
    );

    // The dashboard: 2 of 5 copies bounced (40 %), 1 complaint (20 %), both
    // over their warnings; one policy block at example.net.
    let dashboard = staff.page("/admin").await;
    assert!(
        dashboard.contains(&format!("What came back from {week}")),
        "{dashboard}"
    );
    assert!(dashboard.contains("<strong>40.00 %</strong>bounced (0 refused, 2 bounced later, of 5 copies)"));
    assert!(
        dashboard.contains("<strong>20.00 %</strong>complained (1)"),
        "{dashboard}"
    );
    assert!(dashboard.contains("more than 2 %") && dashboard.contains("more than 0.1 %"));
    assert!(
        dashboard
            .contains("<tr><td data-label=\"Receiving domain\">example.net</td><td data-label=\"Blocks\">1</td></tr>"),
        "{dashboard}"
    );

    // `/metrics` counts what every process stored, by kind.
    let body = app.scrape_metrics().await.text().await.unwrap();
    for (kind, n) in [
        ("hard", 2.0),
        ("soft", 3.0),
        ("policy", 1.0),
        ("complaint", 1.0),
        ("auto_reply", 1.0),
        ("unsubscribe", 0.0),
        ("unknown", 0.0),
    ] {
        let series = format!("gazette_inbound_messages_total{{kind=\"{kind}\"}}");
        assert_eq!(metric(&body, &series), Some(n), "{series} in {body}");
    }
}

pub async fn mail_to_the_unsubscribe_address_unsubscribes_the_reader_whatever_it_says(backend: Backend) {
    let app = spawn_app(&backend).await;
    let inbound = inbound(&app, &backend).await;
    let paths = inbound.return_paths().unwrap().clone();
    readers(&app, &["ada@example.com", "bob@example.com"]).await;
    let token = UnsubscribeToken::parse(&app.unsubscribe_token("ada@example.com").await).unwrap();
    let address = paths.unsubscribe_address(&token).to_string();
    let arrival = |raw: &str, to: &str, key: Option<&str>| Arrival {
        source: InboundSource::Smtp,
        dedupe_key: key.map(str::to_owned),
        envelope_to: vec![to.to_owned()],
        raw: raw.as_bytes().to_vec(),
    };
    let mail = "From: ada@example.com\r\nSubject: please keep me subscribed!\r\n\r\nI love it.\r\n";
    let stored = inbound
        .accept(arrival(mail, &address.to_uppercase(), Some("smtp:1")))
        .await
        .unwrap();
    assert!(matches!(stored, Stored::New(_)));
    assert_eq!(status_of(&app, "ada@example.com").await, "unsubscribed");
    assert_eq!(
        row(&app.db, stored.id()).await.1.as_deref(),
        Some("unsubscribe"),
        "kind unsubscribe"
    );
    assert_eq!(
        events(&app.db, "ada@example.com").await,
        ["unsubscribed: wrote to their unsubscribe address"]
    );
    // The same message again (a retry by the sending MTA) is one message.
    let again = inbound.accept(arrival(mail, &address, Some("smtp:1"))).await.unwrap();
    assert_eq!(again, Stored::Duplicate(stored.id()));
    // A second mail finds her already gone: ignored, no second event.
    let second = inbound.accept(arrival(mail, &address, None)).await.unwrap();
    assert_eq!(row(&app.db, second.id()).await.0, "ignored");
    assert_eq!(events(&app.db, "ada@example.com").await.len(), 1);

    // Bob's id with a secret that is not his: nobody is unsubscribed.
    let bob = subscriber_id(&app.db, "bob@example.com").await;
    let forged = UnsubscribeToken::from_parts(bob, &[7u8; 16]).unwrap();
    let forged = inbound
        .accept(arrival(mail, paths.unsubscribe_address(&forged).as_ref(), None))
        .await
        .unwrap();
    assert_eq!(status_of(&app, "bob@example.com").await, "confirmed");
    assert_eq!(row(&app.db, forged.id()).await.0, "unknown");

    // A message stored by a process that died before reading it is read at
    // the next start, once.
    let bob_token = UnsubscribeToken::parse(&app.unsubscribe_token("bob@example.com").await).unwrap();
    let to = [paths.unsubscribe_address(&bob_token).to_string()];
    let left = stored::store(
        &app.db,
        &NewInbound {
            source: InboundSource::Imap,
            dedupe_key: Some("imap:INBOX:1:7"),
            envelope_to: &to,
            raw: b"Subject: stop\r\n\r\n",
            received_at: Utc::now(),
        },
    )
    .await
    .unwrap();
    assert_eq!(row(&app.db, left.id()).await.0, "received");
    assert_eq!(inbound.process_received().await.unwrap(), 1);
    assert_eq!(inbound.process_received().await.unwrap(), 0);
    inbound.process(left.id()).await.unwrap();
    assert_eq!(status_of(&app, "bob@example.com").await, "unsubscribed");
    assert_eq!(events(&app.db, "bob@example.com").await.len(), 1);
    let body = app.scrape_metrics().await.text().await.unwrap();
    assert_eq!(
        metric(&body, "gazette_inbound_messages_total{kind=\"unsubscribe\"}"),
        Some(4.0),
        "{body}"
    );
}

pub async fn a_bounced_or_complained_reader_gets_no_further_copy(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let inbound = inbound(&app, &backend).await;
    readers(
        &app,
        &[
            "ada@example.com",
            "bob@example.com",
            "cal@example.com",
            "dan@example.com",
        ],
    )
    .await;
    // A provider's webhook names only the address.
    let by_provider = |kind, reason, email: &str| report(kind, reason, email, None, &[]);
    arrive(
        &inbound,
        InboundSource::Ses,
        &[],
        "{}",
        by_provider(InboundKind::Hard, Reason::UserUnknown, "Dan@Example.com"),
    )
    .await;
    assert_eq!(status_of(&app, "dan@example.com").await, "bounced");

    import_fixture(&backend, Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 3 readers"),
        "a bounced reader is not queued: {}",
        text(&dispatched.stdout)
    );
    // After the issue was queued, before it went out: Ada's address dies,
    // Bob complains about an earlier message.
    arrive(
        &inbound,
        InboundSource::Postmark,
        &[],
        "{}",
        by_provider(InboundKind::Hard, Reason::UserUnknown, "ada@example.com"),
    )
    .await;
    arrive(
        &inbound,
        InboundSource::Mailgun,
        &[],
        "{}",
        by_provider(InboundKind::Complaint, Reason::Feedback, "bob@example.com"),
    )
    .await;
    assert_eq!(status_of(&app, "bob@example.com").await, "unsubscribed");

    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &[]);
    wait_until(Duration::from_secs(30), "the issue to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    worker.stop().await;
    app.smtp.wait_for("cal@example.com", 1).await;
    let received = app.smtp.received();
    let to = |who: &str| {
        received
            .iter()
            .filter(|m| m.recipients.iter().any(|r| r == who))
            .count()
    };
    assert_eq!(
        (
            to("ada@example.com"),
            to("bob@example.com"),
            to("cal@example.com"),
            to("dan@example.com")
        ),
        (0, 0, 1, 0)
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'skipped'")
            .await,
        2
    );
}

/// Runs `update`, whose `$1` is a row's id and `$2` a time `days` ago: how
/// a test sets copies and bounces back in time.
async fn set_days_ago(db: &Db, update: &'static str, id: Uuid, days: i64) {
    let at = Utc::now() - chrono::Duration::days(days);
    let updated = with_pool!(db, pool => sqlx::query(update)
        .bind(id)
        .bind(at)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .unwrap());
    assert!(updated > 0, "{update} changed nothing");
}

/// A reader's copies as the inbound side reads them: a bounce that names
/// only the address (as SES reports one) is put down to the reader's last
/// copy, and a copy that got through since an earlier soft bounce starts
/// the count again. Two issues, their send times set apart.
pub async fn a_bounce_is_put_down_to_the_last_copy_and_a_copy_that_got_through_restarts_the_soft_count(
    backend: Backend,
) {
    let app = spawn_app(&backend).await;
    let inbound = inbound(&app, &backend).await;
    let paths = inbound.return_paths().expect("a bounce domain").clone();
    readers(&app, &["fay@example.com", "gus@example.com"]).await;
    import_fixture(&backend, Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    // The first issue becomes an older week's, so that this week has room
    // for a second, with an article published since.
    let first: Uuid =
        with_pool!(&app.db, pool => sqlx::query_scalar("SELECT id FROM issues").fetch_one(pool).await.unwrap());
    let first_week = "2020-W01";
    let renamed = with_pool!(&app.db, pool => sqlx::query("UPDATE issues SET week = $2 WHERE id = $1")
        .bind(first)
        .bind(first_week)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .unwrap());
    assert_eq!(renamed, 1);
    let published = Utc::now().to_rfc3339();
    let second_url = format!("{FIXTURE_URL}-second-look");
    let imported = crate::cli::import(&backend, &[FIXTURE, "--url", &second_url, "--published", &published]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    wait_until(Duration::from_secs(30), "the second issue to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 2
    })
    .await;
    let second: Uuid = with_pool!(&app.db, pool => sqlx::query_scalar("SELECT id FROM issues WHERE id <> $1")
        .bind(first)
        .fetch_one(pool)
        .await
        .unwrap());
    // The first went out two weeks ago, the second one week ago.
    for (issue, days) in [(first, 14), (second, 7)] {
        set_days_ago(
            &app.db,
            "UPDATE deliveries SET sent_at = $2 WHERE issue_id = $1",
            issue,
            days,
        )
        .await;
    }

    // SES names the address only: the bounce is about Fay's last copy.
    let fay = arrive(
        &inbound,
        InboundSource::Ses,
        &[],
        "Subject: Undelivered\r\n\r\nno such user\r\n",
        report(
            InboundKind::Hard,
            Reason::UserUnknown,
            "fay@example.com",
            Some("5.1.1"),
            &[],
        ),
    )
    .await;
    let fay_id = subscriber_id(&app.db, "fay@example.com").await;
    assert_eq!(
        row(&app.db, fay).await,
        ("applied".into(), Some("hard".into()), Some(fay_id), Some(second))
    );

    // Gus's mailbox was full ten days ago, about the first issue; the
    // second got through since. Another soft bounce about the first (a late
    // report) is the first in a row, not the second.
    let gus = subscriber_id(&app.db, "gus@example.com").await;
    let verp = vec![digest_path(&paths, first_week, gus)];
    let soft_bounce = || {
        let report = report(
            InboundKind::Soft,
            Reason::MailboxFull,
            "gus@example.com",
            Some("4.2.2"),
            &verp,
        );
        arrive(
            &inbound,
            InboundSource::Imap,
            &[],
            "Subject: Delayed\r\n\r\nfull\r\n",
            report,
        )
    };
    let earlier = soft_bounce().await;
    set_days_ago(
        &app.db,
        "UPDATE inbound_messages SET received_at = $2 WHERE id = $1",
        earlier,
        10,
    )
    .await;
    let later = soft_bounce().await;
    assert_eq!(row(&app.db, later).await.3, Some(first));
    assert_eq!(
        events(&app.db, "gus@example.com").await.last().map(String::as_str),
        Some("soft_bounce: soft bounce 4.2.2 (mailboxfull), 1 of 3 within 30 days")
    );
    assert_eq!(status_of(&app, "gus@example.com").await, "confirmed");
}
