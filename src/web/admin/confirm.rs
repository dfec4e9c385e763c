//! Confirmation pages (issue 17, part 4): a destructive action (deleting
//! articles, regenerating a summary, cancelling a send, erasing readers)
//! is first a page of its own, reached without JavaScript, that says what
//! will happen and holds the confirming form (CSRF token, the
//! [`CONFIRM_FIELD`] and the selection) with a way back. The action's
//! `POST` does nothing without the field, so a stray form or a replayed
//! request changes nothing.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use uuid::Uuid;

use super::chrome::{Chrome, html};
use crate::web::error::PageError;
use crate::web::form::{self, Fields};

/// The field only a confirmation page's form sends.
pub const CONFIRM_FIELD: &str = "confirm";

/// Whether the form came from a confirmation page (`yes`). `on` is what
/// the older erase form's ticked box sent; `true` and `1` are what a script
/// that means it would send.
pub fn confirmed(fields: &Fields) -> bool {
    matches!(fields.get(CONFIRM_FIELD), "yes" | "on" | "true" | "1")
}

/// The answer to an action's `POST` without the confirmation: nothing was
/// done, and the way to the page that confirms it.
pub fn unconfirmed(what: &str, confirm_page: &str) -> PageError {
    PageError::bad_request(
        format!("Nothing was {what}"),
        format!(
            "This needs confirming on its own page first, which says what will happen: open {confirm_page} \
             and use its button."
        ),
    )
}

/// A confirmation page: what the action is, what it will do, to what, and
/// the form that does it.
#[derive(Template)]
#[template(path = "web/admin/confirm.html")]
pub struct ConfirmPage {
    pub c: Chrome,
    /// The page's title and heading: a question ("Delete this article?").
    pub question: String,
    /// What will happen, one sentence each.
    pub consequences: Vec<String>,
    /// What it is done to (titles, addresses), when there is a list.
    pub items: Vec<String>,
    /// Texts to show in full before confirming (a summary now and as it
    /// would become), as (caption, text).
    pub texts: Vec<(String, String)>,
    /// Where the confirming form posts.
    pub action: String,
    /// Its hidden fields besides the CSRF token and the confirmation.
    pub hidden: Vec<(String, String)>,
    pub button: String,
    /// Whether the button is styled as a dangerous one.
    pub danger: bool,
    pub back: String,
    pub back_label: String,
}

impl ConfirmPage {
    pub fn respond(&self) -> HttpResponse {
        html(StatusCode::OK, self)
    }
}

/// The ids a bulk form or a confirmation page's address carries (`id`,
/// repeated), in order, without repeats; anything not an id is refused.
pub fn ids(fields: &Fields) -> Result<Vec<Uuid>, PageError> {
    let mut ids: Vec<Uuid> = Vec::new();
    for raw in fields.all("id") {
        let id = Uuid::parse_str(raw).map_err(|_| {
            PageError::bad_request(
                "That selection does not work",
                "One of the selected rows is not one this page knows. Go back and choose again.",
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The ids of a query string (`id=…&id=…`).
pub fn ids_in_query(query: &str) -> Result<Vec<Uuid>, PageError> {
    let fields = form::parse(query.as_bytes())?;
    ids(&fields)
}

/// `id=…&id=…` for an address.
pub fn ids_query(ids: &[Uuid]) -> String {
    ids.iter().map(|id| format!("id={id}")).collect::<Vec<_>>().join("&")
}

/// The most rows one bulk action takes (a page of a list).
pub const MAX_SELECTED: usize = 200;

/// Refuses an empty or overlong selection.
pub fn check_selection(ids: &[Uuid], back: &str) -> Result<(), PageError> {
    if ids.is_empty() {
        return Err(PageError::bad_request(
            "Nothing was selected",
            format!("Tick the box of each row first, then choose what to do with them. Back: {back}"),
        ));
    }
    if ids.len() > MAX_SELECTED {
        return Err(PageError::bad_request(
            "Too many rows selected",
            format!("At most {MAX_SELECTED} rows at a time, please."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_confirmation_field_confirms() {
        let fields = |body: &str| form::parse(body.as_bytes()).unwrap();
        assert!(confirmed(&fields("csrf=x&confirm=yes")));
        assert!(confirmed(&fields("confirm=on")));
        assert!(!confirmed(&fields("csrf=x")));
        assert!(!confirmed(&fields("confirm=no")));
        assert!(!confirmed(&fields("confirm=")));
        assert!(!confirmed(&fields("confirmed=yes")));
    }

    #[test]
    fn a_selection_is_ids_in_order_once_each() {
        let a = "0192f0c4-0000-7000-8000-000000000001";
        let b = "0192f0c4-0000-7000-8000-000000000002";
        let ids = ids_in_query(&format!("id={b}&id={a}&id={b}")).unwrap();
        assert_eq!(ids_query(&ids), format!("id={b}&id={a}"));
        assert!(ids_in_query("id=nope").is_err());
        assert!(check_selection(&[], "/admin/articles").is_err());
    }
}
