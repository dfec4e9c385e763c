//! The staff area through HTTP: every route needs a session, forms need
//! their CSRF token and our own origin, logins are limited, and each page
//! does what it says on both backends.

use std::time::{Duration, Instant};

use chrono::Utc;
use gazette::db::new_readers::NewReader;
use gazette::db::subscriber_import::{self, Consent};
use gazette::domain::{StaffPassword, SubscriberEmail, SubscriberName};
use gazette::web::admin::{PUBLIC_PATHS, route_list};
use reqwest::header::LOCATION;

use crate::helpers::{
    BASE_URL, Backend, TEST_ADDRESSES, TestApp, spawn_app, spawn_app_with, spawn_web_only, wait_until,
};

pub const STAFF_EMAIL: &str = "editor@gazette.test";
pub const STAFF_PASSWORD: &str = "correct horse battery staple";

/// A browser-like client for one staff member: it keeps the session
/// cookie and the page's CSRF token.
pub struct StaffClient {
    pub base: String,
    pub http: reqwest::Client,
    pub csrf: String,
}

pub fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("the page has a CSRF field") + marker.len();
    page[start..].chars().take_while(|c| *c != '"').collect()
}

pub fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("the page has a {name} field"))
        + marker.len();
    page[start..].chars().take_while(|c| *c != '"').collect()
}

impl StaffClient {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.address)
    }

    /// A staff member's browser (cookies kept, redirects not followed) for
    /// the site at `base`, such as a `gazette serve` process's.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            csrf: String::new(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.expect("GET")
    }

    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let body = response.text().await.unwrap();
        if body.contains("name=\"csrf\"") {
            self.csrf = csrf_in(&body);
        }
        body
    }

    /// Posts a form with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.post_raw(path, &fields).await
    }

    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn log_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        self.page("/admin/login").await;
        self.post("/admin/login", &[("email", email), ("password", password)])
            .await
    }
}

pub async fn add_staff(app: &TestApp, email: &str, password: &str) {
    let hash = gazette::staff::hash_password(StaffPassword::parse(password).unwrap())
        .await
        .unwrap();
    let email = SubscriberEmail::parse(email, TEST_ADDRESSES).unwrap();
    assert!(
        gazette::db::staff::add(&app.db, &email, &hash, Utc::now())
            .await
            .unwrap()
    );
}

/// A logged-in staff client on `app`.
pub async fn staff_session(app: &TestApp) -> StaffClient {
    add_staff(app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut staff = StaffClient::new(app);
    let response = staff.log_in(STAFF_EMAIL, STAFF_PASSWORD).await;
    assert_eq!(response.status(), 303, "login");
    staff.page("/admin").await;
    staff
}

pub async fn add_confirmed_reader(app: &TestApp, email: &str, name: &str) {
    add_confirmed_readers(app, &[(email.to_owned(), name.to_owned())]).await;
}

/// Readers who consented elsewhere, written as `gazette subscribers import
/// --confirmed` writes them.
pub async fn add_confirmed_readers(app: &TestApp, readers: &[(String, String)]) {
    let consent = Consent::ConfirmedElsewhere;
    let readers: Vec<NewReader> = readers
        .iter()
        .map(|(email, name)| {
            let email = SubscriberEmail::parse(email, TEST_ADDRESSES).unwrap();
            consent.reader(
                &email,
                &SubscriberName::parse_optional(name).unwrap(),
                gazette::i18n::Language::ENGLISH,
                gazette::subscriber_csv::Standing::Subscribed,
            )
        })
        .collect();
    subscriber_import::write_batch(&app.db, readers, consent, chrono::Duration::hours(1), Utc::now())
        .await
        .unwrap();
}

/// The first id in a link to `prefix{id}` on the page.
pub fn first_id(page: &str, prefix: &str) -> String {
    page.split(prefix)
        .skip(1)
        .map(|rest| rest.chars().take(36).collect::<String>())
        .find(|id| uuid::Uuid::parse_str(id).is_ok())
        .unwrap_or_else(|| panic!("a link to {prefix}<id> in {page}"))
}

/// Erases the reader the staff search for `query` finds first, as staff
/// do: their record, then the erase form with its box ticked.
pub async fn erase_reader(staff: &mut StaffClient, query: &str) {
    let id = first_id(
        &staff.page(&format!("/admin/subscribers?q={query}")).await,
        "/admin/subscribers/",
    );
    staff.page(&format!("/admin/subscribers/{id}")).await;
    let response = staff
        .post(&format!("/admin/subscribers/{id}/erase"), &[("confirm", "on")])
        .await;
    assert_eq!(response.status(), 303);
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

pub fn concrete(path: &str) -> String {
    path.replace("{id}", "0192f0c4-0000-7000-8000-000000000001")
        .replace("{version}", "0192f0c4-0000-7000-8000-000000000002")
        .replace("{week}", "2026-W48")
}

pub async fn every_admin_route_but_login_sends_anonymous_visitors_to_the_login_page(backend: Backend) {
    let app = spawn_app(&backend).await;
    let routes = route_list();
    assert!(
        routes.len() >= 30,
        "the list holds every admin route ({})",
        routes.len()
    );
    let anonymous = StaffClient::new(&app);
    for (method, path) in &routes {
        if PUBLIC_PATHS.contains(&path.as_str()) {
            continue;
        }
        let url = format!("{}{}", app.address, concrete(path));
        let request = match method.as_str() {
            "GET" => anonymous.http.get(&url),
            _ => anonymous.http.post(&url).form(&[("csrf", "x")]),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 303, "{method} {path}");
        assert_eq!(location(&response), "/admin/login", "{method} {path}");
    }
    // Paths the list does not name are behind the guard too.
    let response = anonymous.get("/admin/not-a-page").await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, "/admin/login"));
    let login = anonymous.get("/admin/login").await;
    assert_eq!(login.status(), 200);
}

pub async fn a_staff_member_logs_in_and_out_with_a_safe_cookie(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut staff = StaffClient::new(&app);
    let login_page = staff.get("/admin/login").await;
    let anonymous_cookie = login_page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    staff.csrf = csrf_in(&login_page.text().await.unwrap());
    let response = staff
        .post(
            "/admin/login",
            &[("email", " Editor@Gazette.test "), ("password", STAFF_PASSWORD)],
        )
        .await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, "/admin"));
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(cookie, anonymous_cookie, "a new cookie at login");
    for attribute in ["gazette_admin=", "HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag ({cookie})");
    assert!(
        !cookie.contains(STAFF_EMAIL) && !cookie.contains("staff_id"),
        "the cookie is encrypted"
    );
    let dashboard = staff.page("/admin").await;
    assert!(dashboard.contains("Dashboard") && dashboard.contains(STAFF_EMAIL));
    let response = staff.get("/admin").await;
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    let response = staff.post("/admin/logout", &[]).await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, "/admin/login"));
    let response = staff.get("/admin").await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, "/admin/login"));
}

