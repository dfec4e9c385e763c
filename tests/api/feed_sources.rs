//! Feed sources (issue 13, §4): feeds registered once and polled by
//! Gazette. The feeds are served by Debian's nginx from a temporary
//! directory, so the ETag, Last-Modified and 304 answers are nginx's own,
//! not ours, and nginx's access log says what Gazette asked for. Without
//! nginx these tests are skipped with the reason; with CI=true they must
//! run (`.ci/run` installs nginx).
//!
//! The test nginx listens on 127.0.0.1, so the tests set
//! `feeds.allow_private_addresses = true`; one shows that without it such a
//! source is refused and never requested.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use gazette::db::Db;
use gazette::db::feed_sources::{self, FeedSource, PollResult};
use gazette::with_pool;

use crate::admin::staff_session;
use crate::cli::text;
use crate::helpers::{Backend, ServeProcess, gazette_command, spawn_app_with, test_settings, wait_until};
use crate::nginx::Nginx;

/// A request as nginx's access log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logged {
    method: String,
    uri: String,
    status: u16,
    if_none_match: String,
    if_modified_since: String,
}

/// nginx serving the files of `www/` in its directory, with a log line
/// per request naming its conditional headers. A file named `broken` in
/// `www/` makes every answer a 500.
struct FeedServer(Nginx);

impl FeedServer {
    async fn start() -> Self {
        let nginx = Nginx::start(|dir, port| {
            let www = dir.join("www");
            std::fs::create_dir_all(&www).unwrap();
            // nginx's workers run as an unprivileged user when started as root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&www, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(www.join("ready.txt"), "ready").unwrap();
            let d = dir.display();
            format!(
                "log_format polls escape=none '$request_method|$request_uri|$status|$http_if_none_match|$http_if_modified_since';\n\
                 access_log {d}/access.log polls;\n\
                 types {{ application/rss+xml xml; application/feed+json json; text/plain txt; }}\n\
                 server {{\n\
                 listen 127.0.0.1:{port};\n\
                 root {d}/www;\n\
                 location / {{ if (-f $document_root/broken) {{ return 500; }} }}\n\
                 }}"
            )
        });
        let mut server = Self(nginx);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        server.0.wait_until_it_answers(&client, "/ready.txt").await;
        server
    }

    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }

    fn www(&self) -> PathBuf {
        self.0.dir().join("www")
    }

    /// Writes `www/NAME` with the given modification time (nginx's ETag and
    /// Last-Modified are made of it and the size).
    fn publish(&self, name: &str, body: &str, modified: SystemTime) {
        let path = self.www().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }

    /// Every answer is a 500 until [`FeedServer::mend`].
    fn break_down(&self) {
        std::fs::write(self.www().join("broken"), "").unwrap();
    }

    fn mend(&self) {
        std::fs::remove_file(self.www().join("broken")).unwrap();
    }

    /// The requests for `path` (query included) nginx logged, in order.
    fn requests(&self, path: &str) -> Vec<Logged> {
        let log = std::fs::read_to_string(self.0.dir().join("access.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('|').collect();
                let [method, uri, status, inm, ims] = fields[..] else {
                    panic!("an access log line of another shape: {line}");
                };
                Logged {
                    method: method.to_owned(),
                    uri: uri.to_owned(),
                    status: status.parse().unwrap(),
                    if_none_match: inm.to_owned(),
                    if_modified_since: ims.to_owned(),
                }
            })
            .filter(|l| l.uri == path)
            .collect()
    }
}

/// The instant the feeds' dates count back from: the same for every
/// version of a feed, so an entry's date changes only when a test says so.
static NOW: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

