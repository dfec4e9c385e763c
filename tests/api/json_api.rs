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

    // Revoked with the CLI (another process): 401 from then on, within the
    // time this server takes a live token as live without asking again
    // (until then the token answers as it did, here past its limit), and
    // listed with when.
    let listed = api_tokens(&backend, &["list"]).unwrap();
    let id = listed
        .lines()
        .find(|line| line.contains("\tsubscribers\t"))
        .and_then(|line| line.split('\t').next())
        .expect("the token is listed")
        .to_owned();
    assert!(!listed.contains(&readers[3..]), "the secret is never listed");
    api_tokens(&backend, &["revoke", &id]).unwrap();
    let revoked_at = std::time::Instant::now();
    assert!(api_tokens(&backend, &["revoke", &id]).is_err(), "revoked already");
    let deadline = revoked_at + gazette::web::api::TOKEN_CACHE_TTL + std::time::Duration::from_secs(1);
    loop {
        let answer = call(&app, get.clone(), "/api/v1/subscribers", Some(&readers), None).await;
        if answer.status() == 401 {
            problem(answer, 401).await;
            break;
        }
        assert_eq!(answer.status(), 429, "the token answers as before until it is dropped");
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked token still works {:?} after its revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            described.insert((method.to_uppercase(), path.clone()));
            let id = operation["operationId"].as_str().expect("every operation has an id");
            assert!(operation_ids.insert(id.to_owned()), "operationId {id} is unique");
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
    // Links name their operation as OpenAPI spells it.
    let link = &document["paths"]["/api/v1/articles"]["post"]["responses"]["201"]["links"]["ShowArticle"];
    assert_eq!(link["operationId"], "showArticle", "{link}");
    assert!(operation_ids.contains("showArticle"));
    let secured = &document["paths"]["/api/v1/subscribers"]["get"]["security"];
    assert_eq!(secured, &json!([{"bearer": []}]));
}

/// A page of `path` read with `token`: status 200 and its JSON.
async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = call(app, reqwest::Method::GET, path, Some(token), None).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// The `field`s a 422 problem names.
fn refused_fields(document: &Value) -> BTreeSet<String> {
    document["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["detail"].as_str().unwrap().is_empty(), "{e}");
            e["field"].as_str().unwrap().to_owned()
        })
        .collect()
}

