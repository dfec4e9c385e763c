//! `/admin/articles`: search, add, edit (title, summary, date, language,
//! in or out of this week's issue), regenerate a summary, delete, and
//! import a feed by URL with the same importer as `gazette articles
//! import`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::field_errors::FieldErrors;
use super::language_select::{self, LanguageOption};
use super::session::{self, Staff, StaffForm};
use crate::db::articles::{self, ArticleEdit, NewArticle, Saved, StaffArticle};
use crate::db::feed_imports::{self, FeedImport};
use crate::digest::import::Counts;
use crate::digest::summary::lead_summary;
use crate::domain::FeedImportStatus as ImportStatus;
use crate::domain::{ArticleTitle, ArticleUrl, SummarySource};
use crate::i18n::Language;
use crate::links::paths;
use crate::web::error::PageError;
use crate::web::form::Fields;

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u32>,
}

pub struct Row {
    pub id: Uuid,
    pub title: String,
    pub url: String,
    pub published: String,
    pub summary_source: String,
    pub excluded: bool,
}

#[derive(Template)]
#[template(path = "web/admin/articles.html")]
struct ListPage {
    c: Chrome,
    q: String,
    rows: Vec<Row>,
    page: u32,
    more: bool,
}

pub async fn list(
    query: web::Query<ListQuery>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let offset = i64::from(page - 1) * PAGE_SIZE;
    let found = articles::search(&state.db, &query.q, PAGE_SIZE + 1, offset).await?;
    let more = found.len() as i64 > PAGE_SIZE;
    let rows = found
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|a| Row {
            id: a.id,
            title: a.title,
            url: a.url,
            published: a.published_at.format("%Y-%m-%d %H:%M").to_string(),
            summary_source: a.summary_source,
            excluded: a.excluded,
        })
        .collect();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(html(
        StatusCode::OK,
        &ListPage {
            c,
            q: query.q.clone(),
            rows,
            page,
            more,
        },
    ))
}

/// The language select as a form shows it: a language, or "another or
/// unknown language".
struct LanguageField {
    options: Vec<LanguageOption>,
    unknown: bool,
}

impl LanguageField {
    fn showing(language: Option<Language>) -> Self {
        Self {
            options: language_select::options(language),
            unknown: language.is_none(),
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/article_new.html")]
struct NewPage<'a> {
    c: Chrome,
    errors: FieldErrors,
    f: &'a Fields,
    language: LanguageField,
}

pub async fn new_form(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    html(
        StatusCode::OK,
        &NewPage {
            c,
            errors: FieldErrors::default(),
            f: &Fields::default(),
            language: LanguageField::showing(Some(state.settings.site.default_language)),
        },
    )
}

/// A date on the article form that is none of the forms it may take.
#[derive(Debug, thiserror::Error)]
#[error("the date “{0}” is not like 2026-11-27T09:30")]
struct BadDate(String);

/// `2026-11-27T09:30` (a datetime-local field, taken as UTC) or RFC 3339;
/// empty means now.
fn parse_published(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BadDate> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| BadDate(raw.to_owned()))
}

fn clean_summary(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub async fn create(
    fields: StaffForm<{ 256 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let mut errors = FieldErrors::default();
    let url = ArticleUrl::parse(fields.get("url")).map_err(|e| errors.add("url", format!("Address: {e}.")));
    let title = ArticleTitle::parse(fields.get("title")).map_err(|e| errors.add("title", format!("Title: {e}.")));
    let published =
        parse_published(fields.get("published"), now).map_err(|e| errors.add("published", format!("Date: {e}.")));
    let body_text = fields.get("body").trim().to_owned();
    let max = state.settings.digest.summary_max_chars;
    let given = clean_summary(fields.get("summary"));
    if given.chars().count() > max {
        errors.add("summary", format!("Summary: at most {max} characters, please."));
    }
    if given.is_empty() && body_text.is_empty() {
        errors.add("summary", "Give a summary, or the article's text to make one from.");
    }
    // Staff write in the site's language unless they say otherwise.
    let default_language = Some(state.settings.site.default_language);
    let chosen = language_select::parse(fields.get("language"));
    let language = chosen
        .as_ref()
        .map(|chosen| chosen.or(default_language))
        .map_err(|e| errors.add("language", format!("Language: {e}.")));
    let (Ok(url), Ok(title), Ok(published), Ok(language), true) = (url, title, published, language, errors.is_empty())
    else {
        let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
        let shown = chosen.map_or(default_language, |chosen| chosen.or(default_language));
        let language = LanguageField::showing(shown);
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &NewPage {
                c,
                errors,
                f: &fields,
                language,
            },
        ));
    };
    let (summary, summary_source) = if given.is_empty() {
        (lead_summary(&body_text, max), SummarySource::Generated)
    } else {
        (given, SummarySource::Staff)
    };
    let author = Some(fields.get("author").trim().to_owned()).filter(|a| !a.is_empty());
    let article = NewArticle {
        language,
        ..NewArticle::by_hand(url, title, author, Some(published), body_text, summary, summary_source)
    };
    let message = match articles::save(&state.db, &article, now).await? {
        Saved::Added => "Article added.",
        Saved::Updated => "An article with that address existed; it is updated.",
        Saved::Unchanged => "That article was already there, just the same.",
        Saved::KeptStaffEdit => "An article with that address exists and was edited by staff; it is left as it was.",
    };
    tracing::info!(staff = %staff.email, url = %article.url, "article saved from the admin");
    session::flash(&session, message);
    Ok(session::see_other(paths::ADMIN_ARTICLES))
}

pub async fn import_feed(
    fields: StaffForm,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    // Only web addresses: the importer also reads local files, which a
    // web form must never reach.
    let raw = fields.get("feed_url").trim();
    let url = match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
        _ => {
            return Err(PageError::bad_request(
                "The feed was not imported",
                format!("“{raw}” is not a web address (http:// or https://)."),
            ));
        }
    };
    // Fetching and parsing take seconds (a large or slow feed up to the
    // fetch timeout): they run in the background, and the import's page
    // shows how far they are.
    let id = state.imports.start(&url, &staff.email).await?;
    tracing::info!(staff = %staff.email, feed = %url, import = %id, "feed import started from the admin");
    Ok(session::see_other(&paths::admin_article_import(id)))
}

