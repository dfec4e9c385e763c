//! Article identity (issue 13, §1), through the real `gazette articles
//! import` and the staff area: an entry is its id within its feed (its link
//! when it has none), so no article overwrites another; re-importing a feed
//! changes nothing and says so; a changed entry is updated unless staff
//! edited it; and a database written by the previous schema migrates to
//! this identity without losing or merging an article.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::admin::staff_session;
use crate::cli::{import, text};
use crate::helpers::{Backend, spawn_app, test_settings};

/// A feed entry as the tests write it.
#[derive(Clone)]
struct Entry {
    guid: Option<String>,
    link: String,
    title: String,
    body: String,
    date: Option<String>,
    author: Option<String>,
}

fn entry(guid: &str, link: &str, title: &str) -> Entry {
    Entry {
        guid: Some(guid.to_owned()),
        link: link.to_owned(),
        title: title.to_owned(),
        body: format!("{title} happened on Tuesday. It mattered to many."),
        date: Some("Fri, 27 Nov 2026 09:00:00 GMT".to_owned()),
        author: None,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An RSS 2.0 document titled `title` (the name the digest shows).
fn rss(title: &str, entries: &[Entry]) -> String {
    let items: String = entries
        .iter()
        .map(|e| {
            let guid = e
                .guid
                .as_ref()
                .map(|g| format!("<guid isPermaLink=\"false\">{}</guid>", escape(g)))
                .unwrap_or_default();
            let date = e
                .date
                .as_ref()
                .map(|d| format!("<pubDate>{d}</pubDate>"))
                .unwrap_or_default();
            let author = e
                .author
                .as_ref()
                .map(|a| format!("<dc:creator>{}</dc:creator>", escape(a)))
                .unwrap_or_default();
            format!(
                "<item><title>{}</title><link>{}</link>{guid}{date}{author}<description>{}</description></item>\n",
                escape(&e.title),
                escape(&e.link),
                escape(&format!("<p>{}</p>", e.body))
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{}</title>\
         <link>https://example.org/</link><description>Test feed</description>\n{items}</channel></rss>\n",
        escape(title)
    )
}

/// A directory of its own for one test's feed files.
struct Files(PathBuf);

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("gazette-identity-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `name` and returns its path as the CLI takes it.
    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The summary line `gazette articles import` printed for `feed`.
fn line_for(output: &Output, feed: &str) -> String {
    let stdout = text(&output.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{feed}: ")))
        .unwrap_or_else(|| panic!("no line for {feed} in:\n{stdout}\n{}", text(&output.stderr)))
        .to_owned()
}

async fn imported(backend: &Backend, feeds: &[&str]) -> Output {
    let output = import(backend, feeds).await;
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Imports one feed and checks its summary line.
async fn import_says(backend: &Backend, feed: &str, says: &str) -> Output {
    let output = imported(backend, &[feed]).await;
    assert_eq!(line_for(&output, feed), format!("{feed}: {says}"));
    output
}

async fn open(backend: &Backend) -> gazette::db::Db {
    gazette::db::Db::connect(&test_settings(backend, 25).database)
        .await
        .unwrap()
}

/// `(feed, guid, title)` of every article, and how many there are.
async fn articles(backend: &Backend) -> Vec<(Option<String>, Option<String>, String)> {
    let db = open(backend).await;
    let rows = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT feed, guid, title FROM articles ORDER BY feed, guid, title")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    db.close().await;
    rows
}

fn file_url(path: &str) -> String {
    url::Url::from_file_path(Path::new(path).canonicalize().unwrap())
        .unwrap()
        .to_string()
}

pub async fn two_feeds_numbering_their_items_1_are_two_articles(backend: Backend) {
    let files = Files::new();
    let a = files.write(
        "a.rss",
        &rss(
            "Eurasianet",
            &[
                entry("1", "https://eurasianet.org/talks", "Talks resume"),
                entry("2", "https://eurasianet.org/harvest", "Harvest is late"),
            ],
        ),
    );
    let b = files.write(
        "b.rss",
        &rss(
            "Blog B",
            &[
                entry("1", "https://blog.example.net/first", "First post"),
                entry("2", "https://blog.example.net/second", "Second post"),
            ],
        ),
    );
    // One run, several feeds, a line each.
    let first = imported(&backend, &[&a, &b]).await;
    assert_eq!(
        line_for(&first, &a),
        format!("{a}: 2 added, 0 updated, 0 unchanged, 0 rejected")
    );
    assert_eq!(
        line_for(&first, &b),
        format!("{b}: 2 added, 0 updated, 0 unchanged, 0 rejected")
    );
    let rows = articles(&backend).await;
    let (a_url, b_url) = (file_url(&a), file_url(&b));
    let expected: Vec<(Option<String>, Option<String>, String)> = [
        (&a_url, "1", "Talks resume"),
        (&a_url, "2", "Harvest is late"),
        (&b_url, "1", "First post"),
        (&b_url, "2", "Second post"),
    ]
    .iter()
    .map(|(f, g, t)| (Some(f.to_string()), Some(g.to_string()), t.to_string()))
    .collect::<BTreeSet<_>>()
    .into_iter()
    .collect();
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(sorted, expected);

    // The name each article carries is its feed's title.
    let db = open(&backend).await;
    let names: Vec<(String, Option<String>)> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT url, source_name FROM articles ORDER BY url").fetch_all(pool).await.unwrap()
    });
    db.close().await;
    assert_eq!(
        names,
        [
            ("https://blog.example.net/first".to_owned(), Some("Blog B".to_owned())),
            ("https://blog.example.net/second".to_owned(), Some("Blog B".to_owned())),
            (
                "https://eurasianet.org/harvest".to_owned(),
                Some("Eurasianet".to_owned())
            ),
            ("https://eurasianet.org/talks".to_owned(), Some("Eurasianet".to_owned())),
        ]
    );

    let again = imported(&backend, &[&b, &a]).await;
    assert_eq!(
        line_for(&again, &a),
        format!("{a}: 0 added, 0 updated, 2 unchanged, 0 rejected")
    );
    assert_eq!(
        line_for(&again, &b),
        format!("{b}: 0 added, 0 updated, 2 unchanged, 0 rejected")
    );

    // A feed that fails does not stop the others, and the run says so.
    let missing = files.0.join("gone.rss").display().to_string();
    let mixed = import(&backend, &[&a, &missing, &b]).await;
    assert_eq!(mixed.status.code(), Some(1), "{}", text(&mixed.stderr));
    line_for(&mixed, &a);
    line_for(&mixed, &b);
    let stderr = text(&mixed.stderr);
    assert!(stderr.contains(&format!("cannot read `{missing}`")), "{stderr}");
    assert!(stderr.contains("1 of 3 feeds was not imported"), "{stderr}");
    assert_eq!(articles(&backend).await.len(), 4);
}

/// A podcast's feed: `episodes` items with ids of their own, linking to
/// `links` pages of the show in turn (one: all to its home page).
fn podcast(episodes: usize, links: usize) -> String {
    rss("The Week Podcast", &podcast_entries(episodes, links))
}

pub async fn a_podcast_whose_items_share_a_link_imports_every_episode_and_again_changes_nothing(backend: Backend) {
    let files = Files::new();
    let feed = files.write("podcast.rss", &podcast(131, 1));
    import_says(&backend, &feed, "131 added, 0 updated, 0 unchanged, 0 rejected").await;
    let db = open(&backend).await;
    let (count, links): (i64, i64) = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT url) FROM articles").fetch_one(pool).await.unwrap()
    });
    db.close().await;
    assert_eq!((count, links), (131, 1), "131 episodes, one shared link");
    import_says(&backend, &feed, "0 added, 0 updated, 131 unchanged, 0 rejected").await;
    import_says(&backend, &feed, "0 added, 0 updated, 131 unchanged, 0 rejected").await;
}

pub async fn a_changed_entry_is_updated_and_one_staff_edited_is_kept(backend: Backend) {
    let app = spawn_app(&backend).await;
    let files = Files::new();
    let mut entries = vec![
        entry("a", "https://news.example.org/a", "Floods in the north"),
        entry("b", "https://news.example.org/b", "Markets calm"),
        entry("c", "https://news.example.org/c", "Tram timetable"),
    ];
    let feed = files.write("news.rss", &rss("News", &entries));
    import_says(&backend, &feed, "3 added, 0 updated, 0 unchanged, 0 rejected").await;

    // Staff edit "Markets calm" in the staff area.
    let mut staff = staff_session(&app).await;
    let id: uuid::Uuid = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM articles WHERE guid = 'b'").fetch_one(pool).await.unwrap()
    });
    let page = staff.page(&format!("/admin/articles/{id}")).await;
    assert!(page.contains("Markets calm"), "{page}");
    let saved = staff
        .post(
            &format!("/admin/articles/{id}"),
            &[
                ("title", "Markets hold steady (staff's words)"),
                ("summary", "Prices held; traders waited."),
                ("published", "2026-11-27T09:00"),
                ("include", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);

    // The feed changes the body of "a" and the title of "b".
    entries[0].body = "The river rose overnight. Towns emptied by morning.".to_owned();
    entries[1].title = "Markets calm again".to_owned();
    std::fs::write(&feed, rss("News", &entries)).unwrap();
    import_says(
        &backend,
        &feed,
        "0 added, 1 updated, 1 unchanged, 0 rejected, 1 kept as staff edited",
    )
    .await;
    let rows: Vec<(String, String, String)> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT guid, title, body FROM articles ORDER BY guid").fetch_all(pool).await.unwrap()
    });
    assert_eq!(rows[0].2, "The river rose overnight. Towns emptied by morning.");
    assert_eq!(
        rows[1].1, "Markets hold steady (staff's words)",
        "a staff edit is never overwritten"
    );
    assert_eq!(rows[2].1, "Tram timetable");
    import_says(
        &backend,
        &feed,
        "0 added, 0 updated, 2 unchanged, 0 rejected, 1 kept as staff edited",
    )
    .await;
}

