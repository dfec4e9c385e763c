//! A reader signs up on the form.

use std::time::Duration;

use crate::helpers::{Backend, spawn_app, spawn_app_with};

pub async fn a_reader_signs_up_confirms_by_email_and_is_subscribed(backend: Backend) {
    let app = spawn_app(&backend).await;

    let form = app.get("/").await;
    assert_eq!(form.status(), 200);
    let page = form.text().await.unwrap();
    assert!(page.contains(r#"<form method="post" action="/subscriptions">"#));
    assert!(page.contains(r#"<label for="name">"#) && page.contains(r#"<label for="email">"#));
    assert!(page.contains(r#"name="viewport""#), "readable on a phone");

    let response = app.sign_up("Ada Lovelace", "ada@example.com").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );

    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let parsed = mail.parsed();
    assert!(parsed.message_id().is_some_and(|id| id.ends_with("@gazette.test")));
    assert!(parsed.date().is_some());
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("news@gazette.test"));
    assert_eq!(from.name(), Some("The Test Gazette"));
    let to = parsed.to().unwrap().first().unwrap();
    // Until the address is confirmed, nothing the form's sender typed but
    // the address is mailed to it.
    assert_eq!((to.name(), to.address()), (None, Some("ada@example.com")));
    assert!(String::from_utf8_lossy(&mail.raw).contains("multipart/alternative"));
    assert!(mail.text().starts_with("Hello,"), "{}", mail.text());
    let link = mail.confirmation_link();

    let page = app.open_link(&link).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Confirm my subscription"));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );

    let token = link.split("token=").nth(1).unwrap();
    let confirmed = app.post_form("/subscriptions/confirm", &[("token", token)]).await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("You are subscribed"));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    app.wait_for_empty_queue().await;
    let token_kept = app
        .count("SELECT COUNT(*) FROM outgoing_mail WHERE token IS NOT NULL")
        .await;
    assert_eq!(token_kept, 0, "a sent message forgets its link secret");
}

pub async fn invalid_signups_get_a_400_page_with_the_reason_and_their_values(backend: Backend) {
    let app = spawn_app(&backend).await;
    let long_address = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(62),
        "c".repeat(61),
        "d".repeat(61)
    );
    assert_eq!(long_address.len(), 255);
    // name, address, the reason shown, the field it is about
    let cases: &[(&str, &str, &str, &str)] = &[
        ("Ada", "", "Please enter your email address.", "email"),
        (
            "Eve\r\nBcc: victim@example.com",
            "eve@example.com",
            "invisible control characters",
            "name",
        ),
        ("Ada", &long_address, "at most 254 characters", "email"),
        (
            "Ada",
            "Ada Lovelace <ada@example.com>",
            "without a name or angle brackets",
            "email",
        ),
        ("Ada", "ada@[192.168.0.1]", "not an IP address", "email"),
        ("Ada", "ada@192.168.0.1", "not an IP address", "email"),
        ("Ada", "ada@localhost", "such as example.com", "email"),
        ("Ada", "ada.example.com", "should look like reader@example.com", "email"),
        ("Ada", "ada@exa mple.com", "not a valid domain name", "email"),
        (&"x".repeat(101), "ada@example.com", "at most 100 characters", "name"),
    ];
    for (name, email, reason, field) in cases {
        let response = app.sign_up(name, email).await;
        assert_eq!(response.status(), 400, "{name:?} / {email:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains(reason), "{name:?} / {email:?}: no {reason:?} in the page");
        assert!(
            page.contains(r#"<form method="post" action="/subscriptions">"#),
            "the form is shown again"
        );
        let kept_email = format!(r#"value="{}""#, askama_escape(email));
        assert!(page.contains(&kept_email), "{email:?} kept in the form");
        // The field at fault is marked, points at its message beside it,
        // and has the focus.
        let marked = format!(r#"aria-invalid="true" aria-describedby="{field}-error" autofocus>"#);
        assert!(
            page.contains(&marked),
            "{name:?} / {email:?}: {field} not marked in {page}"
        );
        assert!(
            page.contains(&format!(r#"<p class="field-error" id="{field}-error">"#)),
            "{page}"
        );
        assert_eq!(
            page.matches("aria-invalid").count(),
            1,
            "only the field at fault: {page}"
        );
    }
    // The name is optional: an address alone signs up.
    for name in ["", "   "] {
        let response = app.sign_up(name, "nameless@example.com").await;
        assert_eq!(response.status(), 200, "{name:?}");
    }
    assert_eq!(
        app.subscriber_status("nameless@example.com").await.as_deref(),
        Some("pending")
    );
    app.smtp.wait_for("nameless@example.com", 2).await;
    let kept: (i64, i64) = (
        app.count("SELECT COUNT(*) FROM subscribers").await,
        app.count("SELECT COUNT(*) FROM outgoing_mail").await,
    );
    let missing = app
        .post_raw("/subscriptions", "application/x-www-form-urlencoded", b"".to_vec())
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, kept.0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, kept.1);
    assert_eq!(kept, (1, 2), "only the nameless reader and their two emails");
}

fn askama_escape(raw: &str) -> String {
    raw.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
}

pub async fn a_form_that_is_not_utf8_gets_a_400_page(backend: Backend) {
    let app = spawn_app(&backend).await;
    for body in [
        &b"name=%FF%FE&email=ada%40example.com"[..],
        b"name=Ad\xffa&email=ada@example.com",
    ] {
        let response = app
            .post_raw("/subscriptions", "application/x-www-form-urlencoded", body.to_vec())
            .await;
        assert_eq!(response.status(), 400);
        let page = response.text().await.unwrap();
        assert!(page.contains("not valid UTF-8"));
        assert!(
            page.contains(r#"<form method="post" action="/subscriptions">"#),
            "the form is shown again"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 0);
}

pub async fn an_oversized_body_gets_413(backend: Backend) {
    let app = spawn_app(&backend).await;
    let body = format!("name={}&email=ada%40example.com", "a".repeat(100_000));
    let response = app
        .post_raw("/subscriptions", "application/x-www-form-urlencoded", body.into_bytes())
        .await;
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("too large"));
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 0);
}

pub async fn a_body_of_another_type_gets_415(backend: Backend) {
    let app = spawn_app(&backend).await;
    let body = br#"{"name":"Ada","email":"ada@example.com"}"#.to_vec();
    let response = app.post_raw("/subscriptions", "application/json", body).await;
    assert_eq!(response.status(), 415);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("application/x-www-form-urlencoded")
    );
}

pub async fn a_pending_reader_who_signs_up_again_gets_a_new_email_and_keeps_one_row(backend: Backend) {
    let app = spawn_app(&backend).await;
    let first = app.sign_up("Ada", "ada@example.com").await;
    assert_eq!(first.status(), 200);
    let first_page = first.text().await.unwrap();
    let first_link = app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();

    let second = app.sign_up("Ada", "ada@example.com").await;
    assert_eq!(second.status(), 200);
    assert_eq!(
        second.text().await.unwrap(),
        first_page,
        "the same page for a new and a pending address"
    );
    let mails = app.smtp.wait_for("ada@example.com", 2).await;
    let second_link = mails[1].confirmation_link();
    assert_ne!(first_link, second_link, "a fresh token each time");
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);

    // The older link keeps working until it expires.
    let token = first_link.split("token=").nth(1).unwrap();
    let confirmed = app.post_form("/subscriptions/confirm", &[("token", token)]).await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
}

pub async fn a_confirmed_reader_who_signs_up_again_sees_the_same_page_and_gets_no_new_row(backend: Backend) {
    let app = spawn_app(&backend).await;
    let new_page = app.sign_up("Ada", "ada@example.com").await.text().await.unwrap();
    let link = app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    app.post_form("/subscriptions/confirm", &[("token", &token)]).await;
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );

    let again = app.sign_up("Someone Else", "ada@example.com").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.text().await.unwrap(),
        new_page,
        "no hint that the address is subscribed"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);
    let name: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT name FROM subscribers").fetch_one(pool).await.unwrap()
    });
    assert_eq!(name, "Ada", "a stranger cannot rename a confirmed reader");
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.smtp.received_for("ada@example.com").len(),
        1,
        "no new confirmation email"
    );
}

