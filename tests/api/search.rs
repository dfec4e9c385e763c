//! The staff's searches fold case in every alphabet (issue 17): through
//! the staff area on both backends, Cyrillic, Turkish dotted and dotless
//! i, German ß and accented Latin find what they mean, `%` and `_` are
//! letters; every write of a reader's address or name, or of an article's
//! title, keeps its stored search key current; and rows written without a
//! key (by an older release) are found the old way until `gazette migrate`
//! fills their keys in.

use std::collections::BTreeSet;

use gazette::domain::SearchKey;
use gazette::with_pool;

use crate::admin::{StaffClient, add_confirmed_readers, erase_reader, first_id, staff_session};
use crate::cli::{import, text};
use crate::helpers::{Backend, TestApp, gazette_command, spawn_app};

/// The addresses of the readers a staff search for `query` lists (all on
/// one page: the count must say as many), lowercased.
async fn readers_found(staff: &mut StaffClient, query: &str) -> BTreeSet<String> {
    let page = staff.page(&format!("/admin/subscribers?q={}", encode(query))).await;
    let found: BTreeSet<String> = page
        .split("<a href=\"/admin/subscribers/")
        .skip(1)
        .filter_map(|row| {
            let (_, rest) = row.split_once("\">")?;
            let (address, _) = rest.split_once("</a>")?;
            Some(address.to_lowercase())
        })
        .filter(|address| address.contains('@'))
        .collect();
    assert!(
        page.contains(&format!("{} readers.", found.len())),
        "q={query}: the count and the rows disagree:\n{page}"
    );
    found
}

/// The addresses of the articles a staff search for `query` lists.
async fn articles_found(staff: &mut StaffClient, query: &str) -> BTreeSet<String> {
    let page = staff.page(&format!("/admin/articles?q={}", encode(query))).await;
    page.split("<span class=\"small\">")
        .skip(1)
        .filter_map(|rest| rest.split_once("</span>").map(|(url, _)| url.to_owned()))
        .collect()
}

fn encode(query: &str) -> String {
    url::form_urlencoded::byte_serialize(query.as_bytes()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| item.to_lowercase()).collect()
}

/// Every reader's and article's stored key is the one their current
/// address, name or title make: a write that changed them and forgot the
/// key, or a row left without one, fails here, naming it.
async fn assert_keys_current(app: &TestApp, after: &str) {
    let readers: Vec<(String, String, bool, Option<String>)> = with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT email, name, erased_at IS NOT NULL, search_key FROM subscribers")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    for (email, name, erased, key) in readers {
        let wanted = match erased {
            true => SearchKey::of_erased_reader(),
            false => SearchKey::of_reader(&email, &name),
        };
        assert_eq!(
            key.as_deref(),
            Some(wanted.as_str()),
            "after {after}: the key of reader {email} ({name})"
        );
    }
    let articles: Vec<(String, String, Option<String>)> = with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT url, title, search_key FROM articles").fetch_all(pool).await.unwrap()
    });
    for (url, title, key) in articles {
        assert_eq!(
            key.as_deref(),
            Some(SearchKey::of_article(&title).as_str()),
            "after {after}: the key of article {url} ({title})"
        );
    }
}

async fn add_article(staff: &mut StaffClient, url: &str, title: &str) {
    staff.page("/admin/articles/new").await;
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", url),
                ("title", title),
                ("summary", "What happened, in one line."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "adding {title}");
}