pub async fn entries_without_an_id_are_identified_by_their_link(backend: Backend) {
    let files = Files::new();
    let no_id = |link: &str, title: &str| Entry {
        guid: None,
        ..entry("", link, title)
    };
    let mut entries = vec![
        no_id("https://microblog.example.org/1", "Morning note"),
        no_id("https://microblog.example.org/2", "Noon note"),
        no_id("https://microblog.example.org/3", "Evening note"),
    ];
    let feed = files.write("micro.rss", &rss("Microblog", &entries));
    import_says(&backend, &feed, "3 added, 0 updated, 0 unchanged, 0 rejected").await;
    import_says(&backend, &feed, "0 added, 0 updated, 3 unchanged, 0 rejected").await;
    // A new title and a new text, at the same links: the same two articles.
    entries[0].title = "Morning note, corrected".to_owned();
    entries[1].body = "The noon note says more now. Much more.".to_owned();
    // The feed repeats an entry: the same link, and no id to tell them apart.
    entries.push(no_id("https://microblog.example.org/3", "Evening note, again"));
    std::fs::write(&feed, rss("Microblog", &entries)).unwrap();
    let output = import_says(&backend, &feed, "0 added, 2 updated, 1 unchanged, 1 rejected").await;
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("rejected entry 4 (“Evening note, again”): it repeats entry 3 (the same link, and no id)"),
        "{stderr}"
    );
    let rows = articles(&backend).await;
    let titles: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(titles, ["Morning note, corrected", "Noon note", "Evening note"]);
    assert!(
        rows.iter().all(|(_, guid, _)| guid
            .as_deref()
            .is_some_and(|g| g.starts_with("https://microblog.example.org/"))),
        "an entry without an id is known by its link: {rows:?}"
    );
}