pub async fn a_https_site_marks_the_session_cookie_secure(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.server.base_url = gazette::config::BaseUrl::parse("https://news.example.org").unwrap();
    })
    .await;
    let staff = StaffClient::new(&app);
    let response = staff.get("/admin/login").await;
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn timed_login(app: &TestApp, email: &str, password: &str) -> (u16, String, Duration) {
    let mut client = StaffClient::new(app);
    client.page("/admin/login").await;
    let start = Instant::now();
    let response = client
        .post("/admin/login", &[("email", email), ("password", password)])
        .await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let message = body
        .split("<div class=\"errors\" id=\"login-error\" role=\"alert\"><p>")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or("")
        .to_owned();
    (status, message, elapsed)
}

pub async fn an_unknown_address_and_a_wrong_password_get_the_same_answer_in_the_same_time(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.limits.admin_logins_per_account_per_minute = 0;
        s.limits.admin_logins_per_ip_per_minute = 0;
    })
    .await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..9 {
        let (status, message, elapsed) = timed_login(&app, STAFF_EMAIL, "not the password at all").await;
        wrong.push(elapsed);
        assert_eq!(status, 401);
        assert_eq!(message, "That email address and password do not match a staff account.");
        let (status_u, message_u, elapsed_u) =
            timed_login(&app, "nobody@gazette.test", "not the password at all").await;
        unknown.push(elapsed_u);
        assert_eq!((status_u, message_u), (status, message));
    }
    let (status, _, _) = timed_login(&app, "not an address", "whatever").await;
    assert_eq!(status, 401);
    // The fastest of several tries is close to each path's own cost,
    // whatever else the machine is doing. Without the dummy hash an unknown
    // address answers in about a twentieth of a password check's time
    // (1 ms against 19 ms here); with it, the two are alike, give or take
    // what other tests running at once add.
    let (unknown, wrong) = (unknown.iter().min().unwrap(), wrong.iter().min().unwrap());
    assert!(
        *unknown * 5 >= *wrong,
        "unknown address {unknown:?} vs wrong password {wrong:?}"
    );
}

pub async fn login_attempts_past_the_limits_get_a_429_page(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.limits.admin_logins_per_account_per_minute = 3;
        s.limits.admin_logins_per_ip_per_minute = 6;
    })
    .await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(timed_login(&app, STAFF_EMAIL, "wrong password here").await.0, 401);
    }
    let mut client = StaffClient::new(&app);
    client.page("/admin/login").await;
    let response = client
        .post(
            "/admin/login",
            &[("email", "EDITOR@gazette.test"), ("password", STAFF_PASSWORD)],
        )
        .await;
    assert_eq!(
        response.status(),
        429,
        "the account's limit holds even for the right password"
    );
    assert!(response.headers().get("retry-after").is_some());
    assert!(response.text().await.unwrap().contains("Too many login attempts"));
    // Another account from the same address still may try, until the
    // address's own limit.
    assert_eq!(
        timed_login(&app, "other@gazette.test", "wrong password here").await.0,
        401
    );
    assert_eq!(
        timed_login(&app, "third@gazette.test", "wrong password here").await.0,
        401
    );
    assert_eq!(
        timed_login(&app, "fourth@gazette.test", "wrong password here").await.0,
        429
    );
}

pub async fn forms_without_the_token_or_from_another_site_get_403_and_change_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let staff = staff_session(&app).await;
    for (method, path) in route_list() {
        if method.as_str() != "POST" {
            continue;
        }
        let path = concrete(&path);
        let response = staff.post_raw(&path, &[("title", "x")]).await;
        assert_eq!(response.status(), 403, "POST {path} without a token");
        let response = staff.post_raw(&path, &[("csrf", "0000")]).await;
        assert_eq!(response.status(), 403, "POST {path} with a wrong token");
    }
    let article = [
        ("url", "https://example.org/a"),
        ("title", "A title"),
        ("summary", "A summary."),
        ("csrf", staff.csrf.as_str()),
    ];
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let response = staff
            .http
            .post(format!("{}/admin/articles", app.address))
            .header(header, value)
            .form(&article)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
    }
    // Forwarding headers from a peer that is no trusted proxy do not make
    // another site's origin ours.
    let response = staff
        .http
        .post(format!("{}/admin/articles", app.address))
        .header("Origin", "https://evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=evil.example;proto=https")
        .form(&article)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "Origin matched by forged forwarding headers");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 0);
    // The same form from our own origin goes through.
    let response = staff
        .http
        .post(format!("{}/admin/articles", app.address))
        .header("Origin", app.address.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .form(&article)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 1);
}

