//! The weekly digest up to the point where it is queued: articles brought
//! in from feeds and plain text (`fetch`, `import`, `import_job`,
//! `html_text`), also from the feed sources Gazette polls itself (`poll`),
//! and their summaries (`summary`), the week's issue rendered once from
//! them (`render`, into a [`crate::domain::RenderedIssue`]), and
//! `dispatch`, which stores that issue and queues one delivery per
//! confirmed reader. Sending the copies is the `delivery` worker's job.

pub mod dispatch;
pub mod feed;
pub mod fetch;
pub mod html_text;
pub mod import;
pub mod import_job;
pub mod poll;
pub mod render;
pub mod summary;
