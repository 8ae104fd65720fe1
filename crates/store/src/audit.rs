//! The audit log's rows and repository: append and read, never change.

use crate::Result;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Time-ordered (UUID v7): the list's order and cursor.
    pub id: String,
    /// `None` for events outside any workspace (e.g. a failed authentication naming none).
    pub workspace_id: Option<String>,
    pub at: i64,
    /// `operator` or `api_credential`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// For a failure, its stable code.
    pub detail: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// Matches the target's id or name.
    pub target: Option<String>,
    /// Matches the actor's id or name, or its kind (`operator` for the CLI's local operator).
    pub actor: Option<String>,
    /// UNIX milliseconds.
    pub since: Option<i64>,
}

#[async_trait]
pub trait AuditRepository: Send + Sync {
    async fn append_audit(&self, row: &AuditRow) -> Result<()>;
    /// A workspace's events, newest first, before the cursor `before` (an id), at most `limit`.
    async fn list_audit(
        &self,
        workspace_id: &str,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRow>>;
    /// Every event of every workspace (and those of none), oldest first, after the cursor
    /// `after` (an id), at most `limit`: for copying a store.
    async fn audit_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<AuditRow>>;
    /// How many events there are in all.
    async fn count_audit(&self) -> Result<u64>;
}
