//! The public site as a reader meets it (issue 16, part 2): every page has
//! the publication's header and a footer naming the publisher, the contact
//! address and the privacy notice; the front page says what the reader
//! gets and what is kept about them; `/privacy` says it in full, filled
//! from the settings.

use crate::admin::add_confirmed_readers;
use crate::cli::{import_fixture, run, text};
use crate::helpers::{Backend, spawn_app_with};

pub async fn every_page_names_the_publisher_and_the_privacy_notice_follows_the_settings(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| {
        settings.site.publisher = "Eurasia News Ltd".into();
        settings.site.contact = "privacy@news.example".into();
        settings.retention.unconfirmed_reader_days = 14;
        settings.retention.delivery_months = 0;
    })
    .await;
    let get = |path: &str, accept: &str| {
        let request = app
            .client
            .get(format!("{}{path}", app.address))
            .header("Accept-Language", accept);
        async move { request.send().await.expect("GET") }
    };
    for (path, status) in [
        ("/", 200),
        ("/archive", 200),
        ("/privacy", 200),
        ("/unsubscribe", 200),
        ("/nowhere", 404),
    ] {
        let response = get(path, "en").await;
        assert_eq!(response.status(), status, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(r#"<a class="brand" href="/">The Test Gazette</a>"#),
            "{path}: {page}"
        );
        assert!(page.contains("Published by Eurasia News Ltd."), "{path}: {page}");
        assert!(
            page.contains(r#"<a href="mailto:privacy@news.example">"#),
            "{path}: {page}"
        );
        assert!(page.contains(r#"<a href="/privacy">Privacy</a>"#), "{path}: {page}");
    }

    let home = get("/", "en").await.text().await.unwrap();
    assert!(
        home.contains("Your data") && home.contains("network address of your signup"),
        "{home}"
    );
    assert!(!home.contains("Latest issue"), "no issue yet: {home}");

    let privacy = get("/privacy", "en").await.text().await.unwrap();
    assert!(privacy.contains("Eurasia News Ltd sends this newsletter"), "{privacy}");
    assert!(privacy.contains("deleted after 14 days"), "{privacy}");
    assert!(
        !privacy.contains("anonymous counts"),
        "delivery_months = 0 keeps them: {privacy}"
    );
    let privacy = get("/privacy", "ru").await.text().await.unwrap();
    assert!(privacy.contains("удаляется через 14 дней"), "{privacy}");
    assert!(privacy.contains("Издатель: Eurasia News Ltd."), "{privacy}");

    // Once an issue has gone out, the front page links to it.
    add_confirmed_readers(&app, &[("ada@example.com".into(), "Ada".into())]).await;
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    let week: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT week FROM issues").fetch_one(pool).await.unwrap()
    });
    let home = get("/", "en").await.text().await.unwrap();
    assert!(home.contains("Latest issue:"), "{home}");
    assert!(home.contains(&format!(r#"<a href="/archive/{week}">"#)), "{home}");
    assert_eq!(get(&format!("/archive/{week}"), "en").await.status(), 200);
}
