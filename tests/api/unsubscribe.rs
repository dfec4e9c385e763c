//! A reader leaves the list, from the page or with one click in their mail
//! program, and may come back through double opt-in.

use crate::helpers::{Backend, TestApp, spawn_app};

async fn confirmed_reader(app: &TestApp, name: &str, email: &str) -> String {
    assert_eq!(app.sign_up(name, email).await.status(), 200);
    let link = app.smtp.wait_for(email, 1).await[0].confirmation_link();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
    assert_eq!(app.subscriber_status(email).await.as_deref(), Some("confirmed"));
    app.unsubscribe_token(email).await
}

pub async fn a_reader_unsubscribes_on_the_page_and_can_subscribe_again(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = confirmed_reader(&app, "Ada", "ada@example.com").await;

    // The link in a digest names its issue; the page's form carries it on.
    let page = app.get(&format!("/unsubscribe?token={token}&issue=2026-W48")).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="/unsubscribe">"#) && html.contains("ada@example.com"));
    assert!(
        html.contains(r#"<input type="hidden" name="issue" value="2026-W48">"#),
        "{html}"
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed"),
        "GET changes nothing"
    );
    // A value that names no week is left out, never refused.
    let page = app.get(&format!("/unsubscribe?token={token}&issue=<b>")).await;
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(r#"name="issue""#));

    let done = app
        .post_form("/unsubscribe", &[("token", &token), ("issue", "2026-W48")])
        .await;
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(html.contains("You are unsubscribed"));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE unsubscribed_at IS NOT NULL")
            .await,
        1
    );
    // Her history has it, once (no issue of that week exists here, so the
    // event names none).
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM subscriber_events
             WHERE kind = 'unsubscribed' AND detail = 'on the unsubscribe page' AND issue_id IS NULL"
        )
        .await,
        1
    );
    assert_eq!(app.post_form("/unsubscribe", &[("token", &token)]).await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscriber_events WHERE kind = 'unsubscribed'")
            .await,
        1,
        "leaving twice is one event"
    );

    // "Subscribe again" on that page is the signup form, and double opt-in again.
    assert!(html.contains(r#"name="email" value="ada@example.com""#) && html.contains(r#"name="name" value="Ada""#));
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );
    app.smtp.wait_for("ada@example.com", 2).await[1].confirmation_link();
    assert_eq!(
        app.unsubscribe_token("ada@example.com").await,
        token,
        "the reader keeps their link"
    );
}

pub async fn one_click_unsubscribe_answers_200_for_both_body_types_and_repeats(backend: Backend) {
    let app = spawn_app(&backend).await;
    let ada = confirmed_reader(&app, "Ada", "ada@example.com").await;
    let bob = confirmed_reader(&app, "Bob", "bob@example.com").await;

    for _ in 0..2 {
        let response = app
            .post_raw(
                &format!("/unsubscribe?token={ada}"),
                "application/x-www-form-urlencoded",
                b"List-Unsubscribe=One-Click".to_vec(),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("location").is_none() && response.headers().get("set-cookie").is_none());
    }
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("unsubscribed")
    );

    let boundary = "gazette-boundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let response = app
        .post_raw(
            &format!("/unsubscribe?token={bob}"),
            &format!("multipart/form-data; boundary={boundary}"),
            multipart.into_bytes(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("unsubscribed")
    );
}

pub async fn unknown_or_mangled_unsubscribe_links_get_clear_pages(backend: Backend) {
    let app = spawn_app(&backend).await;
    // A real reader's id with the wrong secret is as unknown as a made-up id.
    let ada = confirmed_reader(&app, "Ada", "ada@example.com").await;
    let wrong_secret = format!("{}{}", &ada[..32], "0".repeat(32));
    let made_up = gazette::domain::UnsubscribeToken::generate(uuid::Uuid::now_v7()).as_string();
    for unknown in [&wrong_secret, &made_up] {
        let page = app.get(&format!("/unsubscribe?token={unknown}")).await;
        assert_eq!(page.status(), 404);
        assert!(page.text().await.unwrap().contains("recognise this link"));
    }
    let unknown = made_up;
    let page = app.get(&format!("/unsubscribe?token={unknown}")).await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("recognise this link"));
    let one_click = app
        .post_raw(
            &format!("/unsubscribe?token={unknown}"),
            "application/x-www-form-urlencoded",
            b"List-Unsubscribe=One-Click".to_vec(),
        )
        .await;
    assert_eq!(one_click.status(), 404);
    let bare = app.get("/unsubscribe").await;
    assert_eq!(bare.status(), 200, "the archive's footer links here");
    assert!(
        bare.text()
            .await
            .unwrap()
            .contains("use the link at the bottom of any issue")
    );
    for query in [
        "?token=",
        "?token=short",
        "?token=%27%20OR%201%3D1%20--%20aaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert_eq!(app.get(&format!("/unsubscribe{query}")).await.status(), 400, "{query}");
    }
    assert_eq!(app.post_form("/unsubscribe", &[("token", "nope")]).await.status(), 400);
    assert_eq!(
        app.post_raw("/unsubscribe", "text/plain", b"token".to_vec())
            .await
            .status(),
        415
    );
}
