//! Schema versions: which migrations this binary knows, which the database
//! has, and whether the two can work together.
//!
//! Migrations follow expand/contract (README, "Upgrading"): most only add
//! (tables, nullable or defaulted columns, indexes), so a binary of the
//! previous release keeps working against the new schema and a rolling
//! upgrade can run old and new processes side by side. A migration that
//! removes or renames what older binaries use is a *contract* migration,
//! marked in its leading comment lines:
//!
//! ```sql
//! -- contract
//! -- contract: requires 0012
//! ```
//!
//! The first form means a binary must know this very migration to run
//! against a database that has it; the second names the oldest migration a
//! binary must know (the first release that stopped using what this one
//! removes). Before applying a contract migration, `gazette migrate`
//! records its requirement in [`CONTRACTS_TABLE`], so that an older binary,
//! which cannot read the migration it does not have, still learns it.
//!
//! A binary then judges a database as:
//! - current: every migration it knows is applied, nothing else;
//! - behind: some it knows are not applied (it refuses, unless it is the
//!   one applying them: `gazette migrate`, or `serve` with
//!   `database.migrate_on_start`);
//! - ahead but compatible: the database has migrations this binary does not
//!   know, none of whose recorded requirements is above the binary's
//!   latest migration (it runs, with a warning);
//! - ahead and incompatible: a recorded requirement is above it (refused);
//! - changed: an applied migration's checksum differs from the binary's
//!   file, or one failed midway (refused: someone must look).

use std::collections::BTreeMap;

use sqlx::migrate::{MigrateError, Migrator};

use super::Db;
use crate::with_pool;

/// Where `gazette migrate` records the requirement of each contract
/// migration before applying it. Only rows whose migration was applied
/// successfully count, so a contract migration that failed refuses no one.
pub const CONTRACTS_TABLE: &str = "_gazette_contract_migrations";

/// The migrations compiled into this binary, for each backend.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A migration this binary carries.
#[derive(Debug, Clone)]
pub struct KnownMigration {
    pub version: i64,
    pub description: String,
    pub checksum: Vec<u8>,
    /// For a contract migration, the oldest migration a binary must know to
    /// run against a database that has this one.
    pub contract: Option<i64>,
}

/// A row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub installed_on: String,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// What the database holds, next to what this binary knows.
#[derive(Debug, Clone)]
pub struct SchemaStatus {
    pub known: Vec<KnownMigration>,
    pub applied: Vec<AppliedMigration>,
    /// The highest requirement recorded by the contract migrations applied
    /// (see [`CONTRACTS_TABLE`]); `None` when there is none.
    pub required: Option<i64>,
}

/// How this binary and the database's schema stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    Current,
    /// The database has these migrations this binary does not know; none
    /// of them removes what it uses.
    AheadCompatible {
        unknown: Vec<i64>,
    },
}

/// Why this binary refuses the database's schema. A restart cannot fix any
/// of these: the operator must run `gazette migrate`, or deploy the binary
/// that matches the database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error(
        "the database has no Gazette schema yet (no migrations applied): run `gazette migrate` first (or check that database.url names the right database)"
    )]
    Empty,
    #[error(
        "the database schema is behind this binary: {} pending ({}); run `gazette migrate`",
        plural(pending.len(), "migration"),
        versions(pending)
    )]
    Behind { pending: Vec<i64> },
    #[error(
        "the database schema is ahead of this binary and no longer works with it: migration {} requires a binary that knows migration {required:04} or later, and this one knows up to {latest:04}; run a newer gazette",
        versions(unknown)
    )]
    Incompatible {
        unknown: Vec<i64>,
        required: i64,
        latest: i64,
    },
    #[error(
        "migration {} differs from the one applied to the database (checksum mismatch): the migration files were edited after they were applied; restore them, or see `gazette migrate --status`",
        versions(changed)
    )]
    Changed { changed: Vec<i64> },
    #[error(
        "migration {version:04} failed partway on this database; repair it by hand (see `gazette migrate --status`) before running Gazette"
    )]
    Failed { version: i64 },
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn versions(list: &[i64]) -> String {
    list.iter().map(|v| format!("{v:04}")).collect::<Vec<_>>().join(", ")
}

