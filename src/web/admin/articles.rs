//! `/admin/articles`: search, add, edit (title, summary, date, language,
//! in or out of this week's issue), regenerate a summary, delete, and
//! import a feed by URL with the same importer as `gazette articles
//! import`. Nothing is lost (issue 17, part 4): deleting and regenerating
//! go through a confirmation page ([`super::confirm`]), a deleted article
//! waits in "Recently deleted" until retention purges it, a replaced
//! summary is kept and restorable, and an edit made against an older
//! version of the article is refused with both texts shown (409).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::confirm::{self, ConfirmPage, confirmed, unconfirmed};
use super::field_errors::FieldErrors;
use super::language_select::{self, LanguageOption};
use super::session::{self, Staff, StaffForm};
use crate::db::articles::{self, ArticleEdit, DraftState, Edited, NewArticle, Saved, StaffArticle, SummaryVersion};
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
    /// The summary's first line.
    pub summary: String,
    /// In the issue being drafted: `in`, `excluded` or `not this week`.
    pub draft: &'static str,
}

#[derive(Template)]
#[template(path = "web/admin/articles.html")]
struct ListPage {
    c: Chrome,
    q: String,
    rows: Vec<Row>,
    page: u32,
    more: bool,
    deleted: i64,
}

fn draft_label(state: DraftState) -> &'static str {
    match state {
        DraftState::In => "in",
        DraftState::Excluded => "excluded",
        DraftState::NotThisWeek => "not this week",
    }
}