/// An RSS 2.0 feed titled `title` with items `(guid, title, hours ago)`.
fn rss(title: &str, items: &[(&str, &str, i64)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, hours_ago)| {
            let published = (*NOW - chrono::Duration::hours(*hours_ago)).to_rfc2822();
            format!(
                "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
                 <link>https://news.example.org/{guid}</link><pubDate>{published}</pubDate>\
                 <description>{title}: what happened, in one paragraph.</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://news.example.org/</link><description>News</description>{items}</channel></rss>\n"
    )
}

/// A time `seconds` before now, for a file's modification time.
fn ago(seconds: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(seconds)
}

/// `gazette feeds ARGS` on this test's database, with
/// `feeds.allow_private_addresses` as given.
async fn feeds(backend: &Backend, args: &[&str], allow_private: bool) -> Output {
    let database = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        gazette_command()
            .arg("feeds")
            .args(args)
            .env("GAZETTE_DATABASE__URL", database)
            .env("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", allow_private.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Exit 1 with one line on stderr that contains every one of `words`.
fn refused(output: &Output, words: &[&str]) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}{}", text(&output.stdout));
    let said = stderr
        .lines()
        .find(|l| l.starts_with("gazette: ") && !l.starts_with("gazette: configuration"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    for word in words {
        assert!(said.contains(word), "`{word}` not in: {said}");
    }
    said.to_owned()
}

async fn open(backend: &Backend) -> Db {
    Db::connect(&test_settings(backend, 25).database).await.unwrap()
}

async fn source(db: &Db, id: i64) -> FeedSource {
    feed_sources::find(db, id).await.unwrap().expect("the source exists")
}

/// Every article as (url, title, summary, updated_at): what a poll that
/// changes nothing must leave as it was.
async fn articles(db: &Db) -> Vec<(String, String, String, DateTime<Utc>)> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT url, title, summary, updated_at FROM articles ORDER BY url")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

async fn set_times(db: &Db, id: i64, next_poll_at: DateTime<Utc>, last_polled_at: Option<DateTime<Utc>>) {
    with_pool!(db, pool => {
        sqlx::query("UPDATE feed_sources SET next_poll_at = $2, last_polled_at = COALESCE($3, last_polled_at) WHERE id = $1")
            .bind(id)
            .bind(next_poll_at)
            .bind(last_polled_at)
            .execute(pool)
            .await
            .unwrap();
    });
}

pub async fn polls_honour_nginxs_etag_and_304_pick_up_changes_and_back_off_on_500s(backend: Backend) {
    let nginx = FeedServer::start().await;
    let path = "/feed.xml";
    let url = nginx.url(path);
    let first = rss(
        "The Daily Example",
        &[("a", "Floods in the north", 30), ("b", "A bridge opens", 20)],
    );
    nginx.publish("feed.xml", &first, ago(3600));
    let db = open(&backend).await;

    // First poll (`feeds add` polls once): both articles, named after the
    // feed's own title, with nginx's validators kept.
    let added = succeeded(&feeds(&backend, &["add", &url], true).await);
    assert!(
        added.contains(&format!("source 1 added: “127.0.0.1” ({url})")),
        "{added}"
    );
    assert!(
        added.contains(&format!(
            "source 1 “The Daily Example” ({url}): 2 added, 0 updated, 0 unchanged, 0 rejected"
        )),
        "{added}"
    );
    let s = source(&db, 1).await;
    assert_eq!(s.last_result, Some(PollResult::Ok));
    assert_eq!((s.last_added, s.total_added, s.failures), (2, 2, 0));
    // nginx's own validators, asked for apart (another query string, the
    // same file).
    let direct = reqwest::get(format!("{url}?direct")).await.unwrap();
    let header = |name: &str| direct.headers().get(name).unwrap().to_str().unwrap().to_owned();
    let (etag, last_modified) = (header("etag"), header("last-modified"));
    assert_eq!(s.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(s.last_modified.as_deref(), Some(last_modified.as_str()));
    assert_eq!(
        s.next_poll_at - s.last_polled_at.unwrap(),
        chrono::Duration::minutes(60)
    );
    assert_eq!(articles(&db).await.len(), 2);
    let first_request = &nginx.requests(path)[0];
    assert_eq!(
        (first_request.status, first_request.if_none_match.as_str()),
        (200, ""),
        "the first poll is unconditional"
    );

    // Second poll: conditional, and nginx answers 304; nothing changes but
    // the poll's time and result.
    let before = articles(&db).await;
    let polled = succeeded(&feeds(&backend, &["poll", "1"], true).await);
    assert!(
        polled.contains("source 1 “The Daily Example”") && polled.contains("not modified"),
        "{polled}"
    );
    let second = nginx.requests(path).last().unwrap().clone();
    assert_eq!(
        second,
        Logged {
            method: "GET".into(),
            uri: path.into(),
            status: 304,
            if_none_match: etag.clone(),
            if_modified_since: last_modified.clone(),
        }
    );
    assert_eq!(articles(&db).await, before, "a 304 writes no article");
    let after = source(&db, 1).await;
    assert_eq!(after.last_result, Some(PollResult::NotModified));
    assert!(after.last_polled_at > s.last_polled_at);
    assert_eq!((after.last_added, after.total_added), (0, 2));
    assert_eq!(
        (after.etag, after.last_modified),
        (s.etag.clone(), s.last_modified.clone())
    );

    // The feed changes: one entry edited, one new.
    let changed = rss(
        "The Daily Example",
        &[
            ("a", "Floods in the north recede", 30),
            ("b", "A bridge opens", 20),
            ("c", "Schools reopen", 1),
        ],
    );
    nginx.publish("feed.xml", &changed, ago(60));
    let polled = succeeded(&feeds(&backend, &["poll", "1"], true).await);
    assert!(
        polled.contains("1 added, 1 updated, 1 unchanged, 0 rejected"),
        "{polled}"
    );
    assert_eq!(nginx.requests(path).last().unwrap().status, 200);
    let titles: Vec<String> = articles(&db).await.into_iter().map(|a| a.1).collect();
    assert_eq!(
        titles,
        ["Floods in the north recede", "A bridge opens", "Schools reopen"]
    );
    let s = source(&db, 1).await;
    assert_eq!((s.last_added, s.last_updated, s.total_added), (1, 1, 3));
    assert_ne!(s.etag.as_deref(), Some(etag.as_str()), "the new version's ETag is kept");

    // The server fails: each failure is recorded, the streak grows and the
    // next poll backs off (60 minutes × 2^failures), articles stay.
    nginx.break_down();
    let before = articles(&db).await;
    for (failures, minutes) in [(1, 120), (2, 240), (3, 480)] {
        let out = feeds(&backend, &["poll", "1"], true).await;
        refused(&out, &["the poll of source 1 failed"]);
        let said = text(&out.stdout);
        assert!(
            said.contains("failed: `") && said.contains("answered HTTP status 500 Internal Server Error"),
            "{said}"
        );
        let streak = match failures {
            1 => "(1 poll), next try ".to_owned(),
            n => format!("({n} polls in a row), next try "),
        };
        assert!(said.contains("; failing since ") && said.contains(&streak), "{said}");
        let s = source(&db, 1).await;
        assert_eq!(s.last_result, Some(PollResult::Failed));
        assert_eq!(s.failures, failures);
        assert!(
            s.last_error.as_deref().unwrap().contains("HTTP status 500"),
            "{:?}",
            s.last_error
        );
        let polled_at = s.last_polled_at.unwrap();
        assert_eq!(
            s.next_poll_at - polled_at,
            chrono::Duration::minutes(minutes),
            "after {failures} failures"
        );
        assert!(s.failing_since.unwrap() <= polled_at);
        assert_eq!(nginx.requests(path).last().unwrap().status, 500);
    }
    assert_eq!(articles(&db).await, before);
    let listed = succeeded(&feeds(&backend, &["list"], true).await);
    let row = listed.lines().find(|l| l.starts_with("1\t")).expect("source 1 listed");
    let cells: Vec<&str> = row.split('\t').collect();
    assert_eq!(cells[1..3], ["The Daily Example", url.as_str()], "{row}");
    assert!(cells[4].starts_with("failed: `") && cells[4].contains("500"), "{row}");
    assert_eq!(cells[5], "0/3", "{row}");
    assert!(
        cells[6].starts_with("3 in a row since ") && cells[6].contains("next try"),
        "{row}"
    );

    // Back up: the kept validators still match, so a 304 ends the streak.
    nginx.mend();
    let polled = succeeded(&feeds(&backend, &["poll"], true).await);
    assert!(polled.contains("not modified"), "{polled}");
    assert_eq!(nginx.requests(path).last().unwrap().status, 304);
    let s = source(&db, 1).await;
    assert_eq!((s.failures, s.failing_since, s.last_error), (0, None, None));
    assert_eq!(
        s.next_poll_at - s.last_polled_at.unwrap(),
        chrono::Duration::minutes(60)
    );
    assert_eq!(nginx.requests(path).len(), 7, "one request per poll");
    db.close().await;
}

pub async fn feeds_commands_add_list_remove_and_name_what_is_wrong(backend: Backend) {
    let nginx = FeedServer::start().await;
    nginx.publish("feed.xml", &rss("Local News", &[("a", "Floods", 3)]), ago(600));
    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"Evil\u001b[2J\u001b[31m News","items":[{"id":"1","url":"https://news.example.org/j1","title":"A JSON item","content_text":"Body text here.","date_published":"2026-11-01T09:00:00Z"}]}"#;
    nginx.publish("feed.json", json, ago(600));
    let (url, json_url) = (nginx.url("/feed.xml"), nginx.url("/feed.json"));

    let empty = succeeded(&feeds(&backend, &["list"], false).await);
    assert!(empty.contains("no feed sources yet"), "{empty}");

    // A source on this machine is refused without the setting, and never
    // requested; so is one named by a host that resolves here.
    let localhost = url.replace("127.0.0.1", "localhost");
    for refused_url in [&url, &localhost] {
        let out = feeds(&backend, &["add", refused_url], false).await;
        refused(
            &out,
            &["refused address", refused_url.as_str(), "public addresses only"],
        );
    }
    assert!(nginx.requests("/feed.xml").is_empty(), "nothing was requested");
    assert!(succeeded(&feeds(&backend, &["list"], false).await).contains("no feed sources yet"));

    // Not a web address; a bad name; each error names the value.
    for (args, words) in [
        (
            vec!["add", "ftp://example.org/feed"],
            vec!["`ftp://example.org/feed`", "http://"],
        ),
        (
            vec!["add", "example.org/feed.xml"],
            vec!["`example.org/feed.xml`", "http://"],
        ),
        (
            vec!["add", url.as_str(), "--name", "a\u{1b}[31mb"],
            vec!["the name `a\\e[31mb` holds control characters"],
        ),
        (vec!["remove", "7"], vec!["there is no source 7", "gazette feeds list"]),
        (vec!["poll", "7"], vec!["there is no source 7"]),
    ] {
        let out = feeds(&backend, &args, true).await;
        refused(&out, &words);
    }

    // Added with a name staff chose, which the feed's title does not replace.
    let added = succeeded(&feeds(&backend, &["add", &url, "--name", "Our town"], true).await);
    assert!(
        added.contains(&format!("source 1 added: “Our town” ({url})")),
        "{added}"
    );
    assert!(added.contains("1 added, 0 updated, 0 unchanged, 0 rejected"), "{added}");
    // The same address, however written, is the same source.
    let again = url.replace("http://", "HTTP://").replace("/feed.xml", "/./feed.xml");
    let out = feeds(&backend, &["add", &again], true).await;
    refused(
        &out,
        &[&format!("`{url}` is already registered, as source 1 (“Our town”)")],
    );

    // Without a name: the host until the first poll, then the feed's own
    // title, never with its control characters.
    let added = succeeded(&feeds(&backend, &["add", &json_url], true).await);
    assert!(added.contains("source 2 added: “127.0.0.1”"), "{added}");
    let listed = succeeded(&feeds(&backend, &["list"], true).await);
    assert!(!listed.contains('\u{1b}'), "{listed:?}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[0],
        "id\tname\turl\tlast poll\tlast result\tadded (last/total)\tfailing"
    );
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split('\t').collect()).collect();
    assert_eq!(cells.len(), 2, "{listed}");
    assert_eq!(cells[0][..3], ["1", "Our town", url.as_str()]);
    assert_eq!(cells[1][..3], ["2", "Evil [2J [31m News", json_url.as_str()]);
    for row in &cells {
        assert!(row[3].ends_with(" UTC"), "{row:?}");
        assert_eq!(row[4..], ["ok", "1/1", "-"], "{row:?}");
    }

    // Removing a source keeps its articles.
    let removed = succeeded(&feeds(&backend, &["remove", "1"], true).await);
    assert!(
        removed.contains(&format!(
            "source 1 “Our town” ({url}) removed; the articles it brought stay"
        )),
        "{removed}"
    );
    let db = open(&backend).await;
    let count: i64 = with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM articles").fetch_one(pool).await.unwrap()
    });
    assert_eq!(count, 2);
    assert_eq!(feed_sources::list(&db).await.unwrap().len(), 1);
    db.close().await;
    refused(
        &feeds(&backend, &["remove", "1"], true).await,
        &["there is no source 1"],
    );
    // The id of a removed source is never given to another.
    let added = succeeded(&feeds(&backend, &["add", &url], true).await);
    assert!(added.contains("source 3 added"), "{added}");
}