pub async fn staff_find_readers_and_articles_in_any_case_with_or_without_accents(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    let readers = [
        ("kazakh.times@example.com", "КАЗАХСТАН Таймс"),
        ("kz.daily@example.com", "казахстан daily"),
        ("Maria.Ivanova@Example.COM", "Мария Иванова"),
        ("ist.kitap@example.com", "İstanbul Kitap"),
        ("ist.kultur@example.com", "ISTANBUL Kültür"),
        ("ist.gezi@example.com", "istanbul gezi"),
        ("verlag@example.com", "Hauptstraße Verlag"),
        ("STRASSE.Bau@example.com", "Bau GmbH"),
        ("jose@example.com", "José Martí"),
        ("sale@example.com", "50% off"),
        ("under_score@example.com", "Under Score"),
        ("mario@example.com", "Mario Rossi"),
        ("back@example.com", "Back\\slash"),
    ];
    let owned: Vec<(String, String)> = readers.iter().map(|(e, n)| (e.to_string(), n.to_string())).collect();
    add_confirmed_readers(&app, &owned).await;

    let kazakhstan = set(&["kazakh.times@example.com", "kz.daily@example.com"]);
    let istanbul = set(&[
        "ist.kitap@example.com",
        "ist.kultur@example.com",
        "ist.gezi@example.com",
    ]);
    let strasse = set(&["verlag@example.com", "STRASSE.Bau@example.com"]);
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        // Cyrillic, in every case.
        ("Казахстан", kazakhstan.clone()),
        ("КАЗАХСТАН", kazakhstan.clone()),
        ("казахстан", kazakhstan),
        ("мария", set(&["Maria.Ivanova@Example.COM"])),
        ("МАРИЯ  ИВАНОВА", set(&["Maria.Ivanova@Example.COM"])),
        // Turkish: dotted capital İ, dotless ı and plain I are all i.
        ("İstanbul", istanbul.clone()),
        ("istanbul", istanbul.clone()),
        ("ISTANBUL", istanbul.clone()),
        ("İSTANBUL", istanbul.clone()),
        ("ıstanbul", istanbul),
        ("kultur", set(&["ist.kultur@example.com"])),
        // German ß is ss, in the name or the address.
        ("straße", strasse.clone()),
        ("STRASSE", strasse),
        // Accents off Latin letters, both ways.
        ("jose", set(&["jose@example.com"])),
        ("JOSÉ MARTÍ", set(&["jose@example.com"])),
        ("marti", set(&["jose@example.com"])),
        // Addresses in any case.
        ("maria.ivanova@example.com", set(&["Maria.Ivanova@Example.COM"])),
        ("MARIA.IVANOVA@EXAMPLE", set(&["Maria.Ivanova@Example.COM"])),
        ("strasse.bau@EXAMPLE.com", set(&["STRASSE.Bau@example.com"])),
        // `%`, `_` and `\` are letters, not wildcards.
        ("50%", set(&["sale@example.com"])),
        ("5%f", set(&[])),
        ("under_s", set(&["under_score@example.com"])),
        ("a_i", set(&[])),
        ("k\\s", set(&["back@example.com"])),
        // Address and name are apart: no match across them.
        ("com mario", set(&[])),
    ];
    for (query, wanted) in &cases {
        assert_eq!(&readers_found(&mut staff, query).await, wanted, "q={query}");
    }
    assert_eq!(readers_found(&mut staff, "").await.len(), readers.len());
    assert_eq!(readers_found(&mut staff, "  ").await.len(), readers.len());

    // The download holds the same readers as the list.
    let csv = staff
        .get(&format!(
            "/admin/subscribers/export.csv?q={}",
            encode("ҚАЗАҚ КАЗАХСТАН")
        ))
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.text().await.unwrap().lines().count(), 1, "only the header row");
    let csv = staff
        .get(&format!("/admin/subscribers/export.csv?q={}", encode("КАЗАХСТАН")))
        .await
        .text()
        .await
        .unwrap();
    let exported: BTreeSet<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(exported, set(&["kazakh.times@example.com", "kz.daily@example.com"]));

    // Articles, by title (folded) or address.
    for (url, title) in [
        ("https://example.org/a1", "КАЗАХСТАН: выборы"),
        ("https://example.org/a2", "İstanbul metrosu"),
        ("https://example.org/a3", "Straße der Nationen"),
        ("https://example.org/a4", "José Mujica, 1935–2025"),
        ("https://example.org/a5", "50% off everything"),
    ] {
        add_article(&mut staff, url, title).await;
    }
    for (query, wanted) in [
        ("казахстан", vec!["https://example.org/a1"]),
        ("ISTANBUL", vec!["https://example.org/a2"]),
        ("ıstanbul", vec!["https://example.org/a2"]),
        ("STRASSE DER", vec!["https://example.org/a3"]),
        ("jose mujica", vec!["https://example.org/a4"]),
        ("EXAMPLE.ORG/A3", vec!["https://example.org/a3"]),
        ("0% off", vec!["https://example.org/a5"]),
        ("5%e", vec![]),
        ("0_", vec![]),
    ] {
        assert_eq!(
            articles_found(&mut staff, query).await,
            wanted.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>(),
            "q={query}"
        );
    }
    assert_keys_current(&app, "the readers and articles were added").await;
}

/// Posts a change on the reader's preferences page.
async fn change_preferences(app: &TestApp, email_key: &str, fields: &[(&str, &str)]) {
    let token = app.unsubscribe_token(email_key).await;
    let mut form = vec![("token", token.as_str())];
    form.extend_from_slice(fields);
    let response = app.post_form("/preferences", &form).await;
    assert_eq!(response.status(), 200, "{fields:?}");
}

