//! The frame around every staff page.

use actix_session::Session;

use super::session::{self, Staff};

pub use crate::web::pages::html;

/// The frame of an admin page: the site's name, the staff member (empty on
/// the login page), the CSRF token for the logout button, and a message
/// left by the previous action.
pub struct Chrome {
    pub site: String,
    pub staff: String,
    pub csrf: String,
    pub flash: Option<String>,
}

impl Chrome {
    pub fn new(site: &str, session: &Session, staff: Option<&Staff>) -> Self {
        Self {
            site: site.to_owned(),
            staff: staff.map(|s| s.email.clone()).unwrap_or_default(),
            csrf: session::csrf_token(session),
            flash: session::take_flash(session),
        }
    }
}
