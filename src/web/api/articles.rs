//! `/api/v1/articles`: a CMS pushes its articles instead of (or beside)
//! feeds, lists them, changes them, and puts them in or leaves them out of
//! the next issue. An article pushed here is saved as the staff form saves
//! one (`db::articles::save`, one article per address): pushing an address
//! again updates that article, and an article staff edited is never
//! overwritten (409, nothing changed).

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::paging::{PageSizes, Paging};
use super::problem::{FieldCause, FieldProblem, Kind, Problem};
use super::{ApiState, Caller, PREFIX};
use crate::db::articles::{self, ArticleEdit, Edited, NewArticle, Saved, StaffArticle};
use crate::digest::summary::lead_summary;
use crate::domain::{ArticleTitle, ArticleTitleError, ArticleUrl, SummarySource};
use crate::i18n::Language;

/// Articles per page when the caller does not say.
const PAGE_SIZES: PageSizes = PageSizes { default: 50, max: 200 };
/// Longest author, in characters.
const MAX_AUTHOR_CHARS: usize = 200;

/// `Some(value)` for a field that is present, `null` included: with
/// `#[serde(default)]`, a field left out stays `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// An article pushed by another system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiArticle {
    /// Its address (http or https; a `#fragment` is dropped). One article
    /// per address: pushing an address again updates its article.
    #[schema(format = "uri", example = "https://example.org/news/harbour-reopens")]
    pub url: String,
    /// Its headline: one line, at most 300 characters.
    #[schema(min_length = 1, max_length = 300, example = "The harbour reopens")]
    pub title: String,
    /// What the digest shows under the headline; made from `body`'s opening
    /// sentences when left out or empty.
    #[serde(default)]
    pub summary: Option<String>,
    /// The article's text, to make a summary from.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub author: Option<String>,
    /// When it was published (RFC 3339); now when left out.
    #[serde(default)]
    #[schema(format = DateTime, example = "2026-11-27T09:30:00Z")]
    pub published_at: Option<String>,
    /// The language it is written in (`en`, `ru`, …): the site's when left
    /// out, unknown when `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "en")]
    pub language: Option<Option<String>>,
}

/// A change of an article; a field left out is left as it is. A changed
/// article counts as edited by staff: later imports of it leave it alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleChange {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 300)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    /// `null`: an unknown language.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
}

/// An article.
#[derive(Debug, Serialize, ToSchema)]
pub struct Article {
    #[schema(format = Uuid)]
    pub id: String,
    pub url: String,
    pub title: String,
    pub author: Option<String>,
    #[schema(format = DateTime)]
    pub published_at: String,
    pub summary: String,
    /// Where the summary came from: `staff` (written by staff or given
    /// through the API), `feed` or `generated` (from the text).
    pub summary_source: String,
    /// Its language's tag; `null` when unknown.
    pub language: Option<String>,
    /// Whether the next issue may have it (staff or the API left it out
    /// when `false`).
    pub included: bool,
}

impl From<StaffArticle> for Article {
    fn from(a: StaffArticle) -> Self {
        Self {
            id: a.id.to_string(),
            language: a.language().map(|l| l.tag().to_owned()),
            url: a.url,
            title: a.title,
            author: a.author,
            published_at: a.published_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            summary: a.summary,
            summary_source: a.summary_source,
            included: !a.excluded,
        }
    }
}

/// What a push did, and the article as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleSaved {
    /// `added`, `updated` or `unchanged`.
    #[schema(pattern = "^(added|updated|unchanged)$")]
    pub outcome: String,
    pub article: Article,
}

/// A page of articles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticlePage {
    pub articles: Vec<Article>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Which articles to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the article at this address.
    pub url: Option<String>,
    /// Articles per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u16>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// Add an article, or update the one at its address. An article staff
