//! Past issues on the web: `GET /archive` lists them, `GET /archive/{week}`
//! shows one as readers got it (without anyone's unsubscribe link), and
//! `GET /archive/feed.xml` is an Atom feed of them. A cancelled issue is in
//! none of them: most readers never got it.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::db::issues;
use crate::domain::IssueWeek;
use crate::links::paths;
use crate::web::AppState;
use crate::web::pages::{self, ArchiveEntry, ArchivePage};

pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let site = state.site.as_str();
    match issues::archive(&state.db).await {
        Ok(found) => {
            let entries: Vec<ArchiveEntry> = found
                .into_iter()
                .map(|issue| ArchiveEntry {
                    week: issue.week,
                    subject: issue.subject,
                    date: issue.created_at.format("%-d %B %Y").to_string(),
                    articles: issue.article_count,
                })
                .collect();
            pages::html(StatusCode::OK, &ArchivePage { site, entries })
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list the archive");
            pages::server_error(site)
        }
    }
}

pub async fn issue(week: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let site = state.site.as_str();
    let Some(week) = IssueWeek::parse(&week) else {
        return no_such_issue(site);
    };
    match issues::archived(&state.db, week).await {
        // The stored issue is a whole HTML document with inline styles; it
        // is our own rendering of sanitised text, so its styles are allowed.
        Ok(Some(issue)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ))
            .body(issue.archive_copy(paths::UNSUBSCRIBE)),
        Ok(None) => no_such_issue(site),
        Err(e) => {
            tracing::error!(error = %e, "cannot read an archived issue");
            pages::server_error(site)
        }
    }
}

pub async fn feed(state: web::Data<AppState>) -> HttpResponse {
    let found = match issues::archive(&state.db).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the archive");
            return pages::server_error(&state.site);
        }
    };
    let base = state.base_url.as_str();
    let updated = found
        .first()
        .map(|i| i.created_at)
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{base}/archive</id>\n<link rel=\"alternate\" href=\"{base}/archive\"/>\n\
         <link rel=\"self\" href=\"{base}/archive/feed.xml\"/>\n<updated>{updated}</updated>\n",
        escape(&state.site)
    );
    for issue in &found {
        xml.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{base}/archive/{week}</id>\n<link href=\"{base}/archive/{week}\"/>\n\
             <updated>{}</updated>\n<summary>{} articles</summary>\n</entry>\n",
            escape(&issue.subject),
            issue.created_at.to_rfc3339(),
            issue.article_count,
            week = issue.week,
        ));
    }
    xml.push_str("</feed>\n");
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/atom+xml; charset=utf-8"))
        .body(xml)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn no_such_issue(site: &str) -> HttpResponse {
    pages::message(
        site,
        StatusCode::NOT_FOUND,
        "No such issue",
        "There is no issue for that week. The archive lists every issue sent so far.",
        false,
    )
}
