//! Outbound webhooks, checked from the receiving end: a receiver in the
//! test process stores every request it gets, and each request's signature
//! is verified by the Standard Webhooks project's own Python library
//! (`standardwebhooks`, installed by `.ci/run`), not by Gazette's code.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gazette::config::Settings;
use serde_json::{Value, json};

use crate::admin::{add_article, add_confirmed_reader, hidden_field, staff_session};
use crate::cli::text;
use crate::helpers::{Backend, TestApp, free_port, spawn_app_with, wait_until};
use crate::json_api::new_token;

const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhook_verify.py");
const POSTMARK_USER: &str = "postmark-hooks";
const POSTMARK_PASSWORD: &str = "hooks-password";

/// Why the Standard Webhooks library cannot run here, if it cannot.
pub fn missing_verifier() -> Option<String> {
    match Command::new("python3").args(["-c", "import standardwebhooks"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "python3 cannot import standardwebhooks (`python3 -m pip install standardwebhooks`): {}",
            text(&output.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Some(format!("python3 does not run: {e}")),
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Request {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    at: Instant,
}

/// A webhook receiver on 127.0.0.1: it stores each request and answers
/// with the next scripted status (200 once the script runs out).
#[derive(Clone)]
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    always: Arc<Mutex<Option<u16>>>,
}

impl Receiver {
    /// A receiver for `port`, not listening yet.
    fn on(port: u16) -> Self {
        Self {
            port,
            seen: Arc::default(),
            script: Arc::default(),
            always: Arc::default(),
        }
    }

    fn start() -> Self {
        let receiver = Self::on(free_port());
        receiver.listen();
        receiver
    }

    fn answering(self, statuses: &[u16]) -> Self {
        self.script.lock().unwrap().extend(statuses);
        self
    }

    fn always_answering(self, status: u16) -> Self {
        *self.always.lock().unwrap() = Some(status);
        self
    }

    fn listen(&self) {
        let state = self.clone();
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    state.seen.lock().unwrap().push(Request {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: body.to_vec(),
                        at: Instant::now(),
                    });
                    let status = match *state.always.lock().unwrap() {
                        Some(status) => status,
                        None => state.script.lock().unwrap().pop_front().unwrap_or(200),
                    };
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body("ok")
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", self.port))
        .expect("the receiver binds")
        .run();
        tokio::spawn(server);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/gazette", self.port)
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Request> {
        wait_until(Duration::from_secs(30), &format!("{n} webhook requests"), || async {
            self.seen.lock().unwrap().len() >= n
        })
        .await;
        self.seen()
    }
}

/// The payloads of `requests` as the Standard Webhooks library returns them
/// after verifying each signature with `secret`; panics naming a request
/// that does not verify.
fn verified(secret: &str, requests: &[Request]) -> Vec<Value> {
    let given = json!({
        "secret": secret,
        "requests": requests.iter().map(|r| json!({
            "headers": {
                "webhook-id": r.id,
                "webhook-timestamp": r.timestamp,
                "webhook-signature": r.signature,
            },
            "body": STANDARD.encode(&r.body),
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .arg(VERIFIER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(given.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "standardwebhooks refused a request: {}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the verifier prints JSON")
}

fn secret_file(secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazette-webhooks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("postmark");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

/// Webhooks to 127.0.0.1 allowed, retries a second apart (then two…),
/// Postmark's bounce webhook on for the bounce and the complaint.
fn local_webhooks(settings: &mut Settings) {
    settings.feeds.allow_private_addresses = true;
    settings.webhooks.retry_base_seconds = 1;
    settings.webhooks.timeout_seconds = 2;
    settings.inbound.postmark_username = POSTMARK_USER.to_owned();
    settings.inbound.postmark_password_file = secret_file(POSTMARK_PASSWORD);
}

async fn spawn(backend: &Backend) -> TestApp {
    spawn_app_with(backend, local_webhooks).await
}

/// Registers an endpoint for `events` through the API; returns its id and
/// secret.
async fn register(app: &TestApp, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let response = app
        .client
        .post(format!("{}/api/v1/webhooks", app.address))
        .bearer_auth(token)
        .json(&json!({ "url": url, "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn postmark(app: &TestApp, body: Value) {
    let authorization = format!(
        "Basic {}",
        STANDARD.encode(format!("{POSTMARK_USER}:{POSTMARK_PASSWORD}"))
    );
    let response = app
        .client
        .post(format!("{}/inbound/postmark", app.address))
        .header("Content-Type", "application/json")
        .header("Authorization", authorization)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The one event of `kind` about `email` among `payloads`, or panics.
fn one<'a>(payloads: &'a [Value], kind: &str, email: &str) -> &'a Value {
    let found: Vec<&Value> = payloads
        .iter()
        .filter(|p| p["type"] == kind && p["data"]["subscriber"]["email"] == email)
        .collect();
    assert_eq!(found.len(), 1, "{kind} for {email} once: {payloads:#?}");
    found[0]
}

pub async fn each_event_reaches_the_endpoint_once_and_verifies_with_standardwebhooks(backend: Backend) {
    let app = spawn(&backend).await;
    let receiver = Receiver::start();
    let mut staff = staff_session(&app).await;

    // Registered in the staff area, every event ticked; the secret shows once.
    let page = staff.page("/admin/webhooks").await;
    assert!(page.contains("No endpoints yet"), "{page}");
    assert!(
        page.contains(r#"<a href="/admin/webhooks" aria-current="page">Webhooks</a>"#),
        "{page}"
    );
    let url = receiver.url();
    let mut form: Vec<(String, String)> = vec![("url".into(), url.clone())];
    for event in [
        "subscriber.created",
        "subscriber.confirmed",
        "subscriber.unsubscribed",
        "subscriber.bounced",
        "subscriber.complained",
        "issue.sent",
    ] {
        form.push((format!("event:{event}"), "on".into()));
    }
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = staff.post("/admin/webhooks", &fields).await;
    assert_eq!(response.status(), 200);
    let created = response.text().await.unwrap();
    let marker = r#"<code id="webhook-secret">"#;
    let start = created.find(marker).expect("the secret is shown") + marker.len();
    let secret: String = created[start..].chars().take_while(|c| *c != '<').collect();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = staff.page("/admin/webhooks").await;
    assert!(
        listed.contains(&url) && !listed.contains(&secret),
        "listed, never with its secret"
    );

    // Two readers imported confirmed; one signs up, confirms and leaves.
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    add_confirmed_reader(&app, "cyd@example.com", "Cyd").await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let link = app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let confirmed = app.post_form("/subscriptions/confirm", &[("token", &token)]).await;
    assert_eq!(confirmed.status(), 200);
    let unsubscribe = app.unsubscribe_token("ada@example.com").await;
    assert_eq!(
        app.post_form("/unsubscribe", &[("token", &unsubscribe)]).await.status(),
        200
    );
    // An issue goes to Bob and Cyd.
    add_article(&mut staff, "Floods in the north").await;
    let ask = staff.page("/admin/issues/send").await;
    let key = hidden_field(&ask, "key");
    assert_eq!(staff.post("/admin/issues/send", &[("key", &key)]).await.status(), 303);
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    // Bob reports it as spam; Cyd's address bounces for good.
    postmark(
        &app,
        json!({
            "RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512,
            "MessageID": "00000000-0000-0000-0000-000000000000", "Email": "bob@example.com",
            "BouncedAt": "2026-11-30T10:00:00Z", "Description": "Marked as spam.", "Details": "",
        }),
    )
    .await;
    postmark(
        &app,
        json!({
            "RecordType": "Bounce", "ID": 43, "Type": "HardBounce", "TypeCode": 1,
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": "cyd@example.com",
            "BouncedAt": "2026-11-30T10:00:00Z",
            "Description": "The server was unable to deliver your message.",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        }),
    )
    .await;
    assert_eq!(
        app.subscriber_status("cyd@example.com").await.as_deref(),
        Some("bounced")
    );

    let expected = 10;
    receiver.wait_for(expected).await;
    // Nothing more comes: each event once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = receiver.seen();
    let payloads = verified(&secret, &requests);
    assert_eq!(payloads.len(), expected, "{payloads:#?}");
    let mut ids: Vec<&str> = requests.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "every request is its own event");
    for email in ["bob@example.com", "cyd@example.com", "ada@example.com"] {
        one(&payloads, "subscriber.created", email);
        one(&payloads, "subscriber.confirmed", email);
    }
    one(&payloads, "subscriber.unsubscribed", "ada@example.com");
    one(&payloads, "subscriber.complained", "bob@example.com");
    one(&payloads, "subscriber.bounced", "cyd@example.com");
    let sent: Vec<&Value> = payloads.iter().filter(|p| p["type"] == "issue.sent").collect();
    assert_eq!(sent.len(), 1, "{payloads:#?}");
    assert!(sent[0]["data"]["issue"]["week"].as_str().unwrap().contains("-W"));
    assert!(
        payloads
            .iter()
            .all(|p| p["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    assert!(requests.iter().all(|r| r.id.starts_with("msg_")));

    // The staff see each attempt with its status code.
    let endpoint = hidden_attempts_page(&mut staff, &url).await;
    assert_eq!(
        endpoint.matches(r#"data-outcome="delivered""#).count(),
        expected,
        "{endpoint}"
    );
    assert_eq!(endpoint.matches(r#"data-status-code="200""#).count(), expected);
    let metrics = app.scrape_metrics().await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "gazette_webhook_attempts_total{{outcome=\"delivered\"}} {expected}\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("gazette_webhook_deliveries{status=\"delivered\"} 10\n"),
        "{metrics}"
    );
}

/// The endpoint page of the endpoint at `url`, from the list's link.
async fn hidden_attempts_page(staff: &mut crate::admin::StaffClient, url: &str) -> String {
    let list = staff.page("/admin/webhooks").await;
    let at = list.find(&format!(">{url}</a>")).expect("the endpoint is listed");
    let href_start = list[..at].rfind("href=\"").unwrap() + 6;
    let href: String = list[href_start..].chars().take_while(|c| *c != '"').collect();
    staff.page(&href).await
}

pub async fn a_receiver_answering_500_twice_sees_the_same_event_three_times_further_apart(backend: Backend) {
    let app = spawn(&backend).await;
    let receiver = Receiver::start().answering(&[500, 500]);
    let token = new_token(&backend, "all");
    let (_, secret) = register(&app, &token, &receiver.url(), &["subscriber.created"]).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);

    let requests = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests_after = receiver.seen();
    assert_eq!(requests_after.len(), 3, "a 200 ends the retries");
    assert!(
        requests.iter().all(|r| r.id == requests[0].id),
        "one event, tried three times"
    );
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "the same body each time"
    );
    let payloads = verified(&secret, &requests);
    assert!(payloads.iter().all(|p| p["type"] == "subscriber.created"));
    // Waits as the receiver saw them: at least 1 s, then at least 2 s.
    let first_wait = requests[1].at - requests[0].at;
    let second_wait = requests[2].at - requests[1].at;
    assert!(first_wait >= Duration::from_millis(900), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(1900), "{second_wait:?}");
    assert!(second_wait > first_wait, "{first_wait:?} then {second_wait:?}");

    let mut staff = staff_session(&app).await;
    let page = hidden_attempts_page(&mut staff, &receiver.url()).await;
    assert_eq!(page.matches(r#"data-outcome="retry""#).count(), 2, "{page}");
    assert_eq!(page.matches(r#"data-status-code="500""#).count(), 2, "{page}");
    assert_eq!(page.matches(r#"data-outcome="delivered""#).count(), 1, "{page}");
    let metrics = app.scrape_metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("gazette_webhook_attempts_total{outcome=\"retried\"} 2\n")
            && metrics.contains("gazette_webhook_attempts_total{outcome=\"delivered\"} 1\n"),
        "{metrics}"
    );

    // Staff resend the attempt: the receiver gets the same event once more.
    let event = hidden_field(&page, "event");
    let endpoint_path = page_path(&page);
    let response = staff
        .post(&format!("{endpoint_path}/resend"), &[("event", &event)])
        .await;
    assert_eq!(response.status(), 303);
    let requests = receiver.wait_for(4).await;
    assert_eq!(requests[3].id, requests[0].id);
    verified(&secret, &requests[3..]);
}

/// `/admin/webhooks/{id}` from the resend form on an endpoint's page.
fn page_path(page: &str) -> String {
    let start = page.find(r#"action="/admin/webhooks/"#).unwrap() + 8;
    let action: String = page[start..].chars().take_while(|c| *c != '"').collect();
    action.trim_end_matches("/resend").to_owned()
}

pub async fn a_receiver_that_is_down_gets_the_event_once_it_is_up(backend: Backend) {
    let app = spawn(&backend).await;
    let receiver = Receiver::on(free_port());
    let token = new_token(&backend, "all");
    let (_, secret) = register(&app, &token, &receiver.url(), &["subscriber.created"]).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    wait_until(Duration::from_secs(20), "a failed attempt", || async {
        app.count("SELECT COUNT(*) FROM webhook_attempts WHERE outcome = 'retry' AND status_code IS NULL")
            .await
            >= 1
    })
    .await;
    receiver.listen();
    let requests = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.seen().len(), 1, "once, when it is up");
    let payloads = verified(&secret, &requests);
    assert_eq!(payloads[0]["data"]["subscriber"]["email"], "ada@example.com");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'")
            .await,
        1
    );
}

pub async fn an_endpoint_that_answers_410_is_disabled_and_sent_nothing_more(backend: Backend) {
    let app = spawn(&backend).await;
    let receiver = Receiver::start().always_answering(410);
    let token = new_token(&backend, "all");
    let (id, _) = register(&app, &token, &receiver.url(), &["subscriber.created"]).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    receiver.wait_for(1).await;
    let list = |token: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(format!("{}/api/v1/webhooks", app.address))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    wait_until(Duration::from_secs(10), "the endpoint to be disabled", || async {
        list(token.clone()).await["webhooks"][0]["status"] == "disabled"
    })
    .await;
    let listed = list(token.clone()).await;
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(
        listed["webhooks"][0]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{listed}"
    );
    assert_eq!(app.sign_up("Bob", "bob@example.com").await.status(), 200);
    app.smtp.wait_for("bob@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.seen().len(), 1, "a disabled endpoint is sent nothing");
    let mut staff = staff_session(&app).await;
    let page = staff.page("/admin/webhooks").await;
    assert!(page.contains("disabled: the endpoint answered 410 Gone"), "{page}");

    // Deleted through the API: gone from the list, a second delete is a 404.
    let delete = |token: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .delete(format!("{}/api/v1/webhooks/{id}", app.address))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(delete(token.clone()).await, 204);
    assert_eq!(delete(token.clone()).await, 404);
    assert_eq!(list(token).await["webhooks"], json!([]));
}

pub async fn private_addresses_are_refused_at_registration_and_at_delivery(backend: Backend) {
    // The default: public addresses only.
    let app = spawn_app_with(&backend, |settings| settings.webhooks.retry_base_seconds = 1).await;
    let receiver = Receiver::start();
    let token = new_token(&backend, "all");
    let post = |body: Value, token: String| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/v1/webhooks", app.address))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for (url, events, field) in [
        (receiver.url(), json!(["subscriber.created"]), "url"),
        (
            "http://localhost:9/hook".to_owned(),
            json!(["subscriber.created"]),
            "url",
        ),
        ("http://[::1]:9/hook".to_owned(), json!(["subscriber.created"]), "url"),
        ("http://169.254.169.254/latest".to_owned(), json!(["issue.sent"]), "url"),
        ("ftp://example.org/hook".to_owned(), json!(["issue.sent"]), "url"),
        ("https://example.org/hook".to_owned(), json!([]), "events"),
        (
            "https://example.org/hook".to_owned(),
            json!(["subscriber.moved"]),
            "events",
        ),
    ] {
        let response = post(json!({ "url": url, "events": events }), token.clone()).await;
        assert_eq!(response.status(), 422, "{url} {events}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let refused = post(
        json!({ "url": receiver.url(), "events": ["subscriber.created"] }),
        token.clone(),
    )
    .await;
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("public addresses only"),
        "{problem}"
    );
    // Only a token of scope `all` reaches webhooks.
    let narrow = new_token(&backend, "subscribers");
    let response = post(
        json!({ "url": "https://example.org/hook", "events": ["issue.sent"] }),
        narrow,
    )
    .await;
    assert_eq!(response.status(), 403);
    // The staff page says why.
    let mut staff = staff_session(&app).await;
    staff.page("/admin/webhooks").await;
    let url = receiver.url();
    let response = staff
        .post(
            "/admin/webhooks",
            &[("url", url.as_str()), ("event:subscriber.created", "on")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("public addresses only"));
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_endpoints").await, 0);

    // An endpoint that points at a private address by the time of delivery
    // (here: written past the check) is refused when the post is made.
    let secret = gazette::domain::WebhookSecret::generate();
    gazette::db::webhooks::create(
        &app.db,
        &receiver.url(),
        secret.as_str(),
        &[gazette::domain::WebhookEvent::SubscriberCreated],
        "test",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    wait_until(Duration::from_secs(20), "a refused attempt", || async {
        app.count("SELECT COUNT(*) FROM webhook_attempts WHERE outcome = 'retry' AND error LIKE 'refused address%'")
            .await
            >= 1
    })
    .await;
    assert!(receiver.seen().is_empty(), "nothing reached the private address");
}