pub async fn one_mailbox_spelled_two_ways_is_one_subscriber(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.sign_up("Ada", "Ada.Lovelace@Example.COM").await;
    app.sign_up("Ada", "ada.lovelace@example.com").await;
    app.sign_up("Ada", "ada.lovelace+news@example.com").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers").await,
        2,
        "+tags are other mailboxes"
    );
    assert_eq!(
        app.subscriber_status("ada.lovelace@example.com").await.as_deref(),
        Some("pending")
    );
    assert_eq!(
        app.subscriber_status("ada.lovelace+news@example.com").await.as_deref(),
        Some("pending")
    );
}

pub async fn an_idn_domain_is_stored_in_ascii_form(backend: Backend) {
    let app = spawn_app(&backend).await;
    assert_eq!(app.sign_up("Jürgen", "juergen@bücher.example").await.status(), 200);
    assert_eq!(
        app.subscriber_status("juergen@xn--bcher-kva.example").await.as_deref(),
        Some("pending")
    );
    let mail = app.smtp.wait_for("juergen@xn--bcher-kva.example", 1).await;
    assert!(mail[0].text().starts_with("Hello,"), "{}", mail[0].text());
}

pub async fn confirmation_emails_per_address_are_capped_per_day(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.subscriptions.confirmation_emails_per_day = 3).await;
    for _ in 0..5 {
        assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    }
    app.smtp.wait_for("ada@example.com", 3).await;
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.received_for("ada@example.com").len(), 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM confirmation_tokens").await, 3);
}

pub async fn signups_past_the_per_ip_limit_get_a_429_page(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.limits.signups_per_ip_per_minute = 3).await;
    for i in 0..3 {
        let response = app.sign_up("Ada", &format!("ada{i}@example.com")).await;
        assert_eq!(response.status(), 200);
    }
    let refused = app.sign_up("Ada", "ada3@example.com").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert!(refused.text().await.unwrap().contains("Please try again in"));
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 3);
    // Reading the form is not limited.
    assert_eq!(app.get("/").await.status(), 200);
}

pub async fn many_readers_signing_up_at_once_each_get_their_emails(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.subscriptions.confirmation_emails_per_day = 3).await;
    let addresses: Vec<String> = (0..60)
        .map(|i| {
            if i % 6 == 0 {
                "same@example.com".to_owned()
            } else {
                format!("reader{i}@example.com")
            }
        })
        .collect();
    let responses = futures_util::future::join_all(addresses.iter().map(|a| app.sign_up("Reader", a))).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 51);
    app.wait_for_empty_queue().await;
    for address in addresses.iter().filter(|a| a.starts_with("reader")) {
        assert_eq!(app.smtp.received_for(address).len(), 1, "{address}");
    }
    assert_eq!(
        app.smtp.received_for("same@example.com").len(),
        3,
        "ten signups, capped at three emails"
    );
    assert_eq!(app.smtp.received().len(), 53);
}
