//! Two languages (issue 16): the public pages speak the reader's choice
//! (the switch, then its cookie), else their browser's, else
//! `site.default_language`; a reader who signs up on a page in one
//! language keeps it, and their mail is in it.

use crate::helpers::{BASE_URL, Backend, spawn_app, spawn_app_with};

const RUSSIAN_BROWSER: &str = "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7";

pub async fn pages_speak_the_readers_choice_else_their_browsers_language(backend: Backend) {
    let app = spawn_app(&backend).await;
    let get = |path: &str, accept: Option<&str>, cookie: Option<&str>| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(accept) = accept {
            request = request.header("Accept-Language", accept);
        }
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        async move { request.send().await.expect("GET") }
    };

    // No preference anywhere: the site's default, English.
    let page = get("/", None, None).await.text().await.unwrap();
    assert!(page.contains(r#"<html lang="en">"#), "{page}");
    assert!(page.contains("once a week</h1>"), "{page}");
    assert!(
        page.contains(r#"<a href="/?lang=ru" hreflang="ru" lang="ru">Русский</a>"#),
        "{page}"
    );

    // A Russian browser gets Russian pages, marked as varying with it.
    let response = get("/", Some(RUSSIAN_BROWSER), None).await;
    let vary = response.headers().get("Vary").unwrap().to_str().unwrap().to_owned();
    assert!(vary.contains("Accept-Language") && vary.contains("Cookie"), "{vary}");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<html lang="ru">"#), "{page}");
    assert!(page.contains("Новости недели — раз в неделю"), "{page}");
    assert!(
        page.contains(r#"<input type="hidden" name="language" value="ru">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="/?lang=en" hreflang="en" lang="en">English</a>"#),
        "{page}"
    );

    // The switch wins over the browser and is remembered.
    let response = get("/?lang=en", Some(RUSSIAN_BROWSER), None).await;
    let cookie = response
        .headers()
        .get("Set-Cookie")
        .expect("the choice is remembered")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("lang=en;") && cookie.contains("Path=/"), "{cookie}");
    assert!(response.text().await.unwrap().contains(r#"<html lang="en">"#));
    let page = get("/archive", Some(RUSSIAN_BROWSER), Some("lang=en"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<html lang="en">"#) && page.contains("Past issues"),
        "{page}"
    );

    // A value that names no catalogue changes nothing and sets nothing.
    let response = get("/?lang=xx", Some(RUSSIAN_BROWSER), Some("lang=<b>")).await;
    assert!(response.headers().get("Set-Cookie").is_none());
    assert!(response.text().await.unwrap().contains(r#"<html lang="ru">"#));

    // Pages about problems too, with the way back kept in the switch.
    let response = get("/no-such-page?x=1", Some(RUSSIAN_BROWSER), None).await;
    assert_eq!(response.status(), 404);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Страница не найдена") && page.contains("На главную"),
        "{page}"
    );
    assert!(page.contains(r#"href="/no-such-page?x=1&#38;lang=en""#), "{page}");

    // The archive's dates and counts are Russian words.
    let page = get("/archive", Some(RUSSIAN_BROWSER), None).await.text().await.unwrap();
    assert!(page.contains("Прошлые выпуски"), "{page}");
}

pub async fn a_reader_who_signs_up_on_the_russian_page_gets_russian_mail(backend: Backend) {
    let app = spawn_app(&backend).await;
    let sign_up = |language: &str, email: &str| {
        app.client
            .post(format!("{}/subscriptions", app.address))
            .form(&[("name", "Айгерим"), ("email", email), ("language", language)])
            .send()
    };
    let response = sign_up("ru", "aigerim@example.com").await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(r#"<html lang="ru">"#) && page.contains("Проверьте почту"),
        "{page}"
    );
    let response = sign_up("en", "ada@example.com").await.unwrap();
    assert!(response.text().await.unwrap().contains("Check your inbox"));

    let language = |email: &'static str| {
        let db = app.db.clone();
        async move {
            gazette::with_pool!(&db, pool => {
                sqlx::query_scalar::<_, String>("SELECT language FROM subscribers WHERE email_key = $1")
                    .bind(email)
                    .fetch_one(pool)
                    .await
                    .unwrap()
            })
        }
    };
    assert_eq!(language("aigerim@example.com").await, "ru");
    assert_eq!(language("ada@example.com").await, "en");

    let russian = app.smtp.wait_for("aigerim@example.com", 1).await.remove(0);
    let parsed = russian.parsed();
    assert_eq!(parsed.subject(), Some("Подтвердите подписку на The Test Gazette"));
    let (text, html) = (russian.text(), russian.html());
    assert!(text.starts_with("Здравствуйте!"), "{text}");
    assert!(text.contains("Ссылка действует 48 часов."), "{text}");
    assert!(
        html.contains(r#"<html lang="ru">"#) && html.contains("Подтвердить подписку"),
        "{html}"
    );
    assert!(text.contains(&russian.confirmation_link()), "the link is still there");

    let english = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert_eq!(
        english.parsed().subject(),
        Some("Please confirm your subscription to The Test Gazette")
    );
    assert!(english.text().contains("The link works for 48 hours."));

    // The confirmation link's page follows the reader's browser, not the
    // address: a link forwarded to a colleague shows in theirs.
    let link = russian.confirmation_link();
    let path = link.strip_prefix(crate::helpers::BASE_URL).expect("a link to the site");
    let page = app
        .client
        .get(format!("{}{path}", app.address))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Confirm your subscription"), "{page}");
}

pub async fn the_site_default_language_serves_browsers_that_ask_for_none_gazette_has(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| {
        settings.site.default_language = gazette::i18n::Language::parse("ru").unwrap();
    })
    .await;
    let page = app
        .client
        .get(format!("{}/", app.address))
        .header("Accept-Language", "de-DE,fr;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<html lang="ru">"#), "{page}");
}

/// The digest greets each reader by name where the name is known, in the
/// reader's language, and as a reader without one otherwise; the name is
/// text in both parts (escaped in the HTML, as it was given in the text),
/// though the issue is rendered once per language.
pub async fn each_reader_is_greeted_by_name_where_it_is_known(backend: Backend) {
    let app = spawn_app(&backend).await;
    crate::admin::add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada <b>Lovelace</b> & Co".into()),
            ("anon@example.com".into(), "".into()),
            ("aigerim@example.com".into(), "Айгерим".into()),
            ("anon-ru@example.com".into(), "".into()),
        ],
    )
    .await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET language = 'ru' WHERE email_key IN ('aigerim@example.com', 'anon-ru@example.com')")
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    crate::cli::import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = crate::cli::run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", crate::cli::text(&dispatched.stderr));

    for (address, text_greeting, html_greeting) in [
        (
            "ada@example.com",
            "Dear Ada <b>Lovelace</b> & Co,",
            "Dear Ada &lt;b&gt;Lovelace&lt;/b&gt; &amp; Co,",
        ),
        ("anon@example.com", "Dear reader,", "Dear reader,"),
        (
            "aigerim@example.com",
            "Здравствуйте, Айгерим!",
            "Здравствуйте, Айгерим!",
        ),
        ("anon-ru@example.com", "Здравствуйте!", "Здравствуйте!"),
    ] {
        let mail = app.smtp.wait_for(address, 1).await.remove(0);
        let (text, html) = (mail.text().replace("\r\n", "\n"), mail.html());
        assert!(text.contains(&format!("\n\n{text_greeting}\n")), "{address}: {text}");
        assert!(html.contains(&format!(">{html_greeting}</p>")), "{address}: {html}");
        assert!(!html.contains("<b>Lovelace</b>"), "{address}: the name is text: {html}");
        // The greeting stands once, after the date line and before the stories.
        let greeted = text.find(text_greeting).unwrap();
        assert!(text[..greeted].contains("\n\n") && text[greeted..].contains(crate::cli::FIXTURE_URL));
        assert_eq!(text.matches(text_greeting).count(), 1, "{address}: {text}");
    }
}

/// The issue is rendered once per language and each reader gets it in
/// theirs: the same stories, the digest's own words and dates in Russian
/// for a Russian reader.
pub async fn each_reader_gets_the_issue_in_their_language(backend: Backend) {
    let app = spawn_app(&backend).await;
    crate::admin::add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada".into()),
            ("aigerim@example.com".into(), "Айгерим".into()),
        ],
    )
    .await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET language = 'ru' WHERE email_key = 'aigerim@example.com'")
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    crate::cli::import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = crate::cli::run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", crate::cli::text(&dispatched.stderr));

    let russian = app.smtp.wait_for("aigerim@example.com", 1).await.remove(0);
    let english = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let (ru_text, ru_html) = (russian.text(), russian.html());
    assert!(ru_html.contains(r#"<html lang="ru">"#), "{ru_html}");
    assert!(ru_text.contains("\nЭта неделя, "), "{ru_text}");
    assert!(ru_text.contains("\nОтписаться: "), "{ru_text}");
    assert!(ru_html.contains(">Отписаться</a>"), "{ru_html}");
    let month = [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ];
    assert!(month.iter().any(|m| ru_text.contains(m)), "a Russian date: {ru_text}");
    let (en_text, en_html) = (english.text(), english.html());
    assert!(en_html.contains(r#"<html lang="en">"#), "{en_html}");
    assert!(
        en_text.contains("\nThis week, ") && en_text.contains("\nUnsubscribe: "),
        "{en_text}"
    );
    // The same stories, each reader's own link.
    assert!(ru_text.contains(crate::cli::FIXTURE_URL) && en_text.contains(crate::cli::FIXTURE_URL));
    let token = app.unsubscribe_token("aigerim@example.com").await;
    assert!(ru_text.contains(&token) && !en_text.contains(&token));
    assert_eq!(russian.parsed().subject(), english.parsed().subject());
    // Each footer leads to the reader's own preferences page, in words of
    // their language.
    let preferences = format!("{BASE_URL}/preferences?token={token}");
    let (ru_text, en_text) = (ru_text.replace("\r\n", "\n"), en_text.replace("\r\n", "\n"));
    assert!(
        ru_text.contains(&format!("\nНастроить подписку: {preferences}\n")),
        "{ru_text}"
    );
    assert!(
        ru_html.contains(&format!(
            r#"href="{preferences}" style="color:#555555;">Настроить подписку</a>"#
        )),
        "{ru_html}"
    );
    let ada = app.unsubscribe_token("ada@example.com").await;
    assert!(
        en_text.contains(&format!(
            "\nManage your subscription: {BASE_URL}/preferences?token={ada}\n"
        )),
        "{en_text}"
    );

    // The archive lists the issue by its lead story and shows it inside the
    // site's layout, in the page's language, with nobody's links.
    let week = gazette::domain::IssueWeek::of(chrono::Utc::now(), chrono_tz::UTC);
    let page = |path: String| {
        let request = app.client.get(format!("{}{path}", app.address));
        async move { request.send().await.expect("GET").text().await.unwrap() }
    };
    let lead: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT title FROM articles").fetch_one(pool).await.unwrap()
    });
    for language in ["en", "ru"] {
        let listing = page(format!("/archive?lang={language}")).await;
        assert!(
            listing.contains(&format!(r#"<a href="/archive/{week}">{lead}</a>"#)),
            "{listing}"
        );
        let issue = page(format!("/archive/{week}?lang={language}")).await;
        assert!(issue.contains(&format!(r#"<html lang="{language}">"#)), "{issue}");
        assert!(
            issue.contains(&format!(
                r#"<h2 id="story-1"><a href="{}">{lead}</a></h2>"#,
                crate::cli::FIXTURE_URL
            )),
            "{issue}"
        );
        assert!(
            issue.contains(r#"<header class="site">"#) && issue.contains(r#"<footer class="site">"#),
            "the site's layout: {issue}"
        );
        assert!(
            !issue.contains("token=") && !issue.contains("/unsubscribe") && !issue.contains("/preferences"),
            "{issue}"
        );
        let (heading, cta) = match language {
            "ru" => ("<h1>Выпуск от ", "Получайте следующий выпуск на почту"),
            _ => ("<h1>The issue of ", "Get the next issue by email"),
        };
        assert!(issue.contains(heading) && issue.contains(cta), "{issue}");
    }
}