pub async fn staff_add_list_poll_and_remove_sources_on_the_sources_page(backend: Backend) {
    let nginx = FeedServer::start().await;
    let path = "/feed.xml";
    nginx.publish(
        path.trim_start_matches('/'),
        &rss("Local News", &[("a", "Floods", 3), ("b", "Fire", 2)]),
        ago(600),
    );
    let url = nginx.url(path);
    let app = spawn_app_with(&backend, |settings| settings.feeds.allow_private_addresses = true).await;
    let mut staff = staff_session(&app).await;
    let page = staff.page("/admin/sources").await;
    assert!(
        page.contains("<a href=\"/admin/sources\" aria-current=\"page\">Sources</a>"),
        "linked in the nav, marked as the current section"
    );
    assert!(page.contains("No sources yet"), "{page}");

    // A bad address comes back with the reason and the values typed.
    let bad = staff
        .post("/admin/sources", &[("url", "feeds.example.org/rss"), ("name", "Typo")])
        .await;
    assert_eq!(bad.status(), 400);
    let body = bad.text().await.unwrap();
    assert!(body.contains("role=\"alert\""), "{body}");
    assert!(
        body.contains("`feeds.example.org/rss` is not an http:// or https:// address of a feed"),
        "{body}"
    );
    assert!(
        body.contains("value=\"feeds.example.org/rss\"") && body.contains("value=\"Typo\""),
        "{body}"
    );

    // Added: polled at once in the background; the page shows the result.
    let added = staff.post("/admin/sources", &[("url", &url), ("name", "")]).await;
    assert_eq!(added.status(), 303);
    assert_eq!(added.headers()["location"], "/admin/sources");
    let polled = |result: PollResult| {
        let db = app.db.clone();
        async move {
            feed_sources::find(&db, 1)
                .await
                .unwrap()
                .is_some_and(|s| s.last_result == Some(result) && s.claimed_by.is_none())
        }
    };
    wait_until(Duration::from_secs(20), "the first poll", || polled(PollResult::Ok)).await;
    let page = staff.page("/admin/sources").await;
    let row = row_of(&page, 1);
    assert!(row.contains("Local News") && row.contains(&url), "{row}");
    assert!(row.contains("data-result=\"ok\""), "{row}");
    assert!(row.contains("2 <span class=\"small\">(2 in all)</span>"), "{row}");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);

    // Poll now: nginx answers 304.
    let polled_at = feed_sources::find(&app.db, 1).await.unwrap().unwrap().last_polled_at;
    let poll = staff.post("/admin/sources/1/poll", &[]).await;
    assert_eq!(poll.status(), 303);
    wait_until(Duration::from_secs(20), "the poll now", || async {
        let s = feed_sources::find(&app.db, 1).await.unwrap().unwrap();
        s.last_polled_at > polled_at && s.claimed_by.is_none()
    })
    .await;
    assert_eq!(nginx.requests(path).last().unwrap().status, 304);
    let row = row_of(&staff.page("/admin/sources").await, 1);
    assert!(row.contains("data-result=\"not modified\""), "{row}");

    // A failing source shows its streak and last error.
    nginx.break_down();
    staff.post("/admin/sources/1/poll", &[]).await;
    wait_until(Duration::from_secs(20), "the failed poll", || {
        polled(PollResult::Failed)
    })
    .await;
    let row = row_of(&staff.page("/admin/sources").await, 1);
    assert!(row.contains("Failing: 1 failed poll since "), "{row}");
    assert!(row.contains("answered HTTP status 500 Internal Server Error"), "{row}");

    // An id that names no source.
    for missing in ["/admin/sources/99/poll", "/admin/sources/abc/delete"] {
        assert_eq!(staff.post(missing, &[]).await.status(), 404, "{missing}");
    }

    // Removed: gone from the page, its articles stay.
    let removed = staff.post("/admin/sources/1/delete", &[]).await;
    assert_eq!(removed.status(), 303);
    let page = staff.page("/admin/sources").await;
    assert!(page.contains("the articles it brought stay"), "{page}");
    assert!(!page.contains("id=\"source-1\""), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);
}

