//! `GET /test-send`: where a staff test copy's unsubscribe and preferences
//! links lead (`mail::Composer::digest_test`). A test copy goes to staff,
//! not to a reader, so those links cannot be anyone's own; a token that
//! matched nobody would open a page calling the link broken, and one that
//! looked like a reader's would be a step from changing someone. This
//! address belongs to no one and asks for nothing: the page says the copy
//! was a test and that readers' copies carry their own links, and changes
//! nothing. (The copy's web-version link is the week's archive page, which
//! says the same while the week's issue has not gone out:
//! `web::archive::issue`.)

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::web::AppState;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, Chrome, MessagePage};

pub async fn explanation(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &MessagePage {
            chrome: Chrome::of(&state.site, lang, &req),
            title: &lang.text("test-send-title"),
            message: &lang.text("test-send"),
            offer_signup: false,
        },
    )
}