/// The draft's window starts where the last issue's ended (a week back
/// for the first issue), as `digest::dispatch::preview` picks articles.
async fn draft_since(state: &AdminState, now: DateTime<Utc>) -> Result<DateTime<Utc>, PageError> {
    let last_end = crate::db::issues::last_window_end(&state.db).await?;
    Ok(last_end.unwrap_or(now - chrono::Duration::days(7)))
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
    let now = Utc::now();
    let since = draft_since(&state, now).await?;
    let rows = found
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|a| Row {
            id: a.id,
            draft: draft_label(DraftState::of(&a, since, now)),
            summary: a.summary_first_line().to_owned(),
            title: a.title,
            url: a.url,
            published: a.published_at.format("%Y-%m-%d %H:%M").to_string(),
            summary_source: a.summary_source,
        })
        .collect();
    let deleted = articles::count_deleted(&state.db).await?;
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(html(
        StatusCode::OK,
        &ListPage {
            c,
            q: query.q.clone(),
            rows,
            page,
            more,
            deleted,
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
        Saved::KeptStaffEdit if articles::deleted_at_address(&state.db, article.url.as_str()).await? => {
            "An article with that address was deleted; it is left deleted. Restore it from “Recently deleted” \
             to have it back."
        }
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

/// The summary field as the edit form shows it: its counter ("N of 300"),
/// read with the field (`aria-describedby`).
pub struct SummaryCounter {
    pub used: usize,
    pub max: usize,
}

impl SummaryCounter {
    fn of(summary: &str, max: usize) -> Self {
        Self {
            used: clean_summary(summary).chars().count(),
            max,
        }
    }

    pub fn over(&self) -> bool {
        self.used > self.max
    }
}

/// A summary the article had before, as its page lists it.
pub struct VersionRow {
    pub id: Uuid,
    pub summary: String,
    pub source: String,
    pub replaced: String,
    pub by: String,
}

impl From<SummaryVersion> for VersionRow {
    fn from(v: SummaryVersion) -> Self {
        Self {
            id: v.id,
            summary: v.summary,
            source: v.summary_source,
            replaced: v.replaced_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            by: v.replaced_by,
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/article_edit.html")]
struct EditPage {
    c: Chrome,
    a: StaffArticle,
    published: String,
    language: LanguageField,
    errors: FieldErrors,
    counter: SummaryCounter,
    versions: Vec<VersionRow>,
}

impl EditPage {
    async fn new(
        state: &AdminState,
        c: Chrome,
        a: StaffArticle,
        published: String,
        language: LanguageField,
        errors: FieldErrors,
    ) -> Result<Self, PageError> {
        let versions = articles::summary_versions(&state.db, a.id)
            .await?
            .into_iter()
            .map(VersionRow::from)
            .collect();
        Ok(Self {
            c,
            counter: SummaryCounter::of(&a.summary, state.settings.digest.summary_max_chars),
            a,
            published,
            language,
            errors,
            versions,
        })
    }
}

/// The id in an address, or the "no such article" page.
fn article_id(raw_id: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw_id).map_err(|_| PageError::not_found("article"))
}

/// The article an address names (not a deleted one).
async fn load(state: &AdminState, raw_id: &str) -> Result<StaffArticle, PageError> {
    let id = article_id(raw_id)?;
    articles::find(&state.db, id)
        .await?
        .ok_or_else(|| PageError::not_found("article"))
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
    let page = EditPage::new(&state, c, a, published, language, FieldErrors::default()).await?;
    Ok(html(StatusCode::OK, &page))
}

/// The answer to a save made against an older version: both texts, and
/// nothing overwritten.
#[derive(Template)]
#[template(path = "web/admin/article_conflict.html")]
struct ConflictPage {
    c: Chrome,
    /// The article as it is saved now.
    a: StaffArticle,
    saved_at: String,
    /// What the refused form held.
    title: String,
    summary: String,
    published: String,
    language: String,
    include: bool,
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
    // The version the form was loaded at; a form without one (an older
    // page) is saved whatever the version.
    let expected = match fields.get("version").trim() {
        "" => None,
        raw => Some(raw.parse::<i64>().map_err(|_| {
            PageError::bad_request(
                "The article was not saved",
                "The form is incomplete; open the article again.",
            )
        })?),
    };
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
        errors.add(
            "summary",
            format!(
                "Summary: at most {max} characters, please (it has {}).",
                summary.chars().count()
            ),
        );
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
        // The form goes on against the version it was loaded at.
        a.version = expected.unwrap_or(a.version);
        let page = EditPage::new(&state, c, a, published, LanguageField::showing(shown), errors).await?;
        return Ok(html(StatusCode::BAD_REQUEST, &page));
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
    match articles::edit(&state.db, a.id, expected, &edit, &staff.email, Utc::now()).await? {
        Edited::Saved => {}
        Edited::Missing => return Err(PageError::not_found("article")),
        Edited::Conflict(now) => {
            tracing::info!(staff = %staff.email, article = %a.id, "edit refused: the article changed meanwhile");
            let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
            let page = ConflictPage {
                c,
                saved_at: now.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                a: *now,
                title: fields.get("title").to_owned(),
                summary: fields.get("summary").to_owned(),
                published: fields.get("published").to_owned(),
                language: fields.get("language").to_owned(),
                include: fields.get("include") == "on",
            };
            return Ok(html(StatusCode::CONFLICT, &page));
        }
    }
    session::flash(&session, "Article saved.");
    Ok(session::see_other(&paths::admin_article(a.id)))
}

/// The summary regenerating would make, or why there is none.
fn regenerated(state: &AdminState, a: &StaffArticle) -> Result<String, PageError> {
    if a.body.trim().is_empty() {
        return Err(PageError::bad_request(
            "No text to summarise",
            "This article has no text of its own, so a summary cannot be made from it. Write one instead.",
        ));
    }
    Ok(lead_summary(&a.body, state.settings.digest.summary_max_chars))
}

/// "Regenerate the summary?": the summary now and as it would become.
pub async fn confirm_regenerate(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    let new = regenerated(&state, &a)?;
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(ConfirmPage {
        c,
        question: "Regenerate the summary?".into(),
        consequences: vec![
            format!(
                "The summary of “{}” is replaced by one made from the article's opening sentences.",
                a.title
            ),
            "The summary it has now is kept among the article's earlier summaries, where “Restore” brings it \
             back."
                .into(),
        ],
        items: vec![],
        texts: vec![
            (
                format!("The summary now (from: {})", a.summary_source),
                a.summary.clone(),
            ),
            ("As it would become".into(), new),
        ],
        action: format!("{}/regenerate", paths::admin_article(a.id)),
        hidden: vec![],
        button: "Yes, regenerate the summary".into(),
        danger: false,
        back: paths::admin_article(a.id),
        back_label: "No, back to the article".into(),
    }
    .respond())
}

pub async fn regenerate(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    if !confirmed(&fields) {
        return Err(unconfirmed(
            "regenerated",
            &format!("{}/regenerate", paths::admin_article(a.id)),
        ));
    }
    let summary = regenerated(&state, &a)?;
    let title = ArticleTitle::parse(&a.title).map_err(PageError::unexpected)?;
    let edit = ArticleEdit {
        title,
        summary,
        summary_source: SummarySource::Generated,
        published_at: a.published_at,
        excluded: a.excluded,
        language: a.language(),
    };
    if let Edited::Missing = articles::edit(&state.db, a.id, None, &edit, &staff.email, Utc::now()).await? {
        return Err(PageError::not_found("article"));
    }
    session::flash(
        &session,
        "The summary is made again from the article's opening sentences; the one before is kept below.",
    );
    Ok(session::see_other(&paths::admin_article(a.id)))
}

pub async fn restore_summary(
    _: StaffForm,
    path: web::Path<(String, String)>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (raw_article, raw_version) = path.into_inner();
    let a = load(&state, &raw_article).await?;
    let version = Uuid::parse_str(&raw_version).map_err(|_| PageError::not_found("summary"))?;
    if !articles::restore_summary(&state.db, a.id, version, &staff.email, Utc::now()).await? {
        return Err(PageError::not_found("summary"));
    }
    session::flash(
        &session,
        "The earlier summary is restored; the one it replaced is kept below.",
    );
    Ok(session::see_other(&paths::admin_article(a.id)))
}

/// How long a deleted article stays restorable, as the pages say it.
fn kept_for(state: &AdminState) -> String {
    match state.settings.retention.deleted_article_days {
        0 => "until it is restored (deleted articles are kept)".to_owned(),
        1 => "for a day".to_owned(),
        n => format!("for {n} days"),
    }
}

fn delete_consequences(state: &AdminState, n: usize) -> Vec<String> {
    let (it, them) = if n == 1 {
        ("The article", "it")
    } else {
        ("The articles", "them")
    };
    vec![
        format!(
            "{it} leaves the article list, the search and this week's issue; a feed that brings {them} again \
             does not bring {them} back."
        ),
        format!(
            "“Recently deleted” keeps {them} {}; restore {them} from there. After that {them} {} gone for good.",
            kept_for(state),
            if n == 1 { "is" } else { "are" }
        ),
    ]
}

/// "Delete this article?"
pub async fn confirm_delete(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(ConfirmPage {
        c,
        question: "Delete this article?".into(),
        consequences: delete_consequences(&state, 1),
        items: vec![format!("{} ({})", a.title, a.url)],
        texts: vec![],
        action: format!("{}/delete", paths::admin_article(a.id)),
        hidden: vec![],
        button: "Yes, delete the article".into(),
        danger: true,
        back: paths::admin_article(a.id),
        back_label: "No, back to the article".into(),
    }
    .respond())
}

pub async fn delete(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let a = load(&state, &path).await?;
    if !confirmed(&fields) {
        return Err(unconfirmed(
            "deleted",
            &format!("{}/delete", paths::admin_article(a.id)),
        ));
    }
    articles::delete(&state.db, a.id, &staff.email, Utc::now()).await?;
    tracing::info!(staff = %staff.email, article = %a.id, "article deleted (restorable)");
    session::flash(
        &session,
        format!("“{}” is deleted. “Recently deleted” can restore it.", a.title),
    );
    Ok(session::see_other(paths::ADMIN_ARTICLES))
}

/// The most deleted articles "Recently deleted" lists.
const DELETED_SHOWN: i64 = 500;

pub struct DeletedRow {
    pub id: Uuid,
    pub title: String,
    pub url: String,
    pub deleted: String,
    pub by: String,
    pub purged: String,
}

#[derive(Template)]
#[template(path = "web/admin/articles_deleted.html")]
struct DeletedPage {
    c: Chrome,
    rows: Vec<DeletedRow>,
    kept_for: String,
}

/// "Recently deleted": what can be restored, and until when.
pub async fn deleted(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let days = state.settings.retention.deleted_article_days;
    let rows = articles::recently_deleted(&state.db, DELETED_SHOWN)
        .await?
        .into_iter()
        .map(|d| DeletedRow {
            id: d.id,
            title: d.title,
            url: d.url,
            deleted: d.deleted_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            by: d.deleted_by.unwrap_or_default(),
            purged: match days {
                0 => "never".to_owned(),
                n => (d.deleted_at + chrono::Duration::days(i64::from(n)))
                    .format("%Y-%m-%d")
                    .to_string(),
            },
        })
        .collect();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    Ok(html(
        StatusCode::OK,
        &DeletedPage {
            c,
            rows,
            kept_for: kept_for(&state),
        },
    ))
}

pub async fn restore(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let id = article_id(&path)?;
    if !articles::restore(&state.db, id, Utc::now()).await? {
        return Err(PageError::not_found("deleted article"));
    }
    tracing::info!(staff = %staff.email, article = %id, "article restored");
    session::flash(&session, "The article is restored.");
    Ok(session::see_other(&paths::admin_article(id)))
}

/// The selection of the article list: include, exclude, or delete (after
/// the confirmation page).
pub async fn bulk(
    fields: StaffForm<{ 64 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids(&fields)?;
    confirm::check_selection(&ids, paths::ADMIN_ARTICLES)?;
    let message = match fields.get("action") {
        "include" | "exclude" => {
            let exclude = fields.get("action") == "exclude";
            let n = articles::set_excluded(&state.db, &ids, exclude, Utc::now()).await?;
            tracing::info!(staff = %staff.email, articles = n, exclude, "bulk include or exclude");
            match (exclude, n) {
                (false, 1) => "1 article is in this week's issue again.".to_owned(),
                (false, n) => format!("{n} articles are in this week's issue again."),
                (true, 1) => "1 article is left out of this week's issue.".to_owned(),
                (true, n) => format!("{n} articles are left out of this week's issue."),
            }
        }
        "delete" => {
            return Ok(session::see_other(&format!(
                "{}/delete?{}",
                paths::ADMIN_ARTICLES,
                confirm::ids_query(&ids)
            )));
        }
        other => {
            return Err(PageError::bad_request(
                "Nothing was done",
                format!("“{other}” is not something this list does: choose include, exclude or delete."),
            ));
        }
    };
    session::flash(&session, message);
    Ok(session::see_other(paths::ADMIN_ARTICLES))
}

/// "Delete these articles?", for the list's selection (`?id=…&id=…`).
pub async fn confirm_delete_many(
    req: actix_web::HttpRequest,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids_in_query(req.query_string())?;
    confirm::check_selection(&ids, paths::ADMIN_ARTICLES)?;
    let found = articles::find_many(&state.db, &ids).await?;
    if found.is_empty() {
        return Err(PageError::not_found("article"));
    }
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Articles);
    let n = found.len();
    Ok(ConfirmPage {
        c,
        question: if n == 1 {
            "Delete this article?".into()
        } else {
            format!("Delete these {n} articles?")
        },
        consequences: delete_consequences(&state, n),
        items: found.iter().map(|a| format!("{} ({})", a.title, a.url)).collect(),
        texts: vec![],
        action: format!("{}/delete", paths::ADMIN_ARTICLES),
        hidden: found.iter().map(|a| ("id".to_owned(), a.id.to_string())).collect(),
        button: if n == 1 {
            "Yes, delete the article".into()
        } else {
            format!("Yes, delete the {n} articles")
        },
        danger: true,
        back: paths::ADMIN_ARTICLES.into(),
        back_label: "No, back to the articles".into(),
    }
    .respond())
}

pub async fn delete_many(
    fields: StaffForm<{ 64 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids(&fields)?;
    confirm::check_selection(&ids, paths::ADMIN_ARTICLES)?;
    if !confirmed(&fields) {
        return Err(unconfirmed(
            "deleted",
            &format!("{}/delete?{}", paths::ADMIN_ARTICLES, confirm::ids_query(&ids)),
        ));
    }
    let now = Utc::now();
    let mut n = 0;
    for id in &ids {
        if articles::delete(&state.db, *id, &staff.email, now).await? {
            n += 1;
        }
    }
    tracing::info!(staff = %staff.email, articles = n, "articles deleted (restorable)");
    session::flash(
        &session,
        match n {
            1 => "1 article is deleted. “Recently deleted” can restore it.".to_owned(),
            n => format!("{n} articles are deleted. “Recently deleted” can restore them."),
        },
    );
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