/// The table row of source `id` on the Sources page.
fn row_of(page: &str, id: i64) -> String {
    let start = page
        .find(&format!("<tr id=\"source-{id}\""))
        .unwrap_or_else(|| panic!("no row for source {id}: {page}"));
    let end = page[start..].find("</tr>").unwrap() + start;
    page[start..end].to_owned()
}

const SERVE: &[&str] = &["serve", "--no-worker", "--no-scheduler"];
const PRIVATE: (&str, &str) = ("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", "true");

pub async fn serve_polls_a_due_source_by_itself(backend: Backend) {
    let nginx = FeedServer::start().await;
    nginx.publish("feed.xml", &rss("Local News", &[("a", "Floods", 3)]), ago(600));
    succeeded(&feeds(&backend, &["add", &nginx.url("/feed.xml")], true).await);
    let db = open(&backend).await;
    let first = source(&db, 1).await;
    // Due a second ago.
    set_times(&db, 1, Utc::now() - chrono::Duration::seconds(1), None).await;
    let mut serve = ServeProcess::start_as(&backend, SERVE, &[PRIVATE]).await;
    wait_until(Duration::from_secs(20), "serve to poll the due source", || async {
        let s = source(&db, 1).await;
        s.last_polled_at > first.last_polled_at && s.claimed_by.is_none()
    })
    .await;
    let s = source(&db, 1).await;
    assert_eq!(s.last_result, Some(PollResult::NotModified));
    assert_eq!(
        s.next_poll_at - s.last_polled_at.unwrap(),
        chrono::Duration::minutes(60)
    );
    assert_eq!(
        nginx.requests("/feed.xml").iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 304]
    );
    assert!(serve.terminate().await.success());

    // The application the tests build the way `serve` does plays the same
    // role: due again, polled again as it starts.
    let before = source(&db, 1).await;
    set_times(&db, 1, Utc::now() - chrono::Duration::seconds(1), None).await;
    let _app = spawn_app_with(&backend, |settings| settings.feeds.allow_private_addresses = true).await;
    wait_until(
        Duration::from_secs(20),
        "the poller role to poll the due source",
        || async {
            let s = source(&db, 1).await;
            s.last_polled_at > before.last_polled_at && s.claimed_by.is_none()
        },
    )
    .await;
    assert_eq!(nginx.requests("/feed.xml").last().unwrap().status, 304);
    db.close().await;
}

