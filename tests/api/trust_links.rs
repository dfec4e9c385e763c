//! Issue 10, points 2 and 8: a reader's link goes only where the template
//! put it (never into an article that carries the old placeholder or other
//! template-looking text), a cancelled issue leaves the archive, and every
//! path that names an issue's week reads it in `schedule.timezone`.

use std::process::Command;
use std::time::Duration;

use chrono::{Datelike, Duration as Days, TimeZone, Utc};
use gazette::config::{CronSchedule, ScheduleTimezone};

use crate::admin::{STAFF_EMAIL, StaffClient, add_article, add_confirmed_reader, hidden_field, staff_session};
use crate::cli::{import, text};
use crate::helpers::{
    BASE_URL, Backend, Received, TestApp, WorkerProcess, spawn_app, spawn_app_with, spawn_web_only, wait_until,
};

const EVIL_URL: &str = "https://evil.example/r?u=%%UNSUBSCRIBE_URL%%";
const EVIL_TITLE: &str = "Win %%UNSUBSCRIBE_URL%% {{ unsubscribe_url }}";
const EVIL_SUMMARY: &str = "Click %%UNSUBSCRIBE_URL%% and {{ unsubscribe_url }} to claim it.";

/// Imports, through `gazette articles import`, a feed whose one item carries
/// the old placeholder and template syntax in its link, title and summary.
async fn import_hostile_feed(backend: &Backend) {
    let dir = std::env::temp_dir().join(format!("gazette-links-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = dir.join("evil.rss");
    let published = (Utc::now() - Days::days(1)).to_rfc2822();
    std::fs::write(
        &feed,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Evil</title><link>https://evil.example/</link><description>x</description>
<item><title>{EVIL_TITLE}</title><link>{EVIL_URL}</link><guid>evil-1</guid>
<pubDate>{published}</pubDate><description>{EVIL_SUMMARY}</description></item>
</channel></rss>
"#
        ),
    )
    .unwrap();
    let imported = import(backend, &[&feed.display().to_string()]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(text(&imported.stdout).contains("1 added"), "{}", text(&imported.stdout));
    std::fs::remove_dir_all(dir).ok();
}

/// The message's header block, unfolded.
fn headers_of(message: &Received) -> String {
    let raw = String::from_utf8_lossy(&message.raw);
    let end = raw.find("\r\n\r\n").expect("a header block");
    raw[..end].replace("\r\n ", " ").replace("\r\n\t", " ")
}

/// `link` (an unsubscribe link with its token) is in the List-Unsubscribe
/// header and in each part's footer, once, and nowhere else; the hostile
/// article arrives as its literal text.
/// `preferences`: the reader's preferences link, which a copy rendered
/// since issue 16 has in its footer too (and one from before has not).
fn assert_link_only_in_headers_and_footer(message: &Received, link: &str, preferences: Option<&str>) {
    let token = link
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("a token in the link");
    let in_footer = 1 + usize::from(preferences.is_some());
    let headers = headers_of(message);
    assert_eq!(headers.matches(token).count(), 1, "{headers}");
    let list_unsubscribe = message
        .parsed()
        .header_raw("List-Unsubscribe")
        .unwrap_or_default()
        .to_owned();
    assert!(
        list_unsubscribe.replace("\r\n", "").contains(&format!("<{link}>")),
        "{list_unsubscribe}"
    );
    let (html, plain) = (message.html(), message.text().replace("\r\n", "\n"));
    assert_eq!(html.matches(token).count(), in_footer, "{html}");
    assert!(
        html.contains(&format!(
            r#"<a class="muted" href="{}" style="color:#555555;">Unsubscribe</a>"#,
            link.replace('&', "&amp;")
        )),
        "{html}"
    );
    assert_eq!(plain.matches(token).count(), in_footer, "{plain}");
    assert!(plain.contains(&format!("\nUnsubscribe: {link}\n")), "{plain}");
    if let Some(preferences) = preferences {
        assert!(
            html.contains(&format!(
                r#"<a class="muted" href="{preferences}" style="color:#555555;">Manage your subscription</a>"#
            )),
            "{html}"
        );
        assert!(
            plain.contains(&format!("\nManage your subscription: {preferences}\n")),
            "{plain}"
        );
    }
    // The article, literally: its link leads where it said, with no one's token.
    assert!(html.contains(&format!(r#"href="{EVIL_URL}""#)), "{html}");
    assert!(html.contains(EVIL_TITLE) && html.contains(EVIL_SUMMARY), "{html}");
    assert!(plain.contains(&format!("[1] {EVIL_URL}\n")), "{plain}");
    assert!(plain.contains(EVIL_TITLE) && plain.contains(EVIL_SUMMARY), "{plain}");
    let subject = message.parsed().subject().unwrap_or_default().to_owned();
    assert!(subject.contains(EVIL_TITLE), "{subject}");
}

/// A reader's unsubscribe link in their copy of the issue of `week`.
fn link_of(token: &str, week: &str) -> String {
    format!("{BASE_URL}/unsubscribe?token={token}&issue={week}")
}

fn preferences_of(token: &str) -> String {
    format!("{BASE_URL}/preferences?token={token}")
}

/// Staff's "send now", through its confirmation page; the issue's page it
/// leads to.
async fn send_now(staff: &mut StaffClient) -> String {
    let confirm = staff.page("/admin/issues/send").await;
    let response = staff
        .post("/admin/issues/send", &[("key", &hidden_field(&confirm, "key"))])
        .await;
    assert_eq!(response.status(), 303);
    location(&response)
}

/// The week an issue's page (`/admin/issues/2026-W48`) is about.
fn week_of(issue_page: &str) -> String {
    issue_page.rsplit('/').next().unwrap().to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub async fn a_placeholder_in_an_article_never_receives_a_readers_link(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    import_hostile_feed(&backend).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;

    // The admin's preview: the frame and the text part show the article as
    // it is, with a stand-in at the one link place.
    let preview = staff.get("/admin/issues/preview.html").await.text().await.unwrap();
    assert_eq!(preview.matches("#unsubscribe").count(), 1, "{preview}");
    assert!(preview.contains(&format!(r#"href="{EVIL_URL}""#)), "{preview}");
    let page = staff.page("/admin/issues").await;
    assert_eq!(page.matches("own unsubscribe link)").count(), 1, "{page}");
    assert!(page.contains(&format!("[1] {EVIL_URL}")), "{page}");

    // A staff test send: its links unsubscribe nobody (they lead to the
    // page that says it was a test), and sit in the footer only.
    let key = hidden_field(&page, "key");
    let response = staff
        .post("/admin/issues/test", &[("key", &key), ("recipients", "")])
        .await;
    assert_eq!(response.status(), 303);
    let test = app.smtp.wait_for(STAFF_EMAIL, 1).await.remove(0);
    let plain = test.text();
    let nobody = format!("{BASE_URL}/test-send");
    let html = test.html();
    assert_eq!(html.matches(&nobody).count(), 2, "{html}");
    assert_eq!(plain.matches(&nobody).count(), 2, "{plain}");
    assert!(!html.contains("token=") && !plain.contains("token="), "{plain}");
    assert!(html.contains(&format!(
        r#"<a class="muted" href="{nobody}" style="color:#555555;">Unsubscribe</a>"#
    )));
    assert!(html.contains(&format!(r#"href="{EVIL_URL}""#)) && plain.contains(&format!("[1] {EVIL_URL}")));

    // The issue, to each reader.
    let week = week_of(&send_now(&mut staff).await);
    for reader in ["ada@example.com", "bob@example.com"] {
        let digest = app.smtp.wait_for(reader, 1).await.remove(0);
        let token = app.unsubscribe_token(reader).await;
        assert_link_only_in_headers_and_footer(&digest, &link_of(&token, &week), Some(&preferences_of(&token)));
    }

    // The archive page and its feed: the article as it is, no one's link
    // (nor the email's footer: the page is in the site's layout).
    let page = app.get(&format!("/archive/{week}")).await.text().await.unwrap();
    assert!(
        page.contains(&format!(r#"href="{EVIL_URL}""#))
            && !page.contains("token=")
            && !page.contains("/unsubscribe")
            && !page.contains("/preferences"),
        "{page}"
    );
    let feed = app.get("/archive/feed.xml").await.text().await.unwrap();
    assert!(
        feed.contains(EVIL_TITLE) && !feed.contains("token=") && !feed.contains("/unsubscribe"),
        "{feed}"
    );
    let parsed = feed_rs::parser::parse(feed.as_bytes()).expect("a valid Atom feed");
    assert!(parsed.entries[0].title.as_ref().unwrap().content.contains(EVIL_TITLE));
}

/// An issue queued by the previous version (its parts hold the old
/// placeholder, no link places recorded) still goes out after the upgrade,
/// with the reader's link in the footer only.
pub async fn an_issue_queued_before_the_upgrade_goes_out_with_the_link_in_its_footer_only(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    import_hostile_feed(&backend).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    let week = week_of(&send_now(&mut staff).await);
    // Rewrite the row as the previous version stored it.
    let id: uuid::Uuid = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM issues").fetch_one(pool).await.unwrap()
    });
    let (_, issue) = gazette::db::issues::rendered(&app.db, id, gazette::i18n::Language::ENGLISH)
        .await
        .unwrap()
        .unwrap();
    // The previous version's footer had the one link.
    let copy = issue.reader_copy(gazette::domain::ReaderText {
        unsubscribe: "%%UNSUBSCRIBE_URL%%",
        preferences: "",
        greeting: "",
    });
    let (html, text) = (copy.html, copy.text);
    assert!(
        html.matches("%%UNSUBSCRIBE_URL%%").count() > 1,
        "the article's and the footer's"
    );
    gazette::with_pool!(&app.db, pool => {
        sqlx::query(
            "UPDATE issues SET html = $1, html_links = NULL, text = $2, text_links = NULL, lead_title = NULL,
                               web_html = NULL
             WHERE id = $3",
        )
            .bind(&html)
            .bind(&text)
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    });

    let worker = WorkerProcess::start(&backend, app.smtp.port);
    let digest = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(worker.stop().await.success());
    assert_link_only_in_headers_and_footer(
        &digest,
        &link_of(&app.unsubscribe_token("ada@example.com").await, &week),
        None,
    );
    let page = app.get(&format!("/archive/{week}")).await.text().await.unwrap();
    assert_eq!(page.matches(r#"href="/unsubscribe""#).count(), 1, "{page}");
    assert!(page.contains(&format!(r#"href="{EVIL_URL}""#)), "{page}");
}

async fn feed_entries(app: &TestApp) -> usize {
    let feed = app.get("/archive/feed.xml").await.text().await.unwrap();
    feed_rs::parser::parse(feed.as_bytes())
        .expect("a valid Atom feed")
        .entries
        .len()
}

pub async fn a_cancelled_issue_leaves_the_archive_and_its_feed(backend: Backend) {
    // No worker: the copies stay queued until staff cancel them.
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_article(&mut staff, "Floods in the north").await;
    let issue = send_now(&mut staff).await;
    let week = week_of(&issue);
    let listed = format!(r#"href="/archive/{week}""#);
    assert!(app.get("/archive").await.text().await.unwrap().contains(&listed));
    assert_eq!(app.get(&format!("/archive/{week}")).await.status(), 200);
    assert_eq!(feed_entries(&app).await, 1);

    assert_eq!(
        staff
            .post(&format!("{issue}/cancel"), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    assert!(staff.page(&issue).await.contains("cancelled"));
    let archive = app.get("/archive").await.text().await.unwrap();
    assert!(
        !archive.contains(&listed) && !archive.contains("Floods in the north"),
        "{archive}"
    );
    assert_eq!(app.get(&format!("/archive/{week}")).await.status(), 404);
    assert_eq!(feed_entries(&app).await, 0);
}

/// `gazette dispatch` with extra environment variables.
async fn dispatch_cli(backend: &Backend, env: &'static [(&'static str, &'static str)]) -> std::process::Output {
    let url = backend.database_url().to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_gazette"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("dispatch")
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_MAIL__FROM", "The Test Gazette <news@gazette.test>")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The scheduler's Monday-midnight run in Tokyo (Sunday 15:00 in UTC), the
/// `gazette dispatch` command and the admin's "send now" later in the week
/// all name the same week: Tokyo's, not UTC's.
pub async fn the_scheduler_the_cli_and_send_now_agree_on_the_week_in_the_schedules_zone(backend: Backend) {
    let tokyo = chrono_tz::Asia::Tokyo;
    let now = Utc::now().with_timezone(&tokyo);
    let monday = now.date_naive() - Days::days(i64::from(now.weekday().num_days_from_monday()));
    let run = tokyo
        .from_local_datetime(&monday.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let iso = now.iso_week();
    let week = format!("{}-W{:02}", iso.year(), iso.week());
    let utc_iso = run.iso_week();
    assert_ne!(
        format!("{}-W{:02}", utc_iso.year(), utc_iso.week()),
        week,
        "the run falls on a Sunday in UTC"
    );

    let setup = spawn_web_only(&backend).await;
    crate::cli::import_fixture(&backend, run - Days::hours(1)).await;
    add_confirmed_reader(&setup, "ada@example.com", "Ada").await;

    // A process that starts after the run catches it up, as of the run.
    let app = spawn_app_with(&backend, |settings| {
        settings.schedule.enabled = true;
        settings.schedule.cron = CronSchedule::parse("0 0 * * MON").unwrap();
        settings.schedule.timezone = ScheduleTimezone::parse("Asia/Tokyo").unwrap();
        settings.schedule.grace_hours = 8 * 24;
        // A subject that shows the issue's date.
        settings.digest.subject =
            gazette::config::SubjectTemplate::parse("Weekly digest — {date}: {lead_title}").unwrap();
    })
    .await;
    wait_until(Duration::from_secs(10), "the missed run to be caught up", || async {
        app.count("SELECT COUNT(*) FROM issues").await == 1
    })
    .await;
    let (stored, subject): (String, String) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT week, subject FROM issues").fetch_one(pool).await.unwrap()
    });
    assert_eq!(stored, week, "the scheduled run's week is Tokyo's");
    let date = monday.format("%-d %B %Y").to_string();
    assert!(subject.contains(&date), "dated Monday in Tokyo: {subject}");

    let cli = dispatch_cli(&backend, &[("GAZETTE_SCHEDULE__TIMEZONE", "Asia/Tokyo")]).await;
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    assert_eq!(
        text(&cli.stdout).trim(),
        format!("{week}: already dispatched; nothing queued")
    );

    let mut staff = staff_session(&app).await;
    let asked = staff.get("/admin/issues/send").await;
    assert_eq!(
        location(&asked),
        format!("/admin/issues/{week}"),
        "the week has its issue"
    );
    let key = uuid::Uuid::new_v4().to_string();
    let sent = staff.post("/admin/issues/send", &[("key", &key)]).await;
    assert_eq!(sent.status(), 303);
    assert_eq!(location(&sent), format!("/admin/issues/{week}"));
    assert!(
        staff
            .page(&format!("/admin/issues/{week}"))
            .await
            .contains("had already been sent")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 1);
    let page = staff.page("/admin/issues").await;
    assert!(page.contains(&week), "the admin's issue page names {week}");
}
