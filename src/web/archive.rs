//! Past issues on the web: `GET /archive` lists them by their lead story,
//! `GET /archive/{week}` shows one inside the site's layout (its stories,
//! a call to subscribe, nothing of any reader's), and `GET
//! /archive/feed.xml` is an Atom feed of them. Each is in the page's
//! language where the issue was rendered in it. A cancelled issue is in
//! none of them: most readers never got it.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::issues::{self, ArchivedPage};
use crate::domain::{IssueWeek, ReaderText};
use crate::links::paths;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, ArchiveEntry, ArchivePage, ArchivedIssuePage, Chrome};

pub async fn index(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let entries: Vec<ArchiveEntry> = issues::archive(&state.db, lang)
        .await?
        .into_iter()
        .map(|issue| ArchiveEntry {
            title: issue.title().to_owned(),
            week: issue.week,
            date: lang.long_date(issue.created_at.date_naive()),
            stories: lang.text1("article-count", "count", i64::from(issue.article_count)),
        })
        .collect();
    Ok(pages::html(
        StatusCode::OK,
        &ArchivePage {
            chrome: Chrome::of(&state.site, lang, &req),
            entries,
        },
    ))
}

pub async fn issue(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    week: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let week = IssueWeek::parse(&week).ok_or_else(no_such_issue)?;
    let Some(archived) = issues::archived(&state.db, week, lang).await? else {
        return Err(match issues::exists(&state.db, week).await? {
            // Cancelled.
            true => no_such_issue(),
            false => not_sent(week),
        });
    };
    match archived {
        ArchivedPage::Page { web, created_at } => Ok(pages::html(
            StatusCode::OK,
            &ArchivedIssuePage {
                chrome: Chrome::of(&state.site, lang, &req),
                heading: lang.text1(
                    "archive-issue-heading",
                    "date",
                    lang.long_date(created_at.date_naive()).as_str(),
                ),
                lead_title: &web.lead_title,
                stories_html: &web.stories_html,
            },
        )),
        // The stored email is a whole HTML document with inline styles; it
        // is our own rendering of sanitised text, so its styles are
        // allowed.
        ArchivedPage::Email(issue) => Ok(HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ))
            .body(issue.archive_copy(ReaderText {
                unsubscribe: paths::UNSUBSCRIBE,
                preferences: paths::PREFERENCES,
                greeting: lang.greeting().nameless(),
            }))),
    }
}

pub async fn feed(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let found = issues::archive(&state.db, state.default_language).await?;
    let links = &state.links;
    let updated = found
        .first()
        .map(|i| i.created_at)
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339();
    let archive = links.archive();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{archive}</id>\n<link rel=\"alternate\" href=\"{archive}\"/>\n\
         <link rel=\"self\" href=\"{}\"/>\n<updated>{updated}</updated>\n",
        escape(&state.site.name),
        links.archive_feed(),
    );
    for issue in &found {
        // A week the archive holds is one `IssueWeek` wrote; should one
        // not parse, its entry would have no address, so it is left out.
        let Some(week) = IssueWeek::parse(&issue.week) else {
            continue;
        };
        xml.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{url}</id>\n<link href=\"{url}\"/>\n\
             <updated>{}</updated>\n<summary>{} articles</summary>\n</entry>\n",
            escape(issue.title()),
            issue.created_at.to_rfc3339(),
            issue.article_count,
            url = links.archive_issue(week),
        ));
    }
    xml.push_str("</feed>\n");
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/atom+xml; charset=utf-8"))
        .body(xml))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A week whose issue has not gone out. A staff test copy's web-version
/// link leads here before the issue is sent (the link is rendered into
/// the draft like any other), so the page says so.
fn not_sent(week: IssueWeek) -> PageError {
    PageError::public(StatusCode::NOT_FOUND, "archive-not-sent-title", "archive-not-sent")
        .arg_text("week", week.to_string())
}

fn no_such_issue() -> PageError {
    PageError::public(
        StatusCode::NOT_FOUND,
        "error-no-such-issue-title",
        "error-no-such-issue",
    )
}