pub async fn two_pollers_on_one_database_poll_each_due_source_once(backend: Backend) {
    const SOURCES: usize = 16;
    let nginx = FeedServer::start().await;
    let db = open(&backend).await;
    // Sources due a few seconds from now: both processes are up by then,
    // sleep until that moment and race for the same sources.
    let due = Utc::now() + chrono::Duration::seconds(5);
    for n in 1..=SOURCES {
        let guid = format!("story-{n}");
        nginx.publish(
            &format!("feed-{n}.xml"),
            &rss(&format!("Paper {n}"), &[(&guid, "Floods", 3)]),
            ago(600),
        );
        let url = nginx.url(&format!("/feed-{n}.xml"));
        let added = feed_sources::add(&db, &url, &format!("Paper {n}"), true, None, Utc::now())
            .await
            .unwrap()
            .unwrap();
        set_times(&db, added.id, due, None).await;
    }
    let (one, two) = tokio::join!(
        ServeProcess::start_as(&backend, SERVE, &[PRIVATE]),
        ServeProcess::start_as(&backend, SERVE, &[PRIVATE]),
    );
    let (mut one, mut two) = (one, two);
    wait_until(Duration::from_secs(30), "every source to be polled", || async {
        feed_sources::list(&db)
            .await
            .unwrap()
            .iter()
            .all(|s| s.last_polled_at.is_some() && s.claimed_by.is_none())
    })
    .await;
    // Stopped: no poll is in flight or can start; the log is complete.
    assert!(one.terminate().await.success());
    assert!(two.terminate().await.success());
    for s in feed_sources::list(&db).await.unwrap() {
        assert_eq!(s.last_result, Some(PollResult::Ok), "{}: {:?}", s.url, s.last_error);
        assert_eq!(s.total_added, 1, "{}", s.url);
    }
    for n in 1..=SOURCES {
        let path = format!("/feed-{n}.xml");
        let requests = nginx.requests(&path);
        assert_eq!(requests.len(), 1, "{path} was requested {} times", requests.len());
    }
    db.close().await;
}

