//! The JSON API (`/api/v1`) through its real surface: tokens made and
//! revoked with the CLI, bearer authentication and scopes, readers added
//! as the form adds them, the list's cursor, changes and erasure, and the
//! OpenAPI document against the routes the server registers.

use std::collections::BTreeSet;

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, gazette_command, spawn_app, spawn_app_with};

/// `gazette api-tokens ARGS…` on the test's database; its stdout.
fn api_tokens(backend: &Backend, args: &[&str]) -> Result<String, String> {
    let output = gazette_command()
        .arg("api-tokens")
        .args(args)
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .output()
        .expect("gazette runs");
    match output.status.success() {
        true => Ok(String::from_utf8(output.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

/// A new token of `scope`, made with the CLI.
pub fn new_token(backend: &Backend, scope: &str) -> String {
    let out = api_tokens(backend, &["create", "Test CMS", "--scope", scope]).expect("the token is made");
    out.trim().to_owned()
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the API answers")
}

/// The problem document of a response that must be one, with `status`.
async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "RFC 9457's media type"
    );
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["status"], status);
    assert!(document["type"].as_str().unwrap().starts_with("urn:gazette:problem:"));
    assert!(!document["title"].as_str().unwrap().is_empty());
    document
}

pub async fn tokens_reach_their_scope_revoked_ones_get_401_and_each_has_its_rate_limit(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.limits.api_requests_per_token_per_minute = 3).await;
    let readers = new_token(&backend, "subscribers");
    let articles = new_token(&backend, "articles");
    assert!(readers.starts_with("gz_") && readers != articles);
    let get = reqwest::Method::GET;

    let missing = call(&app, get.clone(), "/api/v1/subscribers", None, None).await;
    assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");
    let document = problem(missing, 401).await;
    assert_eq!(document["type"], "urn:gazette:problem:unauthorized");
    problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some("gz_not-a-token"), None).await,
        401,
    )
    .await;
    let unknown = format!("gz_{}", "A".repeat(43));
    problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&unknown), None).await,
        401,
    )
    .await;

    // The problem speaks the request's language.
    let russian = app
        .client
        .get(format!("{}/api/v1/subscribers", app.address))
        .header(ACCEPT_LANGUAGE, "ru")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(russian, 401).await["title"], "Требуется аутентификация");

    let forbidden = problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&articles), None).await,
        403,
    )
    .await;
    assert!(
        forbidden["detail"].as_str().unwrap().contains("subscribers"),
        "{forbidden}"
    );
    let ok = call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["subscribers"], json!([]));

    // The third request of the minute is the last this token may make;
    // the other token has its own allowance.
    assert_eq!(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None)
            .await
            .status(),
        200
    );
    let limited = call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None).await;
    assert!(limited.headers()[RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    problem(limited, 429).await;
    problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&articles), None).await,
        403,
    )
    .await;

    // Revoked: 401 from then on, and listed with when.
    let listed = api_tokens(&backend, &["list"]).unwrap();
    let id = listed
        .lines()
        .find(|line| line.contains("\tsubscribers\t"))
        .and_then(|line| line.split('\t').next())
        .expect("the token is listed")
        .to_owned();
    assert!(!listed.contains(&readers[3..]), "the secret is never listed");
    api_tokens(&backend, &["revoke", &id]).unwrap();
    assert!(api_tokens(&backend, &["revoke", &id]).is_err(), "revoked already");
    problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None).await,
        401,
    )
    .await;
    let listed = api_tokens(&backend, &["list"]).unwrap();
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(!line.ends_with("\t-"), "{line}");
    assert!(
        api_tokens(&backend, &["create", "  ", "--scope", "all"]).is_err(),
        "a name is needed"
    );
    assert!(api_tokens(&backend, &["create", "CMS", "--scope", "everything"]).is_err());
}

