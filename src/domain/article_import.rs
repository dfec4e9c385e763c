//! What an import of articles did: how many it added, updated or left as
//! they were, and the entries it turned away with the reason for each.
//! The digest's importer fills one in; the feed-import job stores it.

/// An entry that could not become an article, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which entry: its position in the feed and its title, if it had one.
    pub entry: String,
    pub reason: String,
}

/// What an import did, for the summary line.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub skipped: usize,
    pub rejected: Vec<Rejection>,
}

impl ImportReport {
    /// Adds what a later part of the same import did.
    pub fn absorb(&mut self, part: ImportReport) {
        self.added += part.added;
        self.updated += part.updated;
        self.skipped += part.skipped;
        self.rejected.extend(part.rejected);
    }
}
