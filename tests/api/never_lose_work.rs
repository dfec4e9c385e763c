//! The editor's desk never loses work (issue 17, part 4, and the article
//! and reader lists of part 1), through HTTP and the CLI on both backends:
//! destructive actions ask on a page of their own and a stray POST does
//! nothing; a deleted article is hidden everywhere, survives a feed that
//! brings it again, is restorable from "Recently deleted" and purged by
//! retention after 30 days; replaced summaries are kept and restorable;
//! two staff editing one article do not overwrite each other; the lists
//! show summaries and draft states, and act on a selection.

use chrono::{Duration, Utc};
use reqwest::header::LOCATION;

use crate::admin::{StaffClient, add_article, add_confirmed_reader, add_staff, first_id, hidden_field, staff_session};
use crate::cli::{import, text};
use crate::helpers::{Backend, TestApp, gazette_command, spawn_app, spawn_web_only};

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The articles' rows whose title is `title` and that are not deleted.
async fn live_articles(app: &TestApp, title: &str) -> i64 {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM articles WHERE title = $1 AND deleted_at IS NULL")
            .bind(title)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

async fn summary_of(app: &TestApp, id: &str) -> String {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar::<_, String>("SELECT summary FROM articles WHERE id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// A confirmation page: its question, a form posting to `action` with the
/// CSRF token and the confirmation, and a way back to `back`.
fn assert_confirmation_page(page: &str, question: &str, action: &str, back: &str) {
    assert!(page.contains(&format!("<h1>{question}</h1>")), "{page}");
    assert!(
        page.contains(&format!("<form method=\"post\" action=\"{action}\">")),
        "{page}"
    );
    let form = &page[page.find(&format!("action=\"{action}\"")).unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.contains("name=\"csrf\""), "{form}");
    assert!(
        form.contains("<input type=\"hidden\" name=\"confirm\" value=\"yes\">"),
        "{form}"
    );
    assert!(page.contains(&format!("<a href=\"{back}\">No, ")), "{page}");
    assert!(!page.contains("<script"), "no JavaScript needed: {page}");
}

pub async fn destructive_actions_ask_on_a_page_of_their_own_and_a_stray_post_does_nothing(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada Lovelace").await;
    add_confirmed_reader(&app, "grace@example.com", "Grace Hopper").await;
    staff.page("/admin/articles/new").await;
    let body = "The river rose overnight. Roads were closed. Schools stayed shut.";
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/floods"),
                ("title", "Floods in the north"),
                ("summary", "Our own words."),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let id = first_id(&staff.page("/admin/articles").await, "/admin/articles/");
    let article = format!("/admin/articles/{id}");

    // The article's page links to the confirmation pages, no form acts.
    let edit = staff.page(&article).await;
    assert!(
        edit.contains(&format!("<form method=\"get\" action=\"{article}/delete\">"))
            && edit.contains(&format!("<form method=\"get\" action=\"{article}/regenerate\">")),
        "{edit}"
    );

    // Regenerate: the page shows the summary now and as it would become.
    let page = staff.page(&format!("{article}/regenerate")).await;
    assert_confirmation_page(
        &page,
        "Regenerate the summary?",
        &format!("{article}/regenerate"),
        &article,
    );
    assert!(
        page.contains("Our own words.") && page.contains("The river rose overnight."),
        "{page}"
    );
    let stray = staff.post(&format!("{article}/regenerate"), &[]).await;
    assert_eq!(stray.status(), 400);
    assert!(stray.text().await.unwrap().contains("Nothing was regenerated"));
    assert_eq!(summary_of(&app, &id).await, "Our own words.");
    let response = staff
        .post(&format!("{article}/regenerate"), &[("confirm", "yes")])
        .await;
    assert_eq!(response.status(), 303);
    assert!(summary_of(&app, &id).await.starts_with("The river rose overnight."));

    // Delete.
    let page = staff.page(&format!("{article}/delete")).await;
    assert_confirmation_page(&page, "Delete this article?", &format!("{article}/delete"), &article);
    assert!(
        page.contains("Floods in the north (https://example.org/floods)") && page.contains("Recently deleted"),
        "{page}"
    );
    assert_eq!(staff.post(&format!("{article}/delete"), &[]).await.status(), 400);
    assert_eq!(
        staff
            .post(&format!("{article}/delete"), &[("confirm", "no")])
            .await
            .status(),
        400
    );
    assert_eq!(live_articles(&app, "Floods in the north").await, 1);
    let response = staff.post(&format!("{article}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/articles".into())
    );
    assert_eq!(live_articles(&app, "Floods in the north").await, 0);

    // Erase a reader.
    let reader = first_id(&staff.page("/admin/subscribers?q=ada").await, "/admin/subscribers/");
    let reader = format!("/admin/subscribers/{reader}");
    let view = staff.page(&reader).await;
    assert!(
        view.contains(&format!("<form method=\"get\" action=\"{reader}/erase\">")),
        "{view}"
    );
    let page = staff.page(&format!("{reader}/erase")).await;
    assert_confirmation_page(
        &page,
        "Erase this reader&#39;s personal data?",
        &format!("{reader}/erase"),
        &reader,
    );
    assert!(
        page.contains("Ada Lovelace &#60;ada@example.com&#62;") && page.contains("cannot be undone"),
        "{page}"
    );
    let stray = staff.post(&format!("{reader}/erase"), &[]).await;
    assert_eq!(stray.status(), 400);
    assert!(stray.text().await.unwrap().contains("Nothing was erased"));
    let erased = "SELECT COUNT(*) FROM subscribers WHERE erased_at IS NOT NULL";
    assert_eq!(app.count(erased).await, 0);
    let response = staff.post(&format!("{reader}/erase"), &[("confirm", "yes")]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.count(erased).await, 1);

    // Cancel a send.
    add_article(&mut staff, "Another story").await;
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    let issue = location(&staff.post("/admin/issues/send", &[("key", &key)]).await);
    let view = staff.page(&issue).await;
    assert!(
        view.contains(&format!(
            "<form method=\"get\" action=\"{issue}/cancel\" data-action=\"cancel\">"
        )),
        "{view}"
    );
    let page = staff.page(&format!("{issue}/cancel")).await;
    let week = issue.rsplit('/').next().unwrap();
    assert_confirmation_page(
        &page,
        &format!("Cancel the send of {week}?"),
        &format!("{issue}/cancel"),
        &issue,
    );
    assert!(page.contains("The 1 copy not yet sent is not sent"), "{page}");
    let stray = staff.post(&format!("{issue}/cancel"), &[]).await;
    assert_eq!(stray.status(), 400);
    assert!(stray.text().await.unwrap().contains("Nothing was cancelled"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues WHERE cancelled_at IS NOT NULL")
            .await,
        0
    );
    let response = staff.post(&format!("{issue}/cancel"), &[("confirm", "yes")]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues WHERE cancelled_at IS NOT NULL")
            .await,
        1
    );
    // Once cancelled, the page no longer offers it and its address says why.
    let response = staff.get(&format!("{issue}/cancel")).await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, issue.clone()));
}

/// A feed with two entries published yesterday, as a file.
fn feed_file(dir: &std::path::Path) -> String {
    let published = (Utc::now() - Duration::days(1)).to_rfc2822();
    let rss = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>River news</title><link>https://river.example.org/</link>
<description>News from the river</description>
<item><title>Bridge closed at Tern</title><link>https://river.example.org/bridge</link>
<guid>river-1</guid><pubDate>{published}</pubDate>
<description>The bridge at Tern is closed for repairs until spring.</description></item>
<item><title>Ferry runs again</title><link>https://river.example.org/ferry</link>
<guid>river-2</guid><pubDate>{published}</pubDate>
<description>The ferry runs again from Monday, every hour.</description></item>
</channel></rss>"#
    );
    let path = dir.join("river.rss");
    std::fs::write(&path, rss).unwrap();
    path.to_str().unwrap().to_owned()
}

async fn prune(backend: &Backend, args: &[&str]) -> String {
    let url = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        gazette_command()
            .arg("prune")
            .args(args)
            .env("GAZETTE_DATABASE__URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

pub async fn a_deleted_article_is_hidden_everywhere_stays_deleted_on_reimport_and_is_restorable_for_30_days(
    backend: Backend,
) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    let dir = std::env::temp_dir().join(format!("gazette-desk-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = feed_file(&dir);
    let imported = import(&backend, &[&feed]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let list = staff.page("/admin/articles?q=bridge").await;
    let id = first_id(&list, "/admin/articles/");
    assert!(staff.page("/admin/issues").await.contains("Bridge closed at Tern"));

    staff.page(&format!("/admin/articles/{id}/delete")).await;
    let response = staff
        .post(&format!("/admin/articles/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(response.status(), 303);
    let list = staff.page("/admin/articles").await;
    assert!(
        list.contains("“Bridge closed at Tern” is deleted. “Recently deleted” can restore it.")
            && !list.contains(">Bridge closed at Tern</a>")
            && list.contains(">Ferry runs again</a>"),
        "{list}"
    );
    assert!(
        list.contains("<a href=\"/admin/articles/deleted\">Recently deleted (1)</a>"),
        "{list}"
    );
    assert!(!staff.page("/admin/articles?q=tern").await.contains("Bridge closed"));
    let draft = staff.page("/admin/issues").await;
    assert!(
        !draft.contains("Bridge closed at Tern") && draft.contains("Ferry runs again"),
        "{draft}"
    );
    assert_eq!(staff.get(&format!("/admin/articles/{id}")).await.status(), 404);
    assert_eq!(staff.get(&format!("/admin/articles/{id}/delete")).await.status(), 404);

    // The feed brings the entry again: not back, and not twice.
    let again = import(&backend, &[&feed]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM articles WHERE deleted_at IS NOT NULL")
            .await,
        1
    );
    assert!(!staff.page("/admin/issues").await.contains("Bridge closed at Tern"));
    // Added by hand at its address: left deleted, and staff are told.
    staff.page("/admin/articles/new").await;
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://river.example.org/bridge"),
                ("title", "Bridge closed at Tern"),
                ("summary", "Typed again."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(
        staff
            .page("/admin/articles")
            .await
            .contains("An article with that address was deleted; it is left deleted."),
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);

    // Recently deleted: who, when, until when; restore brings it back.
    let deleted = staff.page("/admin/articles/deleted").await;
    assert!(
        deleted.contains("Bridge closed at Tern")
            && deleted.contains("by editor@gazette.test")
            && deleted.contains("is kept here for 30 days")
            && deleted.contains(&(Utc::now() + Duration::days(30)).format("%Y-%m-%d").to_string()),
        "{deleted}"
    );
    assert!(
        deleted.contains(&format!("action=\"/admin/articles/{id}/restore\"")),
        "{deleted}"
    );
    let response = staff.post(&format!("/admin/articles/{id}/restore"), &[]).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, format!("/admin/articles/{id}"))
    );
    assert!(staff.page("/admin/issues").await.contains("Bridge closed at Tern"));
    assert!(
        staff
            .page("/admin/articles/deleted")
            .await
            .contains("Nothing was deleted lately.")
    );
    assert_eq!(
        staff.post(&format!("/admin/articles/{id}/restore"), &[]).await.status(),
        404
    );

    // Deleted again, 31 days ago: retention purges it; one deleted today stays.
    staff.page(&format!("/admin/articles/{id}/delete")).await;
    staff
        .post(&format!("/admin/articles/{id}/delete"), &[("confirm", "yes")])
        .await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE articles SET deleted_at = $1 WHERE deleted_at IS NOT NULL")
            .bind(Utc::now() - Duration::days(31))
            .execute(pool)
            .await
            .unwrap();
    });
    let ferry = first_id(&staff.page("/admin/articles?q=ferry").await, "/admin/articles/");
    staff.page(&format!("/admin/articles/{ferry}/delete")).await;
    staff
        .post(&format!("/admin/articles/{ferry}/delete"), &[("confirm", "yes")])
        .await;
    let dry = prune(&backend, &["--dry-run"]).await;
    assert!(dry.contains("deleted articles: 1 (older than 30 days)"), "{dry}");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);
    let done = prune(&backend, &[]).await;
    assert!(done.contains("deleted articles: 1 (older than 30 days)"), "{done}");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM articles WHERE deleted_at IS NOT NULL")
            .await,
        1
    );
    let deleted = staff.page("/admin/articles/deleted").await;
    assert!(
        deleted.contains("Ferry runs again") && !deleted.contains("Bridge closed"),
        "{deleted}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

pub async fn replaced_summaries_are_kept_with_when_and_by_whom_and_can_be_restored(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    staff.page("/admin/articles/new").await;
    staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/floods"),
                ("title", "Floods in the north"),
                ("summary", "First words."),
                ("body", "The river rose overnight. Roads were closed."),
            ],
        )
        .await;
    let id = first_id(&staff.page("/admin/articles").await, "/admin/articles/");
    let article = format!("/admin/articles/{id}");
    assert!(staff.page(&article).await.contains("None yet"));
    let save = |summary: &'static str| {
        let staff = &staff;
        let article = &article;
        async move {
            let response = staff
                .post(
                    article,
                    &[
                        ("title", "Floods in the north"),
                        ("summary", summary),
                        ("include", "on"),
                    ],
                )
                .await;
            assert_eq!(response.status(), 303);
        }
    };
    save("Second words.").await;
    // Saving the same summary keeps no copy of it.
    save("Second words.").await;
    staff.page(&format!("{article}/regenerate")).await;
    staff
        .post(&format!("{article}/regenerate"), &[("confirm", "yes")])
        .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM summary_versions").await,
        2,
        "the first and second words"
    );
    let page = staff.page(&article).await;
    let versions = &page[page.find("<h2>Earlier summaries</h2>").unwrap()..];
    let second = versions.find("Second words.").unwrap();
    let first = versions.find("First words.").unwrap();
    assert!(second < first, "newest first: {versions}");
    assert!(versions.contains("by editor@gazette.test"), "{versions}");
    assert!(versions.contains("<td data-label=\"From\">staff</td>"), "{versions}");

    // Restoring the first words makes the regenerated one a version.
    let restore = versions[first..]
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(restore.starts_with(&format!("{article}/summaries/")), "{restore}");
    let response = staff.post(&restore, &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(summary_of(&app, &id).await, "First words.");
    let page = staff.page(&article).await;
    assert!(page.contains("(from: staff)"), "{page}");
    let versions = &page[page.find("<h2>Earlier summaries</h2>").unwrap()..];
    assert!(
        versions.contains("The river rose overnight.")
            && versions.contains("<td data-label=\"From\">generated</td>")
            && versions.contains("Second words.")
            && !versions.contains("First words."),
        "{versions}"
    );
    // Restoring the same version twice, or another article's, finds nothing.
    assert_eq!(staff.post(&restore, &[]).await.status(), 404);
    assert_eq!(
        staff
            .post(&format!("{article}/summaries/not-an-id/restore"), &[])
            .await
            .status(),
        404
    );
}

pub async fn two_staff_editing_one_article_get_a_conflict_page_not_a_silent_overwrite(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut ann = staff_session(&app).await;
    add_staff(&app, "bob@gazette.test", "another long passphrase").await;
    let mut bob = StaffClient::new(&app);
    assert_eq!(
        bob.log_in("bob@gazette.test", "another long passphrase").await.status(),
        303
    );
    add_article(&mut ann, "Floods in the north").await;
    let id = first_id(&ann.page("/admin/articles").await, "/admin/articles/");
    let article = format!("/admin/articles/{id}");

    let ann_form = ann.page(&article).await;
    let bob_form = bob.page(&article).await;
    let version = hidden_field(&ann_form, "version");
    assert_eq!(version, hidden_field(&bob_form, "version"));
    let response = ann
        .post(
            &article,
            &[
                ("version", &version),
                ("title", "Floods in the north"),
                ("summary", "Ann's words."),
                ("include", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);

    let response = bob
        .post(
            &article,
            &[
                ("version", &version),
                ("title", "Floods hit the north"),
                ("summary", "Bob's words."),
                ("include", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 409);
    let page = response.text().await.unwrap();
    assert!(page.contains("Not saved: the article changed meanwhile"), "{page}");
    let saved = &page[page.find("id=\"saved-now\"").unwrap()..page.find("id=\"yours\"").unwrap()];
    assert!(
        saved.contains("Ann&#39;s words.") && saved.contains("Floods in the north"),
        "{saved}"
    );
    let yours = &page[page.find("id=\"yours\"").unwrap()..];
    assert!(
        yours.contains("Bob&#39;s words.") && yours.contains("Floods hit the north"),
        "{yours}"
    );
    assert_eq!(summary_of(&app, &id).await, "Ann's words.", "nothing overwritten");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM articles WHERE title = 'Floods hit the north'")
            .await,
        0
    );

    // Bob chooses to save his over Ann's: the page's form carries the new
    // version, and Ann's words are kept among the earlier summaries.
    let newer = hidden_field(&page, "version");
    assert_ne!(newer, version);
    let response = bob
        .post(
            &article,
            &[
                ("version", &newer),
                ("title", "Floods hit the north"),
                ("summary", "Bob's words."),
                ("include", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(summary_of(&app, &id).await, "Bob's words.");
    let page = bob.page(&article).await;
    assert!(
        page.contains("Ann&#39;s words.") && page.contains("by editor@gazette.test"),
        "{page}"
    );

    // A stale form after a regenerate or an include from the list is
    // refused the same way.
    let stale = hidden_field(&page, "version");
    bob.page("/admin/articles").await;
    bob.post("/admin/articles/bulk", &[("id", &id), ("action", "exclude")])
        .await;
    let response = bob
        .post(
            &article,
            &[
                ("version", &stale),
                ("title", "Floods hit the north"),
                ("summary", "Bob's words."),
            ],
        )
        .await;
    assert_eq!(response.status(), 409);
}

pub async fn the_article_list_shows_summaries_and_draft_states_and_acts_on_a_selection(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    add_article(&mut staff, "Harvest comes early").await;
    staff.page("/admin/articles/new").await;
    let old = (Utc::now() - Duration::days(30)).format("%Y-%m-%dT%H:%M").to_string();
    staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/old"),
                ("title", "Last month's story"),
                ("published", &old),
                ("summary", "An old summary line."),
            ],
        )
        .await;
    let list = staff.page("/admin/articles").await;
    let row = |list: &str, title: &str| -> String {
        let start = list.find(&format!(">{title}</a>")).unwrap();
        let start = list[..start].rfind("<tr>").unwrap();
        let end = start + list[start..].find("</tr>").unwrap();
        list[start..end].to_owned()
    };
    assert!(
        list.contains("<a href=\"/admin/articles/deleted\">Recently deleted</a>"),
        "{list}"
    );
    let floods = row(&list, "Floods in the north");
    assert!(floods.contains("What happened, in one line."), "{floods}");
    assert!(floods.contains("data-field=\"draft\">in</td>"), "{floods}");
    let old_row = row(&list, "Last month&#39;s story");
    assert!(old_row.contains("An old summary line."), "{old_row}");
    assert!(old_row.contains("data-field=\"draft\">not this week</td>"), "{old_row}");
    assert!(
        floods.contains("<input type=\"checkbox\" name=\"id\" value=\""),
        "{floods}"
    );

    let floods_id = first_id(&floods, "/admin/articles/");
    let harvest_id = first_id(&row(&list, "Harvest comes early"), "/admin/articles/");
    // Leave both out, then bring one back.
    let response = staff
        .post(
            "/admin/articles/bulk",
            &[("id", &floods_id), ("id", &harvest_id), ("action", "exclude")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let list = staff.page("/admin/articles").await;
    assert!(
        list.contains("2 articles are left out of this week&#39;s issue."),
        "{list}"
    );
    assert!(row(&list, "Floods in the north").contains("draft\">excluded</td>"));
    assert!(row(&list, "Harvest comes early").contains("draft\">excluded</td>"));
    assert!(!staff.page("/admin/issues").await.contains("Floods in the north"));
    staff
        .post("/admin/articles/bulk", &[("id", &floods_id), ("action", "include")])
        .await;
    let list = staff.page("/admin/articles").await;
    assert!(row(&list, "Floods in the north").contains("draft\">in</td>"));
    assert!(staff.page("/admin/issues").await.contains("Floods in the north"));

    // Nothing selected, or an unknown action: nothing done, said why.
    assert_eq!(
        staff
            .post("/admin/articles/bulk", &[("action", "exclude")])
            .await
            .status(),
        400
    );
    assert_eq!(
        staff
            .post("/admin/articles/bulk", &[("id", &floods_id), ("action", "burn")])
            .await
            .status(),
        400
    );

    // Delete goes through the confirmation page, with the selection.
    let response = staff
        .post(
            "/admin/articles/bulk",
            &[("id", &floods_id), ("id", &harvest_id), ("action", "delete")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let confirm = location(&response);
    assert_eq!(
        confirm,
        format!("/admin/articles/delete?id={floods_id}&id={harvest_id}")
    );
    assert_eq!(live_articles(&app, "Floods in the north").await, 1, "not yet");
    let page = staff.page(&confirm).await;
    assert_confirmation_page(
        &page,
        "Delete these 2 articles?",
        "/admin/articles/delete",
        "/admin/articles",
    );
    assert!(
        page.contains("Floods in the north") && page.contains("Harvest comes early"),
        "{page}"
    );
    assert_eq!(hidden_field(&page, "id"), floods_id);
    let stray = staff
        .post("/admin/articles/delete", &[("id", &floods_id), ("id", &harvest_id)])
        .await;
    assert_eq!(stray.status(), 400);
    assert_eq!(live_articles(&app, "Floods in the north").await, 1);
    let response = staff
        .post(
            "/admin/articles/delete",
            &[("id", &floods_id), ("id", &harvest_id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(live_articles(&app, "Floods in the north").await, 0);
    assert_eq!(live_articles(&app, "Harvest comes early").await, 0);
    assert!(
        staff
            .page("/admin/articles")
            .await
            .contains("2 articles are deleted. “Recently deleted” can restore them.")
    );
    let deleted = staff.page("/admin/articles/deleted").await;
    assert!(deleted.contains("Floods in the north") && deleted.contains("Harvest comes early"));
}

pub async fn the_summary_field_counts_its_characters_for_everyone_before_saving(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    let id = first_id(&staff.page("/admin/articles").await, "/admin/articles/");
    let article = format!("/admin/articles/{id}");
    let page = staff.page(&article).await;
    // "What happened, in one line." is 27 characters.
    assert!(
        page.contains("aria-describedby=\"summary-count\"")
            && page.contains("<p class=\"small counter\" id=\"summary-count\"><span data-field=\"count\">27</span> of 300 characters</p>"),
        "{page}"
    );
    assert!(page.contains("<script src=\"/static/admin.js\"></script>"), "{page}");
    let script = staff.get("/static/admin.js").await.text().await.unwrap();
    assert!(script.contains("textarea[data-max]"));

    // Too long: refused, the counter says by how much, the error is tied
    // to the field along with the counter.
    let long = "й".repeat(301);
    let version = hidden_field(&page, "version");
    let response = staff
        .post(
            &article,
            &[("version", &version), ("title", "Floods"), ("summary", &long)],
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("aria-describedby=\"summary-count summary-error\"")
            && page.contains("<span data-field=\"count\">301</span> of 300 characters (too long)")
            && page.contains("at most 300 characters, please (it has 301)"),
        "{page}"
    );
    assert_eq!(
        hidden_field(&page, "version"),
        version,
        "the form goes on against the version it had"
    );
}

pub async fn readers_selected_in_the_list_are_unsubscribed_erased_after_confirming_or_exported(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    for (email, name) in [
        ("ada@example.com", "Ada Lovelace"),
        ("grace@example.com", "Grace Hopper"),
        ("mary@example.com", "Mary Somerville, FRS"),
        ("zoe@example.com", "Zoë"),
    ] {
        add_confirmed_reader(&app, email, name).await;
    }
    let list = staff.page("/admin/subscribers").await;
    let id_of = |email: &str| -> String {
        let at = list.find(&format!(">{email}</a>")).unwrap();
        first_id(&list[list[..at].rfind("<tr>").unwrap()..], "/admin/subscribers/")
    };
    let (ada, grace, mary, zoe) = (
        id_of("ada@example.com"),
        id_of("grace@example.com"),
        id_of("mary@example.com"),
        id_of("zoe@example.com"),
    );

    // Export the selection: CSV with the export's columns, those readers only.
    let response = staff
        .post(
            "/admin/subscribers/bulk",
            &[("id", &mary), ("id", &ada), ("action", "export")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"subscribers-selected-")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "email,name,status,source,created_at,confirmed_at,unsubscribed_at"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("ada@example.com,Ada Lovelace,confirmed,"), "{csv}");
    assert!(
        lines[2].starts_with("mary@example.com,\"Mary Somerville, FRS\",confirmed,"),
        "{csv}"
    );

    // Unsubscribe two.
    let response = staff
        .post(
            "/admin/subscribers/bulk",
            &[("id", &ada), ("id", &grace), ("action", "unsubscribe")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(
        staff
            .page("/admin/subscribers")
            .await
            .contains("2 readers are unsubscribed.")
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.subscriber_status("grace@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.subscriber_status("mary@example.com").await.as_deref(),
        Some("confirmed")
    );

    // Erase: the confirmation page names them; a stray POST erases no one.
    let response = staff
        .post(
            "/admin/subscribers/bulk",
            &[("id", &mary), ("id", &zoe), ("action", "erase")],
        )
        .await;
    let confirm = location(&response);
    assert_eq!(confirm, format!("/admin/subscribers/erase?id={mary}&id={zoe}"));
    let page = staff.page(&confirm).await;
    assert_confirmation_page(
        &page,
        "Erase the personal data of these 2 readers?",
        "/admin/subscribers/erase",
        "/admin/subscribers",
    );
    assert!(
        page.contains("mary@example.com") && page.contains("zoe@example.com"),
        "{page}"
    );
    let erased = "SELECT COUNT(*) FROM subscribers WHERE erased_at IS NOT NULL";
    let stray = staff
        .post("/admin/subscribers/erase", &[("id", &mary), ("id", &zoe)])
        .await;
    assert_eq!(stray.status(), 400);
    assert_eq!(app.count(erased).await, 0);
    let response = staff
        .post(
            "/admin/subscribers/erase",
            &[("id", &mary), ("id", &zoe), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.count(erased).await, 2);
    let list = staff.page("/admin/subscribers").await;
    assert!(list.contains("The personal data of 2 readers is erased."), "{list}");
    assert!(!list.contains("mary@example.com") && !list.contains("zoe@example.com"));
    // An erased reader is in no export, selected or not.
    let csv = staff
        .post("/admin/subscribers/bulk", &[("id", &mary), ("action", "export")])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1, "{csv}");
}