pub async fn the_digest_names_each_storys_source(backend: Backend) {
    let app = spawn_app(&backend).await;
    let files = Files::new();
    let now = chrono::Utc::now();
    let mut story = entry("1", "https://eurasianet.org/talks", "Talks resume");
    story.date = Some(now.to_rfc2822());
    story.author = Some("Ada Lovelace".to_owned());
    let feed = files.write("eurasianet.rss", &rss("Eurasianet", &[story]));
    import_says(&backend, &feed, "1 added, 0 updated, 0 unchanged, 0 rejected").await;
    let mut staff = staff_session(&app).await;
    let page = staff.page("/admin/issues").await;
    let byline = format!("Eurasianet · Ada Lovelace · {}", now.format("%-d %B %Y"));
    assert!(page.contains(&byline), "the text part names the source: {page}");
    let html = staff.get("/admin/issues/preview.html").await.text().await.unwrap();
    assert!(html.contains(&byline), "the HTML part names the source: {html}");
}

/// Saves entries as the release before this one did (`db::articles::save`
/// at schema 0012): found by guid, else by address, updated in place (the
/// guid of the row found stays), else inserted. This is how two feeds
/// numbering their items 1, or a podcast's episodes sharing links, ended up
/// in one row.
async fn import_as_the_previous_release(db: &gazette::db::Db, entries: &[Entry]) {
    let now = chrono::Utc::now();
    for e in entries {
        let mut found: Option<uuid::Uuid> = None;
        if let Some(guid) = &e.guid {
            found = gazette::with_pool!(db, pool => {
                sqlx::query_scalar("SELECT id FROM articles WHERE guid = $1").bind(guid).fetch_optional(pool).await.unwrap()
            });
        }
        if found.is_none() {
            found = gazette::with_pool!(db, pool => {
                sqlx::query_scalar("SELECT id FROM articles WHERE url = $1").bind(&e.link).fetch_optional(pool).await.unwrap()
            });
        }
        match found {
            Some(id) => gazette::with_pool!(db, pool => {
                sqlx::query(
                    "UPDATE articles SET title = $2, body = $3, summary = $3, guid = COALESCE(guid, $4),
                                         published_at = COALESCE($5, published_at)
                     WHERE id = $1",
                )
                    .bind(id)
                    .bind(&e.title)
                    .bind(&e.body)
                    .bind(e.guid.as_deref())
                    .bind(published(e))
                    .execute(pool)
                    .await
                    .unwrap();
            }),
            None => gazette::with_pool!(db, pool => {
                sqlx::query(
                    "INSERT INTO articles (id, url, guid, title, author, published_at, body, summary, summary_source,
                                           created_at, updated_at)
                     VALUES ($1, $2, $3, $4, NULL, $5, $6, $6, 'generated', $7, $7)",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(&e.link)
                .bind(e.guid.as_deref())
                .bind(&e.title)
                .bind(published(e).unwrap_or(now))
                .bind(&e.body)
                .bind(now)
                .execute(pool)
                .await
                .unwrap();
            }),
        }
    }
}

