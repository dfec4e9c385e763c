//! The welcome email and the reader's preferences page (issue 16, part 3):
//! a reader who confirms is sent one welcome email, in their language, with
//! the link to their preferences page (their unsubscribe token), where they
//! change their name and language, pause the digest or leave; each change
//! is an event in their history, and a paused reader gets no issue
//! dispatched before the pause ends. A new address is asked for on the
//! page and confirmed from a link mailed to it; until then, mail keeps
//! going to the old one.

use std::time::Duration;

use chrono::Utc;

use crate::admin::{erase_reader, staff_session};
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

// ---------------------------------------------------------------------------
// A change of address.

/// `POST path` with the browser asking for `language`.
async fn post_in(app: &TestApp, language: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Accept-Language", language)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Opens a link from an email with the browser asking for `language`.
async fn open_in(app: &TestApp, language: &str, link: &str) -> (u16, String) {
    let path = link.strip_prefix(BASE_URL).expect("a link to the site");
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .header("Accept-Language", language)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asks for `email` as the reader's new address on their preferences page.
async fn ask_for(app: &TestApp, token: &str, email: &str) -> (u16, String) {
    change(app, token, &[("action", "address"), ("email", email)]).await
}

/// The confirmation link in a new address's email, which both parts carry.
fn address_link(mail: &Received) -> String {
    let text = mail.text();
    let start = text
        .find(&format!("{BASE_URL}/preferences/address?token="))
        .expect("the link in the text part");
    let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert!(
        mail.html().contains(&format!("href=\"{link}\"")),
        "the HTML part links to {link}"
    );
    link
}

fn link_token(link: &str) -> String {
    link.split("token=").nth(1).expect("a token in the link").to_owned()
}

/// The latest message to `address`, once `n` have arrived.
async fn nth_mail(app: &TestApp, address: &str, n: usize) -> Received {
    app.smtp.wait_for(address, n).await.remove(n - 1)
}

async fn reader_id(app: &TestApp, email_key: &str) -> uuid::Uuid {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
            .bind(email_key)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// The reader's address, its key and their status.
async fn address_of(app: &TestApp, id: uuid::Uuid) -> (String, String, String) {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT email, email_key, status FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// The consent record: where, when and how they signed up, when they confirmed.
type Consent = (
    Option<String>,
    String,
    chrono::DateTime<Utc>,
    Option<chrono::DateTime<Utc>>,
);

async fn consent(app: &TestApp, id: uuid::Uuid) -> Consent {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT signup_ip, signup_source, signed_up_at, confirmed_at FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

async fn address_events(app: &TestApp, id: uuid::Uuid) -> Vec<String> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar(
            "SELECT detail FROM subscriber_events WHERE subscriber_id = $1 AND kind = 'address_changed' ORDER BY at",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

fn digests(app: &TestApp, address: &str) -> usize {
    app.smtp.received_for(address).iter().filter(|m| m.is_digest()).count()
}

pub async fn a_reader_moves_to_a_new_address_once_its_inbox_confirms_and_keeps_their_consent_record(backend: Backend) {
    let app = welcoming_app(&backend).await;
    signed_up_and_confirmed(&app, "Ada", "ada@example.com", "en").await;
    let token = app.unsubscribe_token("ada@example.com").await;
    let id = reader_id(&app, "ada@example.com").await;
    let consent_before = consent(&app, id).await;
    let settings = test_settings(&backend, app.smtp.port);
    let now = Utc::now();

    // The page has the form; asking mails a link to the new address only.
    let page = app
        .get(&format!("/preferences?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<input type="hidden" name="action" value="address">"#),
        "{page}"
    );
    let (status, page) = ask_for(&app, &token, "ada.new@example.net").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Check the new inbox: we have sent a link to ada.new@example.net.")
            && page.contains("until then, our mail keeps going to ada@example.com."),
        "{page}"
    );
    let mail = nth_mail(&app, "ada.new@example.net", 1).await;
    assert_eq!(
        mail.parsed().subject(),
        Some("Confirm your new address for The Test Gazette")
    );
    let link = address_link(&mail);
    assert!(mail.text().contains("The link works for 48 hours."), "{}", mail.text());
    // It names nobody: whoever holds a preferences link may type any address.
    assert!(
        !mail.text().contains("ada@example.com") && !mail.html().contains("ada@example.com"),
        "{}",
        mail.text()
    );
    app.wait_for_empty_queue().await;
    assert_eq!(
        app.smtp.count_for("ada@example.com"),
        2,
        "the confirmation and the welcome only"
    );

    // Until the link is opened, the reader and their mail stay where they are.
    assert_eq!(address_of(&app, id).await.0, "ada@example.com");
    let page = app
        .get(&format!("/preferences?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("A change to ada.new@example.net is waiting for you to open the link we sent there"),
        "{page}"
    );
    article(&backend, FIXTURE_URL, now - chrono::Duration::days(15)).await;
    gazette::digest::dispatch::dispatch(&app.db, &settings, now - chrono::Duration::days(14))
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), "the copy at the old address", || async {
        digests(&app, "ada@example.com") == 1
    })
    .await;

    // Opening the link shows the address and a button, and changes nothing.
    let opened = app.open_link(&link).await;
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["cache-control"], "no-store");
    assert_eq!(opened.headers()["referrer-policy"], "no-referrer");
    let opened = opened.text().await.unwrap();
    assert!(
        opened.contains("<strong>ada.new@example.net</strong>") && opened.contains(r#"action="/preferences/address""#),
        "{opened}"
    );
    assert_eq!(address_of(&app, id).await.0, "ada@example.com");

    // The button moves the reader: one row, the same consent record, and
    // the move in their history with both addresses and where it came from.
    let response = app
        .post_form("/preferences/address", &[("token", &link_token(&link))])
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Your address is changed") && page.contains("<strong>ada.new@example.net</strong>"),
        "{page}"
    );
    assert_eq!(
        address_of(&app, id).await,
        (
            "ada.new@example.net".into(),
            "ada.new@example.net".into(),
            "confirmed".into()
        )
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);
    assert_eq!(consent(&app, id).await, consent_before, "the consent record stays");
    let history = address_events(&app, id).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(
        history[0].starts_with("ada@example.com → ada.new@example.net; asked at ")
            && history[0].ends_with("from 127.0.0.1, confirmed from 127.0.0.1"),
        "{history:?}"
    );

    // The link works once: opened or pressed again, it says the change
    // stands, and changes nothing more.
    let again = app
        .post_form("/preferences/address", &[("token", &link_token(&link))])
        .await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Your address is changed"));
    let reopened = app.open_link(&link).await.text().await.unwrap();
    assert!(
        reopened.contains("Your address is changed") && !reopened.contains(r#"action="/preferences/address""#),
        "{reopened}"
    );
    assert_eq!(address_events(&app, id).await.len(), 1);

    // The same preferences link, now showing the new address; the next
    // issue goes there, and nothing more to the old one.
    let page = app
        .get(&format!("/preferences?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<strong>ada.new@example.net</strong>") && !page.contains("is waiting"),
        "{page}"
    );
    article(&backend, "https://example.org/second", now - chrono::Duration::days(1)).await;
    gazette::digest::dispatch::dispatch(&app.db, &settings, now)
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), "the copy at the new address", || async {
        digests(&app, "ada.new@example.net") == 1
    })
    .await;
    assert_eq!(digests(&app, "ada@example.com"), 1);
}

pub async fn a_russian_reader_is_asked_mailed_and_answered_in_russian(backend: Backend) {
    let app = welcoming_app(&backend).await;
    signed_up_and_confirmed(&app, "Айгерим", "aigerim@example.com", "ru").await;
    let token = app.unsubscribe_token("aigerim@example.com").await;

    // A mistake: the page again, in Russian, with the reason at the field.
    let (status, page) = post_in(
        &app,
        "ru",
        "/preferences",
        &[("token", &token), ("action", "address"), ("email", "")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains(r#"<html lang="ru">"#)
            && page.contains(
                r#"<p class="field-error" id="email-error">Пожалуйста, введите адрес электронной почты.</p>"#
            )
            && page.contains(r#"aria-invalid="true""#),
        "{page}"
    );

    let (status, page) = post_in(
        &app,
        "ru",
        "/preferences",
        &[
            ("token", &token),
            ("action", "address"),
            ("email", "aigerim.new@example.net"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Проверьте новый почтовый ящик: мы отправили ссылку на aigerim.new@example.net.")
            && page.contains("до тех пор наши письма будут приходить на aigerim@example.com."),
        "{page}"
    );

    // The email is in the reader's language, whatever the page's.
    let mail = nth_mail(&app, "aigerim.new@example.net", 1).await;
    assert_eq!(
        mail.parsed().subject(),
        Some("Подтвердите новый адрес для The Test Gazette")
    );
    assert!(mail.html().contains(r#"<html lang="ru">"#), "{}", mail.html());
    assert!(mail.text().contains("Ссылка действует 48 часов."), "{}", mail.text());
    let link = address_link(&mail);

    let (status, page) = open_in(&app, "ru", &link).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<html lang="ru">"#) && page.contains("Использовать этот адрес"),
        "{page}"
    );
    let (status, page) = post_in(&app, "ru", "/preferences/address", &[("token", &link_token(&link))]).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Адрес изменён") && page.contains("<strong>aigerim.new@example.net</strong>"),
        "{page}"
    );

    // The new address, spelled another way, is hers already: nothing sent.
    let (status, page) = post_in(
        &app,
        "ru",
        "/preferences",
        &[
            ("token", &token),
            ("action", "address"),
            ("email", "Aigerim.New@EXAMPLE.net"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("— это уже ваш адрес: ничего не изменено и ничего не отправлено."),
        "{page}"
    );
    app.wait_for_empty_queue().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE kind = 'address_change'")
            .await,
        1
    );
}

pub async fn another_readers_address_a_newer_request_expiry_and_the_daily_cap_change_nothing(backend: Backend) {
    let app = welcoming_app(&backend).await;
    signed_up_and_confirmed(&app, "Ada", "ada@example.com", "en").await;
    signed_up_and_confirmed(&app, "Bob", "bob@example.com", "en").await;
    let ada = app.unsubscribe_token("ada@example.com").await;
    let ada_id = reader_id(&app, "ada@example.com").await;
    let bob_id = reader_id(&app, "bob@example.com").await;
    let requests = || app.count("SELECT COUNT(*) FROM address_changes");

    // Bad input and her own address: the page again with the reason at the
    // field, nothing written, nothing sent.
    for (email, why) in [
        ("", "Please enter your email address."),
        (
            "ada@example.invalid",
            "Addresses ending in .invalid cannot receive our mail",
        ),
        (
            "ADA@Example.com",
            "is already your address: nothing was changed and nothing was sent.",
        ),
    ] {
        let (status, page) = ask_for(&app, &ada, email).await;
        assert_eq!(status, 400, "{email:?}: {page}");
        assert!(
            page.contains(r#"<p class="field-error" id="email-error">"#) && page.contains(why),
            "{email:?}: {page}"
        );
        assert!(
            page.contains(&format!(r#"value="{email}""#)),
            "{email:?}: the value is kept"
        );
    }
    assert_eq!(requests().await, 0);

    // Bob's address gets the same answer as any other (nothing tells Ada
    // it is on the list), and its link, in Bob's inbox, refuses to merge.
    let (status, to_bob) = ask_for(&app, &ada, "bob@example.com").await;
    assert_eq!(status, 200, "{to_bob}");
    let bob_link = address_link(&nth_mail(&app, "bob@example.com", 3).await);
    let (status, to_free) = ask_for(&app, &ada, "ada.free@example.net").await;
    assert_eq!(status, 200, "{to_free}");
    assert_eq!(
        to_bob.replace("bob@example.com", "…"),
        to_free.replace("ada.free@example.net", "…"),
        "the same answer for a reader's address"
    );
    // A newer request ends the older link.
    let (status, page) = open_in(&app, "en", &bob_link).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("a newer request replaces an older one"), "{page}");

    // Bob's address again, as the open request: 409, and nobody changes.
    ask_for(&app, &ada, "bob@example.com").await;
    let bob_link = address_link(&nth_mail(&app, "bob@example.com", 4).await);
    let (status, page) = open_in(&app, "en", &bob_link).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("This address already has a subscription"), "{page}");
    let (status, page) = post_in(&app, "en", "/preferences/address", &[("token", &link_token(&bob_link))]).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("we never merge two subscriptions into one"), "{page}");
    assert_eq!(address_of(&app, ada_id).await.0, "ada@example.com");
    assert_eq!(address_of(&app, bob_id).await.0, "bob@example.com");
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 2);
    assert!(address_events(&app, ada_id).await.is_empty());

    // The day's cap (`subscriptions.confirmation_emails_per_day`, 3) is
    // reached: the fourth request is refused and sends nothing.
    let (status, page) = ask_for(&app, &ada, "ada.fourth@example.net").await;
    assert_eq!(status, 429, "{page}");
    assert!(
        page.contains("You have asked for 3 address changes in the last day, as many as we allow."),
        "{page}"
    );
    assert_eq!(requests().await, 3);
    app.wait_for_empty_queue().await;
    assert_eq!(app.smtp.count_for("ada.fourth@example.net"), 0);

    // A day later there is room again; a link past its time is refused,
    // opened or pressed, and nothing changes.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE address_changes SET requested_at = $1")
            .bind(Utc::now() - chrono::Duration::hours(25))
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    assert_eq!(ask_for(&app, &ada, "ada.later@example.net").await.0, 200);
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE address_changes SET expires_at = $1 WHERE new_email = 'ada.later@example.net'")
            .bind(Utc::now() - chrono::Duration::seconds(1))
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    let link = address_link(&nth_mail(&app, "ada.later@example.net", 1).await);
    let (status, page) = open_in(&app, "en", &link).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("This link has expired"), "{page}");
    let (status, _) = post_in(&app, "en", "/preferences/address", &[("token", &link_token(&link))]).await;
    assert_eq!(status, 410);
    assert_eq!(address_of(&app, ada_id).await.0, "ada@example.com");

    // Links that are no links.
    for (path, status, says) in [
        ("/preferences/address".to_owned(), 400, "missing part of its code"),
        (
            "/preferences/address?token=abc".to_owned(),
            400,
            "missing part of its code",
        ),
        (
            format!(
                "/preferences/address?token={}",
                gazette::domain::Token::generate().as_str()
            ),
            404,
            "This link to confirm a new address is not valid",
        ),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(response.text().await.unwrap().contains(says), "{path}");
    }
    let (status, _) = post_in(&app, "en", "/preferences/address", &[("token", "")]).await;
    assert_eq!(status, 400);
    assert!(address_events(&app, ada_id).await.is_empty());
}

pub async fn readers_who_left_were_erased_or_bounced_and_undeliverable_links(backend: Backend) {
    let app = welcoming_app(&backend).await;
    for (name, email) in [
        ("Bob", "bob@example.com"),
        ("Carol", "carol@example.com"),
        ("Dan", "dan@example.com"),
    ] {
        signed_up_and_confirmed(&app, name, email, "en").await;
    }
    let bob = app.unsubscribe_token("bob@example.com").await;
    let bob_id = reader_id(&app, "bob@example.com").await;

    // A link the new address's server refuses for good fails alone: the
    // reader's own address did not bounce.
    app.smtp.refuse_unknown_user("gone@");
    assert_eq!(ask_for(&app, &bob, "gone@example.net").await.0, 200);
    wait_until(Duration::from_secs(10), "the refused link to fail", || async {
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE kind = 'address_change' AND status = 'failed'")
            .await
            == 1
    })
    .await;
    assert_eq!(address_of(&app, bob_id).await.2, "confirmed");

    // A reader who left since asking: the link refuses, and their page
    // takes no new request.
    assert_eq!(ask_for(&app, &bob, "bob.new@example.net").await.0, 200);
    let link = address_link(&nth_mail(&app, "bob.new@example.net", 1).await);
    assert_eq!(change(&app, &bob, &[("action", "unsubscribe")]).await.0, 200);
    let (status, page) = open_in(&app, "en", &link).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("This subscription has ended"), "{page}");
    let (status, _) = post_in(&app, "en", "/preferences/address", &[("token", &link_token(&link))]).await;
    assert_eq!(status, 410);
    assert_eq!(
        address_of(&app, bob_id).await,
        (
            "bob@example.com".into(),
            "bob@example.com".into(),
            "unsubscribed".into()
        )
    );
    let (status, page) = ask_for(&app, &bob, "bob.newer@example.net").await;
    assert_eq!(status, 200);
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM address_changes WHERE new_email = 'bob.newer@example.net'")
            .await,
        0
    );

    // An erased reader: their links are dead and what they asked for is gone.
    let carol = app.unsubscribe_token("carol@example.com").await;
    assert_eq!(ask_for(&app, &carol, "carol.new@example.net").await.0, 200);
    let link = address_link(&nth_mail(&app, "carol.new@example.net", 1).await);
    let mut staff = staff_session(&app).await;
    erase_reader(&mut staff, "carol").await;
    assert_eq!(open_in(&app, "en", &link).await.0, 404);
    assert_eq!(
        post_in(&app, "en", "/preferences/address", &[("token", &link_token(&link))])
            .await
            .0,
        404
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM address_changes WHERE new_email = 'carol.new@example.net'")
            .await,
        0
    );
    assert_eq!(ask_for(&app, &carol, "carol.newer@example.net").await.0, 404);

    // A reader marked bounced for their old address comes back with a new one.
    let dan = app.unsubscribe_token("dan@example.com").await;
    let dan_id = reader_id(&app, "dan@example.com").await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET status = 'bounced' WHERE id = $1")
            .bind(dan_id)
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    assert_eq!(ask_for(&app, &dan, "dan.new@example.net").await.0, 200);
    let link = address_link(&nth_mail(&app, "dan.new@example.net", 1).await);
    let (status, _) = post_in(&app, "en", "/preferences/address", &[("token", &link_token(&link))]).await;
    assert_eq!(status, 200);
    assert_eq!(
        address_of(&app, dan_id).await,
        (
            "dan.new@example.net".into(),
            "dan.new@example.net".into(),
            "confirmed".into()
        )
    );
    let history = address_events(&app, dan_id).await;
    assert!(history[0].ends_with("; no longer bounced"), "{history:?}");
}
