//! Past issues on the web: `GET /archive` lists them, `GET /archive/{week}`
//! shows one as readers got it (without anyone's unsubscribe link), and
//! `GET /archive/feed.xml` is an Atom feed of them. A cancelled issue is in
//! none of them: most readers never got it.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::issues;
use crate::domain::IssueWeek;
use crate::links::paths;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, ArchiveEntry, ArchivePage, Chrome};

pub async fn index(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let entries: Vec<ArchiveEntry> = issues::archive(&state.db)
        .await?
        .into_iter()
        .map(|issue| ArchiveEntry {
            week: issue.week,
            subject: issue.subject,
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

pub async fn issue(week: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let week = IssueWeek::parse(&week).ok_or_else(no_such_issue)?;
    let issue = issues::archived(&state.db, week).await?.ok_or_else(no_such_issue)?;
    // The stored issue is a whole HTML document with inline styles; it
    // is our own rendering of sanitised text, so its styles are allowed.
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(issue.archive_copy(paths::UNSUBSCRIBE)))
}

pub async fn feed(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let found = issues::archive(&state.db).await?;
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
            escape(&issue.subject),
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

fn no_such_issue() -> PageError {
    PageError::public(
        StatusCode::NOT_FOUND,
        "error-no-such-issue-title",
        "error-no-such-issue",
    )
}
