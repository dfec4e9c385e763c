//! Articles keep the language they were published in (issue 16): a feed's
//! own declaration, or the language staff declared for its source, which
//! wins; the digest lists each reader's language first, and with
//! `digest.languages = "reader"` only theirs and those of unknown
//! language. The feeds are served by the test's own HTTP server, the
//! sources added and the issue dispatched with the real `gazette`, and
//! each reader's copy read from the test SMTP server.

use std::process::Output;
use std::time::Duration;

use chrono::Utc;
use gazette::db::feed_sources;
use gazette::db::feed_sources::PollResult;
use gazette::with_pool;

use crate::admin::{add_confirmed_readers, first_id, staff_session};
use crate::cli::{serve_feed, text};
use crate::helpers::{Backend, TestApp, gazette_command, spawn_app_with, wait_until};

const RUSSIAN_READER: &str = "aigerim@example.com";
const ENGLISH_READER: &str = "ada@example.com";

/// Stories of the English feed, the Russian one and one that declares no
/// language, each `(title, hours ago)`: newest first, the languages take
/// turns, so "newest first" alone would mix them.
const ENGLISH: [(&str, i64); 2] = [
    ("Floods reach the northern towns", 1),
    ("Elections called for spring", 3),
];
const RUSSIAN: [(&str, i64); 2] = [
    ("Паводок дошёл до северных городов", 2),
    ("Выборы назначены на весну", 4),
];
const UNDECLARED: [(&str, i64); 1] = [("Bazaar opens by the river", 5)];

/// An RSS 2.0 feed declaring `language` (or none), served at its own
/// address on this machine; returns the address.
async fn serve(name: &str, language: Option<&str>, stories: &[(&str, i64)]) -> String {
    let now = Utc::now();
    let items: String = stories
        .iter()
        .enumerate()
        .map(|(i, (title, hours_ago))| {
            let published = (now - chrono::Duration::hours(*hours_ago)).to_rfc2822();
            format!(
                "<item><guid>https://news.example.org/{name}/{i}</guid><title>{title}</title>\
                 <pubDate>{published}</pubDate><description>{title}: what happened.</description></item>"
            )
        })
        .collect();
    let language = language
        .map(|tag| format!("<language>{tag}</language>"))
        .unwrap_or_default();
    let feed = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{name}</title>\
         <link>https://news.example.org/{name}/</link>{language}{items}</channel></rss>\n"
    );
    let port = serve_feed(Box::leak(feed.into_bytes().into_boxed_slice())).await;
    format!("http://127.0.0.1:{port}/feed.rss")
}

/// The real `gazette ARGS…` on the test's database, feeds on this machine
/// allowed, with `env` besides.
async fn gazette(backend: &Backend, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = gazette_command();
    command
        .args(args)
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", "true")
        .env("GAZETTE_MAIL__FROM", "The Test Gazette <news@gazette.test>");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("gazette runs"))
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

async fn start(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |settings| settings.feeds.allow_private_addresses = true).await
}

/// A Russian and an English reader.
async fn add_readers(app: &TestApp) {
    add_confirmed_readers(
        app,
        &[
            (ENGLISH_READER.into(), "Ada".into()),
            (RUSSIAN_READER.into(), "Айгерим".into()),
        ],
    )
    .await;
    with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET language = 'ru' WHERE email_key = $1")
            .bind(RUSSIAN_READER)
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
}

/// `gazette feeds add URL ARGS…`, which polls the source once.
async fn add_source(backend: &Backend, url: &str, args: &[&str]) -> String {
    let mut all = vec!["feeds", "add", url];
    all.extend_from_slice(args);
    let added = succeeded(&gazette(backend, &all, &[]).await);
    assert!(added.contains("added, 0 updated"), "{added}");
    added
}

