//! The welcome email and the reader's preferences page (issue 16, part 3):
//! a reader who confirms is sent one welcome email, in their language, with
//! the link to their preferences page (their unsubscribe token), where they
//! change their name and language, pause the digest or leave; each change
//! is an event in their history, and a paused reader gets no issue
//! dispatched before the pause ends.

use std::time::Duration;

use chrono::Utc;

use crate::cli::{FIXTURE, FIXTURE_URL, import, run, text};
use crate::helpers::{BASE_URL, Backend, Received, TestApp, spawn_app_with, test_settings, wait_until};

/// The application with `signup.welcome` as it ships (the other tests
/// turn it off: they count each reader's mail).
async fn welcoming_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |settings| settings.signup.welcome = true).await
}

/// Signs a reader up on the page in `language`, confirms with the link of
/// their confirmation email, and returns their welcome email.
async fn signed_up_and_confirmed(app: &TestApp, name: &str, email: &str, language: &str) -> Received {
    let response = app
        .post_form(
            "/subscriptions",
            &[("name", name), ("email", email), ("language", language)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let link = app.smtp.wait_for(email, 1).await.remove(0).confirmation_link();
    let token = link.split("token=").nth(1).expect("a token in the link").to_owned();
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
    let mut mail = app.smtp.wait_for(email, 2).await;
    assert_eq!(mail.len(), 2, "the confirmation and the welcome email");
    mail.remove(1)
}

/// The preferences link in a welcome email, which both parts must carry.
fn preferences_link(welcome: &Received) -> String {
    let text = welcome.text();
    let start = text
        .find(&format!("{BASE_URL}/preferences?token="))
        .expect("the link in the text part");
    let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert!(
        welcome.html().contains(&format!("href=\"{link}\"")),
        "the HTML part links to {link}"
    );
    link
}

async fn events(app: &TestApp, email: &str) -> Vec<(String, String)> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT e.kind, e.detail FROM subscriber_events e JOIN subscribers s ON s.id = e.subscriber_id
             WHERE s.email_key = $1 ORDER BY e.at, e.id",
        )
        .bind(email)
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

/// Name, language, whether paused now, and status.
async fn reader(app: &TestApp, email: &str) -> (String, String, bool, String) {
    let (name, language, paused_until, status): (String, String, Option<chrono::DateTime<Utc>>, String) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT name, language, paused_until, status FROM subscribers WHERE email_key = $1")
            .bind(email)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    (
        name,
        language,
        paused_until.is_some_and(|until| until > Utc::now()),
        status,
    )
}

async fn change(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form = vec![("token", token)];
    form.extend_from_slice(fields);
    let response = app.post_form("/preferences", &form).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub async fn confirming_sends_one_welcome_email_in_the_readers_language_with_a_working_preferences_link(
    backend: Backend,
) {
    let app = welcoming_app(&backend).await;
    let welcome = signed_up_and_confirmed(&app, "Айгерим", "aigerim@example.com", "ru").await;
    assert_eq!(welcome.parsed().subject(), Some("Добро пожаловать в The Test Gazette"));
    let (text, html) = (welcome.text(), welcome.html());
    assert!(text.starts_with("Добро пожаловать!"), "{text}");
    assert!(
        text.contains("Раз в неделю") && text.contains(&format!("{BASE_URL}/archive")),
        "{text}"
    );
    assert!(
        html.contains(r#"<html lang="ru">"#) && html.contains("Мои настройки"),
        "{html}"
    );
    let link = preferences_link(&welcome);
    assert_eq!(
        link,
        format!(
            "{BASE_URL}/preferences?token={}",
            app.unsubscribe_token("aigerim@example.com").await
        )
    );

    // The link opens the reader's page, private like the unsubscribe page's.
    let page = app.open_link(&link).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("aigerim@example.com") && page.contains(r#"value="Айгерим""#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="ru" lang="ru" selected>"#), "{page}");

    // Confirming again queues nothing more.
    let token = welcome_confirmation_token(&app, "aigerim@example.com").await;
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
    app.wait_for_empty_queue().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE kind = 'welcome'")
            .await,
        1
    );
    assert_eq!(app.smtp.count_for("aigerim@example.com"), 2);

    // An English reader's is English.
    let english = signed_up_and_confirmed(&app, "Ada", "ada@example.com", "en").await;
    assert_eq!(english.parsed().subject(), Some("Welcome to The Test Gazette"));
    assert!(english.text().contains("Once a week you will receive the digest"));
}

/// The confirmation token, from the confirmation email the reader got.
async fn welcome_confirmation_token(app: &TestApp, email: &str) -> String {
    let link = app.smtp.received_for(email).remove(0).confirmation_link();
    link.split("token=").nth(1).unwrap().to_owned()
}

pub async fn without_signup_welcome_a_confirmed_reader_gets_no_welcome_email(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| settings.signup.welcome = false).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let token = {
        let link = app
            .smtp
            .wait_for("ada@example.com", 1)
            .await
            .remove(0)
            .confirmation_link();
        link.split("token=").nth(1).unwrap().to_owned()
    };
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE kind = 'welcome'")
            .await,
        0
    );
    assert_eq!(app.smtp.count_for("ada@example.com"), 1, "only the confirmation");
}

pub async fn each_preference_change_is_saved_as_an_event_and_bad_values_or_links_change_nothing(backend: Backend) {
    let app = welcoming_app(&backend).await;
    signed_up_and_confirmed(&app, "Ada", "ada@example.com", "en").await;
    let token = app.unsubscribe_token("ada@example.com").await;
    let email = "ada@example.com";

    // Name and language in one form; the answer speaks the new language.
    let (status, page) = change(
        &app,
        &token,
        &[("action", "save"), ("name", "Ada Lovelace"), ("language", "ru")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"<html lang="ru">"#) && page.contains("Настройки сохранены."),
        "{page}"
    );
    assert_eq!(
        reader(&app, email).await,
        ("Ada Lovelace".into(), "ru".into(), false, "confirmed".into())
    );
    // Saving the same again changes nothing, so it is no event; no name is a name.
    change(
        &app,
        &token,
        &[("action", "save"), ("name", "Ada Lovelace"), ("language", "ru")],
    )
    .await;
    let (status, _) = change(&app, &token, &[("action", "save"), ("name", ""), ("language", "ru")]).await;
    assert_eq!(status, 200);
    assert_eq!(reader(&app, email).await.0, "");

    // A pause, shown on the page with its end (in the page's language,
    // which follows the browser like every page); then resuming early.
    let (status, page) = change(&app, &token, &[("action", "pause"), ("weeks", "3")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("The digest is paused until"), "{page}");
    assert!(reader(&app, email).await.2, "paused");
    let (status, page) = change(&app, &token, &[("action", "resume")]).await;
    assert_eq!(status, 200);
    assert!(!page.contains("The digest is paused until"), "{page}");
    assert!(!reader(&app, email).await.2, "resumed");

    let kinds: Vec<String> = events(&app, email).await.into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        ["name_changed", "language_changed", "name_changed", "paused", "resumed"]
    );
    assert_eq!(events(&app, email).await[1].1, "en → ru");

    // Bad values: a 400 saying why, nothing written.
    let before = (reader(&app, email).await, events(&app, email).await.len());
    for (fields, why) in [
        (
            vec![("action", "pause"), ("weeks", "9")],
            "A pause lasts from 1 to 8 weeks",
        ),
        (
            vec![("action", "pause"), ("weeks", "0")],
            "A pause lasts from 1 to 8 weeks",
        ),
        (
            vec![("action", "pause"), ("weeks", "two")],
            "A pause lasts from 1 to 8 weeks",
        ),
        (
            vec![("action", "save"), ("name", "Ada"), ("language", "de")],
            "We do not offer that language",
        ),
        (
            vec![("action", "save"), ("name", "Ada"), ("language", "")],
            "We do not offer that language",
        ),
        (
            vec![("action", "save"), ("name", "Ada\nLovelace"), ("language", "en")],
            "control characters",
        ),
        (
            vec![("action", "save"), ("name", &"A".repeat(101)), ("language", "en")],
            "too long",
        ),
        (vec![("action", "erase")], "The form was incomplete"),
    ] {
        let response = app
            .client
            .post(format!("{}/preferences", app.address))
            .header("Accept-Language", "en")
            .form(&[vec![("token", token.as_str())], fields.clone()].concat())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{fields:?}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Nothing was changed") && page.contains(why),
            "{fields:?}: {page}"
        );
    }
    assert_eq!((reader(&app, email).await, events(&app, email).await.len()), before);

    // Bad and missing tokens: the unsubscribe link's pages.
    let missing = app.get("/preferences").await;
    assert_eq!(missing.status(), 200);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("use the link in your welcome email")
    );
    let cut = app.get(&format!("/preferences?token={}", &token[..40])).await;
    assert_eq!(cut.status(), 400);
    assert!(cut.text().await.unwrap().contains("missing part of its code"));
    let stranger = gazette::domain::UnsubscribeToken::generate(uuid::Uuid::new_v4()).as_string();
    let unknown = app.get(&format!("/preferences?token={stranger}")).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("does not belong to any reader"));
    let (status, _) = change(&app, &stranger, &[("action", "unsubscribe")]).await;
    assert_eq!(status, 404);
    let (status, _) = change(&app, "", &[("action", "unsubscribe")]).await;
    assert_eq!(status, 400);
    assert_eq!(reader(&app, email).await.3, "confirmed");

    // Leaving, from the page: the unsubscribed page, and an event.
    let (status, page) = change(&app, &token, &[("action", "unsubscribe")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(reader(&app, email).await.3, "unsubscribed");
    let last = events(&app, email).await.pop().unwrap();
    assert_eq!(last.0, "unsubscribed");
    // A reader who left changes nothing more here; the page says they left.
    change(&app, &token, &[("action", "pause"), ("weeks", "2")]).await;
    assert!(!reader(&app, email).await.2);
    let page = app
        .get(&format!("/preferences?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("/subscriptions"), "the way back: {page}");
}

/// Imports the fixture article again under `url`, published at `published`.
async fn article(backend: &Backend, url: &str, published: chrono::DateTime<Utc>) {
    let published = published.to_rfc3339();
    let imported = import(backend, &[FIXTURE, "--url", url, "--published", &published]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
}

async fn deliveries(app: &TestApp, email: &str) -> i64 {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email_key = $1",
        )
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
    })
}

fn is_digest(m: &Received) -> bool {
    m.is_digest()
}

pub async fn a_paused_reader_gets_no_issue_dispatched_while_paused_and_the_next_after_it(backend: Backend) {
    let app = welcoming_app(&backend).await;
    signed_up_and_confirmed(&app, "Ada", "ada@example.com", "en").await;
    signed_up_and_confirmed(&app, "Bob", "bob@example.com", "en").await;
    let ada = app.unsubscribe_token("ada@example.com").await;
    let (status, _) = change(&app, &ada, &[("action", "pause"), ("weeks", "1")]).await;
    assert_eq!(status, 200);
    let settings = test_settings(&backend, app.smtp.port);
    let now = Utc::now();

    // An issue dispatched while Ada is paused (two days ago, so its copies
    // are due at once) reaches Bob only.
    article(&backend, FIXTURE_URL, now - chrono::Duration::days(3)).await;
    // The preview counts whom the issue would reach: not Ada.
    let preview = crate::cli::run(&backend, &["dispatch", "--dry-run"]).await;
    let printed = crate::cli::text(&preview.stdout);
    assert!(printed.contains("Recipients: 1 confirmed subscribers"), "{printed}");
    gazette::digest::dispatch::dispatch(&app.db, &settings, now - chrono::Duration::days(2))
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), "Bob's copy", || async {
        app.smtp.received_for("bob@example.com").iter().any(is_digest)
    })
    .await;
    assert_eq!(deliveries(&app, "ada@example.com").await, 0);
    assert!(!app.smtp.received_for("ada@example.com").iter().any(is_digest));

    // She resumes early: the next issue (`gazette dispatch`) reaches her.
    assert_eq!(change(&app, &ada, &[("action", "resume")]).await.0, 200);
    article(&backend, "https://example.org/second", now - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 2 readers"),
        "{}{}",
        text(&dispatched.stdout),
        text(&dispatched.stderr)
    );
    wait_until(Duration::from_secs(20), "Ada's copy", || async {
        app.smtp.received_for("ada@example.com").iter().any(is_digest)
    })
    .await;

    // Paused again, she is back by herself once the pause has run out: an
    // issue dispatched after its end has her copy.
    assert_eq!(change(&app, &ada, &[("action", "pause"), ("weeks", "1")]).await.0, 200);
    let later = Utc::now() + chrono::Duration::days(8);
    article(
        &backend,
        "https://example.org/third",
        later - chrono::Duration::hours(1),
    )
    .await;
    gazette::digest::dispatch::dispatch(&app.db, &settings, later)
        .await
        .unwrap();
    assert_eq!(deliveries(&app, "ada@example.com").await, 2);
    assert_eq!(deliveries(&app, "bob@example.com").await, 3);
}
