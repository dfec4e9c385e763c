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

/// Something an import did to an entry that staff should know about,
/// though the entry was imported: a date it could not read (the entry got
/// the import time), a body cut to size, bytes that were not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Which entry (as in [`Rejection::entry`]), or the feed as a whole.
    pub entry: String,
    pub message: String,
}

/// What an import did, for the summary line.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    /// Already there and the same.
    pub unchanged: usize,
    /// Already there and edited by staff: left as staff made it.
    pub kept_staff_edit: usize,
    /// New articles that had no usable date and were given the import
    /// time (each also has a warning naming it).
    pub dated_at_import: usize,
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<Warning>,
}

impl ImportReport {
    /// Adds what a later part of the same import did.
    pub fn absorb(&mut self, part: ImportReport) {
        self.added += part.added;
        self.updated += part.updated;
        self.unchanged += part.unchanged;
        self.kept_staff_edit += part.kept_staff_edit;
        self.dated_at_import += part.dated_at_import;
        self.rejected.extend(part.rejected);
        self.warnings.extend(part.warnings);
    }
}
