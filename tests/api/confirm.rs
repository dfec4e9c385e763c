//! A reader follows the link in the confirmation email.

use chrono::Utc;

use crate::helpers::{Backend, TestApp, spawn_app};

async fn signed_up(app: &TestApp, email: &str) -> String {
    assert_eq!(app.sign_up("Ada", email).await.status(), 200);
    let link = app.smtp.wait_for(email, 1).await[0].confirmation_link();
    link.split("token=").nth(1).unwrap().to_owned()
}

pub async fn opening_the_link_shows_a_button_and_changes_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = signed_up(&app, "ada@example.com").await;
    for _ in 0..3 {
        let page = app.get(&format!("/subscriptions/confirm?token={token}")).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"<form method="post" action="/subscriptions/confirm">"#));
        assert!(html.contains(&format!(r#"name="token" value="{token}""#)));
    }
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );
}

pub async fn confirming_twice_is_harmless(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = signed_up(&app, "ada@example.com").await;
    for _ in 0..2 {
        let response = app.post_form("/subscriptions/confirm", &[("token", &token)]).await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("You are subscribed"));
    }
    let again = app.get(&format!("/subscriptions/confirm?token={token}")).await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("You are subscribed"));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE confirmed_at IS NOT NULL")
            .await,
        1
    );
}

pub async fn an_expired_link_offers_to_sign_up_again(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = signed_up(&app, "ada@example.com").await;
    let past = Utc::now() - chrono::Duration::minutes(1);
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE confirmation_tokens SET expires_at = $1").bind(past).execute(pool).await.unwrap();
    });

    let page = app.get(&format!("/subscriptions/confirm?token={token}")).await;
    assert_eq!(page.status(), 410);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("This link has expired") && html.contains("Sign up again"));

    let post = app.post_form("/subscriptions/confirm", &[("token", &token)]).await;
    assert_eq!(post.status(), 410);
    assert!(post.text().await.unwrap().contains(r#"href="/""#));
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("pending")
    );

    // Signing up again brings a link that works.
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let fresh = app.smtp.wait_for("ada@example.com", 2).await[1].confirmation_link();
    let fresh_token = fresh.split("token=").nth(1).unwrap();
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", fresh_token)])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
}

pub async fn an_unknown_or_mangled_token_gets_a_clear_page(backend: Backend) {
    let app = spawn_app(&backend).await;
    let unknown = gazette::domain::Token::generate();
    let page = app
        .get(&format!("/subscriptions/confirm?token={}", unknown.as_str()))
        .await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("recognise this link"));
    let post = app
        .post_form("/subscriptions/confirm", &[("token", unknown.as_str())])
        .await;
    assert_eq!(post.status(), 404);

    for query in [
        "",
        "?token=",
        "?token=abc",
        "?token=%27%20OR%201%3D1%20--",
        "?token=%FF",
    ] {
        let page = app.get(&format!("/subscriptions/confirm{query}")).await;
        assert_eq!(page.status(), 400, "{query}");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        assert!(page.text().await.unwrap().contains("This link is incomplete"));
    }
    let post = app.post_form("/subscriptions/confirm", &[("token", "short")]).await;
    assert_eq!(post.status(), 400);
}
