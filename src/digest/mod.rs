//! The weekly digest. So far: articles from feeds and plain text, and their
//! summaries (issues, rendering and dispatch arrive with the digest issue).

pub mod dispatch;
pub mod fetch;
pub mod html_text;
pub mod import;
pub mod import_job;
pub mod render;
pub mod summary;
