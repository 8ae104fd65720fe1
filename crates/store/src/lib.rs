#![doc = include_str!("../README.md")]

mod api_credentials;
mod audit;
mod postgres;
mod postgres_api_credentials;
mod postgres_audit;
mod postgres_sessions;
mod sessions;
mod shared;
mod sqlite;
mod sqlite_api_credentials;
mod sqlite_audit;
mod sqlite_sessions;
mod url;

pub use crate::url::{PostgresUrl, redact_database_url};
pub use api_credentials::{ApiCredentialRepository, ApiCredentialRow};
pub use audit::{AuditFilter, AuditRepository, AuditRow};
pub use postgres::PostgresStore;
pub use sessions::SessionRepository;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name of the embedded database inside a data directory.
pub const SQLITE_FILE: &str = "latchkey.db";

/// Why a store operation failed. Database text never reaches users: core maps these on purpose.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique rule (workspace slug, credential name in a workspace) would be broken.
    #[error("a row with the same unique value exists")]
    Duplicate,
    /// The row changed since it was read (its revision moved on).
    #[error("the row was changed by someone else")]
    Conflict,
    #[error("no such row")]
    NotFound,
    /// The database could not be reached or is locked.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("{0}")]
    Open(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRow {
    pub id: String,
    pub slug: String,
    pub created_at: i64,
}

/// A stored credential. Secrets are only in `envelope` (sealed); `settings` and `secret_hints`
/// are JSON objects of the non-secret values and of the masked hints.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: String,
    pub workspace_id: String,
    pub provider: String,
    pub name: String,
    /// The name as compared for uniqueness (core decides how).
    pub name_key: String,
    pub description: String,
    pub settings: String,
    pub secret_hints: String,
    pub envelope: Vec<u8>,
    /// The master key that wraps the envelope's data key.
    pub key_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub enabled: bool,
    pub verified_at: Option<i64>,
    pub identity: Option<String>,
    pub last_used_at: Option<i64>,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("status", &self.status)
            .field("enabled", &self.enabled)
            .field("revision", &self.revision)
            .field("envelope", &format_args!("[{} bytes]", self.envelope.len()))
            .finish_non_exhaustive()
    }
}

/// Which credentials a list returns. `name_contains` is matched against `name_key`.
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    pub provider: Option<String>,
    pub status: Option<String>,
    pub enabled: Option<bool>,
    pub name_contains: Option<String>,
}

/// A change to a credential or an API credential that a cache could hold, made by any process
/// sharing the database (this one included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Credential {
        id: String,
    },
    ApiCredential {
        id: String,
    },
    /// Changes may have been missed (the listening connection was lost and is back): forget
    /// everything cached.
    Unknown,
}

