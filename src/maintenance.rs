//! Keeping the data: `gazette backup` and `gazette restore` (SQLite; on
//! PostgreSQL the README's pg_dump and pg_restore do it), and retention:
//! `gazette prune` and its daily run in `gazette serve`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::watch;

use crate::config::{DatabaseSettings, MailSettings, RetentionSettings, Settings};
use crate::db::{Db, retention};

/// The migrations this binary knows, to recognise a Gazette database and
/// its schema version in a backup.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Where the README tells how to back up and restore PostgreSQL.
const POSTGRES_BACKUPS: &str = "the database is PostgreSQL: back it up with pg_dump and restore it with \
     pg_restore, as the README's \"Backups\" section shows (pg_dump -Fc …)";

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("{POSTGRES_BACKUPS}; nothing was done")]
    Postgres,
    #[error("{0} exists already; a backup never overwrites a file: choose a new name")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a Gazette SQLite database: {reason}; nothing was changed")]
    NotGazette { path: PathBuf, reason: String },
    #[error(
        "the database {path} is open in process {pid} (a running `gazette serve` or `gazette worker`?): \
         stop the service first; nothing was changed"
    )]
    InUse { path: PathBuf, pid: i32 },
    #[error("database.url `{0}` does not name a SQLite file")]
    BadUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> MaintenanceError + '_ {
    move |source| MaintenanceError::File {
        path: path.to_owned(),
        source,
    }
}

/// What a database file holds, as the backup and restore reports say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The newest migration applied.
    pub schema_version: i64,
    pub readers: i64,
    pub confirmed: i64,
    pub issues: i64,
    pub staff: i64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "schema version {}, {} readers ({} confirmed), {} issues, {} staff users",
            self.schema_version, self.readers, self.confirmed, self.issues, self.staff
        )
    }
}

/// The newest schema version this binary knows.
pub fn latest_schema_version() -> i64 {
    SQLITE_MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// A backup written by [`backup`].
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    pub contents: Contents,
}

/// Writes a consistent copy of the live SQLite database to `target` with
/// `VACUUM INTO`: one read transaction, so the copy is the database as of
/// one moment while the service goes on writing (a plain copy of the file
/// misses what is still in the write-ahead log). `target` must not exist;
/// it is claimed with an exclusive create, so two backups never write one
/// file. The copy is checked (`PRAGMA integrity_check`) and synced to disk.
pub async fn backup(db: &Db, target: &Path) -> Result<Backup, MaintenanceError> {
    let Db::Sqlite(pool) = db else {
        return Err(MaintenanceError::Postgres);
    };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).open(target) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(MaintenanceError::Exists(target.to_owned()));
        }
        Err(e) => return Err(file_error(target)(e)),
    }
    let written = async {
        let name = target.to_str().ok_or_else(|| MaintenanceError::File {
            path: target.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the name is not UTF-8"),
        })?;
        // The empty file claimed above is one VACUUM INTO may write.
        sqlx::query("VACUUM INTO $1").bind(name).execute(pool).await?;
        std::fs::File::open(target)
            .and_then(|f| f.sync_all())
            .map_err(file_error(target))?;
        // The new name too, so a crash just after leaves the backup found.
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(file_error(dir))?;
        }
        let contents = check(target).await?;
        let bytes = std::fs::metadata(target).map_err(file_error(target))?.len();
        Ok(Backup {
            path: target.to_owned(),
            bytes,
            contents,
        })
    }
    .await;
    if written.is_err() {
        // Leave no half-written file that looks like a backup.
        let _ = std::fs::remove_file(target);
    }
    written
}