/// What could go wrong reading or applying the schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaAccessError {
    #[error(transparent)]
    Refused(#[from] SchemaError),
    #[error("cannot read the schema version: {0}")]
    Read(#[from] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] MigrateError),
}

/// The contract marker of a migration's SQL: `-- contract` (requires its
/// own version) or `-- contract: requires NNNN`, among its leading comment
/// lines. `Err` names what is wrong with a malformed marker.
pub fn contract_marker(version: i64, sql: &str) -> Result<Option<i64>, String> {
    for line in sql.lines().map(str::trim).take_while(|l| l.starts_with("--")) {
        let Some(rest) = line.trim_start_matches('-').trim().strip_prefix("contract") else {
            continue;
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(Some(version));
        }
        // "-- contracts are …" is prose, not a marker.
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let required = Some(rest.trim())
            .and_then(|r| r.strip_prefix("requires"))
            .map(str::trim)
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| format!("`{line}`: write `-- contract` or `-- contract: requires NNNN`"))?;
        if required > version || required < 1 {
            return Err(format!(
                "`{line}`: a migration can require at most its own version ({version:04})"
            ));
        }
        return Ok(Some(required));
    }
    Ok(None)
}

/// The migrations compiled in for `backend` (`"sqlite"` or `"postgres"`).
pub fn known_migrations(backend: &str) -> Vec<KnownMigration> {
    let migrator = if backend == "sqlite" {
        &SQLITE_MIGRATIONS
    } else {
        &POSTGRES_MIGRATIONS
    };
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| KnownMigration {
            version: m.version,
            description: m.description.to_string(),
            checksum: m.checksum.to_vec(),
            // A malformed marker fails the unit test below; at run time it
            // counts as the strictest reading.
            contract: contract_marker(m.version, m.sql.as_str()).unwrap_or(Some(m.version)),
        })
        .collect()
}

impl SchemaStatus {
    /// Reads the applied migrations and the recorded requirements; writes
    /// nothing (a database with no tables reads as no migration applied).
    pub async fn read(db: &Db) -> Result<Self, sqlx::Error> {
        let known = known_migrations(db.backend());
        let applied = if table_exists(db, "_sqlx_migrations").await? {
            let sql = db.pick(&[
                "SELECT version, description, CAST(installed_on AS TEXT), success, checksum \
                 FROM _sqlx_migrations ORDER BY version",
                "SELECT version, description, to_char(installed_on AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
                 success, checksum FROM _sqlx_migrations ORDER BY version",
            ]);
            let rows: Vec<(i64, String, String, bool, Vec<u8>)> =
                with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
            rows.into_iter()
                .map(
                    |(version, description, installed_on, success, checksum)| AppliedMigration {
                        version,
                        description,
                        installed_on,
                        success,
                        checksum,
                    },
                )
                .collect()
        } else {
            Vec::new()
        };
        let required = if table_exists(db, CONTRACTS_TABLE).await? {
            let sql = "SELECT MAX(c.requires) FROM _gazette_contract_migrations c \
                       JOIN _sqlx_migrations m ON m.version = c.version AND m.success";
            with_pool!(db, pool => sqlx::query_scalar::<_, Option<i64>>(sql).fetch_one(pool).await?)
        } else {
            None
        };
        Ok(Self {
            known,
            applied,
            required,
        })
    }

    /// The newest migration this binary knows (0 for none).
    pub fn latest_known(&self) -> i64 {
        self.known.iter().map(|m| m.version).max().unwrap_or(0)
    }

    fn applied_map(&self) -> BTreeMap<i64, &AppliedMigration> {
        self.applied.iter().map(|m| (m.version, m)).collect()
    }

    /// Known migrations the database has not applied yet.
    pub fn pending(&self) -> Vec<i64> {
        let applied = self.applied_map();
        self.known
            .iter()
            .filter(|m| !applied.contains_key(&m.version))
            .map(|m| m.version)
            .collect()
    }

    /// Applied migrations this binary does not know (a newer release's).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied
            .iter()
            .filter(|a| !self.known.iter().any(|k| k.version == a.version))
            .map(|a| a.version)
            .collect()
    }

    /// Applied migrations whose file in this binary differs from what was applied.
    pub fn changed(&self) -> Vec<i64> {
        let applied = self.applied_map();
        self.known
            .iter()
            .filter(|k| applied.get(&k.version).is_some_and(|a| a.checksum != k.checksum))
            .map(|k| k.version)
            .collect()
    }

    /// Whether this binary may run against the database as it is, leaving
    /// pending migrations aside (the caller decides whether they are an
    /// error or work to do).
    fn compatibility_ignoring_pending(&self) -> Result<Compatibility, SchemaError> {
        if let Some(failed) = self.applied.iter().find(|a| !a.success) {
            return Err(SchemaError::Failed {
                version: failed.version,
            });
        }
        let changed = self.changed();
        if !changed.is_empty() {
            return Err(SchemaError::Changed { changed });
        }
        let unknown = self.unknown();
        if unknown.is_empty() {
            return Ok(Compatibility::Current);
        }
        let latest = self.latest_known();
        match self.required {
            Some(required) if required > latest => Err(SchemaError::Incompatible {
                unknown,
                required,
                latest,
            }),
            _ => Ok(Compatibility::AheadCompatible { unknown }),
        }
    }

    /// Whether this binary may run against the database without migrating.
    pub fn check(&self) -> Result<Compatibility, SchemaError> {
        let compatibility = self.compatibility_ignoring_pending()?;
        if self.applied.is_empty() {
            return Err(SchemaError::Empty);
        }
        let pending = self.pending();
        if !pending.is_empty() {
            return Err(SchemaError::Behind { pending });
        }
        Ok(compatibility)
    }
}