/// edited is left as they made it: 409, nothing changed.
#[utoipa::path(
    post,
    path = "/api/v1/articles",
    operation_id = "pushArticle",
    tag = "articles",
    request_body = NewApiArticle,
    responses(
        (status = 201, description = "Added", body = ArticleSaved,
         headers(("Location" = String, description = "The article's address in the API"))),
        (status = 200, description = "An article at this address was there: updated, or unchanged", body = ArticleSaved),
        (status = 409, description = "An article at this address was edited by staff; nothing changed",
         content_type = "application/problem+json", body = super::problem::ProblemDocument),
    )
)]
pub async fn create(body: web::Json<NewApiArticle>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let now = Utc::now();
    let max = state.summary_max_chars;
    let mut problems = Vec::new();
    let url = ArticleUrl::parse(&body.url)
        .map_err(|_| problems.push(field("url", FieldCause::Message("api-article-url-invalid"))))
        .ok();
    let title = parse_title(&body.title, &mut problems);
    let text = body.body.as_deref().unwrap_or("").trim().to_owned();
    if has_stray_control(&text) {
        problems.push(field("body", FieldCause::Message("api-article-control-characters")));
    }
    let given = parse_summary(body.summary.as_deref().unwrap_or(""), max, &mut problems);
    if given.as_deref() == Some("") && text.is_empty() {
        problems.push(field("summary", FieldCause::Message("api-article-summary-missing")));
    }
    let author = parse_author(body.author.as_deref(), &mut problems);
    let published = match body.published_at.as_deref() {
        None => Some(now),
        Some(raw) => parse_date(raw, &mut problems),
    };
    let language = match body.language {
        None => Some(Some(state.default_language)),
        Some(tag) => parse_language(tag.as_deref(), &mut problems),
    };
    let (Some(url), Some(title), Some(given), Some(author), Some(published), Some(language), true) =
        (url, title, given, author, published, language, problems.is_empty())
    else {
        return Err(Problem::fields(problems));
    };
    let (summary, summary_source) = match given.is_empty() {
        true => (lead_summary(&text, max), SummarySource::Generated),
        false => (given, SummarySource::Staff),
    };
    let article = NewArticle {
        language,
        ..NewArticle::by_hand(url, title, author, Some(published), text, summary, summary_source)
    };
    let saved = articles::save(&state.db, &article, now).await?;
    let stored = articles::at_address(&state.db, &article.url)
        .await?
        .ok_or_else(|| Problem::unexpected("an article just saved is not found at its address"))?;
    let (status, outcome) = match saved {
        Saved::Added => (StatusCode::CREATED, "added"),
        Saved::Updated => (StatusCode::OK, "updated"),
        Saved::Unchanged => (StatusCode::OK, "unchanged"),
        Saved::KeptStaffEdit if articles::deleted_at_address(&state.db, article.url.as_str()).await? => {
            return Err(Problem::new(Kind::DeletedByStaff).reason(stored.id.to_string()));
        }
        Saved::KeptStaffEdit => {
            return Err(Problem::new(Kind::EditedByStaff).reason(stored.id.to_string()));
        }
    };
    let mut response = HttpResponse::build(status);
    if saved == Saved::Added {
        response.insert_header((LOCATION, format!("{PREFIX}/articles/{}", stored.id)));
    }
    Ok(response.json(ArticleSaved {
        outcome: outcome.to_owned(),
        article: stored.into(),
    }))
}

/// List articles in id order (the order they were added in), a page at a
/// time; or find the one at an address.
#[utoipa::path(
    get,
    path = "/api/v1/articles",
    operation_id = "listArticles",
    tag = "articles",
    params(ListQuery),
    responses((status = 200, description = "A page of articles", body = ArticlePage))
)]
pub async fn list(query: web::Query<ListQuery>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let invalid = |what: &str| Problem::new(Kind::InvalidParameters).reason(what);
    let url = match query.url.as_deref() {
        None => None,
        Some(raw) => Some(ArticleUrl::parse(raw).map_err(|_| invalid("url"))?),
    };
    let paging = Paging::parse(query.limit, query.cursor.as_deref(), PAGE_SIZES, |raw| {
        Uuid::parse_str(raw).ok()
    })?;
    let found = articles::page(&state.db, url.as_ref(), paging.after, paging.rows_to_read()).await?;
    let (found, next_cursor) = paging.page(found, |a| a.id.to_string());
    Ok(HttpResponse::Ok().json(ArticlePage {
        articles: found.into_iter().map(Article::from).collect(),
        next_cursor,
    }))
}

/// One article.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{id}",
    operation_id = "showArticle",
    tag = "articles",
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    responses((status = 200, description = "The article", body = Article))
)]
pub async fn show(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(Article::from(load(&state, &id).await?)))
}

/// Change an article's title, summary, date or language. The article then
/// counts as edited by staff, as after the staff area's edit form: later
/// imports and pushes leave it as it is.
#[utoipa::path(
    patch,
    path = "/api/v1/articles/{id}",
    operation_id = "updateArticle",
    tag = "articles",
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    request_body = ArticleChange,
    responses((status = 200, description = "The article, changed", body = Article))
)]
pub async fn update(
    id: web::Path<String>,
    body: web::Json<ArticleChange>,
    caller: Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    // Nothing to change: the article is not marked as edited.
    if body.title.is_none() && body.summary.is_none() && body.published_at.is_none() && body.language.is_none() {
        return show(id, state).await;
    }
    let mut problems = Vec::new();
    let title = body.title.as_deref().map(|raw| parse_title(raw, &mut problems));
    let summary = body
        .summary
        .as_deref()
        .map(|raw| parse_summary(raw, state.summary_max_chars, &mut problems));
    if let Some(Some("")) = summary.as_ref().map(|s| s.as_deref()) {
        problems.push(field("summary", FieldCause::Message("api-article-summary-empty")));
    }
    let published = body.published_at.as_deref().map(|raw| parse_date(raw, &mut problems));
    let language = body.language.map(|tag| parse_language(tag.as_deref(), &mut problems));
    if !problems.is_empty() {
        return Err(Problem::fields(problems));
    }
    let a = load(&state, &id).await?;
    let title = match title.flatten() {
        Some(title) => title,
        None => ArticleTitle::parse(&a.title).map_err(Problem::unexpected)?,
    };
    let (summary, summary_source) = match summary.flatten() {
        Some(summary) if summary != a.summary => (summary, SummarySource::Staff),
        _ => (a.summary.clone(), stored_source(&a.summary_source)),
    };
    let edit = ArticleEdit {
        title,
        summary,
        summary_source,
        published_at: published.flatten().unwrap_or(a.published_at),
        excluded: a.excluded,
        language: language.flatten().unwrap_or(a.language()),
    };
    // Made against the version just read: a staff edit in between is not
    // overwritten (409, as the staff's own edit form answers).
    let by = format!("API token {}", caller.name());
    match articles::edit(&state.db, a.id, Some(a.version), &edit, &by, Utc::now()).await? {
        Edited::Saved => show(id, state).await,
        Edited::Missing => Err(Problem::new(Kind::NotFound)),
        Edited::Conflict(current) => Err(Problem::new(Kind::EditedByStaff).reason(current.id.to_string())),
    }
}