/// Opens `path` read-only and unchanging (no journal is created or read
/// beside it) and checks that it is a sound Gazette database: SQLite's
/// integrity check passes and every migration it records is one of this
/// binary's, with the same checksum.
pub async fn check(path: &Path) -> Result<Contents, MaintenanceError> {
    let not_gazette = |reason: String| MaintenanceError::NotGazette {
        path: path.to_owned(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(file_error(path))?;
    if !metadata.is_file() {
        return Err(not_gazette("it is not a file".into()));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| not_gazette(e.to_string()))?;
    let checked = check_open(&mut conn).await;
    let _ = conn.close().await;
    checked.map_err(not_gazette)
}

/// Why an open database is not a sound Gazette database, or what it holds.
async fn check_open(conn: &mut SqliteConnection) -> Result<Contents, String> {
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    if problems != ["ok"] {
        return Err(format!("SQLite's integrity check found: {}", problems.join("; ")));
    }
    let has_migrations: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    if has_migrations.is_none() {
        return Err("it has no migration history".into());
    }
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    for (version, checksum) in &applied {
        match SQLITE_MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(format!(
                    "it records migration {version}, which this Gazette does not know (its newest is {}): \
                     it comes from a newer release",
                    latest_schema_version()
                ));
            }
            Some(known) if known.checksum.as_ref() != checksum.as_slice() => {
                return Err(format!("its migration {version} differs from this Gazette's"));
            }
            Some(_) => {}
        }
    }
    let Some(&(schema_version, _)) = applied.last() else {
        return Err("no migration was applied to it".into());
    };
    let mut counts = [0_i64; 4];
    for (count, sql) in counts.iter_mut().zip([
        "SELECT COUNT(*) FROM subscribers",
        "SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'",
        "SELECT COUNT(*) FROM issues",
        "SELECT COUNT(*) FROM staff_users",
    ]) {
        *count = sqlx::query_scalar(sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let [readers, confirmed, issues, staff] = counts;
    Ok(Contents {
        schema_version,
        readers,
        confirmed,
        issues,
        staff,
    })
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub database: PathBuf,
    pub contents: Contents,
    /// The database that was replaced, kept under this name.
    pub replaced: Option<PathBuf>,
}

/// Puts the backup `source` in place of the SQLite database the settings
/// name. Checked first ([`check`]); refused while any process has the
/// database open; the backup is copied beside the database and renamed
/// over it, so the database is at every moment the old one or the new one.
/// The old one is kept (a hard link, with its write-ahead log) under a
/// name with the time, and the shared-memory index is removed so the
/// next process starts clean.
pub async fn restore(database: &DatabaseSettings, source: &Path) -> Result<Restored, MaintenanceError> {
    let target = sqlite_path(database)?;
    let wal = source.with_file_name(format!("{}-wal", file_name(source)));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(MaintenanceError::NotGazette {
            path: source.to_owned(),
            reason: format!(
                "{} lies beside it: it is a live database or a copy of one, not a backup made by `gazette backup`",
                wal.display()
            ),
        });
    }
    let contents = check(source).await?;
    if let Some(pid) = holder(&target)? {
        return Err(MaintenanceError::InUse { path: target, pid });
    }
    let dir = match target.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_owned(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(file_error(&dir))?;
    let temporary = dir.join(format!(".{}.restoring-{}", file_name(&target), std::process::id()));
    let copied = copy_for(source, &temporary, &target);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    let replaced = if target.exists() {
        let aside = dir.join(format!(
            "{}.replaced-{}",
            file_name(&target),
            Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::hard_link(&target, &aside).map_err(file_error(&aside))?;
        // The old database's last writes may still be in its log: it goes
        // with the copy kept aside, never onto the restored file.
        for suffix in ["-wal", "-journal"] {
            let log = with_suffix(&target, suffix);
            if log.exists() {
                let kept = with_suffix(&aside, suffix);
                std::fs::rename(&log, &kept).map_err(file_error(&log))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    let index = with_suffix(&target, "-shm");
    match std::fs::remove_file(&index) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(&index)(e)),
    }
    std::fs::rename(&temporary, &target).map_err(file_error(&target))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(file_error(&dir))?;
    Ok(Restored {
        database: target,
        contents,
        replaced,
    })
}

/// Copies `source` to `temporary` (synced), with the owner and mode of
/// the database it will replace, so the service can still write it when
/// root restores.
fn copy_for(source: &Path, temporary: &Path, target: &Path) -> Result<(), MaintenanceError> {
    let mut from = std::fs::File::open(source).map_err(file_error(source))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temporary)
        .map_err(file_error(temporary))?;
    std::io::copy(&mut from, &mut to).map_err(file_error(temporary))?;
    to.flush().map_err(file_error(temporary))?;
    to.sync_all().map_err(file_error(temporary))?;
    #[cfg(unix)]
    if let Ok(old) = std::fs::metadata(target) {
        use std::os::unix::fs::MetadataExt;
        std::fs::set_permissions(temporary, old.permissions()).map_err(file_error(temporary))?;
        // Only root may give a file away; anyone else restores as the
        // owner already.
        let _ = std::os::unix::fs::chown(temporary, Some(old.uid()), Some(old.gid()));
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The SQLite file `database.url` names.
pub fn sqlite_path(database: &DatabaseSettings) -> Result<PathBuf, MaintenanceError> {
    if !database.url.starts_with("sqlite:") {
        return Err(MaintenanceError::Postgres);
    }
    let options = SqliteConnectOptions::from_str(&database.url)
        .map_err(|_| MaintenanceError::BadUrl(crate::config::redact(&database.url)))?;
    let path = options.get_filename().to_owned();
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(MaintenanceError::BadUrl(crate::config::redact(&database.url)));
    }
    Ok(path)
}

/// The process that has the SQLite database at `path` open, if any.
///
/// Every connection to a database in WAL mode holds a shared lock on one
/// byte of its `-shm` file (SQLite's "DMS" byte, offset 128) for as long as
/// it is open, and the last one to close deletes the file. So a write lock
/// on that byte that would conflict names a process using the database;
/// asking (F_GETLK) takes no lock and disturbs no one.
#[cfg(unix)]
fn holder(database: &Path) -> Result<Option<i32>, MaintenanceError> {
    use std::os::fd::AsRawFd;
    let index = with_suffix(database, "-shm");
    let file = match std::fs::File::open(&index) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(&index)(e)),
    };
    const DMS_BYTE: libc::off_t = 128;
    // SAFETY: flock is plain data; all-zero is a valid value to fill in.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = DMS_BYTE;
    lock.l_len = 1;
    // SAFETY: the descriptor is open for the call, and `lock` outlives it.
    let done = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    if done == -1 {
        return Err(file_error(&index)(std::io::Error::last_os_error()));
    }
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

#[cfg(not(unix))]
fn holder(_database: &Path) -> Result<Option<i32>, MaintenanceError> {
    Ok(None)
}

/// How many of each kind a prune removed, or would remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub delivery_rows: u64,
    pub delivery_issues: u64,
    pub mail_addresses: u64,
    pub unconfirmed_readers: u64,
    pub outbox_files: u64,
    pub deleted_articles: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The instants before which each kind goes; `None`: kept forever.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    deliveries: Option<DateTime<Utc>>,
    mail: Option<DateTime<Utc>>,
    readers: Option<DateTime<Utc>>,
    outbox: Option<DateTime<Utc>>,
    deleted_articles: Option<DateTime<Utc>>,
}

impl Cutoffs {
    fn of(retention: &RetentionSettings, now: DateTime<Utc>) -> Self {
        let days = |n: u32| (n > 0).then(|| now - chrono::Duration::days(i64::from(n)));
        Self {
            deliveries: (retention.delivery_months > 0)
                .then(|| now.checked_sub_months(Months::new(retention.delivery_months)))
                .flatten(),
            mail: days(retention.mail_address_days),
            readers: days(retention.unconfirmed_reader_days),
            outbox: days(retention.outbox_days),
            deleted_articles: days(retention.deleted_article_days),
        }
    }
}

/// Counts what the retention settings would remove as of `now`, changing
/// nothing.
pub async fn prune_preview(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Pruned, MaintenanceError> {
    let cutoffs = Cutoffs::of(&settings.retention, now);
    let mut pruned = Pruned::default();
    if let Some(before) = cutoffs.deliveries {
        (pruned.delivery_issues, pruned.delivery_rows) = retention::count_deliveries(db, before).await?;
    }
    if let Some(before) = cutoffs.mail {
        pruned.mail_addresses = retention::count_mail_addresses(db, before).await?;
    }
    if let Some(before) = cutoffs.readers {
        pruned.unconfirmed_readers = retention::count_unconfirmed_readers(db, before, now).await?;
    }
    if let Some(before) = cutoffs.outbox {
        pruned.outbox_files = old_outbox_files(&settings.mail, before).len() as u64;
    }
    if let Some(before) = cutoffs.deleted_articles {
        pruned.deleted_articles = retention::count_deleted_articles(db, before).await?;
    }
    Ok(pruned)
}

/// Removes what the retention settings say is no longer needed as of
/// `now`. Stops between issues once `stop` turns true (a shutdown).
pub async fn prune(
    db: &Db,
    settings: &Settings,
    now: DateTime<Utc>,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<Pruned, MaintenanceError> {
    let stopping = || stop.is_some_and(|s| *s.borrow());
    let cutoffs = Cutoffs::of(&settings.retention, now);
    let mut pruned = Pruned::default();
    if let Some(before) = cutoffs.deliveries {
        for issue in retention::prunable_issues(db, before).await? {
            if stopping() {
                return Ok(pruned);
            }
            let removed = retention::summarise_issue(db, issue, now).await?;
            if removed > 0 {
                pruned.delivery_issues += 1;
                pruned.delivery_rows += removed;
            }
        }
        if pruned.delivery_rows > 0 {
            db.refresh_statistics(crate::db::Table::Deliveries).await;
        }
    }
    if let Some(before) = cutoffs.mail {
        pruned.mail_addresses = retention::remove_mail_addresses(db, before).await?;
    }
    if let Some(before) = cutoffs.readers {
        pruned.unconfirmed_readers = retention::remove_unconfirmed_readers(db, before, now).await?;
    }
    if let Some(before) = cutoffs.outbox {
        for file in old_outbox_files(&settings.mail, before) {
            match std::fs::remove_file(&file) {
                Ok(()) => pruned.outbox_files += 1,
                // Another process pruned it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %file.display(), error = %e, "prune: cannot delete an outbox file"),
            }
        }
    }
    if let Some(before) = cutoffs.deleted_articles {
        pruned.deleted_articles = retention::remove_deleted_articles(db, before).await?;
    }
    Ok(pruned)
}

/// The `.eml` files directly in the outbox last changed before `before`.
/// An outbox that does not exist (SMTP only) has none.
fn old_outbox_files(mail: &MailSettings, before: DateTime<Utc>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(&mail.outbox_dir) else {
        return Vec::new();
    };
    let before = std::time::SystemTime::from(before);
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "eml"))
        .filter(|entry| {
            // The entry itself, never what a link points at.
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|at| at < before))
        })
        .map(|entry| entry.path())
        .collect()
}

/// The daily prune of `gazette serve`: once at start-up, then every 24
/// hours, until `stop` turns true. Failures are logged and tried again
/// the next day.
pub struct DailyPrune {
    db: Db,
    settings: Settings,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl DailyPrune {
    pub fn new(db: Db, settings: Settings) -> Self {
        Self { db, settings }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            match prune(&self.db, &self.settings, Utc::now(), Some(&stop)).await {
                Ok(pruned) if pruned.is_empty() => tracing::debug!("prune: nothing to remove"),
                Ok(pruned) => tracing::info!(
                    delivery_rows = pruned.delivery_rows,
                    delivery_issues = pruned.delivery_issues,
                    mail_addresses = pruned.mail_addresses,
                    unconfirmed_readers = pruned.unconfirmed_readers,
                    outbox_files = pruned.outbox_files,
                    deleted_articles = pruned.deleted_articles,
                    "prune: removed what the retention settings no longer keep"
                ),
                Err(e) => tracing::error!(error = %e, "prune: failed; trying again in a day"),
            }
            tokio::select! {
                _ = tokio::time::sleep(DAY) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(months: u32, days: u32) -> RetentionSettings {
        RetentionSettings {
            daily: true,
            delivery_months: months,
            mail_address_days: days,
            unconfirmed_reader_days: days,
            outbox_days: days,
            deleted_article_days: days,
        }
    }

    #[test]
    fn zero_keeps_a_kind_forever_and_months_are_calendar_months() {
        let now = DateTime::parse_from_rfc3339("2026-03-31T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let forever = Cutoffs::of(&retention(0, 0), now);
        assert!(forever.deliveries.is_none() && forever.mail.is_none());
        assert!(forever.readers.is_none() && forever.outbox.is_none());
        let cut = Cutoffs::of(&retention(1, 30), now);
        // 31 March less a month is the last day of February.
        assert_eq!(cut.deliveries.unwrap().to_rfc3339(), "2026-02-28T12:00:00+00:00");
        assert_eq!(cut.mail.unwrap().to_rfc3339(), "2026-03-01T12:00:00+00:00");
    }
}