/// A feed file of one entry, `title`, for `gazette articles import`.
fn feed_file(dir: &std::path::Path, title: &str) -> String {
    let path = dir.join("feed.rss");
    std::fs::write(
        &path,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Central Asia Weekly</title><link>https://news.example.org/</link>
<item><title>{title}</title><link>https://news.example.org/t1</link><guid>t1</guid>
<pubDate>Thu, 26 Nov 2026 08:30:00 +0000</pubDate><description>Markets open.</description></item>
</channel></rss>"#
        ),
    )
    .unwrap();
    path.display().to_string()
}

pub async fn every_write_keeps_the_search_key_of_what_it_wrote(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;

    // A signup on the web form (the signup writer's batch insert).
    assert_eq!(app.sign_up("Жанна", "zhanna@example.com").await.status(), 200);
    assert_keys_current(&app, "a signup").await;
    assert_eq!(readers_found(&mut staff, "ЖАННА").await, set(&["zhanna@example.com"]));
    // A pending reader who signs up again is renewed with the new name...
    assert_eq!(app.sign_up("Zhanna Renewed", "ZHANNA@example.com").await.status(), 200);
    assert_keys_current(&app, "a pending reader's second signup").await;
    assert_eq!(readers_found(&mut staff, "renewed").await, set(&["zhanna@example.com"]));
    assert!(readers_found(&mut staff, "жанна").await.is_empty());
    // ...a confirmed one is left as they were, key included.
    let olga = [("olga@example.com".to_owned(), "Ольга".to_owned())];
    add_confirmed_readers(&app, &olga).await;
    assert_eq!(app.sign_up("Stranger", "olga@example.com").await.status(), 200);
    assert_keys_current(&app, "a confirmed reader's second signup").await;
    assert!(readers_found(&mut staff, "stranger").await.is_empty());
    assert_eq!(readers_found(&mut staff, "ОЛЬГА").await, set(&["olga@example.com"]));

    // The staff's CSV import.
    staff.page("/admin/subscribers/import").await;
    let response = staff
        .post(
            "/admin/subscribers/import",
            &[("csv", "pavel@example.com,Павел Ёжиков\n")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_keys_current(&app, "a CSV import").await;
    assert_eq!(readers_found(&mut staff, "ежиков").await, set(&["pavel@example.com"]));

    // A new name on the preferences page.
    change_preferences(
        &app,
        "olga@example.com",
        &[("action", "save"), ("name", "Olga Şahin"), ("language", "en")],
    )
    .await;
    assert_keys_current(&app, "a change of name").await;
    assert_eq!(readers_found(&mut staff, "SAHIN").await, set(&["olga@example.com"]));
    assert!(readers_found(&mut staff, "ольга").await.is_empty());

    // A new address, once its link is followed.
    change_preferences(
        &app,
        "olga@example.com",
        &[("action", "address"), ("email", "Olga.New@example.net")],
    )
    .await;
    let mail = app.smtp.wait_for("Olga.New@example.net", 1).await.remove(0).text();
    let start = mail.find("/preferences/address?token=").expect("the link in the mail");
    let token: String = mail[start..]
        .trim_start_matches("/preferences/address?token=")
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let response = app.post_form("/preferences/address", &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    assert_keys_current(&app, "a change of address").await;
    assert_eq!(
        readers_found(&mut staff, "olga.new@").await,
        set(&["olga.new@example.net"])
    );
    assert!(readers_found(&mut staff, "olga@example.com").await.is_empty());

    // Erasing leaves nothing to find them by.
    erase_reader(&mut staff, "sahin").await;
    assert_keys_current(&app, "an erasure").await;
    assert!(readers_found(&mut staff, "sahin").await.is_empty());

    // An article added by staff, then renamed by staff.
    add_article(&mut staff, "https://example.org/b1", "Ärger in München").await;
    assert_keys_current(&app, "an article added by staff").await;
    assert_eq!(
        articles_found(&mut staff, "munchen").await,
        set(&["https://example.org/b1"])
    );
    let article = first_id(&staff.page("/admin/articles?q=munchen").await, "/admin/articles/");
    staff.page(&format!("/admin/articles/{article}")).await;
    let response = staff
        .post(
            &format!("/admin/articles/{article}"),
            &[
                ("title", "Straßenfest in Köln"),
                ("published", "2026-11-27T09:30"),
                ("summary", "Our own words."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_keys_current(&app, "a staff edit of an article").await;
    assert_eq!(
        articles_found(&mut staff, "STRASSENFEST IN KÖLN").await,
        set(&["https://example.org/b1"])
    );
    assert!(articles_found(&mut staff, "munchen").await.is_empty());

    // An article from a feed, then its new title from the same feed.
    let dir = std::env::temp_dir().join(format!("gazette-search-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = feed_file(&dir, "Ташкент открывает рынок");
    let imported = import(&backend, &[&feed]).await;
    assert!(text(&imported.stdout).contains("1 added"), "{}", text(&imported.stderr));
    assert_keys_current(&app, "a feed import").await;
    assert_eq!(
        articles_found(&mut staff, "ТАШКЕНТ").await,
        set(&["https://news.example.org/t1"])
    );
    feed_file(&dir, "Самарканд открывает рынок");
    let imported = import(&backend, &[&feed]).await;
    assert!(
        text(&imported.stdout).contains("1 updated"),
        "{}",
        text(&imported.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_keys_current(&app, "a feed's update").await;
    assert_eq!(
        articles_found(&mut staff, "самарканд").await,
        set(&["https://news.example.org/t1"])
    );
    assert!(articles_found(&mut staff, "ташкент").await.is_empty());
}

/// Runs the real `gazette migrate` on the test's database, logging at
/// info; returns what it printed.
async fn gazette_migrate(backend: &Backend) -> String {
    let mut command = gazette_command();
    command
        .arg("migrate")
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_LOG__LEVEL", "info");
    let output = tokio::task::spawn_blocking(move || command.output().expect("gazette runs"))
        .await
        .unwrap();
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{said}");
    said
}

async fn missing_keys(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM subscribers WHERE search_key IS NULL")
        .await
        + app
            .count("SELECT COUNT(*) FROM articles WHERE search_key IS NULL")
            .await
}

/// Forgets every key, as the rows of a release before keys are.
async fn forget_keys(app: &TestApp) {
    with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET search_key = NULL").execute(pool).await.unwrap();
        sqlx::query("UPDATE articles SET search_key = NULL").execute(pool).await.unwrap();
    });
}

pub async fn rows_without_keys_are_found_the_old_way_until_migrate_fills_their_keys_in(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    // More readers than a batch of the backfill holds, twice over.
    let mut readers: Vec<(String, String)> = (0..12_000)
        .map(|i| (format!("reader{i:05}@example.com"), format!("Reader {i}")))
        .collect();
    readers.push(("maria@example.com".into(), "Мария Lovelace".into()));
    readers.push(("ist@example.com".into(), "İstanbul Kitap".into()));
    add_confirmed_readers(&app, &readers).await;
    add_article(&mut staff, "https://example.org/c1", "Ташкент открывает рынок").await;
    add_article(&mut staff, "https://example.org/c2", "Dushanbe talks stall").await;
    erase_reader(&mut staff, "reader00007@example.com").await;
    forget_keys(&app).await;

    // Without keys, the old comparison still finds them.
    assert_eq!(readers_found(&mut staff, "LOVELACE").await, set(&["maria@example.com"]));
    assert_eq!(
        readers_found(&mut staff, "READER11999@").await,
        set(&["reader11999@example.com"])
    );
    assert_eq!(
        articles_found(&mut staff, "DUSHANBE").await,
        set(&["https://example.org/c2"])
    );

    // `gazette migrate` fills them in, 5 000 at a time, saying how far it is.
    let said = gazette_migrate(&backend).await;
    for line in [
        "subscribers: filling in the search keys of 12002 rows written before them",
        "subscribers: search keys filled in for 5000 of 12002 rows",
        "subscribers: search keys filled in for 10000 of 12002 rows",
        "subscribers: search keys filled in for 12002 of 12002 rows",
        "articles: search keys filled in for 2 of 2 rows",
    ] {
        assert!(said.contains(line), "{line}:\n{said}");
    }
    assert_eq!(missing_keys(&app).await, 0);
    assert_keys_current(&app, "gazette migrate").await;
    assert_eq!(readers_found(&mut staff, "мария").await, set(&["maria@example.com"]));
    assert_eq!(readers_found(&mut staff, "ISTANBUL").await, set(&["ist@example.com"]));
    assert!(readers_found(&mut staff, "reader00007").await.is_empty(), "erased");
    assert_eq!(
        articles_found(&mut staff, "ТАШКЕНТ").await,
        set(&["https://example.org/c1"])
    );

    // Again: nothing left to do.
    let said = gazette_migrate(&backend).await;
    assert!(!said.contains("search keys"), "{said}");

    // `serve` with migrate_on_start fills them in before it serves.
    forget_keys(&app).await;
    let restarted = spawn_app(&backend).await;
    assert_eq!(missing_keys(&restarted).await, 0);
    assert_keys_current(&restarted, "a start with migrate_on_start").await;
}
