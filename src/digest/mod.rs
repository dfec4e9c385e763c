//! The weekly digest. So far: articles from feeds and plain text, and their
//! summaries (issues, rendering and dispatch arrive with the digest issue).

pub mod dispatch;
pub mod import;
pub mod render;
pub mod snapshot;
pub mod summary;
pub mod week;