/// An entry's date as the parser reads it.
fn published(e: &Entry) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = chrono::DateTime::parse_from_rfc2822(e.date.as_deref()?).ok()?;
    Some(date.with_timezone(&chrono::Utc))
}

fn podcast_entries(episodes: usize, links: usize) -> Vec<Entry> {
    (1..=episodes)
        .map(|n| {
            let link = match n % links {
                0 => "https://podcast.example.org/".to_owned(),
                page => format!("https://podcast.example.org/season/{page}"),
            };
            let mut e = entry(
                &format!("tag:podcast.example.org,2026:episode-{n}"),
                &link,
                &format!("Episode {n}: the week in review"),
            );
            e.date = Some(format!("Fri, 27 Nov 2026 {:02}:{:02}:00 GMT", n / 60, n % 60));
            e
        })
        .collect()
}

pub async fn a_database_of_the_previous_schema_migrates_and_its_articles_are_adopted_not_lost(backend: Backend) {
    crate::schema::reset(&backend).await;
    crate::schema::build_at(&backend, 12, false).await;
    let files = Files::new();
    let db = open(&backend).await;
    // The previous release imported: a podcast of 131 episodes over 9
    // links (9 rows), two feeds numbering their items 1 (one row, holding
    // the second feed's item), an entry without an id (its guid the old
    // parser's hash of link and title), and staff added two articles by
    // hand, editing one.
    import_as_the_previous_release(&db, &podcast_entries(131, 9)).await;
    let a_items = [
        entry("1", "https://eurasianet.org/talks", "Talks resume"),
        entry("2", "https://eurasianet.org/harvest", "Harvest is late"),
    ];
    let b_items = [entry("1", "https://blog.example.net/first", "First post")];
    import_as_the_previous_release(&db, &a_items).await;
    import_as_the_previous_release(&db, &b_items).await;
    let mut no_id = entry("", "https://microblog.example.org/1", "Morning note");
    no_id.guid = Some("8c1f0e9d2b7a4f65a1c3e5d7b9f1a3c5".to_owned());
    import_as_the_previous_release(&db, std::slice::from_ref(&no_id)).await;
    no_id.guid = None;
    let mut by_hand = entry("", "https://news.example.org/by-hand", "Added by hand");
    by_hand.guid = None;
    let mut edited = entry("", "https://news.example.org/edited", "Edited by staff");
    edited.guid = None;
    import_as_the_previous_release(&db, &[by_hand.clone(), edited.clone()]).await;
    gazette::with_pool!(&db, pool => {
        sqlx::query("UPDATE articles SET edited_by_staff = $1, summary_source = 'staff' WHERE url = $2")
            .bind(true)
            .bind(&edited.link)
            .execute(pool)
            .await
            .unwrap();
    });
    type Row = (uuid::Uuid, String, Option<String>, String);
    let old_rows: Vec<Row> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT id, url, guid, title FROM articles ORDER BY id").fetch_all(pool).await.unwrap()
    });
    db.close().await;
    // 9 podcast rows, 2 from the two feeds, 1 without an id, 2 by hand.
    assert_eq!(old_rows.len(), 14, "{old_rows:?}");

    let migrated = crate::cli::run(&backend, &["migrate"]).await;
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let db = open(&backend).await;
    let after: Vec<Row> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT id, url, guid, title FROM articles ORDER BY id").fetch_all(pool).await.unwrap()
    });
    db.close().await;
    assert_eq!(after, old_rows, "the migration keeps every row as it was");

    // Each episode's own row comes back; the 9 rows are adopted by guid.
    let show = files.write("podcast.rss", &podcast(131, 9));
    import_says(&backend, &show, "122 added, 9 updated, 0 unchanged, 0 rejected").await;
    import_says(&backend, &show, "0 added, 0 updated, 131 unchanged, 0 rejected").await;
    // Feed A adopts the row its item 1 shares with feed B's; feed B's item 1
    // is an article of its own again.
    let a = files.write("a.rss", &rss("Eurasianet", &a_items));
    let b = files.write("b.rss", &rss("Blog B", &b_items));
    import_says(&backend, &a, "0 added, 1 updated, 1 unchanged, 0 rejected").await;
    import_says(&backend, &b, "1 added, 0 updated, 0 unchanged, 0 rejected").await;
    // An entry without an id adopts the row at its link; a feed entry at
    // the address of a hand-added article adopts it, unless staff edited it.
    let micro = files.write("micro.rss", &rss("Microblog", &[no_id]));
    import_says(&backend, &micro, "0 added, 0 updated, 1 unchanged, 0 rejected").await;
    let mut linking = entry("n1", &by_hand.link, "Added by hand");
    linking.body = by_hand.body.clone();
    let mut to_edited = entry("n2", &edited.link, "The feed's title");
    to_edited.body = "The feed's text. Quite different.".to_owned();
    let news = files.write("news.rss", &rss("News", &[linking, to_edited]));
    import_says(
        &backend,
        &news,
        "0 added, 0 updated, 1 unchanged, 0 rejected, 1 kept as staff edited",
    )
    .await;
    for feed in [&show, &a, &b, &micro] {
        let again = imported(&backend, &[feed]).await;
        let line = line_for(&again, feed);
        assert!(line.contains(": 0 added, 0 updated, "), "{line}");
    }

    // No row was lost; each of the old rows is still there under its id,
    // and every episode and item has its own.
    let db = open(&backend).await;
    let ids: BTreeSet<uuid::Uuid> = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT id FROM articles").fetch_all(pool).await.unwrap()
    })
    .into_iter()
    .collect();
    for (id, url, _, _) in &old_rows {
        assert!(ids.contains(id), "{url} ({id}) was lost");
    }
    let per_feed: Vec<(Option<String>, i64)> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT feed, COUNT(*) FROM articles GROUP BY feed ORDER BY feed").fetch_all(pool).await.unwrap()
    });
    let edited_title: String = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT title FROM articles WHERE url = $1").bind(&edited.link).fetch_one(pool).await.unwrap()
    });
    db.close().await;
    let count = |path: &str| {
        per_feed
            .iter()
            .find(|(f, _)| f.as_deref() == Some(file_url(path).as_str()))
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (count(&show), count(&a), count(&b), count(&micro), count(&news)),
        (131, 2, 1, 1, 1)
    );
    assert_eq!(
        per_feed.iter().find(|(f, _)| f.is_none()).map(|(_, n)| *n),
        Some(1),
        "only the staff-edited article is still hand-added"
    );
    assert_eq!(edited_title, "Edited by staff");
    assert_eq!(ids.len(), 131 + 2 + 1 + 1 + 1 + 1);
}