/// `gazette migrate --status`: one line per migration, applied (with when)
/// or pending, flagging those this binary does not know, whose file changed
/// since, or that failed; then the verdict.
pub fn status_lines(status: &SchemaStatus) -> Vec<String> {
    let applied = status.applied_map();
    let changed = status.changed();
    let mut rows: BTreeMap<i64, String> = BTreeMap::new();
    for m in &status.known {
        let contract = match m.contract {
            Some(required) => format!(" [contract: requires {required:04}]"),
            None => String::new(),
        };
        let state = match applied.get(&m.version) {
            Some(a) if !a.success => format!("FAILED  {}", a.installed_on),
            Some(a) if changed.contains(&m.version) => {
                format!(
                    "applied {}  CHANGED: this binary's file differs from what was applied",
                    a.installed_on
                )
            }
            Some(a) => format!("applied {}", a.installed_on),
            None => format!("pending {:19}", ""),
        };
        rows.insert(
            m.version,
            format!("{:04}  {state}  {}{contract}", m.version, m.description),
        );
    }
    for a in status.applied.iter().filter(|a| !applied_known(status, a.version)) {
        rows.insert(
            a.version,
            format!(
                "{:04}  applied {}  NOT KNOWN to this binary (a newer release's)  {}",
                a.version, a.installed_on, a.description
            ),
        );
    }
    let mut lines = vec![format!(
        "this binary knows migrations up to {:04}; the database has {} applied",
        status.latest_known(),
        status.applied.len()
    )];
    lines.extend(rows.into_values().map(|row| format!("  {row}")));
    if let Some(required) = status.required {
        lines.push(format!(
            "contract migrations applied require a binary that knows {required:04} or later"
        ));
    }
    lines.push(match status.check() {
        Ok(Compatibility::Current) => "status: up to date".to_owned(),
        Ok(Compatibility::AheadCompatible { unknown }) => format!(
            "status: ahead of this binary ({}), and compatible with it",
            versions(&unknown)
        ),
        Err(e) => format!("status: {e}"),
    });
    lines
}

fn applied_known(status: &SchemaStatus, version: i64) -> bool {
    status.known.iter().any(|k| k.version == version)
}

async fn table_exists(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    let sql = db.pick(&[
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
    ]);
    let count: i64 = with_pool!(db, pool => sqlx::query_scalar(sql).bind(name).fetch_one(pool).await?);
    Ok(count > 0)
}

fn log(compatibility: &Compatibility, latest: i64) {
    if let Compatibility::AheadCompatible { unknown } = compatibility {
        tracing::warn!(
            "the database has migrations this binary does not know ({}); none removes what it uses, so it runs, but it is older than the schema: upgrade it (this binary knows up to {latest:04})",
            versions(unknown)
        );
    }
}

/// Checks that this binary may run against the database: refuses one that
/// is behind, incompatibly ahead, or changed; warns about one that is
/// compatibly ahead.
pub async fn check(db: &Db) -> Result<Compatibility, SchemaAccessError> {
    let status = SchemaStatus::read(db).await?;
    let compatibility = status.check()?;
    log(&compatibility, status.latest_known());
    Ok(compatibility)
}

/// Applies the pending migrations this binary knows, first recording the
/// requirement of each contract migration among them. A database that is
/// compatibly ahead is left as it is (the newer binary applied what it
/// needs); one that is incompatibly ahead or changed is refused untouched.
pub async fn apply(db: &Db) -> Result<Compatibility, SchemaAccessError> {
    let status = SchemaStatus::read(db).await?;
    let compatibility = status.compatibility_ignoring_pending()?;
    let pending = status.pending();
    if !pending.is_empty() {
        let contracts: Vec<(i64, i64)> = status
            .known
            .iter()
            .filter(|m| pending.contains(&m.version))
            .filter_map(|m| m.contract.map(|required| (m.version, required)))
            .collect();
        record_contracts(db, &contracts).await?;
        // Applied migrations this binary does not know are a newer
        // release's; sqlx would refuse them all ("missing"), so they are
        // allowed here once the check above found them compatible.
        let migrator = |source: &Migrator| {
            let mut migrator = Migrator::with_migrations(source.iter().cloned().collect());
            migrator.set_ignore_missing(true);
            migrator
        };
        match db {
            Db::Sqlite(pool) => migrator(&SQLITE_MIGRATIONS).run(pool).await?,
            Db::Postgres(pool) => migrator(&POSTGRES_MIGRATIONS).run(pool).await?,
        }
        tracing::info!(
            applied = %versions(&pending),
            "schema migrated to {:04}",
            status.latest_known()
        );
    }
    log(&compatibility, status.latest_known());
    Ok(compatibility)
}