/// Persistence for everything Latchkey keeps. Every credential query is scoped by workspace.
/// One implementation per backend; core depends only on this trait.
#[async_trait]
pub trait Repository:
    AuditRepository + ApiCredentialRepository + SessionRepository + Send + Sync + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Store `value` under `key` unless the key already has a value (then `false`, nothing
    /// written): two processes starting at once on a new database agree on one value.
    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool>;

    async fn insert_workspace(&self, row: &WorkspaceRow) -> Result<()>;
    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<WorkspaceRow>>;
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRow>>;

    async fn insert_credential(&self, row: &CredentialRow) -> Result<()>;
    async fn get_credential(&self, workspace_id: &str, id: &str) -> Result<Option<CredentialRow>>;
    async fn credential_by_name(
        &self,
        workspace_id: &str,
        name_key: &str,
    ) -> Result<Option<CredentialRow>>;
    /// Credentials ordered by id, after the cursor `after` (an id), at most `limit`.
    async fn list_credentials(
        &self,
        workspace_id: &str,
        filter: &CredentialFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CredentialRow>>;
    /// Replace the row if its stored revision is still `expected_revision`; else `Conflict`
    /// (or `NotFound` when it is gone).
    async fn update_credential(&self, row: &CredentialRow, expected_revision: i64) -> Result<()>;
    /// Delete the row; with `expected_revision`, only if it is still at that revision (else `Conflict`).
    async fn delete_credential(
        &self,
        workspace_id: &str,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<()>;

    /// Record when a credential was last used (no revision change).
    async fn touch_credential(&self, workspace_id: &str, id: &str, at: i64) -> Result<()>;

    /// How many credentials there are in all workspaces.
    async fn count_credentials(&self) -> Result<u64>;
    /// How many envelopes each master key wraps.
    async fn envelope_key_counts(&self) -> Result<Vec<(String, u64)>>;

    /// Master-key rotation: at most `limit` envelopes not wrapped by key `key_id`, in id order,
    /// after the id `after`.
    async fn envelopes_not_under(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EnvelopeRow>>;
    /// Master-key rotation: store re-wrapped envelopes, in one transaction, each only if its
    /// credential is still at the row's revision (a credential changed meanwhile is left as it
    /// is). Neither the revision nor `updated_at` changes. Returns how many were stored.
    async fn replace_envelopes(&self, rows: &[EnvelopeRow]) -> Result<u64>;
    /// Whether this backend keeps a rate-limit throttle that every instance on the database
    /// shares ([`Repository::reserve_slot`]); without one, each process throttles on its own.
    fn shares_throttle(&self) -> bool {
        false
    }
    /// The shared throttle: reserve a send time for `key` so that no span of `window` holds more
    /// than `requests` grants, measured on the database's clock. [`Slot::Refused`] (nothing
    /// reserved) when the time is further away than `max_wait`.
    async fn reserve_slot(
        &self,
        key: &str,
        requests: u32,
        window: std::time::Duration,
        max_wait: std::time::Duration,
    ) -> Result<Slot> {
        let _ = (key, requests, window, max_wait);
        Err(StoreError::Database(format!(
            "the {} backend keeps no shared throttle",
            self.backend()
        )))
    }
    /// A weekly quota: count one request of `key` in the week starting at `week` (UNIX seconds)
    /// unless `limit` (at least 1) requests were already counted in it; `false` (nothing
    /// counted) when the week's quota is used up. One atomic statement (a conditional upsert),
    /// so processes sharing the database never count past the limit together. A later week
    /// starts the count again; a process whose clock is behind counts in the newer week.
    async fn count_in_quota(&self, key: &str, week: i64, limit: u64) -> Result<bool>;
    /// Every weekly quota count, by key (for `store copy`).
    async fn quota_usage(&self) -> Result<Vec<QuotaUsage>>;
    /// Write a weekly quota count as it is (for `store copy`): it replaces the key's count.
    async fn put_quota_usage(&self, usage: &QuotaUsage) -> Result<()>;
    /// The changes committed to this database by any process, as they commit, for caches to
    /// drop what they hold (PostgreSQL: `LISTEN/NOTIFY`). `None` when the backend has no such
    /// feed: on SQLite, changes made by another process show when the short-lived caches expire.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
}

/// A shared throttle's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Send after waiting this long.
    Wait(std::time::Duration),
    /// The next free time is this far away, beyond the caller's budget; nothing was reserved.
    Refused(std::time::Duration),
}

/// The requests counted in one weekly quota ([`Repository::count_in_quota`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUsage {
    pub key: String,
    /// The week's start, in UNIX seconds.
    pub week: i64,
    pub used: u64,
}

/// One credential's sealed secrets, as master-key rotation reads and writes them.
#[derive(Clone)]
pub struct EnvelopeRow {
    pub workspace_id: String,
    pub id: String,
    pub revision: i64,
    pub envelope: Vec<u8>,
    pub key_id: String,
}

impl std::fmt::Debug for EnvelopeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeRow")
            .field("workspace_id", &self.workspace_id)
            .field("id", &self.id)
            .field("revision", &self.revision)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Where the data lives: a SQLite file (from a data directory or a `sqlite://` URL), or a
/// PostgreSQL database (a `postgres://` or `postgresql://` URL). `Debug` never shows a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PostgresUrl),
}

impl Location {
    /// Choose the backend from a database URL, or the embedded SQLite file of a data directory.
    /// An unknown scheme is refused with a message that says which are known.
    pub fn resolve(database_url: Option<&str>, data_dir: &Path) -> Result<Location> {
        match database_url {
            None => Ok(Location::Sqlite(data_dir.join(SQLITE_FILE))),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    let path = path.split('?').next().unwrap_or_default();
                    if path.is_empty() {
                        return Err(StoreError::Open(
                            "the sqlite:// URL names no file; write sqlite:///path/to/latchkey.db"
                                .to_owned(),
                        ));
                    }
                    return Ok(Location::Sqlite(PathBuf::from(path)));
                }
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    return Ok(Location::Postgres(PostgresUrl::parse(url)?));
                }
                let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("(none)");
                Err(StoreError::Open(format!(
                    "the database URL's scheme `{scheme}` is not supported; use sqlite:///path/to/latchkey.db or postgres://user:password@host/database, or leave the URL out to use the data directory"
                )))
            }
        }
    }

    /// Whether no database exists here yet (as far as can be told without connecting: a
    /// PostgreSQL database is never new here; start-up looks at what it holds instead).
    pub fn is_new(&self) -> bool {
        match self {
            Location::Sqlite(path) => !path.exists(),
            Location::Postgres(_) => false,
        }
    }

    /// For messages and logs: never holds a password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("SQLite database {}", path.display()),
            Location::Postgres(url) => format!("PostgreSQL database {}", url.describe()),
        }
    }
}

/// Open (creating if needed) the store at `location` and apply its migrations.
pub async fn open(location: &Location) -> Result<Arc<dyn Repository>> {
    match location {
        Location::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        Location::Postgres(url) => Ok(Arc::new(PostgresStore::open(url).await?)),
    }
}
