use crate::Result;
use crate::postgres::PostgresStore;
use crate::sessions::SessionRepository;
use crate::shared::db_error;
use async_trait::async_trait;

#[async_trait]
impl SessionRepository for PostgresStore {
    async fn revoke_session(&self, id: &str, expires_at: i64, now: i64) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        sqlx::query("DELETE FROM revoked_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO revoked_sessions (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn session_revoked(&self, id: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM revoked_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn revoked_sessions(&self, now: i64) -> Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT id, expires_at FROM revoked_sessions WHERE expires_at > $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)
    }
}
