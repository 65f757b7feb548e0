//! The audit store: one row per assessment request, in SQLite (WAL journal).
//!
//! What a row holds: the time, the SHA-256 of the uploaded bytes, sex, chronological
//! age, the HTTP status, the outcome (assessed / refused / rejected), the assessment
//! JSON or the reason, the models' manifest hashes and the duration. Never the
//! patient's name or ID, never the file name, never pixels: DICOM identifiers stay
//! inside the request that carried them.
//!
//! Each row is one statement in autocommit mode, so a crash (even `kill -9`) loses at
//! most the request in flight; WAL keeps readers from blocking the writer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use boneage_core::io::DicomSource;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A failure of the audit store.
#[derive(Debug, thiserror::Error)]
#[error("audit store {path}: {source}")]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What SQLite said.
    #[source]
    pub source: rusqlite::Error,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A bone age was given.
    Assessed,
    /// The film was read, but the front end had no confidence in it (the reason is kept).
    Refused,
    /// The request was bad (not an image, unreadable, no sex …).
    Rejected,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Assessed => "assessed",
            Outcome::Refused => "refused",
            Outcome::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "assessed" => Outcome::Assessed,
            "refused" => Outcome::Refused,
            _ => Outcome::Rejected,
        }
    }
}

/// A request to record.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// Which route (`/v1/assessments`, `/predict`).
    pub route: &'static str,
    /// SHA-256 of the uploaded image's bytes, hex; `None` when no image arrived.
    pub input_sha256: Option<String>,
    /// "M" or "F", when known.
    pub sex: Option<&'static str>,
    /// Chronological age, months, when given.
    pub age_months: Option<f64>,
    /// The HTTP status answered.
    pub status: u16,
    /// What became of it.
    pub outcome: Outcome,
    /// The bone age, months (assessed only).
    pub bone_age_months: Option<f64>,
    /// The assessment JSON (assessed) or the reason (refused, rejected).
    pub result: String,
    /// Seconds from the request's arrival to its answer.
    pub duration_s: f64,
    /// Where a DICOM input sits (study, series, instance UIDs), for results that
    /// reference it; never a patient identifier.
    pub source: Option<DicomSource>,
}

/// A recorded request.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Record {
    /// The assessment's id.
    pub id: i64,
    /// When it was recorded (UTC, RFC 3339).
    pub time: String,
    /// Which route.
    pub route: String,
    /// SHA-256 of the uploaded bytes, hex.
    pub input_sha256: Option<String>,
    /// "M" or "F".
    pub sex: Option<String>,
    /// Chronological age, months.
    pub age_months: Option<f64>,
    /// The HTTP status answered.
    pub status: u16,
    /// What became of the request.
    pub outcome: Outcome,
    /// The bone age, months.
    pub bone_age_months: Option<f64>,
    /// The refusal's or rejection's reason.
    pub reason: Option<String>,
    /// The models' manifest hashes, as `file sha256` lines.
    pub models: String,
    /// Seconds from arrival to answer.
    pub duration_s: f64,
    /// Where a DICOM input sits (UIDs only).
    #[schema(value_type = Option<Object>)]
    pub source: Option<DicomSource>,
    /// The assessment as `POST /v1/assessments` answered it (assessed only).
    #[schema(value_type = Option<Object>)]
    pub assessment: Option<serde_json::Value>,
}

/// The audit store.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    models: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    route TEXT NOT NULL,
    input_sha256 TEXT,
    sex TEXT,
    age_months REAL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    bone_age_months REAL,
    result TEXT NOT NULL,
    models TEXT NOT NULL,
    duration_s REAL NOT NULL,
    source TEXT
);";

impl Store {
    /// Opens (creating when absent) the store at `path`; `models` describes the
    /// loaded models (manifest hashes) and goes into every row.
    pub fn open(path: &Path, models: String) -> Result<Self, StoreError> {
        let err = |source| StoreError {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // FULL: a committed row survives a power cut as well as a killed process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            models,
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each
        // statement is atomic), so a poisoned lock is still a good connection.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a request; returns its id.
    pub fn insert(&self, r: &NewRecord) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO requests (route, input_sha256, sex, age_months, status, outcome,
                 bone_age_months, result, models, duration_s, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.route,
                r.input_sha256,
                r.sex,
                r.age_months,
                r.status,
                r.outcome.name(),
                r.bone_age_months,
                r.result,
                self.models,
                r.duration_s,
                r.source
                    .as_ref()
                    .and_then(|s| serde_json::to_string(s).ok())
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Replaces the result of a row (the assessment JSON once its id is known).
    pub fn set_result(&self, id: i64, result: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE requests SET result = ?1 WHERE id = ?2",
                params![result, id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// One row.
    pub fn get(&self, id: i64) -> Result<Option<Record>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"),
                params![id],
                row_to_record,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Up to `limit` rows with ids below `before` (all when `None`), newest first.
    pub fn list(&self, limit: u32, before: Option<i64>) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM requests WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![before.unwrap_or(i64::MAX), limit], row_to_record)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Whether the database answers and passes SQLite's integrity check.
    pub fn integrity(&self) -> Result<String, StoreError> {
        self.conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))
    }
}

const COLUMNS: &str = "id, time, route, input_sha256, sex, age_months, status, outcome, \
                       bone_age_months, result, models, duration_s, source";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let outcome = Outcome::parse(&row.get::<_, String>(7)?);
    let result: String = row.get(9)?;
    let (assessment, reason) = match outcome {
        Outcome::Assessed => (serde_json::from_str(&result).ok(), None),
        _ => (None, Some(result)),
    };
    Ok(Record {
        id: row.get(0)?,
        time: row.get(1)?,
        route: row.get(2)?,
        input_sha256: row.get(3)?,
        sex: row.get(4)?,
        age_months: row.get(5)?,
        status: row.get(6)?,
        outcome,
        bone_age_months: row.get(8)?,
        reason,
        models: row.get(10)?,
        duration_s: row.get(11)?,
        source: row
            .get::<_, Option<String>>(12)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        assessment,
    })
}
