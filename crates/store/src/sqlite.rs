//! The embedded SQLite backend: WAL, foreign keys, a busy timeout, migrations at open.

use crate::shared::{credential, credential_columns, db_error, missed_write, workspace};
use crate::{
    CredentialFilter, CredentialRow, EnvelopeRow, Repository, Result, StoreError, WorkspaceRow,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::path::Path;
use std::time::Duration;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Open(format!(
                    "cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot open the SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        MIGRATIONS.run(&pool).await.map_err(|e| {
            StoreError::Open(format!(
                "cannot migrate the SQLite database {}: {e}",
                path.display()
            ))
        })?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Repository for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_workspace(&self, row: &WorkspaceRow) -> Result<()> {
        sqlx::query("INSERT INTO workspaces (id, slug, created_at) VALUES (?, ?, ?)")
            .bind(&row.id)
            .bind(&row.slug)
            .bind(row.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query("SELECT id, slug, created_at FROM workspaces WHERE slug = ?")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(workspace))
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query("SELECT id, slug, created_at FROM workspaces ORDER BY slug")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(workspace).collect())
    }

    async fn insert_credential(&self, c: &CredentialRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO credentials (",
            credential_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&c.id)
        .bind(&c.workspace_id)
        .bind(&c.provider)
        .bind(&c.name)
        .bind(&c.name_key)
        .bind(&c.description)
        .bind(&c.settings)
        .bind(&c.secret_hints)
        .bind(&c.envelope)
        .bind(&c.key_id)
        .bind(&c.status)
        .bind(&c.status_reason)
        .bind(i64::from(c.enabled))
        .bind(c.verified_at)
        .bind(&c.identity)
        .bind(c.last_used_at)
        .bind(c.revision)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_credential(&self, workspace_id: &str, id: &str) -> Result<Option<CredentialRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE workspace_id = ? AND id = ?"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(credential))
    }

    async fn credential_by_name(
        &self,
        workspace_id: &str,
        name_key: &str,
    ) -> Result<Option<CredentialRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE workspace_id = ? AND name_key = ?"
        ))
        .bind(workspace_id)
        .bind(name_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(credential))
    }

    async fn list_credentials(
        &self,
        workspace_id: &str,
        filter: &CredentialFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CredentialRow>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE workspace_id = "
        ));
        q.push_bind(workspace_id);
        if let Some(provider) = &filter.provider {
            q.push(" AND provider = ").push_bind(provider);
        }
        if let Some(status) = &filter.status {
            q.push(" AND status = ").push_bind(status);
        }
        if let Some(enabled) = filter.enabled {
            q.push(" AND enabled = ").push_bind(i64::from(enabled));
        }
        if let Some(text) = &filter.name_contains {
            q.push(" AND instr(name_key, ")
                .push_bind(text)
                .push(") > 0");
        }
        if let Some(after) = after {
            q.push(" AND id > ").push_bind(after);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.pool).await.map_err(db_error)?;
        Ok(rows.iter().map(credential).collect())
    }

    async fn update_credential(&self, c: &CredentialRow, expected_revision: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE credentials SET provider = ?, name = ?, name_key = ?, description = ?, settings = ?, \
             secret_hints = ?, envelope = ?, key_id = ?, status = ?, status_reason = ?, enabled = ?, \
             verified_at = ?, identity = ?, last_used_at = ?, revision = ?, updated_at = ? \
             WHERE workspace_id = ? AND id = ? AND revision = ?",
        )
        .bind(&c.provider)
        .bind(&c.name)
        .bind(&c.name_key)
        .bind(&c.description)
        .bind(&c.settings)
        .bind(&c.secret_hints)
        .bind(&c.envelope)
        .bind(&c.key_id)
        .bind(&c.status)
        .bind(&c.status_reason)
        .bind(i64::from(c.enabled))
        .bind(c.verified_at)
        .bind(&c.identity)
        .bind(c.last_used_at)
        .bind(c.revision)
        .bind(c.updated_at)
        .bind(&c.workspace_id)
        .bind(&c.id)
        .bind(expected_revision)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(missed_write(
            self.get_credential(&c.workspace_id, &c.id).await?,
        ))
    }

    async fn delete_credential(
        &self,
        workspace_id: &str,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM credentials WHERE workspace_id = ? AND id = ? AND (? IS NULL OR revision = ?)",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(expected_revision)
        .bind(expected_revision)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(missed_write(self.get_credential(workspace_id, id).await?))
    }

    async fn count_in_quota(&self, key: &str, week: i64, limit: u64) -> Result<bool> {
        let counted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO quota_usage (key, week, used) VALUES (?1, ?2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
             used = CASE WHEN excluded.week > quota_usage.week THEN 1 ELSE quota_usage.used + 1 END, \
             week = max(quota_usage.week, excluded.week) \
             WHERE excluded.week > quota_usage.week OR quota_usage.used < ?3 \
             RETURNING used",
        )
        .bind(key)
        .bind(week)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(counted.is_some())
    }

    async fn quota_usage(&self) -> Result<Vec<crate::QuotaUsage>> {
        let rows = sqlx::query_as(crate::shared::SELECT_QUOTA_USAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(crate::shared::quota_usage).collect())
    }

    async fn put_quota_usage(&self, usage: &crate::QuotaUsage) -> Result<()> {
        let (key, week, used) = crate::shared::quota_usage_row(usage);
        sqlx::query(
            "INSERT INTO quota_usage (key, week, used) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET week = excluded.week, used = excluded.used",
        )
        .bind(key)
        .bind(week)
        .bind(used)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn touch_credential(&self, workspace_id: &str, id: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE credentials SET last_used_at = ? WHERE workspace_id = ? AND id = ? \
             AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(at)
        .bind(workspace_id)
        .bind(id)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn count_credentials(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(n as u64)
    }

    async fn envelope_key_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT key_id, count(*) AS n FROM credentials GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>("key_id"), r.get::<i64, _>("n") as u64))
            .collect())
    }

    async fn envelopes_not_under(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EnvelopeRow>> {
        let rows = sqlx::query(
            "SELECT workspace_id, id, revision, envelope, key_id FROM credentials \
             WHERE id > ? AND key_id <> ? ORDER BY id LIMIT ?",
        )
        .bind(after.unwrap_or(""))
        .bind(key_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| EnvelopeRow {
                workspace_id: r.get("workspace_id"),
                id: r.get("id"),
                revision: r.get("revision"),
                envelope: r.get("envelope"),
                key_id: r.get("key_id"),
            })
            .collect())
    }

    async fn replace_envelopes(&self, rows: &[EnvelopeRow]) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut stored = 0;
        for row in rows {
            let done = sqlx::query(
                "UPDATE credentials SET envelope = ?, key_id = ? \
                 WHERE workspace_id = ? AND id = ? AND revision = ?",
            )
            .bind(&row.envelope)
            .bind(&row.key_id)
            .bind(&row.workspace_id)
            .bind(&row.id)
            .bind(row.revision)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            stored += done.rows_affected();
        }
        tx.commit().await.map_err(db_error)?;
        Ok(stored)
    }
}
