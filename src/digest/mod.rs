//! The weekly digest. So far: the summaries of articles (the rest of the
//! digest, its issues and feed import, arrive with the digest issue).

pub mod summary;