pub async fn articles_are_pushed_once_per_address_listed_changed_and_left_out_of_the_issue(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = new_token(&backend, "articles");
    let readers = new_token(&backend, "subscribers");
    let everything = new_token(&backend, "all");
    let post = reqwest::Method::POST;
    let push = |body: Value| call(&app, post.clone(), "/api/v1/articles", Some(&token), Some(body));

    problem(
        call(&app, post.clone(), "/api/v1/articles", Some(&readers), Some(json!({}))).await,
        403,
    )
    .await;

    // Added: 201 with where it lives; in the site's language by default.
    let added = push(json!({
        "url": "https://news.example.org/harbour#top",
        "title": "The harbour reopens",
        "summary": "Ships are back.",
        "author": "Ada Lovelace",
        "published_at": "2026-11-27T10:30:00+01:00"
    }))
    .await;
    assert_eq!(added.status(), 201);
    let location = added.headers()["location"].to_str().unwrap().to_owned();
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["outcome"], "added");
    let article = &added["article"];
    let id = article["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/articles/{id}"));
    assert_eq!(
        article["url"], "https://news.example.org/harbour",
        "the fragment is dropped"
    );
    assert_eq!(article["published_at"], "2026-11-27T09:30:00Z");
    assert_eq!(article["language"], "en");
    assert_eq!(article["summary_source"], "staff");
    assert_eq!(article["included"], true);
    assert_eq!(get_json(&app, &location, &token).await, *article);

    // The same address again: that article, updated; then unchanged.
    let again = json!({
        "url": "https://news.example.org/harbour",
        "title": "The harbour reopens at last",
        "summary": "Ships are back.",
        "author": "Ada Lovelace",
        "published_at": "2026-11-27T09:30:00Z"
    });
    let updated = push(again.clone()).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["outcome"], "updated");
    assert_eq!(updated["article"]["id"], id.as_str());
    assert_eq!(updated["article"]["title"], "The harbour reopens at last");
    let same = push(again).await;
    assert_eq!(same.status(), 200);
    assert_eq!(same.json::<Value>().await.unwrap()["outcome"], "unchanged");
    assert_eq!(app.count("SELECT COUNT(*) FROM articles").await, 1);

    // A summary is made from the text when none is given; null: language unknown.
    let made: Value = push(json!({
        "url": "https://news.example.org/bridge",
        "title": "A new bridge",
        "body": "The council approved a new bridge on Monday. Work starts in spring.",
        "language": null
    }))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(made["article"]["summary_source"], "generated");
    assert!(
        made["article"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("The council approved")
    );
    assert_eq!(made["article"]["language"], Value::Null);
    // A change that changes nothing leaves the article open to later pushes.
    let bridge = format!("/api/v1/articles/{}", made["article"]["id"].as_str().unwrap());
    let unchanged = call(&app, reqwest::Method::PATCH, &bridge, Some(&token), Some(json!({}))).await;
    assert_eq!(unchanged.status(), 200);
    assert_eq!(unchanged.json::<Value>().await.unwrap(), made["article"]);

    // Strict: unknown fields are refused; each bad field is named.
    let unknown = problem(
        push(json!({"url": "https://news.example.org/x", "title": "X", "summary": "x", "tags": ["a"]})).await,
        400,
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("tags"), "{unknown}");
    let bad = problem(
        push(json!({
            "url": "ftp://news.example.org/x",
            "title": "  ",
            "summary": "x".repeat(301),
            "author": "Ada\u{0}",
            "published_at": "next friday",
            "language": "xx"
        }))
        .await,
        422,
    )
    .await;
    assert_eq!(
        refused_fields(&bad),
        ["author", "language", "published_at", "summary", "title", "url"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let nothing = problem(
        push(json!({"url": "https://news.example.org/y", "title": "Y", "summary": "\u{0}"})).await,
        422,
    )
    .await;
    assert_eq!(refused_fields(&nothing), BTreeSet::from(["summary".to_owned()]));
    let russian = app
        .client
        .post(format!("{}/api/v1/articles", app.address))
        .bearer_auth(&token)
        .header(ACCEPT_LANGUAGE, "ru")
        .json(&json!({"url": "https://news.example.org/z", "title": ""}))
        .send()
        .await
        .unwrap();
    let russian = problem(russian, 422).await;
    assert_eq!(russian["errors"][0]["detail"], "Заголовок пуст.", "{russian}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM articles").await,
        2,
        "nothing refused is saved"
    );

    // Pages by cursor, and one address found.
    let first = get_json(&app, "/api/v1/articles?limit=1", &token).await;
    assert_eq!(first["articles"][0]["id"], id.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_json(&app, &format!("/api/v1/articles?limit=1&cursor={cursor}"), &token).await;
    assert_eq!(second["articles"][0]["url"], "https://news.example.org/bridge");
    assert_eq!(
        second["articles"][0]["summary_source"], "generated",
        "not marked as edited"
    );
    assert_eq!(second["next_cursor"], Value::Null);
    let found = get_json(
        &app,
        "/api/v1/articles?url=https%3A%2F%2Fnews.example.org%2Fbridge",
        &token,
    )
    .await;
    assert_eq!(found["articles"].as_array().unwrap().len(), 1);
    problem(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/articles?limit=0",
            Some(&token),
            None,
        )
        .await,
        400,
    )
    .await;

    // Changed through the API, the article is as if staff edited it: a
    // later push of its address changes nothing and says so.
    let changed = call(
        &app,
        reqwest::Method::PATCH,
        &location,
        Some(&token),
        Some(json!({"summary": "Ships are back, and so are the gulls.", "language": "ru"})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["summary"], "Ships are back, and so are the gulls.");
    assert_eq!(changed["language"], "ru");
    assert_eq!(changed["title"], "The harbour reopens at last", "left as it was");
    let refused = problem(
        push(json!({"url": "https://news.example.org/harbour", "title": "Overwritten", "summary": "Gone."})).await,
        409,
    )
    .await;
    assert_eq!(refused["type"], "urn:gazette:problem:edited-by-staff");
    assert!(refused["detail"].as_str().unwrap().contains(&id), "{refused}");
    assert_eq!(get_json(&app, &location, &token).await, changed);

    // Left out of the next issue, and put back.
    let dry_run = |token: String| {
        let app = &app;
        async move { get_json(app, "/api/v1/issues/dry-run", &token).await }
    };
    let week_urls = |run: &Value| -> Vec<String> {
        run["articles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["url"].as_str().unwrap().to_owned())
            .collect()
    };
    // Published now, so in this week's issue.
    push(json!({"url": "https://news.example.org/today", "title": "Today", "summary": "Now."})).await;
    let today = get_json(
        &app,
        "/api/v1/articles?url=https%3A%2F%2Fnews.example.org%2Ftoday",
        &token,
    )
    .await["articles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(week_urls(&dry_run(everything.clone()).await).contains(&"https://news.example.org/today".to_owned()));
    let out = call(
        &app,
        post.clone(),
        &format!("/api/v1/articles/{today}/exclude"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(out.status(), 200);
    assert_eq!(out.json::<Value>().await.unwrap()["included"], false);
    assert!(!week_urls(&dry_run(everything.clone()).await).contains(&"https://news.example.org/today".to_owned()));
    let back = call(
        &app,
        post.clone(),
        &format!("/api/v1/articles/{today}/include"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(back.json::<Value>().await.unwrap()["included"], true);
    assert!(week_urls(&dry_run(everything).await).contains(&"https://news.example.org/today".to_owned()));
    problem(
        call(
            &app,
            post.clone(),
            "/api/v1/articles/00000000-0000-0000-0000-000000000000/exclude",
            Some(&token),
            None,
        )
        .await,
        404,
    )
    .await;
}

pub async fn issues_are_listed_with_their_counts_and_the_weeks_dry_run_writes_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = new_token(&backend, "all");
    let issues_only = new_token(&backend, "issues");
    let post = reqwest::Method::POST;

    let empty = get_json(&app, "/api/v1/issues/dry-run", &issues_only).await;
    assert_eq!(empty["articles"], json!([]));
    assert_eq!(empty["subject"], Value::Null);
    assert_eq!(empty["already_dispatched"], false);
    assert!(empty["week"].as_str().unwrap().contains("-W"));
    problem(
        call(
            &app,
            post.clone(),
            "/api/v1/articles",
            Some(&issues_only),
            Some(json!({})),
        )
        .await,
        403,
    )
    .await;

    for (email, name) in [("ada@example.com", "Ada"), ("grace@example.com", "Grace")] {
        let added = call(
            &app,
            post.clone(),
            "/api/v1/subscribers",
            Some(&token),
            Some(json!({"email": email, "name": name, "confirmed": true, "consent": "Signed up at the fair"})),
        )
        .await;
        assert_eq!(added.status(), 202);
    }
    let pushed = call(
        &app,
        post.clone(),
        "/api/v1/articles",
        Some(&token),
        Some(json!({"url": "https://news.example.org/harbour", "title": "The harbour reopens", "summary": "Ships are back."})),
    )
    .await;
    assert_eq!(pushed.status(), 201);

    let run = get_json(&app, "/api/v1/issues/dry-run", &issues_only).await;
    assert_eq!(run["recipients"], 2);
    assert_eq!(run["articles"].as_array().unwrap().len(), 1);
    assert_eq!(run["articles"][0]["title"], "The harbour reopens");
    assert_eq!(run["articles"][0]["summary"], "Ships are back.");
    assert!(!run["subject"].as_str().unwrap().is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues").await,
        0,
        "a dry run writes nothing"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 0);
    assert_eq!(
        get_json(&app, "/api/v1/issues", &issues_only).await["issues"],
        json!([])
    );

    // The CLI's dry run says the same.
    let cli = crate::cli::run(&backend, &["dispatch", "--dry-run"]).await;
    let printed = String::from_utf8(cli.stdout).unwrap();
    assert!(printed.contains(run["week"].as_str().unwrap()), "{printed}");
    assert!(
        printed.contains(&format!("Subject: {}", run["subject"].as_str().unwrap())),
        "{printed}"
    );
    assert!(printed.contains("Recipients: 2 "), "{printed}");

    let dispatched = crate::cli::run(&backend, &["dispatch"]).await;
    assert!(
        dispatched.status.success(),
        "{}",
        String::from_utf8_lossy(&dispatched.stderr)
    );
    app.wait_until_the_issue_and_all_mail_are_sent().await;

    let week = run["week"].as_str().unwrap();
    let listed = get_json(&app, "/api/v1/issues", &issues_only).await;
    assert_eq!(listed["next_cursor"], Value::Null);
    let issue = &listed["issues"][0];
    assert_eq!(issue["week"], week);
    assert_eq!(issue["subject"], run["subject"]);
    assert_eq!(issue["status"], "sent");
    assert_eq!(issue["articles"], 1);
    assert_eq!(issue["deliveries"]["total"], 2);
    assert_eq!(issue["deliveries"]["sent"], 2);
    assert_eq!(issue["deliveries"]["queued"], 0);

    let shown = get_json(&app, &format!("/api/v1/issues/{week}"), &issues_only).await;
    assert_eq!(shown["deliveries"], issue["deliveries"]);
    assert_eq!(shown["status"], "sent");
    assert!(shown["aftermath"]["last_sent_at"].is_string(), "{shown}");
    assert_eq!(shown["aftermath"]["bounced"], 0);
    assert_eq!(
        get_json(&app, "/api/v1/issues/dry-run", &issues_only).await["already_dispatched"],
        true
    );

    problem(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/issues/2001-W01",
            Some(&issues_only),
            None,
        )
        .await,
        404,
    )
    .await;
    problem(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/issues/not-a-week",
            Some(&issues_only),
            None,
        )
        .await,
        404,
    )
    .await;
    let paged = get_json(&app, &format!("/api/v1/issues?limit=1&cursor={week}"), &issues_only).await;
    assert_eq!(paged["issues"], json!([]), "nothing before the first issue");
    problem(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/issues?cursor=soon",
            Some(&issues_only),
            None,
        )
        .await,
        400,
    )
    .await;
}

/// Why Schemathesis cannot run here, if it cannot (`.ci/run` installs it).
pub fn missing_schemathesis() -> Option<String> {
    let ran = std::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output();
    match ran {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "python3 cannot run Schemathesis (`python3 -m pip install schemathesis==4.32.5`): {}",
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Some(format!("python3 does not run: {e}")),
    }
}

/// Test cases Schemathesis makes per operation and phase: enough to reach
/// every operation with good and bad input, few enough for well under a
/// minute per backend.
const SCHEMATHESIS_EXAMPLES: &str = "20";

pub async fn schemathesis_finds_no_server_error_and_every_response_matches(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        // Its requests would meet both limits, which answer as documented
        // but are not what it is there to test.
        s.limits.api_requests_per_token_per_minute = 0;
        s.limits.confirmations_per_hour = 0;
    })
    .await;
    let token = new_token(&backend, "all");
    // Something to find: an article, a reader and a sent issue.
    let post = reqwest::Method::POST;
    let pushed = call(
        &app,
        post.clone(),
        "/api/v1/articles",
        Some(&token),
        Some(json!({"url": "https://news.example.org/harbour", "title": "The harbour reopens", "summary": "Ships are back."})),
    )
    .await;
    assert_eq!(pushed.status(), 201);
    let added = call(
        &app,
        post,
        "/api/v1/subscribers",
        Some(&token),
        Some(json!({"email": "ada@example.com", "confirmed": true, "consent": "At the fair"})),
    )
    .await;
    assert_eq!(added.status(), 202);
    assert!(crate::cli::run(&backend, &["dispatch"]).await.status.success());

    let work = std::env::temp_dir().join(format!("gazette-schemathesis-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let schema = format!("{}/api/v1/openapi.json", app.address);
    let header = format!("Authorization: Bearer {token}");
    let dir = work.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .current_dir(&dir)
            .args(["-m", "schemathesis.cli", "run", &schema, "-H", &header])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", SCHEMATHESIS_EXAMPLES, "--request-timeout", "10"])
            .env("NO_COLOR", "1")
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&work).ok();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "Schemathesis found problems:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It tested every operation the document lists, but the document's own.
    let operations = gazette::web::api::route_list().len() - 1;
    assert!(
        printed.contains(&format!("Tested: {operations}\n")),
        "every one of the {operations} operations is tested:\n{printed}"
    );
}

pub async fn staff_make_list_and_revoke_api_tokens_in_the_staff_area(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = crate::admin::staff_session(&app).await;
    let page = staff.page("/admin/api-tokens").await;
    assert!(page.contains("No tokens yet"), "{page}");
    assert!(
        page.contains("<a href=\"/admin/api-tokens\" aria-current=\"page\">API tokens</a>"),
        "in the navigation, as the current section"
    );

    let refused = staff
        .post("/admin/api-tokens", &[("name", " "), ("scope", "all")])
        .await;
    assert_eq!(refused.status(), 400);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("aria-invalid=\"true\""), "{refused}");
    assert!(refused.contains("a token needs a name"), "{refused}");
    let odd = staff
        .post("/admin/api-tokens", &[("name", "CMS"), ("scope", "everything")])
        .await;
    assert_eq!(odd.status(), 400);

    // Made: shown once, on a page nobody caches.
    let made = staff
        .post("/admin/api-tokens", &[("name", "Our CMS"), ("scope", "articles")])
        .await;
    assert_eq!(made.status(), 200);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let made = made.text().await.unwrap();
    let token: String = made
        .split("value=\"gz_")
        .nth(1)
        .expect("the token is shown")
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let token = format!("gz_{token}");
    let get = reqwest::Method::GET;
    assert_eq!(
        call(&app, get.clone(), "/api/v1/articles", Some(&token), None)
            .await
            .status(),
        200
    );
    problem(
        call(&app, get.clone(), "/api/v1/subscribers", Some(&token), None).await,
        403,
    )
    .await;

    let listed = staff.page("/admin/api-tokens").await;
    assert!(
        listed.contains("Our CMS") && listed.contains(crate::admin::STAFF_EMAIL),
        "{listed}"
    );
    assert!(!listed.contains(&token), "the list never shows a token");
    let id = listed
        .split("id=\"token-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let cli = api_tokens(&backend, &["list"]).unwrap();
    assert!(cli.contains(&format!("{id}\tOur CMS\tarticles\t")), "{cli}");

    // Revoking needs the form's CSRF token.
    let forged = staff.post_raw(&format!("/admin/api-tokens/{id}/revoke"), &[]).await;
    assert_ne!(forged.status(), 303);
    assert_eq!(
        call(&app, get.clone(), "/api/v1/articles", Some(&token), None)
            .await
            .status(),
        200
    );
    let revoked = staff.post(&format!("/admin/api-tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status(), 303);
    problem(
        call(&app, get.clone(), "/api/v1/articles", Some(&token), None).await,
        401,
    )
    .await;
    let listed = staff.page("/admin/api-tokens").await;
    assert!(listed.contains("The token is revoked"), "{listed}");
    assert!(
        !listed.contains("aria-label=\"Revoke Our CMS\""),
        "no revoke button on a revoked token"
    );
    assert!(!api_tokens(&backend, &["list"]).unwrap().trim_end().ends_with("\t-"));
}
