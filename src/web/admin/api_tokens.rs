//! `/admin/api-tokens`: the JSON API's tokens (`gazette api-tokens …` in
//! the staff area): each with its name, scope, when and by whom it was
//! made and when it was revoked; a form to make one (its secret is shown
//! once, on the page that follows, and never kept); "revoke" for each.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::field_errors::FieldErrors;
use super::session::{self, Staff, StaffForm};
use crate::db::api_tokens::{self, TokenRecord};
use crate::domain::{ApiScope, ApiToken, ApiTokenName};
use crate::links::paths;
use crate::web::error::PageError;
use crate::web::pages::private;

/// The scopes the form offers, `all` first (the CLI's default).
const SCOPES: [ApiScope; 4] = [
    ApiScope::All,
    ApiScope::Subscribers,
    ApiScope::Articles,
    ApiScope::Issues,
];

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub scope: &'static str,
    pub created: String,
    pub created_by: String,
    /// Empty while it is live.
    pub revoked: String,
}

impl From<TokenRecord> for Row {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            scope: t.scope.as_str(),
            created: when(t.created_at),
            created_by: t.created_by,
            revoked: t.revoked_at.map(when).unwrap_or_default(),
        }
    }
}

pub struct ScopeOption {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "web/admin/api_tokens.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    name: String,
    scopes: Vec<ScopeOption>,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "web/admin/api_token_made.html")]
struct MadePage {
    c: Chrome,
    name: String,
    scope: &'static str,
    token: String,
}

fn scopes(selected: Option<ApiScope>) -> Vec<ScopeOption> {
    SCOPES
        .into_iter()
        .map(|s| ScopeOption {
            value: s.as_str(),
            selected: Some(s) == selected,
        })
        .collect()
}

async fn list_page(
    state: &AdminState,
    session: &Session,
    staff: &Staff,
    status: StatusCode,
    name: String,
    scope: Option<ApiScope>,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let rows = api_tokens::list(&state.db).await?.into_iter().map(Row::from).collect();
    let c = Chrome::new(&state.site, session, Some(staff)).in_section(Section::ApiTokens);
    Ok(html(
        status,
        &ListPage {
            c,
            rows,
            name,
            scopes: scopes(scope.or(Some(ApiScope::All))),
            errors,
        },
    ))
}

pub async fn list(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    list_page(
        &state,
        &session,
        &staff,
        StatusCode::OK,
        String::new(),
        None,
        FieldErrors::default(),
    )
    .await
}

/// Makes a token and shows it, once: the page is never cached, and the
/// token cannot be shown again (only its hash is kept).
pub async fn create(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    let name = ApiTokenName::parse(fields.get("name")).map_err(|e| errors.add("name", format!("Name: {e}.")));
    let scope = ApiScope::parse(fields.get("scope"));
    if scope.is_none() {
        errors.add("scope", "Scope: choose one of the list.");
    }
    let (Ok(name), Some(scope)) = (name, scope) else {
        let given = fields.get("name").to_owned();
        return list_page(&state, &session, &staff, StatusCode::BAD_REQUEST, given, scope, errors).await;
    };
    let token = ApiToken::generate();
    let id = api_tokens::create(&state.db, &name, scope, &token, &staff.email, Utc::now()).await?;
    tracing::info!(staff = %staff.email, token = %id, scope = %scope, "API token made in the admin");
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::ApiTokens);
    Ok(private(html(
        StatusCode::OK,
        &MadePage {
            c,
            name: name.as_str().to_owned(),
            scope: scope.as_str(),
            token: token.as_str().to_owned(),
        },
    )))
}

pub async fn revoke(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let id = Uuid::parse_str(&path).map_err(|_| PageError::not_found("API token"))?;
    let message = match api_tokens::revoke(&state.db, id, Utc::now()).await? {
        true => {
            state.api_tokens.forget(id);
            tracing::info!(staff = %staff.email, token = %id, "API token revoked in the admin");
            "The token is revoked: requests with it get 401 from now on."
        }
        false => "That token was revoked already (or is gone); nothing changed.",
    };
    session::flash(&session, message);
    Ok(session::see_other(paths::ADMIN_API_TOKENS))
}
