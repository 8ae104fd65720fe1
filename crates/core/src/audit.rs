//! The audit log: every mutation, every verification and every failed authentication, with who,
//! what, which target, when, the outcome, the request id and the client address — never a secret.

use crate::Latchkey;
use crate::credentials::Page;
use crate::error::{CoreError, Result};
use crate::model::{Actor, ActorKind, Timestamp};
use latchkey_store::{AuditFilter, AuditRow};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub at: Timestamp,
    pub actor: AuditActor,
    pub action: String,
    pub target: Option<AuditTarget>,
    /// `success` or `failure`.
    pub outcome: String,
    /// For a failure, its stable error code.
    pub detail: Option<String>,
    pub request_id: Option<String>,
    pub client: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditActor {
    /// `operator` or `api_credential`.
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditTarget {
    /// `credential`, `api_credential` or `workspace`.
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub target: Option<String>,
    pub actor: Option<String>,
    pub since: Option<Timestamp>,
    /// The cursor: the last id of the previous page (events come newest first).
    pub before: Option<String>,
    pub limit: Option<u32>,
}

/// What an audited operation acted on, as far as it is known.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub kind: &'static str,
    pub id: Option<String>,
    pub name: Option<String>,
}

impl Latchkey {
    /// Record one event. A failure to write it is logged, not returned: the operation it records
    /// has already happened.
    pub(crate) async fn record(
        &self,
        actor: &Actor,
        workspace_id: Option<&str>,
        action: &str,
        target: Option<Target>,
        error: Option<&CoreError>,
    ) {
        let (actor_kind, actor_id, actor_name) = match &actor.kind {
            ActorKind::Operator => ("operator", None, None),
            ActorKind::ApiCredential { id, name } => (
                "api_credential",
                Some(id.to_string()),
                Some(name.to_string()),
            ),
        };
        let row = AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: workspace_id.map(str::to_owned),
            at: Timestamp::now().millis(),
            actor_kind: actor_kind.to_owned(),
            actor_id,
            actor_name,
            action: action.to_owned(),
            target_kind: target.as_ref().map(|t| t.kind.to_owned()),
            target_id: target.as_ref().and_then(|t| t.id.clone()),
            target_name: target.as_ref().and_then(|t| t.name.clone()),
            outcome: if error.is_some() {
                "failure"
            } else {
                "success"
            }
            .to_owned(),
            detail: error.map(|e| e.code().to_owned()),
            request_id: actor.request_id.clone(),
            client_addr: actor.client.map(|ip| ip.to_string()),
        };
        if let Err(e) = self.repo.append_audit(&row).await {
            tracing::error!(action, error = %e, "could not write the audit event");
        }
    }

    /// Record the outcome of an operation on a workspace's object, and pass the result on.
    pub(crate) async fn audited<T>(
        &self,
        actor: &Actor,
        workspace: &str,
        action: &str,
        attempted: Target,
        target_of: impl Fn(&T) -> Target,
        result: Result<T>,
    ) -> Result<T> {
        let workspace_id = match self.repo.workspace_by_slug(workspace).await {
            Ok(ws) => ws.map(|w| w.id),
            Err(_) => None,
        };
        match &result {
            Ok(value) => {
                self.record(
                    actor,
                    workspace_id.as_deref(),
                    action,
                    Some(target_of(value)),
                    None,
                )
                .await
            }
            Err(e) => {
                self.record(
                    actor,
                    workspace_id.as_deref(),
                    action,
                    Some(attempted),
                    Some(e),
                )
                .await
            }
        }
        result
    }

    /// A workspace's audit events, newest first.
    pub async fn list_audit(
        &self,
        workspace: &str,
        query: &AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        let ws = self.workspace_row(workspace).await?;
        let limit = query
            .limit
            .unwrap_or(crate::DEFAULT_PAGE)
            .clamp(1, crate::MAX_PAGE);
        let filter = AuditFilter {
            action: query.action.clone(),
            target: query.target.clone(),
            actor: query.actor.clone(),
            since: query.since.map(Timestamp::millis),
        };
        let rows = self
            .repo
            .list_audit(&ws.id, &filter, query.before.as_deref(), limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        let items: Vec<AuditEvent> = rows.into_iter().take(limit as usize).map(view).collect();
        let next = if more {
            items.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

fn view(row: AuditRow) -> AuditEvent {
    AuditEvent {
        id: row.id,
        at: Timestamp(row.at),
        actor: AuditActor {
            kind: row.actor_kind,
            id: row.actor_id,
            name: row.actor_name,
        },
        action: row.action,
        target: row.target_kind.map(|kind| AuditTarget {
            kind,
            id: row.target_id,
            name: row.target_name,
        }),
        outcome: row.outcome,
        detail: row.detail,
        request_id: row.request_id,
        client: row.client_addr,
    }
}
