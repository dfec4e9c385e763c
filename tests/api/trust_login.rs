//! Staff login cannot be used to lock staff out (issue 10, §4): failures
//! slow the client that makes them, not the account for everyone; spellings
//! of one address share one limit; password checks run a few at a time;
//! sessions end on the server.

use std::net::IpAddr;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::admin::{STAFF_EMAIL, STAFF_PASSWORD, StaffClient, add_staff};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

/// A staff client whose connections come from `127.0.0.N`: another client,
/// as far as the server can tell (all of 127/8 is this machine).
fn client_from(app: &TestApp, n: u8) -> StaffClient {
    let mut client = StaffClient::new(app);
    client.http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap();
    client
}

async fn try_login(client: &mut StaffClient, email: &str, password: &str) -> u16 {
    client.log_in(email, password).await.status().as_u16()
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub async fn wrong_passwords_from_one_client_never_keep_the_owner_out_on_another(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.limits.admin_logins_per_account_per_minute = 3;
        s.limits.admin_logins_per_ip_per_minute = 0;
    })
    .await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut attacker = client_from(&app, 2);
    for _ in 0..3 {
        assert_eq!(try_login(&mut attacker, STAFF_EMAIL, "a wrong guess here").await, 401);
    }
    let refused = attacker.log_in(STAFF_EMAIL, "another wrong guess").await;
    assert_eq!(refused.status(), 429, "the guessing client is slowed down");
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(
        try_login(&mut attacker, STAFF_EMAIL, STAFF_PASSWORD).await,
        429,
        "even the right password waits on the client that kept guessing"
    );
    // The owner, on their own machine, gets in at once.
    let mut owner = client_from(&app, 3);
    assert_eq!(try_login(&mut owner, STAFF_EMAIL, STAFF_PASSWORD).await, 303);
    assert!(owner.page("/admin").await.contains(STAFF_EMAIL));
    // The account has been guessed at past its budget: a second guessing
    // client gets one try, then waits too.
    let mut second = client_from(&app, 4);
    assert_eq!(try_login(&mut second, STAFF_EMAIL, "yet another guess").await, 401);
    assert_eq!(try_login(&mut second, STAFF_EMAIL, "and one more guess").await, 429);
    // And a fresh client with the right password still gets in.
    let mut laptop = client_from(&app, 5);
    assert_eq!(try_login(&mut laptop, STAFF_EMAIL, STAFF_PASSWORD).await, 303);
}

pub async fn every_spelling_of_the_address_counts_against_one_account(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.limits.admin_logins_per_account_per_minute = 3;
        s.limits.admin_logins_per_ip_per_minute = 0;
    })
    .await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    // Fullwidth letters in the domain: IDNA maps them, so this is the
    // staff account for the lookup ...
    let fullwidth = "editor@ｇａｚｅｔｔｅ.test";
    let mut other = client_from(&app, 7);
    assert_eq!(try_login(&mut other, fullwidth, STAFF_PASSWORD).await, 303);
    // ... and for the limit: failures spelled three ways are one account's.
    let mut guesser = client_from(&app, 6);
    for spelling in [fullwidth, "EDITOR@GAZETTE.TEST", "Editor@ｇazette.test"] {
        assert_eq!(try_login(&mut guesser, spelling, "a wrong guess here").await, 401);
    }
    assert_eq!(
        try_login(&mut guesser, STAFF_EMAIL, "a fourth wrong guess").await,
        429,
        "three failures of one account from one client, however spelled"
    );
}

fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub async fn a_login_flood_never_runs_more_password_checks_at_once_than_the_cap(backend: Backend) {
    const CAP: u32 = 2;
    let app = spawn_app_with(&backend, |s| {
        s.limits.admin_logins_per_account_per_minute = 0;
        s.limits.admin_logins_per_ip_per_minute = 0;
        s.limits.concurrent_password_checks = CAP;
    })
    .await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut clients = Vec::new();
    for _ in 0..24 {
        let mut client = StaffClient::new(&app);
        client.page("/admin/login").await;
        clients.push(client);
    }
    let logins = clients.iter().enumerate().map(|(i, client)| async move {
        let (email, password) = match i % 3 {
            0 => (STAFF_EMAIL, STAFF_PASSWORD),
            1 => (STAFF_EMAIL, "a wrong password here"),
            _ => ("nobody@gazette.test", "a wrong password here"),
        };
        client
            .post("/admin/login", &[("email", email), ("password", password)])
            .await
            .status()
            .as_u16()
    });
    let statuses = futures_util::future::join_all(logins).await;
    for (i, status) in statuses.iter().enumerate() {
        let expected: &[u16] = if i % 3 == 0 { &[303, 429] } else { &[401, 429] };
        assert!(expected.contains(status), "login {i}: {status}");
    }
    assert!(statuses.contains(&303), "{statuses:?}");
    let exposition = app.scrape_metrics().await.text().await.unwrap();
    let peak = metric(&exposition, "gazette_password_checks_peak").expect("the peak is on /metrics");
    assert!(
        (1.0..=f64::from(CAP)).contains(&peak),
        "at most {CAP} password checks at once, saw {peak}"
    );
    assert_eq!(metric(&exposition, "gazette_password_checks_running"), Some(0.0));
    let refused = metric(&exposition, "gazette_password_checks_refused_total").unwrap();
    assert_eq!(
        refused as usize,
        statuses.iter().filter(|s| **s == 429).count(),
        "each 429 is a refused check"
    );
}

/// The session cookie a response set, as a `Cookie:` header value.
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gazette_admin="))
        .expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

/// Opens `/admin` with a copy of a cookie, from a client without its own.
async fn with_copied_cookie(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/admin", app.address))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

pub async fn logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut staff = StaffClient::new(&app);
    let login = staff.log_in(STAFF_EMAIL, STAFF_PASSWORD).await;
    assert_eq!(login.status(), 303);
    let copy = session_cookie(&login);
    let response = with_copied_cookie(&app, &copy).await;
    assert_eq!(response.status(), 200, "the copy works while the session lives");
    staff.page("/admin").await;
    let response = staff.post("/admin/logout", &[]).await;
    assert_eq!(location(&response), "/admin/login");
    let response = with_copied_cookie(&app, &copy).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/login"),
        "a cookie copied before logout opens nothing after it"
    );
}

pub async fn a_password_change_ends_copied_sessions_and_every_session_ends_after_its_lifetime(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let mut laptop = StaffClient::new(&app);
    let copy = session_cookie(&laptop.log_in(STAFF_EMAIL, STAFF_PASSWORD).await);
    let mut desk = StaffClient::new(&app);
    assert_eq!(desk.log_in(STAFF_EMAIL, STAFF_PASSWORD).await.status(), 303);
    desk.page("/admin/account").await;
    let new = "a much longer new passphrase";
    let response = desk
        .post(
            "/admin/account/password",
            &[("current", STAFF_PASSWORD), ("new", new), ("repeat", new)],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&with_copied_cookie(&app, &copy).await), "/admin/login");
    assert_eq!(
        desk.get("/admin").await.status(),
        200,
        "the session that made the change lives on"
    );

    // Every session ends after `server.session_max_hours` (12 by default),
    // counted from the login, however busy it is.
    let (created, expires): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT created_at, expires_at FROM staff_sessions")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(expires - created, chrono::Duration::hours(12));
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE staff_sessions SET expires_at = $1").bind(past).execute(pool).await.unwrap().rows_affected()
    });
    let response = desk.get("/admin").await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/login"),
        "a session past its lifetime has ended"
    );

    // `gazette staff passwd` (this function) ends every session.
    let mut again = StaffClient::new(&app);
    assert_eq!(again.log_in(STAFF_EMAIL, new).await.status(), 303);
    assert_eq!(again.get("/admin").await.status(), 200);
    let hash = gazette::staff::hash_password(gazette::domain::StaffPassword::parse(STAFF_PASSWORD).unwrap())
        .await
        .unwrap();
    let email = gazette::domain::SubscriberEmail::parse(STAFF_EMAIL, gazette::domain::AddressPolicy::LOOKUP).unwrap();
    assert!(
        gazette::db::staff::set_password(&app.db, &email, &hash, chrono::Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(location(&again.get("/admin").await), "/admin/login");
}
