//! Workspaces: the tenants. Nothing crosses them.

use crate::Latchkey;
use crate::audit::Target;
use crate::error::{CoreError, Result};
use crate::model::{Actor, Timestamp, Workspace, WorkspaceSlug};
use latchkey_store::{StoreError, WorkspaceRow};
use std::sync::Arc;

impl Latchkey {
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        Ok(self
            .repo
            .list_workspaces()
            .await?
            .iter()
            .map(view)
            .collect())
    }

    pub async fn create_workspace(&self, actor: &Actor, slug: &str) -> Result<Workspace> {
        let result = self.create_workspace_inner(actor, slug).await;
        let (workspace_id, error) = match &result {
            Ok(ws) => (Some(ws.id.as_str()), None),
            Err(e) => (None, Some(e)),
        };
        let target = Target {
            kind: "workspace",
            id: workspace_id.map(str::to_owned),
            name: Some(slug.chars().take(80).collect()),
        };
        self.record(actor, workspace_id, "workspace.create", Some(target), error)
            .await;
        result
    }

    async fn create_workspace_inner(&self, actor: &Actor, slug: &str) -> Result<Workspace> {
        let slug = WorkspaceSlug::parse(slug)?;
        let row = WorkspaceRow {
            id: uuid::Uuid::now_v7().to_string(),
            slug: slug.as_str().to_owned(),
            created_at: Timestamp::now().millis(),
        };
        self.repo
            .insert_workspace(&row)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => CoreError::DuplicateWorkspace {
                    slug: row.slug.clone(),
                },
                other => other.into(),
            })?;
        tracing::info!(actor = ?actor, workspace = %row.slug, "workspace created");
        Ok(view(&row))
    }

    /// Create the workspace if it does not exist yet.
    pub(crate) async fn ensure_workspace(&self, slug: &str) -> Result<()> {
        if self.repo.workspace_by_slug(slug).await?.is_none() {
            match self.create_workspace(&Actor::operator(), slug).await {
                Ok(_) | Err(CoreError::DuplicateWorkspace { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A workspace by slug. Workspaces are never renamed or removed, so a found one is kept in
    /// memory; a missing one is asked for again next time.
    pub(crate) async fn workspace_row(&self, slug: &str) -> Result<Arc<WorkspaceRow>> {
        if let Some(row) = self
            .workspaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(slug)
        {
            return Ok(row.clone());
        }
        let row = Arc::new(self.repo.workspace_by_slug(slug).await?.ok_or_else(|| {
            CoreError::WorkspaceNotFound {
                slug: slug.chars().take(80).collect(),
            }
        })?);
        let mut cache = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(slug.to_owned(), row.clone());
        Ok(row)
    }
}

fn view(row: &WorkspaceRow) -> Workspace {
    Workspace {
        id: row.id.clone(),
        slug: row.slug.clone(),
        created_at: Timestamp(row.created_at),
    }
}