/// An import that has not written progress for this long stopped with its
/// process (the fetch times out well before).
const STALLED_AFTER: chrono::Duration = chrono::Duration::minutes(2);

#[derive(Template)]
#[template(path = "web/admin/feed_import.html")]
struct ImportPage {
    c: Chrome,
    i: FeedImport,
    state: &'static str,
    running: bool,
    /// The summary line, as `gazette articles import` prints it.
    counts: String,
    rejections: Vec<String>,
    warnings: Vec<String>,
}

pub async fn import_progress(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let not_found = || PageError::not_found("feed import");
    let id = Uuid::parse_str(&path).map_err(|_| not_found())?;
    let i = feed_imports::find(&state.db, id).await?.ok_or_else(not_found)?;
    let stalled = !i.status.is_finished() && Utc::now() - i.updated_at > STALLED_AFTER;
    let state_text = match i.status {
        _ if stalled => "interrupted (the server stopped during the import; start it again)",
        ImportStatus::Queued => "waiting for another import to finish",
        ImportStatus::Fetching => "fetching the feed",
        ImportStatus::Parsing => "reading the feed",
        ImportStatus::Saving => "saving the articles",
        ImportStatus::Done => "done",
        ImportStatus::Failed => "failed",
    };
    let rejections = i.rejections.lines().map(str::to_owned).collect();
    let warnings = i.warnings.lines().map(str::to_owned).collect();
    let n = |count: i32| usize::try_from(count).unwrap_or(0);
    let counts = Counts {
        added: n(i.added),
        updated: n(i.updated),
        unchanged: n(i.unchanged),
        rejected: n(i.rejected),
        kept_staff_edit: n(i.kept_staff_edit),
        dated_at_import: n(i.dated_at_import),
    }
    .to_string();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(html(
        StatusCode::OK,
        &ImportPage {
            c,
            running: !i.status.is_finished() && !stalled,
            state: state_text,
            counts,
            rejections,
            warnings,
            i,
        },
    ))
}

#[derive(Template)]
#[template(path = "web/admin/article_edit.html")]
struct EditPage {
    c: Chrome,
    a: StaffArticle,
    published: String,
    language: LanguageField,
    errors: FieldErrors,
}