/// Put an article in the next issue (every article published in its week
/// is, unless left out).
#[utoipa::path(
    post,
    path = "/api/v1/articles/{id}/include",
    operation_id = "includeArticle",
    tag = "articles",
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    responses((status = 200, description = "The article, included", body = Article))
)]
pub async fn include(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    set_excluded(id, state, false).await
}

/// Leave an article out of the next issue.
#[utoipa::path(
    post,
    path = "/api/v1/articles/{id}/exclude",
    operation_id = "excludeArticle",
    tag = "articles",
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    responses((status = 200, description = "The article, left out", body = Article))
)]
pub async fn exclude(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    set_excluded(id, state, true).await
}

async fn set_excluded(
    id: web::Path<String>,
    state: web::Data<ApiState>,
    excluded: bool,
) -> Result<HttpResponse, Problem> {
    if !articles::include_or_exclude(&state.db, path_id(&id)?, excluded, Utc::now()).await? {
        return Err(Problem::new(Kind::NotFound));
    }
    show(id, state).await
}

async fn load(state: &ApiState, raw_id: &str) -> Result<StaffArticle, Problem> {
    articles::find(&state.db, path_id(raw_id)?)
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound))
}

/// The id in a path: anything else names nothing.
fn path_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::new(Kind::NotFound))
}

fn stored_source(raw: &str) -> SummarySource {
    match raw {
        "feed" => SummarySource::Feed,
        "generated" => SummarySource::Generated,
        _ => SummarySource::Staff,
    }
}

fn field(field: &'static str, cause: FieldCause) -> FieldProblem {
    FieldProblem { field, cause }
}

/// Control characters other than line breaks and tabs (PostgreSQL cannot
/// store NUL, and none belongs in an article).
fn has_stray_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn parse_title(raw: &str, problems: &mut Vec<FieldProblem>) -> Option<ArticleTitle> {
    ArticleTitle::parse(raw)
        .map_err(|e| {
            let id = match e {
                ArticleTitleError::Empty => "api-article-title-empty",
                ArticleTitleError::ControlCharacters => "api-article-control-characters",
                ArticleTitleError::TooLong(_) => "api-article-title-too-long",
            };
            problems.push(field("title", FieldCause::Message(id)));
        })
        .ok()
}

/// The summary with its white space made single spaces (empty when none
/// was given), or `None` when it cannot be used.
fn parse_summary(raw: &str, max: usize, problems: &mut Vec<FieldProblem>) -> Option<String> {
    let summary = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if has_stray_control(&summary) {
        problems.push(field("summary", FieldCause::Message("api-article-control-characters")));
        return None;
    }
    if summary.chars().count() > max {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        problems.push(field("summary", FieldCause::Count("api-article-summary-too-long", max)));
        return None;
    }
    Some(summary)
}

/// `Some(None)` for no author.
fn parse_author(raw: Option<&str>, problems: &mut Vec<FieldProblem>) -> Option<Option<String>> {
    let author = raw.map(str::trim).filter(|a| !a.is_empty());
    match author {
        Some(a) if a.chars().any(char::is_control) => {
            problems.push(field("author", FieldCause::Message("api-article-control-characters")));
            None
        }
        Some(a) if a.chars().count() > MAX_AUTHOR_CHARS => {
            problems.push(field("author", FieldCause::Message("api-article-author-too-long")));
            None
        }
        _ => Some(author.map(str::to_owned)),
    }
}

fn parse_date(raw: &str, problems: &mut Vec<FieldProblem>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| problems.push(field("published_at", FieldCause::Message("api-article-date-invalid"))))
        .ok()
}

/// `Some(None)` for an unknown language (`null`).
fn parse_language(tag: Option<&str>, problems: &mut Vec<FieldProblem>) -> Option<Option<Language>> {
    match tag {
        None => Some(None),
        Some(tag) => match Language::parse(tag) {
            Some(language) => Some(Some(language)),
            None => {
                problems.push(field("language", FieldCause::Message("api-language-unknown")));
                None
            }
        },
    }
}