pub async fn the_scheduled_dispatch_polls_each_source_once_more_first(backend: Backend) {
    use chrono::Timelike;
    let nginx = FeedServer::start().await;
    let path = "/feed.xml";
    nginx.publish("feed.xml", &rss("Local News", &[("a", "Floods", 3)]), ago(7200));
    succeeded(&feeds(&backend, &["add", &nginx.url(path)], true).await);
    // The scheduled run was 30 minutes ago; the source was last polled an
    // hour before it, and its feed gained an entry in between.
    let at = (Utc::now() - chrono::Duration::minutes(30))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} * * *", at.minute(), at.hour());
    let db = open(&backend).await;
    set_times(
        &db,
        1,
        at + chrono::Duration::minutes(30),
        Some(at - chrono::Duration::hours(1)),
    )
    .await;
    nginx.publish(
        "feed.xml",
        &rss(
            "Local News",
            &[("a", "Floods", 3), ("b", "Late news before the run", 1)],
        ),
        ago(1800),
    );
    let database = backend.database_url().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        gazette_command()
            .args(["dispatch", "--scheduled"])
            .env("GAZETTE_DATABASE__URL", database)
            .env("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", "true")
            .env("GAZETTE_SCHEDULE__ENABLED", "false")
            .env("GAZETTE_SCHEDULE__TIMEZONE", "UTC")
            .env("GAZETTE_SCHEDULE__CRON", cron)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = succeeded(&out);
    assert!(said.contains("issue queued for 0 readers (2 articles)"), "{said}");
    let statuses: Vec<u16> = nginx.requests(path).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200], "one poll before the dispatch");
    let text: String = with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT text FROM issues").fetch_one(pool).await.unwrap()
    });
    assert!(text.contains("Late news before the run"), "{text}");
    db.close().await;
}
