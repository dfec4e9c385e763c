//! The weekly digest. So far: articles from feeds and plain text, and their
//! summaries (issues, rendering and dispatch arrive with the digest issue).

pub mod import;
pub mod summary;
