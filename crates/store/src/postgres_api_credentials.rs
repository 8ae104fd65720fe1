use crate::Result;
use crate::api_credentials::{ApiCredentialRepository, ApiCredentialRow};
use crate::postgres::PostgresStore;
use crate::shared::{api_credential, api_credential_columns, db_error, missed_write};
use async_trait::async_trait;

#[async_trait]
impl ApiCredentialRepository for PostgresStore {
    async fn insert_api_credential(&self, c: &ApiCredentialRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO api_credentials (",
            api_credential_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&c.id)
        .bind(&c.workspace_id)
        .bind(&c.name)
        .bind(&c.name_key)
        .bind(&c.role)
        .bind(&c.token_hash)
        .bind(&c.token_hint)
        .bind(&c.previous_hash)
        .bind(c.previous_expires_at)
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.last_used_at)
        .bind(c.revision)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_api_credential(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<ApiCredentialRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_credential_columns!(),
            " FROM api_credentials WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(api_credential))
    }

    async fn api_credential_by_name(
        &self,
        workspace_id: &str,
        name_key: &str,
    ) -> Result<Option<ApiCredentialRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_credential_columns!(),
            " FROM api_credentials WHERE workspace_id = $1 AND name_key = $2"
        ))
        .bind(workspace_id)
        .bind(name_key)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(api_credential))
    }

    async fn list_api_credentials(&self, workspace_id: &str) -> Result<Vec<ApiCredentialRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_credential_columns!(),
            " FROM api_credentials WHERE workspace_id = $1 ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        Ok(rows.iter().map(api_credential).collect())
    }

    async fn update_api_credential(
        &self,
        c: &ApiCredentialRow,
        expected_revision: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_credentials SET name = $1, name_key = $2, role = $3, token_hash = $4, token_hint = $5, \
             previous_hash = $6, previous_expires_at = $7, enabled = $8, updated_at = $9, revision = $10 \
             WHERE workspace_id = $11 AND id = $12 AND revision = $13",
        )
        .bind(&c.name)
        .bind(&c.name_key)
        .bind(&c.role)
        .bind(&c.token_hash)
        .bind(&c.token_hint)
        .bind(&c.previous_hash)
        .bind(c.previous_expires_at)
        .bind(c.enabled)
        .bind(c.updated_at)
        .bind(c.revision)
        .bind(&c.workspace_id)
        .bind(&c.id)
        .bind(expected_revision)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(missed_write(
            self.get_api_credential(&c.workspace_id, &c.id).await?,
        ))
    }

    async fn delete_api_credential(
        &self,
        workspace_id: &str,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM api_credentials WHERE workspace_id = $1 AND id = $2 \
             AND ($3::BIGINT IS NULL OR revision = $3)",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(expected_revision)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(missed_write(
            self.get_api_credential(workspace_id, id).await?,
        ))
    }

    async fn count_api_credentials(&self, workspace_id: &str) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM api_credentials WHERE workspace_id = $1")
                .bind(workspace_id)
                .fetch_one(self.pool())
                .await
                .map_err(db_error)?;
        Ok(n as u64)
    }

    async fn count_all_api_credentials(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_credentials")
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(n as u64)
    }

    async fn api_credential_by_hash(&self, hash: &[u8]) -> Result<Option<ApiCredentialRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_credential_columns!(),
            " FROM api_credentials WHERE token_hash = $1 OR previous_hash = $1 \
             ORDER BY token_hash = $1 DESC LIMIT 1"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(api_credential))
    }

    async fn touch_api_credential(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE api_credentials SET last_used_at = GREATEST(coalesce(last_used_at, 0), $1) WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