/// The article's language tag, `None` when unknown.
async fn language_of(app: &TestApp, title: &str) -> Option<String> {
    with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT language FROM articles WHERE title = $1")
            .bind(title)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// `gazette dispatch` with `digest.languages` as given; the issue is sent
/// by the app's worker.
async fn dispatch(backend: &Backend, languages: &str) {
    let dispatched = gazette(backend, &["dispatch"], &[("GAZETTE_DIGEST__LANGUAGES", languages)]).await;
    assert!(succeeded(&dispatched).contains("issue queued for 2 readers"));
}

/// A reader's copy: its subject and the stories it lists, in their order
/// in the text part.
struct Copy {
    subject: String,
    stories: Vec<&'static str>,
}

async fn copy_for(app: &TestApp, reader: &str) -> Copy {
    let mail = app.smtp.wait_for(reader, 1).await.remove(0);
    assert!(mail.is_digest());
    let text = mail.text();
    let mut stories: Vec<(usize, &'static str)> = ENGLISH
        .iter()
        .chain(&RUSSIAN)
        .chain(&UNDECLARED)
        .filter_map(|(title, _)| text.find(title).map(|at| (at, *title)))
        .collect();
    stories.sort();
    Copy {
        subject: mail.parsed().subject().expect("a subject").to_owned(),
        stories: stories.into_iter().map(|(_, title)| title).collect(),
    }
}

/// The article count of each language's rendering, by tag.
async fn article_counts(app: &TestApp) -> Vec<(String, i32)> {
    with_pool!(&app.db, pool => {
        let default: i32 = sqlx::query_scalar("SELECT article_count FROM issues").fetch_one(pool).await.unwrap();
        let mut counts: Vec<(String, i32)> =
            sqlx::query_as("SELECT language, article_count FROM issue_translations ORDER BY language")
                .fetch_all(pool)
                .await
                .unwrap();
        counts.insert(0, ("en".to_owned(), default));
        counts
    })
}

pub async fn each_reader_gets_the_stories_in_their_language_first(backend: Backend) {
    let app = start(&backend).await;
    add_readers(&app).await;
    for (name, language, stories) in [
        ("english", Some("en-GB"), &ENGLISH[..]),
        ("russian", Some("ru"), &RUSSIAN[..]),
        ("undeclared", None, &UNDECLARED[..]),
    ] {
        let url = serve(name, language, stories).await;
        add_source(&backend, &url, &[]).await;
    }
    assert_eq!(language_of(&app, ENGLISH[0].0).await.as_deref(), Some("en"));
    assert_eq!(language_of(&app, RUSSIAN[0].0).await.as_deref(), Some("ru"));
    assert_eq!(language_of(&app, UNDECLARED[0].0).await, None);

    dispatch(&backend, "all").await;
    let russian = copy_for(&app, RUSSIAN_READER).await;
    assert_eq!(
        russian.stories,
        [RUSSIAN[0].0, RUSSIAN[1].0, ENGLISH[0].0, ENGLISH[1].0, UNDECLARED[0].0]
    );
    assert!(
        russian.subject.starts_with(&format!("{} — ", RUSSIAN[0].0)),
        "the lead story is the first Russian one: {}",
        russian.subject
    );
    let english = copy_for(&app, ENGLISH_READER).await;
    assert_eq!(
        english.stories,
        [ENGLISH[0].0, ENGLISH[1].0, RUSSIAN[0].0, RUSSIAN[1].0, UNDECLARED[0].0]
    );
    assert!(
        english.subject.starts_with(&format!("{} — ", ENGLISH[0].0)),
        "{}",
        english.subject
    );
    assert_eq!(article_counts(&app).await, [("en".to_owned(), 5), ("ru".to_owned(), 5)]);
}

pub async fn with_reader_languages_each_reader_gets_only_theirs_and_unknown_ones(backend: Backend) {
    let app = start(&backend).await;
    add_readers(&app).await;
    for (name, language, stories) in [
        ("english", Some("en"), &ENGLISH[..]),
        ("russian", Some("ru-RU"), &RUSSIAN[..]),
        ("undeclared", None, &UNDECLARED[..]),
    ] {
        let url = serve(name, language, stories).await;
        add_source(&backend, &url, &[]).await;
    }
    dispatch(&backend, "reader").await;
    let russian = copy_for(&app, RUSSIAN_READER).await;
    assert_eq!(russian.stories, [RUSSIAN[0].0, RUSSIAN[1].0, UNDECLARED[0].0]);
    assert!(russian.subject.starts_with(RUSSIAN[0].0), "{}", russian.subject);
    let english = copy_for(&app, ENGLISH_READER).await;
    assert_eq!(english.stories, [ENGLISH[0].0, ENGLISH[1].0, UNDECLARED[0].0]);
    assert_eq!(article_counts(&app).await, [("en".to_owned(), 3), ("ru".to_owned(), 3)]);
}

/// With "reader", a language with no story of its own (nor one of unknown
/// language) this week gets every story rather than an empty digest.
pub async fn with_reader_languages_a_language_without_stories_gets_them_all(backend: Backend) {
    let app = start(&backend).await;
    add_readers(&app).await;
    let url = serve("english", Some("en"), &ENGLISH).await;
    add_source(&backend, &url, &[]).await;
    dispatch(&backend, "reader").await;
    let russian = copy_for(&app, RUSSIAN_READER).await;
    assert_eq!(russian.stories, [ENGLISH[0].0, ENGLISH[1].0]);
    assert!(russian.subject.starts_with(ENGLISH[0].0), "{}", russian.subject);
    assert_eq!(
        copy_for(&app, ENGLISH_READER).await.stories,
        [ENGLISH[0].0, ENGLISH[1].0]
    );
    assert_eq!(article_counts(&app).await, [("en".to_owned(), 2), ("ru".to_owned(), 2)]);
}

/// The row of source `id` on the sources page.
fn source_row(page: &str, id: i64) -> &str {
    let start = page
        .find(&format!("<tr id=\"source-{id}\""))
        .unwrap_or_else(|| panic!("source {id} on {page}"));
    let end = page[start..].find("</tr>").expect("the row ends") + start;
    &page[start..end]
}

async fn polled(app: &TestApp, id: i64, since: chrono::DateTime<Utc>) {
    wait_until(Duration::from_secs(20), "the source's poll", || async {
        feed_sources::find(&app.db, id)
            .await
            .unwrap()
            .is_some_and(|s| s.last_result == Some(PollResult::Ok) && s.last_polled_at.is_some_and(|at| at >= since))
    })
    .await;
}

/// Staff declare a source's language on the Sources page (or with `gazette
/// feeds add --language`), over what the feed says; they can go back to
/// the feed's own; a language not offered is refused with the reason.
pub async fn a_source_language_declared_by_staff_overrides_the_feeds_own(backend: Backend) {
    let app = start(&backend).await;
    let mut staff = staff_session(&app).await;
    // Both feeds say they are English; both are Russian.
    let first = serve("first", Some("en"), &RUSSIAN[..1]).await;
    let second = serve("second", Some("en"), &RUSSIAN[1..]).await;

    staff.page("/admin/sources").await;
    let refused = staff
        .post("/admin/sources", &[("url", &first), ("name", ""), ("language", "de")])
        .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Language: “de” is not one of the languages offered.") && page.contains(&first),
        "{page}"
    );
    assert!(feed_sources::list(&app.db).await.unwrap().is_empty());

    let before = Utc::now();
    let added = staff
        .post("/admin/sources", &[("url", &first), ("name", ""), ("language", "ru")])
        .await;
    assert_eq!(added.status(), 303);
    polled(&app, 1, before).await;
    assert_eq!(language_of(&app, RUSSIAN[0].0).await.as_deref(), Some("ru"));
    // Importing the source's feed by hand labels its articles as polling does.
    let imported = succeeded(&gazette(&backend, &["articles", "import", &first], &[]).await);
    assert!(imported.contains("0 added, 0 updated, 1 unchanged"), "{imported}");
    assert_eq!(language_of(&app, RUSSIAN[0].0).await.as_deref(), Some("ru"));
    let page = staff.page("/admin/sources").await;
    assert!(
        source_row(&page, 1).contains(r#"<option value="ru" lang="ru" selected>Русский</option>"#),
        "{page}"
    );

    let unknown = gazette(&backend, &["feeds", "add", &second, "--language", "de"], &[]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("`de` is not a language Gazette has a catalogue for (en, ru)"),
        "{}",
        text(&unknown.stderr)
    );
    let added = add_source(&backend, &second, &["--language", "ru-RU"]).await;
    assert!(added.contains("its articles in ru whatever the feed says"), "{added}");
    assert_eq!(language_of(&app, RUSSIAN[1].0).await.as_deref(), Some("ru"));

    // Back to what the second feed says: its poll relabels its articles.
    staff.page("/admin/sources").await;
    let before = Utc::now();
    let set = staff.post("/admin/sources/2/language", &[("language", "")]).await;
    assert_eq!(set.status(), 303);
    polled(&app, 2, before).await;
    assert_eq!(language_of(&app, RUSSIAN[1].0).await.as_deref(), Some("en"));
    let page = staff.page("/admin/sources").await;
    assert!(!source_row(&page, 2).contains(" selected>"), "{page}");
    assert!(
        page.contains("its articles take the language its feed declares"),
        "{page}"
    );
    let refused = staff.post("/admin/sources/2/language", &[("language", "ru-RU")]).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(language_of(&app, RUSSIAN[1].0).await.as_deref(), Some("en"));
    assert_eq!(
        staff
            .post("/admin/sources/99/language", &[("language", "ru")])
            .await
            .status(),
        404
    );

    add_readers(&app).await;
    dispatch(&backend, "all").await;
    assert_eq!(
        copy_for(&app, RUSSIAN_READER).await.stories,
        [RUSSIAN[0].0, RUSSIAN[1].0]
    );
    assert_eq!(
        copy_for(&app, ENGLISH_READER).await.stories,
        [RUSSIAN[1].0, RUSSIAN[0].0],
        "the one the feed calls English first"
    );
}

/// An article staff write is in the site's language unless they choose
/// another (or "another or unknown language"); a value the select does not
/// offer gets the form back with the reason and saves nothing.
pub async fn staff_choose_the_language_of_the_articles_they_write(backend: Backend) {
    let app = start(&backend).await;
    let mut staff = staff_session(&app).await;
    let form = staff.page("/admin/articles/new").await;
    assert!(
        form.contains(r#"<option value="en" lang="en" selected>English</option>"#),
        "the site's language first: {form}"
    );
    let add = |title: &'static str, language: &'static str| {
        let url = format!("https://example.org/{}", title.replace(' ', "-"));
        let staff = &staff;
        async move {
            staff
                .post(
                    "/admin/articles",
                    &[
                        ("url", &url),
                        ("title", title),
                        ("summary", "What happened, in one line."),
                        ("language", language),
                    ],
                )
                .await
        }
    };
    assert_eq!(add("Выборы в городе", "ru").await.status(), 303);
    assert_eq!(add("Floods in the north", "").await.status(), 303);
    assert_eq!(add("Marktbericht", "unknown").await.status(), 303);
    let refused = add("Ein Bericht", "de").await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Language: “de” is not one of the languages offered.") && page.contains("Ein Bericht"),
        "{page}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 3);
    assert_eq!(language_of(&app, "Выборы в городе").await.as_deref(), Some("ru"));
    assert_eq!(language_of(&app, "Floods in the north").await.as_deref(), Some("en"));
    assert_eq!(language_of(&app, "Marktbericht").await, None);

    // Editing shows the language and changes it; without the field it stays.
    let list = staff.page("/admin/articles?q=Marktbericht").await;
    let id = first_id(&list, "/admin/articles/");
    let edit = staff.page(&format!("/admin/articles/{id}")).await;
    assert!(
        edit.contains(r#"<option value="unknown" selected>another or unknown language</option>"#),
        "{edit}"
    );
    let save = |language: Option<&'static str>| {
        let mut fields = vec![
            ("title", "Marktbericht"),
            ("published", ""),
            ("summary", "What happened, in one line."),
            ("include", "on"),
        ];
        fields.extend(language.map(|l| ("language", l)));
        let (staff, path) = (&staff, format!("/admin/articles/{id}"));
        async move { staff.post(&path, &fields).await }
    };
    assert_eq!(save(Some("ru")).await.status(), 303);
    assert_eq!(language_of(&app, "Marktbericht").await.as_deref(), Some("ru"));
    assert_eq!(save(None).await.status(), 303);
    assert_eq!(language_of(&app, "Marktbericht").await.as_deref(), Some("ru"));
    let refused = save(Some("<script>")).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("Language: “&#60;script&#62;”"));
    assert_eq!(save(Some("unknown")).await.status(), 303);
    assert_eq!(language_of(&app, "Marktbericht").await, None);
}

/// A value of `digest.languages` other than "all" or "reader" stops the
/// start with one line naming the key and the value.
pub fn a_digest_languages_value_other_than_all_or_reader_is_refused() -> Result<(), libtest_mimic::Failed> {
    let output = gazette_command()
        .args(["config", "check"])
        .env("GAZETTE_DIGEST__LANGUAGES", "mine")
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("digest.languages") && stderr.contains("`mine`") && stderr.contains("\"reader\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    Ok(())
}
