//! What both backends share: the column lists, how a driver error becomes a `StoreError`, and
//! what a conditional write that touched no row means.

use crate::{ApiCredentialRow, AuditRow, CredentialRow, QuotaUsage, StoreError, WorkspaceRow};
use sqlx::{ColumnIndex, Decode, Row, Type};

macro_rules! credential_columns {
    () => {
        "id, workspace_id, provider, name, name_key, description, settings, secret_hints, envelope, key_id, \
         status, status_reason, enabled, verified_at, identity, last_used_at, revision, created_at, updated_at"
    };
}

macro_rules! api_credential_columns {
    () => {
        "id, workspace_id, name, name_key, role, token_hash, token_hint, previous_hash, \
         previous_expires_at, enabled, created_at, updated_at, last_used_at, revision"
    };
}

macro_rules! audit_columns {
    () => {
        "id, workspace_id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, \
         target_name, outcome, detail, request_id, client_addr"
    };
}

pub(crate) use {api_credential_columns, audit_columns, credential_columns};

/// A driver error as the store reports it. Losing the database (refused or dropped connections,
/// an exhausted pool, a server shutting down or not yet accepting connections) is `Unavailable`,
/// which core answers as 503; a unique rule is `Duplicate`.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Duplicate,
        sqlx::Error::Database(ref db) if db.code().as_deref().is_some_and(connection_lost) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

/// PostgreSQL SQLSTATEs that mean the server went away or cannot take the work now: class 08
/// (connection exception), 57P01–57P05 (shutdown, cannot connect now, idle timeouts), 53300
/// (too many connections). SQLite's codes are plain numbers and never match.
fn connection_lost(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code == "53300"
}

/// A conditional write (`… WHERE revision = ?`) touched no row: a `Conflict` when the row is
/// still there (its revision moved on), else `NotFound`.
pub(crate) fn missed_write<T>(still_there: Option<T>) -> StoreError {
    match still_there {
        Some(_) => StoreError::Conflict,
        None => StoreError::NotFound,
    }
}

// Rows of either backend, mapped once. The bounds say "this backend decodes these types".

pub(crate) fn workspace<'r, R>(r: &'r R) -> WorkspaceRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    WorkspaceRow {
        id: r.get("id"),
        slug: r.get("slug"),
        created_at: r.get("created_at"),
    }
}

pub(crate) fn credential<'r, R>(r: &'r R) -> CredentialRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    CredentialRow {
        id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        provider: r.get("provider"),
        name: r.get("name"),
        name_key: r.get("name_key"),
        description: r.get("description"),
        settings: r.get("settings"),
        secret_hints: r.get("secret_hints"),
        envelope: r.get("envelope"),
        key_id: r.get("key_id"),
        status: r.get("status"),
        status_reason: r.get("status_reason"),
        enabled: r.get("enabled"),
        verified_at: r.get("verified_at"),
        identity: r.get("identity"),
        last_used_at: r.get("last_used_at"),
        revision: r.get("revision"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub(crate) fn api_credential<'r, R>(r: &'r R) -> ApiCredentialRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    ApiCredentialRow {
        id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        name: r.get("name"),
        name_key: r.get("name_key"),
        role: r.get("role"),
        token_hash: r.get("token_hash"),
        token_hint: r.get("token_hint"),
        previous_hash: r.get("previous_hash"),
        previous_expires_at: r.get("previous_expires_at"),
        enabled: r.get("enabled"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        last_used_at: r.get("last_used_at"),
        revision: r.get("revision"),
    }
}

pub(crate) fn audit<'r, R>(r: &'r R) -> AuditRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    AuditRow {
        id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        at: r.get("at"),
        actor_kind: r.get("actor_kind"),
        actor_id: r.get("actor_id"),
        actor_name: r.get("actor_name"),
        action: r.get("action"),
        target_kind: r.get("target_kind"),
        target_id: r.get("target_id"),
        target_name: r.get("target_name"),
        outcome: r.get("outcome"),
        detail: r.get("detail"),
        request_id: r.get("request_id"),
        client_addr: r.get("client_addr"),
    }
}

/// Every weekly quota count, as [`quota_usage`] reads a row.
pub(crate) const SELECT_QUOTA_USAGE: &str = "SELECT key, week, used FROM quota_usage ORDER BY key";

/// A `quota_usage` row (key, week, used) as read.
pub(crate) fn quota_usage((key, week, used): (String, i64, i64)) -> QuotaUsage {
    QuotaUsage {
        key,
        week,
        used: u64::try_from(used).unwrap_or_default(),
    }
}

/// A quota count as a `quota_usage` row (key, week, used).
pub(crate) fn quota_usage_row(usage: &QuotaUsage) -> (&str, i64, i64) {
    (
        &usage.key,
        usage.week,
        i64::try_from(usage.used).unwrap_or(i64::MAX),
    )
}
