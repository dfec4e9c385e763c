//! The editor's desk (issue 17): staff shape the week's issue (its lead and
//! order, subject, preheader and note) and give it a time of its own, all
//! through the staff area's forms; readers get what was shaped, over SMTP.

use std::time::Duration;

use chrono::Utc;

use crate::admin::{StaffClient, add_article, add_confirmed_reader, hidden_field, staff_session};
use crate::helpers::{Backend, spawn_app, spawn_app_with, wait_until};

/// The titles of the draft's stories, in the order the issues page lists them.
fn draft_titles(page: &str) -> Vec<String> {
    let list = page
        .split_once(r#"<ol class="draft">"#)
        .and_then(|(_, rest)| rest.split_once("</ol>"))
        .map(|(list, _)| list)
        .expect("the page lists the draft's stories");
    list.split("<li><a href=\"/admin/articles/")
        .skip(1)
        .map(|item| {
            let title = item.split_once("\">").unwrap().1;
            title.split_once("</a>").unwrap().0.to_owned()
        })
        .collect()
}

/// The id of the draft story called `title`.
fn story_id(page: &str, title: &str) -> String {
    let end = page
        .find(&format!("\">{title}</a>"))
        .unwrap_or_else(|| panic!("{title} in {page}"));
    page[..end].rsplit('/').next().unwrap().to_owned()
}

async fn move_story(staff: &mut StaffClient, title: &str, how: &str) -> reqwest::Response {
    let page = staff.page("/admin/issues").await;
    let week = hidden_field(&page, "week");
    let id = story_id(&page, title);
    staff
        .post(
            "/admin/issues/order",
            &[("week", &week), ("article", &id), ("move", how)],
        )
        .await
}

pub async fn an_editor_orders_the_stories_chooses_the_lead_and_writes_the_words_readers_get(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    for title in ["Floods in the north", "Bridge reopens", "Market day"] {
        add_article(&mut staff, title).await;
    }
    let page = staff.page("/admin/issues").await;
    assert_eq!(
        draft_titles(&page),
        ["Market day", "Bridge reopens", "Floods in the north"],
        "newest first until staff order them"
    );
    assert!(
        page.contains(r#"id="subject">Market day — The Test Gazette</strong>"#),
        "{page}"
    );

    // The oldest becomes the lead; another moves down. Each move is a plain
    // form (no script), and the page says what happened.
    let moved = move_story(&mut staff, "Floods in the north", "lead").await;
    assert_eq!(moved.status(), 303);
    let page = staff.page("/admin/issues").await;
    assert!(page.contains("“Floods in the north” is now the lead story."), "{page}");
    assert_eq!(
        draft_titles(&page),
        ["Floods in the north", "Market day", "Bridge reopens"]
    );
    assert!(
        page.contains(r#"Floods in the north</a> <strong class="badge">Lead story</strong>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"id="subject">Floods in the north — The Test Gazette</strong>"#),
        "the generated subject follows the lead: {page}"
    );
    assert_eq!(move_story(&mut staff, "Market day", "down").await.status(), 303);
    let page = staff.page("/admin/issues").await;
    assert_eq!(
        draft_titles(&page),
        ["Floods in the north", "Bridge reopens", "Market day"]
    );
    // A move for a story that is not in the draft is refused, and clearly.
    let refused = staff
        .post(
            "/admin/issues/order",
            &[
                ("week", &hidden_field(&page, "week")),
                ("article", &uuid::Uuid::new_v4().to_string()),
                ("move", "up"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("That story is not in the issue"));

    // The words: the subject prefilled with the generated one, which is not
    // kept as the issue's own (so it keeps following the lead).
    let week = hidden_field(&page, "week");
    assert!(
        page.contains(r#"name="subject" maxlength="200" value="Floods in the north — The Test Gazette""#),
        "{page}"
    );
    let note = "Welcome to the *first* issue of the year.\n\nWrite to us: [the newsroom](https://news.example.org/contact?from=mail&x=1) <script>alert(1)</script>";
    let saved = staff
        .post(
            "/admin/issues/shape",
            &[
                ("week", &week),
                ("subject", "Floods in the north — The Test Gazette"),
                ("preheader", "Our pick of the week, by hand"),
                ("note", note),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let own_subject: Option<String> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT subject FROM issue_drafts").fetch_one(pool).await.unwrap()
    });
    assert_eq!(
        own_subject, None,
        "the generated subject is not stored as the issue's own"
    );
    let page = staff.page("/admin/issues").await;
    assert!(
        page.contains(">Welcome to the *first* issue of the year.\n\nWrite to us:"),
        "{page}"
    );
    assert!(page.contains(r#"value="Our pick of the week, by hand""#), "{page}");
    // The preview shows the note, escaped where it is not markup.
    let preview = staff.get("/admin/issues/preview.html").await.text().await.unwrap();
    assert!(
        preview.contains("Welcome to the <em>first</em> issue of the year."),
        "{preview}"
    );
    assert!(preview.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !preview.contains("<script>"));

    // A subject of the editor's own wins over the template.
    let saved = staff
        .post(
            "/admin/issues/shape",
            &[
                ("week", &week),
                ("subject", "  Floods, a bridge and a market  "),
                ("preheader", "Our pick of the week, by hand"),
                ("note", note),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let page = staff.page("/admin/issues").await;
    assert!(
        page.contains(r#"id="subject">Floods, a bridge and a market</strong>"#),
        "{page}"
    );

    // Sent: the reader gets the shaped issue.
    let confirm = staff.page("/admin/issues/send").await;
    let sent = staff
        .post("/admin/issues/send", &[("key", &hidden_field(&confirm, "key"))])
        .await;
    assert_eq!(sent.status(), 303);
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let parsed = mail.parsed();
    assert_eq!(parsed.subject(), Some("Floods, a bridge and a market"));
    let (text, html) = (mail.text().replace("\r\n", "\n"), mail.html());
    assert!(
        html.contains(">Our pick of the week, by hand&#847;"),
        "the preheader: {html}"
    );
    assert!(
        html.contains("Welcome to the <em>first</em> issue of the year.</p>")
            && html.contains(r#"<a href="https://news.example.org/contact?from=mail&amp;x=1">the newsroom</a>"#)
            && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            && !html.contains("<script>"),
        "{html}"
    );
    assert!(
        text.contains(
            "Dear Ada,\n\nWelcome to the *first* issue of the year.\n\nWrite to us: the newsroom\n\
             <https://news.example.org/contact?from=mail&x=1>\n<script>alert(1)</script>\n"
        ),
        "{text}"
    );
    let floods = text.find("1. Floods in the north").expect("the lead first");
    let bridge = text.find("2. Bridge reopens").expect("then the bridge");
    let market = text.find("3. Market day").expect("then the market");
    assert!(floods < bridge && bridge < market, "{text}");
    // The archive shows the note too, inside the site's layout.
    let week_path = format!("/archive/{week}");
    let archived = app.get(&week_path).await.text().await.unwrap();
    assert!(
        archived.contains(r#"<div class="editor-note">"#)
            && archived.contains("<p>Welcome to the <em>first</em> issue of the year.</p>"),
        "{archived}"
    );
}

pub async fn words_the_digest_cannot_carry_are_refused_at_their_field(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_article(&mut staff, "Floods in the north").await;
    let page = staff.page("/admin/issues").await;
    let week = hidden_field(&page, "week");
    let refused = staff
        .post(
            "/admin/issues/shape",
            &[
                ("week", &week),
                ("subject", &"S".repeat(201)),
                ("preheader", ""),
                ("note", "Read [this](javascript:alert(1))"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains(r#"<p class="field-error" id="issue-subject-error">The subject is too long: 201 characters, at most 200.</p>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<p class="field-error" id="note-error">The link “javascript:alert(1” is not a web address: links must start with https:// or http://.</p>"#),
        "{page}"
    );
    assert!(
        page.contains(
            r#"aria-invalid="true" aria-describedby="note-error">Read [this](javascript:alert(1))</textarea>"#
        ),
        "what was typed is kept: {page}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM issue_drafts").await, 0, "nothing saved");
    // A form for another week's issue is refused, not applied to this one.
    let stale = staff
        .post(
            "/admin/issues/shape",
            &[("week", "2020-W01"), ("subject", "x"), ("preheader", ""), ("note", "")],
        )
        .await;
    assert_eq!(stale.status(), 400);
    assert!(stale.text().await.unwrap().contains("another week"));
    let unparsed = staff
        .post(
            "/admin/issues/schedule",
            &[("week", &week), ("send_at", "friday morning")],
        )
        .await;
    assert_eq!(unparsed.status(), 400);
    let page = unparsed.text().await.unwrap();
    assert!(
        page.contains(
            r#"<p class="field-error" id="send-at-error">Give a date and time, such as 2026-12-04T09:00.</p>"#
        ),
        "{page}"
    );
    let past = (Utc::now() - chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let refused = staff
        .post("/admin/issues/schedule", &[("week", &week), ("send_at", &past)])
        .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("That time has passed"));
}

/// "Send at" a few seconds ahead: the built-in scheduler sends the issue
/// then, the weekly schedule leaves the week alone, and the desk moves on
/// to next week's draft. Unscheduling gives the week back to the weekly
/// schedule.
pub async fn a_scheduled_issue_goes_out_at_its_time_and_the_desk_moves_to_next_weeks_draft(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| {
        settings.schedule.enabled = true;
    })
    .await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_article(&mut staff, "Floods in the north").await;
    let page = staff.page("/admin/issues").await;
    let week = hidden_field(&page, "week");
    assert!(
        page.contains(r#"<p id="next-send">The weekly schedule sends it on "#),
        "{page}"
    );

    // Scheduled, then taken off: nothing goes out, the weekly schedule is back.
    let later = (Utc::now() + chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let in_week = gazette::domain::IssueWeek::of(Utc::now() + chrono::Duration::minutes(30), chrono_tz::UTC);
    if in_week.to_string() == week {
        let scheduled = staff
            .post("/admin/issues/schedule", &[("week", &week), ("send_at", &later)])
            .await;
        assert_eq!(scheduled.status(), 303);
        let page = staff.page("/admin/issues").await;
        assert!(
            page.contains(r#"<p id="scheduled">Scheduled to go out on <strong>"#),
            "{page}"
        );
        assert!(page.contains("(UTC). The weekly schedule leaves this issue to that time."));
        let dashboard = staff.page("/admin").await;
        assert!(
            dashboard.contains(r#"<p class="next-run" id="next-run">Next send: <strong>"#)
                && dashboard.contains(&format!("the time staff chose for {week}'s issue")),
            "{dashboard}"
        );
        let off = staff
            .post("/admin/issues/schedule", &[("week", &week), ("action", "unschedule")])
            .await;
        assert_eq!(off.status(), 303);
        let page = staff.page("/admin/issues").await;
        assert!(
            page.contains(r#"<p id="next-send">"#) && !page.contains(r#"id="scheduled""#),
            "{page}"
        );
    }

    // Four seconds ahead (the form takes seconds too).
    let send_at = (Utc::now() + chrono::Duration::seconds(4))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let at = chrono::NaiveDateTime::parse_from_str(&send_at, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc();
    let scheduled = staff
        .post("/admin/issues/schedule", &[("week", &week), ("send_at", &send_at)])
        .await;
    assert_eq!(scheduled.status(), 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 0, "not before its time");
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(Utc::now() >= at, "the mail came at its time ({at}), not before");
    let created: chrono::DateTime<Utc> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT created_at FROM issues").fetch_one(pool).await.unwrap()
    });
    assert_eq!(created, at, "dispatched as of the time staff chose");
    assert!(mail.text().contains("Floods in the north"));
    let (pending, fired): (i64, i64) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT COUNT(send_at), COUNT(fired_at) FROM issue_drafts",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert_eq!((pending, fired), (0, 1), "its time is recorded as come");

    // The desk now shapes next week's issue.
    let page = staff.page("/admin/issues").await;
    let next = gazette::domain::IssueWeek::parse(&week)
        .unwrap()
        .following()
        .to_string();
    assert!(page.contains(&format!("<h1>Next week's issue: {next}</h1>")), "{page}");
    assert!(
        page.contains(&format!(
            r#"<p id="sent-notice">{week} has been sent: <a href="/admin/issues/{week}">"#
        )),
        "{page}"
    );
    assert!(!page.contains(r#"id="send-now""#), "{page}");
    wait_until(Duration::from_secs(5), "the issue is delivered", || async {
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await == 1
    })
    .await;
    assert_eq!(app.smtp.received_for("ada@example.com").len(), 1, "once");
}

/// Sections: staff give a story one on the issues page, a source gives its
/// articles one (`gazette feeds section`), and the digest groups the
/// stories after the lead by section, in the order staff choose.
pub async fn the_digest_groups_stories_by_section_in_the_order_staff_choose(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    for title in ["Weather", "Goal", "Rates", "Final"] {
        add_article(&mut staff, title).await;
    }
    // A source whose articles are in a section: "Rates" came from it.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query(
            "INSERT INTO feed_sources (url, name, named_by_staff, created_at, next_poll_at)
             VALUES ('https://markets.example.org/feed.xml', 'Markets', $2, $1, $1)",
        )
        .bind(Utc::now())
        .bind(true)
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap();
        sqlx::query("UPDATE articles SET feed = 'https://markets.example.org/feed.xml', guid = 'rates-1' WHERE title = 'Rates'")
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    let id: i64 = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM feed_sources").fetch_one(pool).await.unwrap()
    });
    let said = crate::cli::run(&backend, &["feeds", "section", &id.to_string(), "Business"]).await;
    assert!(said.status.success(), "{}", crate::cli::text(&said.stderr));
    assert!(crate::cli::text(&said.stdout).contains("its articles are in the section “Business”"));
    let unknown = crate::cli::run(&backend, &["feeds", "section", "999", "Business"]).await;
    assert!(!unknown.status.success());

    let set = |title: &'static str, section: &'static str| {
        let staff = &staff;
        async move {
            let page = staff.get("/admin/issues").await.text().await.unwrap();
            staff
                .post(
                    "/admin/issues/section",
                    &[
                        ("week", &hidden_field(&page, "week")),
                        ("article", &story_id(&page, title)),
                        ("section", section),
                    ],
                )
                .await
        }
    };
    assert_eq!(set("Final", "Sport").await.status(), 303);
    assert_eq!(set("Goal", "  Sport ").await.status(), 303);
    let refused = set("Goal", "a\u{7}b").await;
    assert_eq!(refused.status(), 400);
    // Newest first is Final, Rates, Goal, Weather: Final leads, then the
    // story without a section, then the sections as their stories come.
    let page = staff.page("/admin/issues").await;
    assert_eq!(draft_titles(&page), ["Final", "Weather", "Rates", "Goal"]);
    assert!(page.contains(r#"name="sections" value="Business, Sport""#), "{page}");
    let ordered = staff
        .post(
            "/admin/issues/sections",
            &[("week", &hidden_field(&page, "week")), ("sections", "sport\nBusiness")],
        )
        .await;
    assert_eq!(ordered.status(), 303);
    let page = staff.page("/admin/issues").await;
    assert_eq!(draft_titles(&page), ["Final", "Weather", "Goal", "Rates"]);

    let confirm = staff.page("/admin/issues/send").await;
    let sent = staff
        .post("/admin/issues/send", &[("key", &hidden_field(&confirm, "key"))])
        .await;
    assert_eq!(sent.status(), 303);
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let text = mail.text().replace("\r\n", "\n");
    assert!(text.contains("\n1. Final\n"), "{text}");
    assert!(text.contains("\nSport\n-----\n\n3. Goal\n"), "{text}");
    assert!(text.contains("\nBusiness\n--------\n\n4. Rates\n"), "{text}");
    assert_eq!(text.matches("\nSport\n").count(), 1, "one heading per section: {text}");
    let html = mail.html();
    let sport = html.find(">Sport</h2>").expect("the Sport heading");
    let business = html.find(">Business</h2>").expect("the Business heading");
    assert!(sport < html.find(">Goal</a>").unwrap() && business < html.find(">Rates</a>").unwrap() && sport < business);
}