pub async fn a_reader_added_through_the_api_is_signed_up_as_on_the_form(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = new_token(&backend, "all");
    let post = reqwest::Method::POST;
    let add = |body: Value| call(&app, post.clone(), "/api/v1/subscribers", Some(&token), Some(body));

    let response = add(json!({"email": "ada@example.com", "name": "Ada", "language": "ru"})).await;
    assert_eq!(response.status(), 202);
    let first: Value = response.json().await.unwrap();
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(mail.confirmation_link().contains("/subscriptions/confirm?token="));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );

    // Known or new, the answer is the same.
    let link = mail.confirmation_link().replace("http://gazette.test", "");
    let confirm_token = link.split("token=").nth(1).unwrap().to_owned();
    app.post_form("/subscriptions/confirm", &[("token", &confirm_token)])
        .await;
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    let again = add(json!({"email": "ada@example.com", "name": "Someone Else"})).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);

    let found: Value = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/subscribers?email=ADA@EXAMPLE.COM",
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let ada = &found["subscribers"][0];
    assert_eq!(
        (ada["name"].as_str(), ada["language"].as_str()),
        (Some("Ada"), Some("ru"))
    );
    assert_eq!(ada["status"], "confirmed");
    let by_id: Value = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/subscribers/{}", ada["id"].as_str().unwrap()),
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(&by_id, ada);

    // Strict parsing: nothing is written for a refused body.
    let unknown_field = problem(add(json!({"email": "bob@example.com", "nmae": "Bob"})).await, 400).await;
    assert!(
        unknown_field["detail"].as_str().unwrap().contains("nmae"),
        "{unknown_field}"
    );
    let fields = problem(
        add(json!({"email": "bob@", "language": "xx", "confirmed": true})).await,
        422,
    )
    .await;
    let refused: BTreeSet<&str> = fields["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(refused, BTreeSet::from(["consent", "email", "language"]));
    problem(
        add(json!({"email": "bob@example.com", "consent": "signed a paper form"})).await,
        422,
    )
    .await;
    problem(
        add(json!({"email": "bob@example.com", "confirmed": true, "consent": "a\nb"})).await,
        422,
    )
    .await;
    problem(add(json!({"email": 7})).await, 400).await;
    problem(
        app.post_raw("/api/v1/subscribers", "text/plain", b"{}".to_vec()).await,
        401,
    )
    .await;
    let wrong_type = app
        .client
        .post(format!("{}/api/v1/subscribers", app.address))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"email": "bob@example.com"}"#)
        .send()
        .await
        .unwrap();
    problem(wrong_type, 415).await;
    let huge = json!({"email": "bob@example.com", "name": "b".repeat(100_000)});
    problem(add(huge).await, 413).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);

    // Confirmed, with the consent note in the reader's history, and no email.
    let response =
        add(json!({"email": "bob@example.com", "confirmed": true, "consent": "paper form at the 2026 fair"})).await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM subscriber_events e JOIN subscribers s ON s.id = e.subscriber_id
             WHERE s.email_key = 'bob@example.com' AND e.kind = 'consent_recorded'
               AND e.detail = 'paper form at the 2026 fair'"
        )
        .await,
        1
    );
    app.wait_for_empty_queue().await;
    assert_eq!(app.smtp.counts().get("bob@example.com"), None, "no confirmation email");
}

pub async fn readers_are_paged_by_cursor_changed_unsubscribed_and_erased(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = new_token(&backend, "subscribers");
    let get = reqwest::Method::GET;
    for who in ["a", "b", "c"] {
        let body = json!({"email": format!("{who}@example.com"), "confirmed": true, "consent": "CRM import"});
        let response = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/subscribers",
            Some(&token),
            Some(body),
        )
        .await;
        assert_eq!(response.status(), 202);
    }
    call(
        &app,
        reqwest::Method::POST,
        "/api/v1/subscribers",
        Some(&token),
        Some(json!({"email": "p@example.com"})),
    )
    .await;

    let page = |query: String| {
        let app = &app;
        let token = &token;
        let get = get.clone();
        async move {
            call(app, get, &format!("/api/v1/subscribers?{query}"), Some(token), None)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first = page("status=confirmed&limit=2".into()).await;
    let emails = |page: &Value| -> Vec<String> {
        page["subscribers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(emails(&first), ["a@example.com", "b@example.com"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = page(format!("status=confirmed&limit=2&cursor={cursor}")).await;
    assert_eq!(emails(&second), ["c@example.com"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(emails(&page("status=pending".into()).await), ["p@example.com"]);
    for bad in ["status=happy", "limit=0", "limit=501", "cursor=nope", "colour=red"] {
        problem(
            call(
                &app,
                get.clone(),
                &format!("/api/v1/subscribers?{bad}"),
                Some(&token),
                None,
            )
            .await,
            400,
        )
        .await;
    }

    let id = first["subscribers"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/subscribers/{id}");
    let changed = call(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(&token),
        Some(json!({"name": "Ann", "language": "ru"})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (changed["name"].as_str(), changed["language"].as_str()),
        (Some("Ann"), Some("ru"))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscriber_events WHERE kind IN ('name_changed', 'language_changed')")
            .await,
        2
    );
    problem(
        call(
            &app,
            reqwest::Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"language": "xx"})),
        )
        .await,
        422,
    )
    .await;
    problem(
        call(
            &app,
            reqwest::Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "confirmed"})),
        )
        .await,
        400,
    )
    .await;

    let left = call(
        &app,
        reqwest::Method::POST,
        &format!("{path}/unsubscribe"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(left.json::<Value>().await.unwrap()["status"], "unsubscribed");
    let erased = call(&app, reqwest::Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(erased.status(), 204);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE email_key = 'a@example.com'")
            .await,
        0
    );
    problem(call(&app, get.clone(), &path, Some(&token), None).await, 404).await;
    problem(
        call(&app, reqwest::Method::DELETE, &path, Some(&token), None).await,
        404,
    )
    .await;
    problem(
        call(&app, get.clone(), "/api/v1/subscribers/not-an-id", Some(&token), None).await,
        404,
    )
    .await;
    problem(
        call(&app, get.clone(), "/api/v1/nothing-here", Some(&token), None).await,
        404,
    )
    .await;
}

pub async fn the_openapi_document_describes_every_registered_route_and_no_other(backend: Backend) {
    let app = spawn_app(&backend).await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200, "open to anyone");
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            described.insert((method.to_uppercase(), path.clone()));
        }
    }
    let registered: BTreeSet<(String, String)> = gazette::web::api::route_list()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path))
        .collect();
    assert_eq!(described, registered);
    // Each registered route answers (not the catch-all 404 for unknown paths).
    let token = new_token(&backend, "all");
    for (method, path) in &registered {
        let path = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = call(&app, method.clone(), &path, Some(&token), Some(json!({}))).await;
        assert_ne!(response.status(), 405, "{method} {path}");
    }
    let secured = &document["paths"]["/api/v1/subscribers"]["get"]["security"];
    assert_eq!(secured, &json!([{"bearer": []}]));
}
