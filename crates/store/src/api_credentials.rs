//! The API credentials Latchkey issues: rows and repository. A token is never stored, only its
//! SHA-256 (`token_hash`, and during a grace period the old token's `previous_hash`).

use crate::Result;
use async_trait::async_trait;

/// A stored API credential. `Debug` leaves the hashes out.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentialRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// The name as compared for uniqueness (core decides how).
    pub name_key: String,
    /// `admin` or `member`.
    pub role: String,
    /// SHA-256 of the current token.
    pub token_hash: Vec<u8>,
    /// `lkt_…` and the token's last 4 characters.
    pub token_hint: String,
    /// SHA-256 of the token before the last regenerate, while its grace period lasts.
    pub previous_hash: Option<Vec<u8>>,
    /// When the previous token stops working (UNIX milliseconds).
    pub previous_expires_at: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    pub revision: i64,
}

impl std::fmt::Debug for ApiCredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentialRow")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token_hint", &self.token_hint)
            .field("has_previous", &self.previous_hash.is_some())
            .field("previous_expires_at", &self.previous_expires_at)
            .field("enabled", &self.enabled)
            .field("last_used_at", &self.last_used_at)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// Persistence for issued API credentials. Every query but the lookup by hash (which is how a
/// request finds its workspace) and the last-used touch is scoped by workspace.
#[async_trait]
pub trait ApiCredentialRepository: Send + Sync {
    /// `Duplicate` when the name (key) is taken in the workspace or the hash exists.
    async fn insert_api_credential(&self, row: &ApiCredentialRow) -> Result<()>;
    async fn get_api_credential(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<ApiCredentialRow>>;
    async fn api_credential_by_name(
        &self,
        workspace_id: &str,
        name_key: &str,
    ) -> Result<Option<ApiCredentialRow>>;
    /// A workspace's API credentials in creation order.
    async fn list_api_credentials(&self, workspace_id: &str) -> Result<Vec<ApiCredentialRow>>;
    /// Replace the row if its stored revision is still `expected_revision`; else `Conflict`
    /// (or `NotFound` when it is gone). `Duplicate` for a name taken by another row.
    async fn update_api_credential(
        &self,
        row: &ApiCredentialRow,
        expected_revision: i64,
    ) -> Result<()>;
    /// Delete the row; with `expected_revision`, only if it is still at that revision (else
    /// `Conflict`). `NotFound` when there is no such row in the workspace.
    async fn delete_api_credential(
        &self,
        workspace_id: &str,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<()>;
    /// How many API credentials the workspace has.
    async fn count_api_credentials(&self, workspace_id: &str) -> Result<u64>;
    /// How many API credentials there are in all workspaces.
    async fn count_all_api_credentials(&self) -> Result<u64>;
    /// The row whose current or previous token hash is `hash` (the current one preferred). The
    /// caller checks `previous_expires_at` and compares the hash in constant time.
    async fn api_credential_by_hash(&self, hash: &[u8]) -> Result<Option<ApiCredentialRow>>;
    /// Record a use: sets `last_used_at` (never backwards); the revision does not change.
    async fn touch_api_credential(&self, id: &str, at: i64) -> Result<()>;
}
