//! HTTP promises a scanner or a monitoring system checks from outside:
//! HEAD on every GET route, a favicon, a body that trickles in is cut off,
//! and `/metrics` only on its own listener with cached database gauges.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin::{STAFF_EMAIL, STAFF_PASSWORD, add_staff, concrete, csrf_in, staff_session};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, spawn_app_with_smtp_down};

/// Sends `request` as it is and reads until the server closes the
/// connection (or 10 s pass): the raw response.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "no complete answer within 10 s; so far: {}",
        String::from_utf8_lossy(&response)
    );
    String::from_utf8_lossy(&response).into_owned()
}

pub async fn head_is_answered_on_every_get_route_and_there_is_a_favicon(backend: Backend) {
    let app = spawn_app(&backend).await;
    let staff = staff_session(&app).await;
    let routes = gazette::web::route_list()
        .into_iter()
        .chain(gazette::web::admin::route_list())
        .filter(|(method, _)| method == "GET")
        .collect::<Vec<_>>();
    assert!(routes.len() >= 25, "{routes:?}");
    for (_, path) in &routes {
        let url = format!("{}{}", app.address, concrete(path));
        let get = staff.http.get(&url).send().await.unwrap();
        let head = staff.http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_ne!(head.status(), 405, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }

    let favicon = app.get("/favicon.ico").await;
    assert_eq!(favicon.status(), 200);
    assert_eq!(favicon.headers()["content-type"], "image/x-icon");
    let icon = favicon.bytes().await.unwrap();
    // An ICO directory with at least one image (ICONDIR: reserved 0, type 1).
    assert_eq!(&icon[..4], &[0, 0, 1, 0]);
    assert!(u16::from_le_bytes([icon[4], icon[5]]) >= 1);

    // On the wire: the GET's headers and length, and not one byte of body.
    let get = raw_exchange(&app, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let head = raw_exchange(&app, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let length = |response: &str| {
        response.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(length(&get).is_some(), "{get}");
    assert_eq!(length(&head), length(&get), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD sent a body: {head}");
}

/// A request with its headers and a first bit of its body, the rest never sent.
fn stalled_post(path: &str, cookie: Option<&str>, first_part: &str) -> Vec<u8> {
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 1000\r\n\r\n{first_part}"
    )
    .into_bytes()
}

/// The session cookie of a staff member logged in without a cookie store,
/// for requests written by hand.
async fn staff_cookie(app: &TestApp) -> String {
    add_staff(app, STAFF_EMAIL, STAFF_PASSWORD).await;
    let cookie_of = |response: &reqwest::Response| {
        let set = response.headers()["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    };
    let form = app.get("/admin/login").await;
    let cookie = cookie_of(&form);
    let csrf = csrf_in(&form.text().await.unwrap());
    let login = app
        .client
        .post(format!("{}/admin/login", app.address))
        .header("Cookie", &cookie)
        .form(&[("email", STAFF_EMAIL), ("password", STAFF_PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    cookie_of(&login)
}

pub async fn a_body_that_trickles_in_is_cut_off_with_408(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| settings.server.body_timeout_seconds = 1).await;
    let cookie = staff_cookie(&app).await;
    let token = "ab".repeat(32);
    let one_click = format!("/unsubscribe?token={token}");
    let cases: [(&str, Option<&str>, &str); 6] = [
        ("/subscriptions", None, "name=Slow&email=slo"),
        ("/subscriptions/confirm", None, "token=abc"),
        ("/unsubscribe", None, "token="),
        (&one_click, None, "List-Unsubscribe=One"),
        ("/admin/login", None, "email=a"),
        (
            "/admin/subscribers/import",
            Some(&cookie),
            "csv=email%2Cname%0Aa%40example.com",
        ),
    ];
    for (path, cookie, first_part) in cases {
        let started = std::time::Instant::now();
        let response = raw_exchange(&app, &stalled_post(path, cookie, first_part)).await;
        assert!(response.starts_with("HTTP/1.1 408"), "{path}: {response}");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{path} waited for the body"
        );
    }
    // A body that arrives in time is read as before.
    assert_eq!(app.sign_up("Quick", "quick@example.com").await.status(), 200);
}

fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const QUEUED: &str = r#"gazette_queue_depth{kind="transactional"}"#;

pub async fn metrics_are_served_on_their_own_listener_only(backend: Backend) {
    let app = spawn_app(&backend).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let metrics = app.metrics_address.clone().unwrap();
    assert_ne!(metrics, app.address);
    let scraped = app.scrape_metrics().await;
    assert_eq!(scraped.status(), 200);
    let body = scraped.text().await.unwrap();
    assert!(body.contains("# TYPE gazette_queue_depth gauge"), "{body}");
    // Nothing else is served there.
    let other = app.client.get(format!("{metrics}/")).send().await.unwrap();
    assert_eq!(other.status(), 404);

    // Empty `metrics.listen`: no metrics listener at all.
    let without = spawn_app_with(&backend, |settings| settings.metrics.listen = None).await;
    assert_eq!(without.metrics_address, None);
    assert_eq!(without.get("/metrics").await.status(), 404);
}

pub async fn metrics_gauges_are_read_once_per_cache_age(backend: Backend) {
    // SMTP is down, so a signup's confirmation stays in the queue.
    let (cached, _) = spawn_app_with_smtp_down(&backend, |s| s.metrics.cache_seconds = 3600).await;
    let first = cached.scrape_metrics().await.text().await.unwrap();
    assert_eq!(metric(&first, QUEUED), Some(0.0), "{first}");
    assert_eq!(cached.sign_up("Ada", "ada@example.com").await.status(), 200);
    assert_eq!(cached.count("SELECT COUNT(*) FROM outgoing_mail").await, 1);
    // Within the cache's age the gauge is the first reading, though the
    // queue changed; the counters are live.
    let second = cached.scrape_metrics().await.text().await.unwrap();
    assert_eq!(metric(&second, QUEUED), Some(0.0), "{second}");
    assert_eq!(metric(&second, "gazette_signups_total"), Some(1.0), "{second}");

    // With no cache age every scrape reads the queue (a second app on the
    // same database).
    let (fresh, _) = spawn_app_with_smtp_down(&backend, |s| s.metrics.cache_seconds = 0).await;
    let first = fresh.scrape_metrics().await.text().await.unwrap();
    assert_eq!(metric(&first, QUEUED), Some(1.0), "{first}");
    assert_eq!(fresh.sign_up("Bob", "bob@example.com").await.status(), 200);
    let second = fresh.scrape_metrics().await.text().await.unwrap();
    assert_eq!(metric(&second, QUEUED), Some(2.0), "{second}");
    let third = cached.scrape_metrics().await.text().await.unwrap();
    assert_eq!(metric(&third, QUEUED), Some(0.0), "{third}");
}