pub async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    let mut other = StaffClient::new(&app);
    assert_eq!(other.log_in(STAFF_EMAIL, STAFF_PASSWORD).await.status(), 303);
    staff.page("/admin/account").await;
    let new = "a much longer new passphrase";
    let response = staff
        .post(
            "/admin/account/password",
            &[("current", "wrong"), ("new", new), ("repeat", new)],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(
                r#"<p class="field-error" id="current-error">The current password is not right.</p>
<input type="password" id="current" name="current" autocomplete="current-password" required aria-invalid="true" aria-describedby="current-error" autofocus>"#
            )
    );
    let response = staff
        .post(
            "/admin/account/password",
            &[("current", STAFF_PASSWORD), ("new", "short"), ("repeat", "short")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("at least 12 characters"));
    let response = staff
        .post(
            "/admin/account/password",
            &[("current", STAFF_PASSWORD), ("new", new), ("repeat", new)],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(staff.page("/admin/account").await.contains("Your password is changed."));
    let response = other.get("/admin").await;
    assert_eq!(location(&response), "/admin/login", "the other session has ended");
    assert_eq!(timed_login(&app, STAFF_EMAIL, STAFF_PASSWORD).await.0, 401);
    let mut again = StaffClient::new(&app);
    assert_eq!(again.log_in(STAFF_EMAIL, new).await.status(), 303);
}

pub async fn staff_add_edit_leave_out_regenerate_and_delete_an_article(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    staff.page("/admin/articles/new").await;
    let response = staff
        .post("/admin/articles", &[("url", "not a url"), ("title", " "), ("body", "")])
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Address:") && page.contains("Title: the title is empty"),
        "{page}"
    );
    // Each reason is tied to its field; the first field at fault has the focus.
    for (field, first) in [("url", true), ("title", false), ("summary", false)] {
        assert!(
            page.contains(&format!(r#"<p class="field-error" id="{field}-error">"#)),
            "{page}"
        );
        let marks = format!(r#" aria-invalid="true" aria-describedby="{field}-error""#);
        assert!(page.contains(&marks), "{field}: {page}");
        assert_eq!(page.contains(&format!("{marks} autofocus")), first, "{field}: {page}");
    }
    assert!(!page.contains(r#"aria-describedby="published-error""#));
    let body = "The river rose overnight. Towns emptied by morning. Aid arrived at noon.";
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/floods"),
                ("title", "Floods in the north"),
                ("author", "Ana"),
                ("published", ""),
                ("summary", ""),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/articles")
    );
    let list = staff.page("/admin/articles?q=FLOODS").await;
    assert!(
        list.contains("Floods in the north") && list.contains("generated"),
        "{list}"
    );
    assert!(!staff.page("/admin/articles?q=50%25_off").await.contains("Floods"));
    let id = first_id(&list, "/admin/articles/");
    let issues = staff.page("/admin/issues").await;
    assert!(issues.contains("Floods in the north"), "the draft has it");

    staff.page(&format!("/admin/articles/{id}")).await;
    let response = staff
        .post(
            &format!("/admin/articles/{id}"),
            &[
                ("title", "Floods in the north"),
                ("published", "2999-01-01T00:00"),
                ("summary", "Our own words."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let edit = staff.page(&format!("/admin/articles/{id}")).await;
    assert!(
        edit.contains("Our own words.") && edit.contains("(from: staff)"),
        "{edit}"
    );
    assert!(
        staff
            .page("/admin/articles")
            .await
            .contains("<td data-label=\"This week\" data-field=\"draft\">excluded</td>")
    );
    assert!(
        !staff.page("/admin/issues").await.contains("Floods in the north"),
        "left out of the draft"
    );

    let response = staff
        .post(
            &format!("/admin/articles/{id}"),
            &[("title", "x"), ("published", "yesterday"), ("summary", "s")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("is not like 2026-11-27T09:30"));

    let confirm = staff.page(&format!("/admin/articles/{id}/regenerate")).await;
    assert!(confirm.contains("Regenerate the summary?"), "{confirm}");
    let response = staff
        .post(&format!("/admin/articles/{id}/regenerate"), &[("confirm", "yes")])
        .await;
    assert_eq!(response.status(), 303);
    let edit = staff.page(&format!("/admin/articles/{id}")).await;
    assert!(
        edit.contains("The river rose overnight.") && edit.contains("(from: generated)"),
        "{edit}"
    );

    staff.page(&format!("/admin/articles/{id}/delete")).await;
    let response = staff
        .post(&format!("/admin/articles/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM articles WHERE deleted_at IS NULL")
            .await,
        0
    );
    assert_eq!(staff.get(&format!("/admin/articles/{id}")).await.status(), 404);
    assert_eq!(staff.get("/admin/articles/not-a-uuid").await.status(), 404);
    staff.page("/admin/articles").await;
    let response = staff
        .post("/admin/articles/import", &[("feed_url", "/etc/passwd")])
        .await;
    assert_eq!(response.status(), 400, "only web addresses are fetched");
    let response = staff.get("/admin/articles?page=abc").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("That address does not work"));
}

pub async fn staff_import_a_feed_by_its_address(backend: Backend) {
    // The feed is served from this machine: an intranet feed.
    let app = spawn_app_with(&backend, |s| s.feeds.allow_private_addresses = true).await;
    let mut staff = staff_session(&app).await;
    let port = crate::cli::serve_feed(include_bytes!("../fixtures/central-asia.rss")).await;
    staff.page("/admin/articles").await;
    let feed = format!("http://127.0.0.1:{port}/feed.rss");
    let page = crate::trust_feeds::import_by_url(&mut staff, &feed).await;
    assert!(
        page.contains(
            "Feed imported: 2 added, 0 updated, 0 unchanged, 1 rejected, 1 without a usable date (given the import time)."
        ),
        "{page}"
    );
    assert!(page.contains("Rejected entries"), "{page}");
    assert!(
        page.contains("<h2>Warnings</h2>")
            && page.contains(
                "<li>entry 2 (“Ташкент открывает новый рынок”): no usable date: dated with the import time, "
            ),
        "{page}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 2);
    staff.page("/admin/articles").await;
    let page = crate::trust_feeds::import_by_url(&mut staff, &feed).await;
    assert!(
        page.contains("Feed imported: 0 added, 0 updated, 2 unchanged, 1 rejected."),
        "{page}"
    );
    assert!(
        !page.contains("<h2>Warnings</h2>"),
        "the entry has its date now: {page}"
    );
    staff.page("/admin/articles").await;
    let gone = format!("http://127.0.0.1:{port}/gone.rss");
    let page = crate::trust_feeds::import_by_url(&mut staff, &gone).await;
    assert!(
        page.contains("The feed was not imported") && page.contains("HTTP status 404 Not Found"),
        "{page}"
    );
}

pub async fn add_article(staff: &mut StaffClient, title: &str) {
    staff.page("/admin/articles/new").await;
    let url = format!("https://example.org/{}", title.replace(' ', "-"));
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", &url),
                ("title", title),
                ("summary", "What happened, in one line."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
}

pub async fn a_test_send_reaches_the_staff_member_once_even_when_submitted_twice(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    let page = staff.page("/admin/issues").await;
    let key = hidden_field(&page, "key");
    for _ in 0..2 {
        let response = staff
            .post("/admin/issues/test", &[("key", &key), ("recipients", "")])
            .await;
        assert_eq!(response.status(), 303);
    }
    let received = app.smtp.wait_for(STAFF_EMAIL, 1).await;
    let subject = received[0].parsed().subject().unwrap().to_owned();
    assert!(
        subject.starts_with("[Test] ") && subject.contains("Floods in the north"),
        "{subject}"
    );
    assert!(received[0].text().contains("What happened, in one line."));
    let response = staff
        .post(
            "/admin/issues/test",
            &[
                ("key", &uuid::Uuid::new_v4().to_string()),
                ("recipients", "a@gazette.test, b@gazette.test"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    app.smtp.wait_for("a@gazette.test", 1).await;
    app.smtp.wait_for("b@gazette.test", 1).await;
    let response = staff
        .post(
            "/admin/issues/test",
            &[
                ("key", &uuid::Uuid::new_v4().to_string()),
                ("recipients", "a@gazette.test, oops"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    // The issues page again, the addresses kept and the reason tied to
    // their field.
    let page = response.text().await.unwrap();
    assert!(
        page.contains(r#"<p class="field-error" id="recipients-error">Check the addresses: oops: "#)
            && page.contains(
                r#"value="a@gazette.test, oops" aria-invalid="true" aria-describedby="recipients-error" autofocus>"#
            ),
        "{page}"
    );
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.smtp.received_for(STAFF_EMAIL).len(),
        1,
        "the repeated form sent nothing more"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries").await,
        0,
        "a test is not the issue"
    );
}

pub async fn send_now_asks_first_and_queues_the_issue_once_for_a_double_submit(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    assert_eq!(
        staff.get("/admin/issues/send").await.status(),
        400,
        "nothing to send yet"
    );
    add_article(&mut staff, "Floods in the north").await;
    let confirm = staff.page("/admin/issues/send").await;
    assert!(confirm.contains("2 confirmed readers"), "{confirm}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues").await,
        0,
        "asking changes nothing"
    );
    let key = hidden_field(&confirm, "key");
    let form = [("key", key.as_str())];
    let (first, second) = tokio::join!(
        staff.post("/admin/issues/send", &form),
        staff.post("/admin/issues/send", &form)
    );
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (303, 303));
    assert!(location(&first).starts_with("/admin/issues/20"));
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 2);
    app.smtp.wait_for("ada@example.com", 1).await;
    app.smtp.wait_for("bob@example.com", 1).await;
    let week = location(&first).rsplit('/').next().unwrap().to_owned();
    let progress = format!("/admin/issues/{week}/progress");
    wait_until(Duration::from_secs(10), "the issue to finish", || async {
        staff
            .get(&progress)
            .await
            .text()
            .await
            .unwrap()
            .contains("\"state\":\"sent\"")
    })
    .await;
    let json = staff.get(&progress).await.text().await.unwrap();
    assert!(
        json.contains("\"sent\":2") && json.contains("\"total\":2") && json.contains("\"failed\":0"),
        "{json}"
    );
    let page = staff.page(&format!("/admin/issues/{week}")).await;
    assert!(page.contains("data-progress-url") && page.contains("<script src=\"/static/admin.js\">"));
    // A new key cannot send the week twice either.
    let response = staff
        .post("/admin/issues/send", &[("key", &uuid::Uuid::new_v4().to_string())])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 2);
    assert!(
        staff
            .page(&format!("/admin/issues/{week}"))
            .await
            .contains("had already been sent")
    );
    assert_eq!(app.smtp.received_for("ada@example.com").len(), 1);
    let response = staff.post("/admin/issues/send", &[("key", "")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(staff.get("/admin/issues/2026-W99").await.status(), 404);
    assert_eq!(staff.get("/admin/issues/nonsense/progress").await.status(), 404);
}

pub async fn staff_pause_resume_cancel_a_send_and_retry_failed_copies(backend: Backend) {
    // No worker: the copies stay queued while staff act on them.
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    for i in 0..3 {
        add_confirmed_reader(&app, &format!("reader{i}@example.com"), "Reader").await;
    }
    add_article(&mut staff, "Floods in the north").await;
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    let response = staff.post("/admin/issues/send", &[("key", &key)]).await;
    let issue = location(&response).to_owned();
    let due = "SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND next_attempt_at < '3000-01-01'";
    assert_eq!(app.count(due).await, 3);
    assert_eq!(staff.post(&format!("{issue}/pause"), &[]).await.status(), 303);
    assert!(
        staff
            .page(&issue)
            .await
            .contains("<strong data-field=\"state\">paused</strong>")
    );
    assert_eq!(app.count(due).await, 0, "paused copies are not due");
    staff.post(&format!("{issue}/pause"), &[]).await;
    assert!(
        staff
            .page(&issue)
            .await
            .contains("Nothing to pause: the issue is paused.")
    );
    assert_eq!(staff.post(&format!("{issue}/resume"), &[]).await.status(), 303);
    assert_eq!(app.count(due).await, 3);
    assert!(
        staff
            .page(&format!("{issue}/cancel"))
            .await
            .contains("copies not yet sent are not sent")
    );
    assert_eq!(
        staff
            .post(&format!("{issue}/cancel"), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    let page = staff.page(&issue).await;
    assert!(
        page.contains("<strong data-field=\"state\">cancelled</strong>"),
        "{page}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'skipped'")
            .await,
        3
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await, 1);
    // "Retry failed" on a finished issue with failures.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE issues SET cancelled_at = NULL").execute(pool).await.unwrap();
        sqlx::query("UPDATE deliveries SET status = 'failed', attempts = 12, last_error = '550 no'")
            .execute(pool)
            .await
            .unwrap();
    });
    assert!(staff.page(&issue).await.contains("Retry the 3 failed"));
    assert_eq!(staff.post(&format!("{issue}/retry"), &[]).await.status(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND attempts = 0")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sending'").await,
        1
    );
}

pub async fn staff_search_filter_view_and_unsubscribe_readers(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    app.sign_up("Zoë Pending", "zoe@example.com").await;
    add_confirmed_reader(&app, "ada@example.com", "Ada Lovelace").await;
    add_confirmed_reader(&app, "bob@example.com", "Bob_Builder").await;
    let all = staff.page("/admin/subscribers").await;
    assert!(all.contains("3 readers"), "{all}");
    let confirmed = staff.page("/admin/subscribers?status=confirmed").await;
    assert!(confirmed.contains("2 readers") && !confirmed.contains("zoe@example.com"));
    let search = staff.page("/admin/subscribers?q=LOVELACE").await;
    assert!(
        search.contains("1 readers") && search.contains("ada@example.com"),
        "{search}"
    );
    // `_` is a letter here, not a wildcard.
    assert!(staff.page("/admin/subscribers?q=a_a").await.contains("0 readers"));
    let response = staff.get("/admin/subscribers?status=vip").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("is not a status"));
    let pending = staff.page("/admin/subscribers?q=zoe").await;
    let id = first_id(&pending, "/admin/subscribers/");
    let record = staff.page(&format!("/admin/subscribers/{id}")).await;
    assert!(
        record.contains("from IP address 127.0.0.1") && record.contains("through <strong>web form</strong>"),
        "{record}"
    );
    let response = staff.post(&format!("/admin/subscribers/{id}/unsubscribe"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.subscriber_status("zoe@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert!(
        staff
            .page(&format!("/admin/subscribers/{id}"))
            .await
            .contains("unsubscribed")
    );
    assert_eq!(
        staff
            .get("/admin/subscribers/0192f0c4-0000-7000-8000-000000000001")
            .await
            .status(),
        404
    );
}

/// Relays' replies often quote the address they refused: erasing a reader
/// clears them from the reader's copies, which stay for the issue's counts.
pub async fn erasing_a_reader_clears_the_relay_replies_kept_with_their_copies(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    crate::cli::import_fixture(&backend, Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = crate::cli::run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", crate::cli::text(&dispatched.stderr));
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    gazette::with_pool!(&app.db, pool => sqlx::query("UPDATE deliveries SET last_error = '452 4.2.2 <' || s.email || '>: mailbox full'
             FROM subscribers s WHERE s.id = deliveries.subscriber_id")
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .unwrap());
    erase_reader(&mut staff, "ada").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 2, "the copies stay");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE last_error LIKE '%ada@example.com%'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE last_error LIKE '%bob@example.com%'")
            .await,
        1,
        "another reader's reply stays"
    );
}

pub async fn erasing_a_reader_removes_their_personal_data_and_keeps_an_anonymous_count(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    app.sign_up("Zoë Erase", "zoe@example.com").await;
    app.smtp.wait_for("zoe@example.com", 1).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    let id = first_id(&staff.page("/admin/subscribers?q=zoe").await, "/admin/subscribers/");
    staff.page(&format!("/admin/subscribers/{id}")).await;
    let response = staff.post(&format!("/admin/subscribers/{id}/erase"), &[]).await;
    assert_eq!(response.status(), 400, "erasing needs the box ticked");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE erased_at IS NOT NULL")
            .await,
        0
    );
    let response = staff
        .post(&format!("/admin/subscribers/{id}/erase"), &[("confirm", "on")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers").await,
        2,
        "the row stays, anonymous"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE email LIKE '%zoe%' OR name LIKE '%Zo%' OR signup_ip IS NOT NULL AND erased_at IS NOT NULL").await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient LIKE '%zoe%'")
            .await,
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM confirmation_tokens").await, 0);
    let record = staff.page(&format!("/admin/subscribers/{id}")).await;
    assert!(record.contains("An erased reader") && !record.contains("zoe@example.com"));
    let dashboard = staff.page("/admin").await;
    assert!(
        dashboard.contains("<strong>1</strong>erased") && dashboard.contains("<strong>1</strong>confirmed"),
        "{dashboard}"
    );
    assert!(
        !staff.page("/admin/subscribers").await.contains("erased-"),
        "erased readers are not listed"
    );
    let export = staff.get("/admin/subscribers/export.csv").await.text().await.unwrap();
    assert_eq!(export.lines().count(), 2, "{export}");
    // The address can sign up again as a new reader.
    app.sign_up("Zoë Again", "zoe@example.com").await;
    assert_eq!(
        app.subscriber_status("zoe@example.com").await.as_deref(),
        Some("pending")
    );
}

pub async fn the_csv_export_holds_the_current_filter(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    let many: Vec<(String, String)> = (0..1203)
        .map(|i| (format!("reader{i:04}@example.com"), format!("Reader {i}")))
        .collect();
    add_confirmed_readers(&app, &many).await;
    add_confirmed_reader(&app, "formula@example.com", "=HYPERLINK(\"http://x\",\"Click\")").await;
    add_confirmed_reader(&app, "comma@example.com", "Lovelace, Ada").await;
    app.sign_up("Pending Person", "pending@example.com").await;
    staff.page("/admin/subscribers").await;
    let response = staff.get("/admin/subscribers/export.csv?status=confirmed").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        response
            .headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not built whole"
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "email,name,status,source,created_at,confirmed_at,unsubscribed_at"
    );
    assert_eq!(lines.len(), 1 + 1205, "every confirmed reader once, across pages");
    assert!(!csv.contains("pending@example.com"));
    assert!(csv.contains("comma@example.com,\"Lovelace, Ada\",confirmed,"), "quoted");
    assert!(
        csv.contains("formula@example.com,\"'=HYPERLINK(\"\"http://x\"\",\"\"Click\"\")\""),
        "defused"
    );
    let mut emails: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    emails.dedup();
    assert_eq!(emails.len(), 1205);
    let only = staff
        .get("/admin/subscribers/export.csv?q=pending")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(only.lines().count(), 2);
    assert!(
        only.contains("pending@example.com,Pending Person,pending,web form,"),
        "{only}"
    );
    assert_eq!(
        staff.get("/admin/subscribers/export.csv?status=nope").await.status(),
        400
    );
    // The list shows 50 a page.
    let first = staff.page("/admin/subscribers?status=confirmed").await;
    assert!(
        first.contains("1205 readers") && first.contains("Page 1 of 25."),
        "{first}"
    );
    let last = staff.page("/admin/subscribers?status=confirmed&page=25").await;
    assert_eq!(
        last.matches("<td data-label=\"Email\"><a href=\"/admin/subscribers/")
            .count(),
        5
    );
    assert_ne!(
        first_id(&first, "/admin/subscribers/"),
        first_id(&last, "/admin/subscribers/")
    );
}

pub async fn the_csv_import_reports_rejected_rows_and_asks_new_readers_to_opt_in(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "known@example.com", "Known").await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET status = 'unsubscribed'").execute(pool).await.unwrap();
    });
    staff.page("/admin/subscribers/import").await;
    let csv = "email,name\nnew@example.com,New Reader\nnot-an-address,Bad\n\nsecond@example.com,\nNEW@example.com,Twice\nknown@example.com,Known\n";
    let response = staff.post("/admin/subscribers/import", &[("csv", csv)]).await;
    assert_eq!(response.status(), 422, "some rows were rejected");
    let page = response.text().await.unwrap();
    assert!(
        page.contains(
            "5 rows: 2 added, 0 pending readers confirmed, 2 already on the list (left as they were), 1 rejected."
        ),
        "{page}"
    );
    assert!(
        page.contains("<tr><td data-label=\"Line\">3</td><td data-label=\"Why\">email &#34;not-an-address&#34;"),
        "line 3: {page}"
    );
    assert_eq!(
        app.subscriber_status("new@example.com").await.as_deref(),
        Some("pending")
    );
    app.smtp.wait_for("new@example.com", 1).await;
    assert_eq!(
        app.subscriber_status("known@example.com").await.as_deref(),
        Some("unsubscribed"),
        "an import never re-subscribes someone who left"
    );

    let response = staff
        .post(
            "/admin/subscribers/import",
            &[
                ("csv", "vouched@example.com,Vouched\nnew@example.com,New\n"),
                ("consented", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("2 rows: 1 added, 1 pending readers confirmed"), "{page}");
    assert_eq!(
        app.subscriber_status("vouched@example.com").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.subscriber_status("new@example.com").await.as_deref(),
        Some("confirmed")
    );
    app.wait_for_empty_queue().await;
    assert!(
        app.smtp.received_for("vouched@example.com").is_empty(),
        "no opt-in email when consent is given"
    );
    let response = staff.post("/admin/subscribers/import", &[("csv", "\n\n")]).await;
    assert_eq!(response.status(), 400);
}

pub async fn the_preview_is_the_digest_in_a_sandboxed_frame_with_its_text_part(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    let page = staff.page("/admin/issues").await;
    assert!(page.contains("<iframe class=\"preview\" id=\"preview\" src=\"/admin/issues/preview.html\" sandbox=\"\""));
    // The text part scrolls in a box a keyboard can reach, named by its heading.
    assert!(
        page.contains(r#"<h3 id="text-part">Text part</h3>"#)
            && page.contains(r#"<pre class="textpart" tabindex="0" role="region" aria-labelledby="text-part">"#)
            && page.contains("What happened, in one line.")
    );
    let response = staff.get("/admin/issues/preview.html").await;
    assert_eq!(response.status(), 200);
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'self'") && csp.contains("sandbox") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Floods in the north") && !html.contains("%%UNSUBSCRIBE_URL%%"));
    let page_csp = staff.get("/admin/issues").await;
    let page_csp = page_csp
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(page_csp.contains("frame-src 'self'") && page_csp.contains("frame-ancestors 'none'"));
    let script = staff.get("/static/admin.js").await;
    assert_eq!(
        script.headers().get("content-type").unwrap(),
        "text/javascript; charset=utf-8"
    );
}

pub async fn a_generated_session_key_is_private_and_survives_a_restart(backend: Backend) {
    let first = spawn_app(&backend).await;
    let mut staff = staff_session(&first).await;
    let key_file = match &backend {
        Backend::Sqlite { url } => std::path::Path::new(url.trim_start_matches("sqlite://"))
            .parent()
            .unwrap()
            .join("session.key"),
        Backend::Postgres { .. } => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/session.key"),
    };
    let key = std::fs::read_to_string(&key_file).expect("the generated key is kept");
    assert_eq!(key.trim().len(), 128, "64 bytes in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the key");
    }
    // A second process on the same data reads the same key: the staff
    // member's cookie still works there.
    let second = crate::helpers::spawn_app(&backend).await;
    staff.base = second.address.clone();
    assert!(staff.page("/admin").await.contains("Dashboard"));
    // A cookie made with another key is no session at all.
    let other = spawn_app_with(&backend, |s| {
        s.server.session_key = gazette::config::SessionKey::parse(&"ab".repeat(64)).unwrap();
    })
    .await;
    staff.base = other.address.clone();
    let response = staff.get("/admin").await;
    assert_eq!((response.status().as_u16(), location(&response)), (303, "/admin/login"));
}

pub fn production_needs_a_session_key_and_refuses_a_short_one() -> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("gazette-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/gazette.db", dir.display());
    let serve = |key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
            .current_dir(&dir)
            .args(["serve", "--no-worker"])
            .env("GAZETTE_ENV", "production")
            .env("GAZETTE_MAIL__TRANSPORT", "smtp")
            .env("GAZETTE_CONFIG_DIR", &dir)
            .env("GAZETTE_DATABASE__URL", &url)
            .env("GAZETTE_SERVER__PORT", "0")
            .env("GAZETTE_METRICS__LISTEN", "127.0.0.1:0")
            .env("GAZETTE_SERVER__BASE_URL", "https://news.example.org")
            .env("GAZETTE_SERVER__SESSION_KEY", key)
            .env("NO_COLOR", "1")
            .output()
    };
    // Production makes no database it was not told to: `gazette migrate` does.
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("migrate")
        .env("GAZETTE_CONFIG_DIR", &dir)
        .env("GAZETTE_DATABASE__URL", &url)
        .output()?;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let output = serve("")?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("server.session_key is not set"), "{stderr}");
    assert!(
        !dir.join("session.key").exists(),
        "production never makes up its own key"
    );
    let output = serve(&"ab".repeat(32))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at least 64 bytes"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub async fn hostile_input_on_every_admin_route_gets_no_5xx_and_no_unescaped_echo(backend: Backend) {
    use crate::hostile::{SCRIPT, check, hostile_bodies, hostile_query_values};
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_article(&mut staff, "Floods in the north").await;
    let article = first_id(&staff.page("/admin/articles").await, "/admin/articles/");
    let reader = first_id(&staff.page("/admin/subscribers").await, "/admin/subscribers/");
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    let sent = staff.post("/admin/issues/send", &[("key", &key)]).await;
    let week = location(&sent).rsplit('/').next().unwrap().to_owned();
    let hostile_segments = [
        "%27%20OR%201%3D1--",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "%FF%FE",
        "..%2F..%2Fetc",
    ];
    // Logging out last: it ends the session the sweep needs.
    let routes: Vec<(String, String)> = route_list()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_owned(), path))
        .filter(|(_, path)| path != "/admin/logout")
        .collect();
    for (method, path) in &routes {
        let mut paths = vec![
            path.replace("{id}", if path.contains("articles") { &article } else { &reader })
                .replace("{week}", &week),
        ];
        for segment in hostile_segments {
            if path.contains('{') {
                paths.push(path.replace("{id}", segment).replace("{week}", segment));
            }
        }
        for concrete in &paths {
            if method == "GET" {
                for value in hostile_query_values() {
                    for query in [format!("q={value}&status={value}&page={value}"), value.clone()] {
                        let what = format!("GET {concrete}?{}", &query[..query.len().min(60)]);
                        check(
                            &app,
                            &what,
                            staff
                                .http
                                .get(format!("{}{concrete}?{query}", app.address))
                                .send()
                                .await,
                        )
                        .await;
                    }
                }
                continue;
            }
            for (content_type, mut body) in hostile_bodies() {
                // With the session's token, so the handlers themselves meet
                // the input rather than the CSRF check.
                body.extend_from_slice(format!("&csrf={}", staff.csrf).as_bytes());
                let what = format!("POST {concrete} as {content_type} ({} bytes)", body.len());
                let response = staff
                    .http
                    .post(format!("{}{concrete}", app.address))
                    .header("Content-Type", content_type)
                    .body(body)
                    .send()
                    .await;
                check(&app, &what, response).await;
            }
            let fields = [
                ("csrf", staff.csrf.as_str()),
                ("title", SCRIPT),
                ("summary", SCRIPT),
                ("url", SCRIPT),
                ("published", SCRIPT),
                ("feed_url", SCRIPT),
                ("recipients", SCRIPT),
                ("key", SCRIPT),
                ("csv", "<script>alert(1)</script>,<script>alert(1)</script>\n"),
                ("email", SCRIPT),
                ("password", SCRIPT),
                ("current", SCRIPT),
            ];
            let what = format!("POST {concrete} with script in every field");
            check(
                &app,
                &what,
                staff
                    .http
                    .post(format!("{}{concrete}", app.address))
                    .form(&fields)
                    .send()
                    .await,
            )
            .await;
        }
    }
    // The session still works; the reader's own POST routes acted as they
    // should with a valid token (unsubscribe does), but nothing erased
    // them without the confirmation box, and the issue went out once.
    assert!(staff.page("/admin").await.contains("Dashboard"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE erased_at IS NULL AND email = 'ada@example.com'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 1);
    assert_eq!(staff.post("/admin/logout", &[]).await.status(), 303);
}

pub async fn the_dashboard_shows_when_the_schedule_sends_next(backend: Backend) {
    let off = spawn_app(&backend).await;
    let mut staff = staff_session(&off).await;
    assert!(staff.page("/admin").await.contains("The built-in schedule is off"));

    let on = spawn_app_with(&backend, |s| {
        s.schedule.enabled = true;
        s.schedule.cron = gazette::config::CronSchedule::parse("30 9 * * FRI").unwrap();
        s.schedule.timezone = gazette::config::ScheduleTimezone::parse("Asia/Tokyo").unwrap();
    })
    .await;
    // The same database, so the same staff member logs in to the second app.
    let mut staff = StaffClient::new(&on);
    assert_eq!(staff.log_in(STAFF_EMAIL, STAFF_PASSWORD).await.status(), 303);
    let dashboard = staff.page("/admin").await;
    let expected = on_settings_for_schedule()
        .schedule
        .next_run(chrono::Utc::now())
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%A %-d %B %Y, %H:%M JST")
        .to_string();
    assert!(
        expected.starts_with("Friday") && expected.contains("09:30 JST"),
        "{expected}"
    );
    assert!(
        dashboard.contains(&format!("Next scheduled send: <strong>{expected}</strong>")),
        "{dashboard}"
    );
}

/// The schedule of the test above, as settings `next_run` can read.
fn on_settings_for_schedule() -> gazette::config::Settings {
    let mut settings = crate::helpers::test_settings(
        &Backend::Sqlite {
            url: "sqlite::memory:".into(),
        },
        25,
    );
    settings.schedule.enabled = true;
    settings.schedule.cron = gazette::config::CronSchedule::parse("30 9 * * FRI").unwrap();
    settings.schedule.timezone = gazette::config::ScheduleTimezone::parse("Asia/Tokyo").unwrap();
    settings
}

pub async fn the_drafts_stories_lead_to_their_edit_pages_and_their_published_pages_apart(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    let titles = ["Floods in the north", "Bridge reopens"];
    for title in titles {
        add_article(&mut staff, title).await;
    }
    let page = staff.page("/admin/issues").await;
    for title in titles {
        let id = first_id(
            &staff
                .page(&format!("/admin/articles?q={}", title.replace(' ', "+")))
                .await,
            "/admin/articles/",
        );
        let url = format!("https://example.org/{}", title.replace(' ', "-"));
        assert!(
            page.contains(&format!(r#"<li><a href="/admin/articles/{id}">{title}</a> "#)),
            "{title} leads to its edit page: {page}"
        );
        assert!(
            page.contains(&format!(
                r#"<a class="small" href="{url}">the published article<span class="visually-hidden">: {title}</span></a>"#
            )),
            "{title}'s published page is a link of its own that says what it is: {page}"
        );
        let edit = staff.page(&format!("/admin/articles/{id}")).await;
        assert!(edit.contains("<h1>Edit article</h1>") && edit.contains(&format!(r#"value="{title}""#)));
    }
}

pub async fn pause_and_cancel_are_offered_while_copies_wait_and_refused_once_none_does(backend: Backend) {
    // No worker: the test moves the copies on itself.
    let app = spawn_web_only(&backend).await;
    let mut staff = staff_session(&app).await;
    for i in 0..2 {
        add_confirmed_reader(&app, &format!("reader{i}@example.com"), "Reader").await;
    }
    add_article(&mut staff, "Floods in the north").await;
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    let issue = location(&staff.post("/admin/issues/send", &[("key", &key)]).await).to_owned();
    let week = issue.rsplit('/').next().unwrap().to_owned();
    let progress = format!("{issue}/progress");
    let controls = |page: &str| {
        ["pause", "resume", "cancel", "retry"]
            .into_iter()
            .filter(|action| page.contains(&format!(r#"data-action="{action}""#)))
            .collect::<Vec<_>>()
    };
    let actions = |json: String| json.split("\"actions\":").nth(1).unwrap_or_default().to_owned();

    // Copies wait: the send can be paused or cancelled.
    assert_eq!(controls(&staff.page(&issue).await), ["pause", "cancel"]);
    assert_eq!(
        actions(staff.get(&progress).await.text().await.unwrap()),
        r#"["pause","cancel"]}"#
    );

    // Every copy has left, and the worker has not yet marked the issue
    // sent: nothing is left to pause or cancel.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE deliveries SET status = 'sent', sent_at = $1")
            .bind(Utc::now())
            .execute(pool)
            .await
            .unwrap();
    });
    let page = staff.page(&issue).await;
    assert!(
        page.contains(r#"<strong data-field="state">sending</strong>"#),
        "{page}"
    );
    assert!(controls(&page).is_empty(), "{page}");
    assert_eq!(actions(staff.get(&progress).await.text().await.unwrap()), "[]}");
    for action in ["pause", "cancel"] {
        // Cancelling confirmed on its page: refused all the same.
        let confirmed = [("confirm", "yes")];
        assert_eq!(staff.post(&format!("{issue}/{action}"), &confirmed).await.status(), 303);
        let page = staff.page(&issue).await;
        assert!(
            page.contains(&format!(
                "Nothing to {action}: no copy of {week} is left waiting; the last ones are on their way."
            )),
            "{page}"
        );
    }

    // Marked sent: still nothing to pause, resume or cancel, and asking
    // changes nothing.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE issues SET status = 'sent'").execute(pool).await.unwrap();
    });
    let page = staff.page(&issue).await;
    assert!(page.contains(r#"<strong data-field="state">sent</strong>"#), "{page}");
    assert!(controls(&page).is_empty(), "{page}");
    for action in ["pause", "cancel"] {
        // Cancelling confirmed on its page: refused all the same.
        let confirmed = [("confirm", "yes")];
        assert_eq!(staff.post(&format!("{issue}/{action}"), &confirmed).await.status(), 303);
        let page = staff.page(&issue).await;
        assert!(
            page.contains(&format!(
                "Nothing to {action}: {week} has been sent, and no copy is left to send."
            )),
            "{page}"
        );
        assert!(page.contains(r#"<strong data-field="state">sent</strong>"#), "{page}");
    }
    staff.post(&format!("{issue}/resume"), &[]).await;
    assert!(
        staff
            .page(&issue)
            .await
            .contains("Nothing to resume: the issue is sent.")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent' AND paused_at IS NULL AND cancelled_at IS NULL")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await,
        2
    );
    // Not cancelled: the issue stays in the archive.
    assert_eq!(app.get(&format!("/archive/{week}")).await.status(), 200);
}

pub async fn a_test_sends_own_links_say_it_was_a_test_and_change_no_one(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_article(&mut staff, "Floods in the north").await;
    let key = hidden_field(&staff.page("/admin/issues").await, "key");
    let response = staff
        .post("/admin/issues/test", &[("key", &key), ("recipients", "")])
        .await;
    assert_eq!(response.status(), 303);
    let test = app.smtp.wait_for(STAFF_EMAIL, 1).await.remove(0);
    let plain = test.text();
    let link = |label: &str| {
        plain
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{label}: ")))
            .unwrap_or_else(|| panic!("a {label} link in {plain}"))
            .to_owned()
    };
    let explanation = format!("{BASE_URL}/test-send");
    assert_eq!(link("Unsubscribe"), explanation);
    assert_eq!(link("Manage your subscription"), explanation);
    assert_eq!(test.html().matches(&format!(r#"href="{explanation}""#)).count(), 2);
    let web_version = link("Read this issue on the web");
    let web_version = web_version.strip_prefix(BASE_URL).expect("a link to the site");

    for (query, title, says) in [
        (
            "",
            "This was a test send",
            "each reader&#39;s copy carries their own unsubscribe, preferences and web-version links",
        ),
        (
            "?lang=ru",
            "Это было тестовое письмо",
            "в письме каждого читателя свои ссылки",
        ),
    ] {
        let response = app.get(&format!("/test-send{query}")).await;
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("<h1>{title}</h1>")) && page.contains(says),
            "{page}"
        );
    }
    // The web version of a week not sent yet says why it is not there.
    for (query, title, says) in [
        (
            "",
            "This issue has not been sent yet",
            "web-version link of a test send",
        ),
        (
            "?lang=ru",
            "Этот выпуск ещё не отправлен",
            "по ссылке на веб-версию из тестового письма",
        ),
    ] {
        let response = app.get(&format!("{web_version}{query}")).await;
        assert_eq!(response.status(), 404);
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("<h1>{title}</h1>")) && page.contains(says),
            "{page}"
        );
    }
    // Nobody's subscription changed.
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM subscriber_events").await, 0);
    // Once the issue is out, the same link shows it.
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    assert_eq!(staff.post("/admin/issues/send", &[("key", &key)]).await.status(), 303);
    let response = app.get(web_version).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Floods in the north"));
}

pub async fn staff_pages_skip_to_their_content_and_mark_their_section(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    let article = first_id(&staff.page("/admin/articles").await, "/admin/articles/");
    for (path, section) in [
        ("/admin", "/admin"),
        ("/admin/articles", "/admin/articles"),
        (&format!("/admin/articles/{article}") as &str, "/admin/articles"),
        ("/admin/issues", "/admin/issues"),
        ("/admin/issues/send", "/admin/issues"),
        ("/admin/subscribers", "/admin/subscribers"),
        ("/admin/subscribers/import", "/admin/subscribers"),
        ("/admin/inbound", "/admin/inbound"),
        ("/admin/api-tokens", "/admin/api-tokens"),
        ("/admin/account", "/admin/account"),
    ] {
        let page = staff.page(path).await;
        let body = page.split("<body class=\"admin\">").nth(1).expect("the staff frame");
        assert!(
            body.trim_start()
                .starts_with(r##"<a class="skip" href="#content">Skip to content</a>"##),
            "{path}: the skip link comes first"
        );
        assert!(page.contains(r#"<main id="content" tabindex="-1">"#), "{path}");
        let current: Vec<&str> = page
            .split("<a href=\"")
            .filter(|link| link.contains("aria-current=\"page\""))
            .filter_map(|link| link.split('"').next())
            .collect();
        assert_eq!(current, [section], "{path}");
    }
    // The login page and the staff error page skip to their content too.
    let login = StaffClient::new(&app).get("/admin/login").await.text().await.unwrap();
    assert!(login.contains("<body class=\"admin\">\n<a class=\"skip\" href=\"#content\">"));
    let missing = staff.get("/admin/issues/2026-W99").await;
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains(r##"<a class="skip" href="#content">"##)
    );
}
