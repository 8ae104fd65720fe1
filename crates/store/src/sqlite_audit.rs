use crate::Result;
use crate::audit::{AuditFilter, AuditRepository, AuditRow};
use crate::shared::{audit, audit_columns, db_error};
use crate::sqlite::SqliteStore;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

#[async_trait]
impl AuditRepository for SqliteStore {
    async fn append_audit(&self, e: &AuditRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO audit_events (",
            audit_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&e.id)
        .bind(&e.workspace_id)
        .bind(e.at)
        .bind(&e.actor_kind)
        .bind(&e.actor_id)
        .bind(&e.actor_name)
        .bind(&e.action)
        .bind(&e.target_kind)
        .bind(&e.target_id)
        .bind(&e.target_name)
        .bind(&e.outcome)
        .bind(&e.detail)
        .bind(&e.request_id)
        .bind(&e.client_addr)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn list_audit(
        &self,
        workspace_id: &str,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE workspace_id = "
        ));
        q.push_bind(workspace_id);
        if let Some(action) = &filter.action {
            q.push(" AND action = ").push_bind(action);
        }
        if let Some(target) = &filter.target {
            q.push(" AND (target_id = ")
                .push_bind(target)
                .push(" OR target_name = ")
                .push_bind(target)
                .push(")");
        }
        if let Some(actor) = &filter.actor {
            q.push(" AND (actor_id = ")
                .push_bind(actor)
                .push(" OR actor_name = ")
                .push_bind(actor)
                .push(" OR actor_kind = ")
                .push_bind(actor)
                .push(")");
        }
        if let Some(since) = filter.since {
            q.push(" AND at >= ").push_bind(since);
        }
        if let Some(before) = before {
            q.push(" AND id < ").push_bind(before);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = q.build().fetch_all(self.pool()).await.map_err(db_error)?;
        Ok(rows.iter().map(audit).collect())
    }

    async fn audit_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        Ok(rows.iter().map(audit).collect())
    }

    async fn count_audit(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(n as u64)
    }
}
