//! Web page sessions ended before their time (signed out). A session is a sealed cookie that
//! carries its own random id; only the ids of ended sessions are kept, each until the session
//! would have expired anyway.

use crate::Result;
use async_trait::async_trait;

#[async_trait]
pub trait SessionRepository {
    /// Record session `id` as ended until `expires_at` (UNIX milliseconds); recording it again
    /// is no error. Rows whose expiry is at or before `now` are pruned on the way.
    async fn revoke_session(&self, id: &str, expires_at: i64, now: i64) -> Result<()>;
    /// Whether session `id` was ended (and its record not yet pruned).
    async fn session_revoked(&self, id: &str) -> Result<bool>;
    /// The ended sessions whose expiry is after `now`, as `(id, expires_at)` (for `store copy`).
    async fn revoked_sessions(&self, now: i64) -> Result<Vec<(String, i64)>>;
}