/// The article an address names.
async fn load(state: &AdminState, raw_id: &str) -> Result<StaffArticle, PageError> {
    let not_found = || PageError::not_found("article");
    let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    articles::find(&state.db, id).await?.ok_or_else(not_found)
}

pub async fn edit_form(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    let published = a.published_at.format("%Y-%m-%dT%H:%M").to_string();
    let language = LanguageField::showing(a.language());
    Ok(html(
        StatusCode::OK,
        &EditPage {
            c,
            a,
            published,
            language,
            errors: FieldErrors::default(),
        },
    ))
}

pub async fn save(
    fields: StaffForm<{ 64 * 1024 }>,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let mut a = load(&state, &path).await?;
    let max = state.settings.digest.summary_max_chars;
    let mut errors = FieldErrors::default();
    let title = ArticleTitle::parse(fields.get("title")).map_err(|e| errors.add("title", format!("Title: {e}.")));
    let published = parse_published(fields.get("published"), a.published_at)
        .map_err(|e| errors.add("published", format!("Date: {e}.")));
    let summary = clean_summary(fields.get("summary"));
    if summary.is_empty() {
        errors.add(
            "summary",
            "Summary: it is empty; use “Regenerate” to make one from the text.",
        );
    } else if summary.chars().count() > max {
        errors.add("summary", format!("Summary: at most {max} characters, please."));
    }
    // A form without the field (or an older page) leaves the language be.
    let chosen = language_select::parse(fields.get("language"));
    let language = chosen
        .as_ref()
        .map(|chosen| chosen.or(a.language()))
        .map_err(|e| errors.add("language", format!("Language: {e}.")));
    let (Ok(title), Ok(published), Ok(language), true) = (title, published, language, errors.is_empty()) else {
        let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
        let published = fields.get("published").to_owned();
        let shown = chosen.map_or(a.language(), |chosen| chosen.or(a.language()));
        a.title = fields.get("title").to_owned();
        a.summary = fields.get("summary").to_owned();
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &EditPage {
                c,
                a,
                published,
                language: LanguageField::showing(shown),
                errors,
            },
        ));
    };
    // A summary staff changed is theirs; an untouched one keeps its source.
    let summary_source = if summary == a.summary {
        match a.summary_source.as_str() {
            "feed" => SummarySource::Feed,
            "generated" => SummarySource::Generated,
            _ => SummarySource::Staff,
        }
    } else {
        SummarySource::Staff
    };
    let edit = ArticleEdit {
        title,
        summary,
        summary_source,
        published_at: published,
        excluded: fields.get("include") != "on",
        language,
    };
    if !articles::edit(&state.db, a.id, &edit, Utc::now()).await? {
        return Err(PageError::not_found("article"));
    }
    session::flash(&session, "Article saved.");
    Ok(session::see_other(&paths::admin_article(a.id)))
}

pub async fn regenerate(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    if a.body.trim().is_empty() {
        return Err(PageError::bad_request(
            "No text to summarise",
            "This article has no text of its own, so a summary cannot be made from it. Write one instead.",
        ));
    }
    let title = ArticleTitle::parse(&a.title).map_err(PageError::unexpected)?;
    let edit = ArticleEdit {
        title,
        summary: lead_summary(&a.body, state.settings.digest.summary_max_chars),
        summary_source: SummarySource::Generated,
        published_at: a.published_at,
        excluded: a.excluded,
        language: a.language(),
    };
    articles::edit(&state.db, a.id, &edit, Utc::now()).await?;
    session::flash(
        &session,
        "The summary is made again from the article's opening sentences.",
    );
    Ok(session::see_other(&paths::admin_article(a.id)))
}

pub async fn delete(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    articles::delete(&state.db, a.id).await?;
    session::flash(&session, format!("“{}” is deleted.", a.title));
    Ok(session::see_other(paths::ADMIN_ARTICLES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_the_form_are_utc() {
        let now = Utc::now();
        assert_eq!(parse_published("", now).unwrap(), now);
        assert_eq!(
            parse_published("2026-11-27T09:30", now).unwrap().to_rfc3339(),
            "2026-11-27T09:30:00+00:00"
        );
        assert_eq!(
            parse_published("2026-11-27T10:30:00+01:00", now).unwrap().to_rfc3339(),
            "2026-11-27T09:30:00+00:00"
        );
        assert!(parse_published("next friday", now).is_err());
    }
}
