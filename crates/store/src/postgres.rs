//! The PostgreSQL backend, for several instances over one database: a connection pool with a
//! short acquire timeout (a database that is down answers `Unavailable` quickly), migrations at
//! open (sqlx takes an advisory lock, so instances starting together migrate once).

use crate::PostgresUrl;
use crate::shared::{credential, credential_columns, db_error, missed_write, workspace};
use crate::{
    Change, CredentialFilter, CredentialRow, EnvelopeRow, Repository, Result, Slot, StoreError,
    WorkspaceRow,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::broadcast;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a connection before the store answers `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The channel the migrations' triggers notify on (see `0002_change_notifications.sql`).
const CHANGES_CHANNEL: &str = "latchkey_changes";

pub struct PostgresStore {
    pool: PgPool,
    url: PostgresUrl,
    changes: broadcast::Sender<Change>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    pub async fn open(url: &PostgresUrl) -> Result<PostgresStore> {
        let where_ = url.describe();
        let mut options = PgConnectOptions::from_str(url.expose()).map_err(|e| {
            StoreError::Open(format!(
                "the PostgreSQL database URL {where_} is not usable: {}",
                scrub(&e.to_string(), url)
            ))
        })?;
        if options.get_application_name().is_none() {
            options = options.application_name("latchkey");
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot connect to the PostgreSQL database {where_}: {}",
                    scrub(&e.to_string(), url)
                ))
            })?;
        MIGRATIONS.run(&pool).await.map_err(|e| {
            StoreError::Open(format!(
                "cannot migrate the PostgreSQL database {where_}: {}",
                scrub(&e.to_string(), url)
            ))
        })?;
        let listener = listen(&pool).await.map_err(|e| {
            StoreError::Open(format!(
                "cannot listen for changes on the PostgreSQL database {where_}: {}",
                scrub(&e.to_string(), url)
            ))
        })?;
        let (changes, _) = broadcast::channel(1024);
        let listener = tokio::spawn(follow_changes(pool.clone(), listener, changes.clone()));
        Ok(PostgresStore {
            pool,
            url: url.clone(),
            changes,
            listener,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }
}

async fn listen(pool: &PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}

/// Pass every notification on. When the listening connection is lost, listen again (every
/// quarter of a second until the database is back), then say `Unknown`: whatever changed in
/// between was not heard.
async fn follow_changes(
    pool: PgPool,
    mut listener: PgListener,
    changes: broadcast::Sender<Change>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(change) = parse_change(notification.payload()) {
                    let _ = changes.send(change);
                }
            }
            Ok(None) | Err(_) => {
                let _ = changes.send(Change::Unknown);
                listener = loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Ok(listener) = listen(&pool).await {
                        break listener;
                    }
                };
                let _ = changes.send(Change::Unknown);
            }
        }
    }
}

fn parse_change(payload: &str) -> Option<Change> {
    match payload.split_once(':')? {
        ("credential", id) => Some(Change::Credential { id: id.to_owned() }),
        ("api_credential", id) => Some(Change::ApiCredential { id: id.to_owned() }),
        _ => None,
    }
}

/// Driver text should never hold the URL, but if it ever did, the password goes.
fn scrub(text: &str, url: &PostgresUrl) -> String {
    match ::url::Url::parse(url.expose())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "[redacted]"),
        _ => text.to_owned(),
    }
}

#[async_trait]
impl Repository for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn shares_throttle(&self) -> bool {
        true
    }

    async fn reserve_slot(
        &self,
        key: &str,
        requests: u32,
        window: Duration,
        max_wait: Duration,
    ) -> Result<Slot> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let answer: i64 = sqlx::query_scalar("SELECT latchkey_reserve($1, $2, $3, $4)")
            .bind(key)
            .bind(i32::try_from(requests).unwrap_or(i32::MAX))
            .bind(micros(window))
            .bind(micros(max_wait))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let after = Duration::from_micros(answer.unsigned_abs());
        Ok(if answer < 0 {
            Slot::Refused(after)
        } else {
            Slot::Wait(after)
        })
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_workspace(&self, row: &WorkspaceRow) -> Result<()> {
        sqlx::query("INSERT INTO workspaces (id, slug, created_at) VALUES ($1, $2, $3)")
            .bind(&row.id)
            .bind(&row.slug)
            .bind(row.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query("SELECT id, slug, created_at FROM workspaces WHERE slug = $1")
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
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
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
        .bind(c.enabled)
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
            " FROM credentials WHERE workspace_id = $1 AND id = $2"
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
            " FROM credentials WHERE workspace_id = $1 AND name_key = $2"
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
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
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
            q.push(" AND enabled = ").push_bind(enabled);
        }
        if let Some(text) = &filter.name_contains {
            // strpos, not LIKE: `%` and `_` are plain characters here, as on SQLite (instr).
            q.push(" AND strpos(name_key, ")
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
            "UPDATE credentials SET provider = $1, name = $2, name_key = $3, description = $4, settings = $5, \
             secret_hints = $6, envelope = $7, key_id = $8, status = $9, status_reason = $10, enabled = $11, \
             verified_at = $12, identity = $13, last_used_at = $14, revision = $15, updated_at = $16 \
             WHERE workspace_id = $17 AND id = $18 AND revision = $19",
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
        .bind(c.enabled)
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
            "DELETE FROM credentials WHERE workspace_id = $1 AND id = $2 \
             AND ($3::BIGINT IS NULL OR revision = $3)",
        )
        .bind(workspace_id)
        .bind(id)
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
            "INSERT INTO quota_usage (key, week, used) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
             used = CASE WHEN excluded.week > quota_usage.week THEN 1 ELSE quota_usage.used + 1 END, \
             week = GREATEST(quota_usage.week, excluded.week) \
             WHERE excluded.week > quota_usage.week OR quota_usage.used < $3 \
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
            "INSERT INTO quota_usage (key, week, used) VALUES ($1, $2, $3) \
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
            "UPDATE credentials SET last_used_at = $1 WHERE workspace_id = $2 AND id = $3 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(workspace_id)
        .bind(id)
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
             WHERE id > $1 AND key_id <> $2 ORDER BY id LIMIT $3",
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
        // One statement for the whole batch (one transaction); a row whose revision moved on is
        // left as it is.
        let column = |f: fn(&EnvelopeRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
        let done = sqlx::query(
            "UPDATE credentials AS c SET envelope = n.envelope, key_id = n.key_id \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[]) \
                  AS n(workspace_id, id, revision, envelope, key_id) \
             WHERE c.workspace_id = n.workspace_id AND c.id = n.id AND c.revision = n.revision",
        )
        .bind(column(|r| r.workspace_id.clone()))
        .bind(column(|r| r.id.clone()))
        .bind(rows.iter().map(|r| r.revision).collect::<Vec<i64>>())
        .bind(
            rows.iter()
                .map(|r| r.envelope.clone())
                .collect::<Vec<Vec<u8>>>(),
        )
        .bind(column(|r| r.key_id.clone()))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