async fn record_contracts(db: &Db, contracts: &[(i64, i64)]) -> Result<(), sqlx::Error> {
    if contracts.is_empty() {
        return Ok(());
    }
    let create = "CREATE TABLE IF NOT EXISTS _gazette_contract_migrations \
                  (version BIGINT PRIMARY KEY NOT NULL, requires BIGINT NOT NULL)";
    with_pool!(db, pool => sqlx::query(create).execute(pool).await.map(|_| ())?);
    for (version, requires) in contracts {
        let upsert = "INSERT INTO _gazette_contract_migrations (version, requires) VALUES ($1, $2) \
                      ON CONFLICT (version) DO UPDATE SET requires = excluded.requires";
        with_pool!(db, pool => sqlx::query(upsert).bind(version).bind(requires).execute(pool).await.map(|_| ())?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(version: i64, contract: Option<i64>) -> KnownMigration {
        KnownMigration {
            version,
            description: format!("m{version}"),
            checksum: vec![version as u8],
            contract,
        }
    }

    fn applied(version: i64) -> AppliedMigration {
        AppliedMigration {
            version,
            description: format!("m{version}"),
            installed_on: "2026-01-01 00:00:00".into(),
            success: true,
            checksum: vec![version as u8],
        }
    }

    fn status(known_up_to: i64, applied_up_to: i64, required: Option<i64>) -> SchemaStatus {
        SchemaStatus {
            known: (1..=known_up_to).map(|v| known(v, None)).collect(),
            applied: (1..=applied_up_to).map(applied).collect(),
            required,
        }
    }

    #[test]
    fn every_migration_shipped_has_a_well_formed_marker_or_none() {
        for migrator in [&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS] {
            for m in migrator.iter() {
                if let Err(e) = contract_marker(m.version, m.sql.as_str()) {
                    panic!("migration {:04} {}: {e}", m.version, m.description);
                }
            }
        }
    }

    #[test]
    fn the_marker_is_read_from_the_leading_comments_only() {
        assert_eq!(
            contract_marker(12, "-- contract\nALTER TABLE x DROP COLUMN y;"),
            Ok(Some(12))
        );
        assert_eq!(
            contract_marker(12, "-- no-transaction\n-- contract: requires 0011\nDROP INDEX i;"),
            Ok(Some(11))
        );
        assert_eq!(
            contract_marker(12, "-- adds a column\nALTER TABLE x ADD COLUMN y TEXT;\n-- contract"),
            Ok(None)
        );
        assert!(contract_marker(12, "-- contract: requires 13\n").is_err());
        assert!(contract_marker(12, "-- contract: after 11\n").is_err());
        assert_eq!(
            contract_marker(12, "-- contracts are explained in the README\n"),
            Ok(None)
        );
    }

    #[test]
    fn a_database_is_judged_behind_current_or_ahead() {
        assert_eq!(status(10, 0, None).check(), Err(SchemaError::Empty));
        assert_eq!(
            status(12, 10, None).check(),
            Err(SchemaError::Behind { pending: vec![11, 12] })
        );
        assert_eq!(status(10, 10, None).check(), Ok(Compatibility::Current));
        assert_eq!(
            status(10, 12, None).check(),
            Ok(Compatibility::AheadCompatible { unknown: vec![11, 12] })
        );
        // A contract migration a binary at 0010 still satisfies.
        assert_eq!(
            status(10, 12, Some(10)).check(),
            Ok(Compatibility::AheadCompatible { unknown: vec![11, 12] })
        );
        assert_eq!(
            status(10, 12, Some(12)).check(),
            Err(SchemaError::Incompatible {
                unknown: vec![11, 12],
                required: 12,
                latest: 10
            })
        );
    }

    #[test]
    fn an_edited_or_failed_migration_is_refused() {
        let mut edited = status(10, 10, None);
        edited.applied[2].checksum = vec![0xff];
        assert_eq!(edited.check(), Err(SchemaError::Changed { changed: vec![3] }));
        let mut failed = status(10, 10, None);
        failed.applied[9].success = false;
        assert_eq!(failed.check(), Err(SchemaError::Failed { version: 10 }));
    }
}
