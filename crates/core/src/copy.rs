//! Moving a store to another backend (e.g. from the embedded SQLite file to PostgreSQL): every row
//! as it is — envelopes stay sealed, nothing is decrypted — into an empty target, with the signed-out
//! web sessions and the weekly quotas' counts, then a check that the counts match and that every
//! copied credential opens with the key ring.

use crate::Latchkey;
use crate::error::{CoreError, Result};
use crate::startup::{KEY_CHECK, Settings};
use latchkey_store::{CredentialFilter, Location, Repository};
use latchkey_vault::Binding;
use std::sync::Arc;

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyCounts {
    pub workspaces: u64,
    pub credentials: u64,
    pub api_credentials: u64,
    pub audit_events: u64,
}

impl CopyCounts {
    pub fn total(&self) -> u64 {
        self.workspaces + self.credentials + self.api_credentials + self.audit_events
    }
}

const BATCH: u32 = 500;

/// Copy the store `settings` describe (opened with its master key, which must be right) into the
/// empty store at `to`. `progress(done, total)` is called as rows are copied.
pub async fn copy_store(
    settings: &Settings,
    to: &str,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<CopyCounts> {
    let target_location = Location::resolve(Some(to), &settings.data_dir)
        .map_err(|e| CoreError::Setup(e.to_string()))?;
    let (lk, _) = Latchkey::start(settings).await?;
    let source = lk.repository().clone();
    let target = latchkey_store::open(&target_location)
        .await
        .map_err(|e| CoreError::Setup(e.to_string()))?;
    refuse_non_empty(target.as_ref(), &target_location).await?;

    let workspaces = source.list_workspaces().await?;
    let expected = CopyCounts {
        workspaces: workspaces.len() as u64,
        credentials: source.count_credentials().await?,
        api_credentials: source.count_all_api_credentials().await?,
        audit_events: source.count_audit().await?,
    };
    let total = expected.total();
    let mut done = 0;
    progress(done, total);

    for ws in &workspaces {
        target.insert_workspace(ws).await?;
        done += 1;
    }
    progress(done, total);
    if let Some(check) = source.get_meta(KEY_CHECK).await? {
        target.set_meta(KEY_CHECK, &check).await?;
    }
    let mut credentials = 0;
    let mut api_credentials = 0;
    for ws in &workspaces {
        let mut after: Option<String> = None;
        loop {
            let rows = source
                .list_credentials(
                    &ws.id,
                    &CredentialFilter::default(),
                    after.as_deref(),
                    BATCH,
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in &rows {
                target.insert_credential(row).await?;
            }
            credentials += rows.len() as u64;
            done += rows.len() as u64;
            progress(done, total);
        }
        for row in source.list_api_credentials(&ws.id).await? {
            target.insert_api_credential(&row).await?;
            api_credentials += 1;
            done += 1;
        }
        progress(done, total);
    }
    let mut audit_events = 0;
    let mut after: Option<String> = None;
    loop {
        let rows = source.audit_after(after.as_deref(), BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        for row in &rows {
            target.append_audit(row).await?;
        }
        audit_events += rows.len() as u64;
        done += rows.len() as u64;
        progress(done, total);
    }
    // Signed-out web sessions stay signed out on the copy (their cookies open with the same key).
    let now = crate::model::Timestamp::now().millis();
    for (id, expires_at) in source.revoked_sessions(now).await? {
        target.revoke_session(&id, expires_at, now).await?;
    }
    // The weekly quotas' counts, so that the copy does not send a provider account's used-up
    // week again.
    let quotas = source.quota_usage().await?;
    for usage in &quotas {
        target.put_quota_usage(usage).await?;
    }
    // Rows written to the source meanwhile (a server still running on it) are not copied: the
    // counts below tell. Stop the servers first.
    let copied = CopyCounts {
        workspaces: workspaces.len() as u64,
        credentials,
        api_credentials,
        audit_events,
    };
    verify_copy(&lk, target, copied, expected, &quotas).await?;
    Ok(copied)
}

async fn refuse_non_empty(target: &dyn Repository, location: &Location) -> Result<()> {
    let mut found = Vec::new();
    let workspaces = target.list_workspaces().await?.len();
    if workspaces > 0 {
        found.push(format!("{workspaces} workspace(s)"));
    }
    let credentials = target.count_credentials().await?;
    if credentials > 0 {
        found.push(format!("{credentials} credential(s)"));
    }
    let audit = target.count_audit().await?;
    if audit > 0 {
        found.push(format!("{audit} audit event(s)"));
    }
    if target.get_meta(KEY_CHECK).await?.is_some() {
        found.push("a master key check".to_owned());
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(CoreError::TargetNotEmpty {
        target: location.describe(),
        found: found.join(", "),
    })
}

/// The counts in the target match, and every credential there opens with the key ring.
async fn verify_copy(
    lk: &Latchkey,
    target: Arc<dyn Repository>,
    copied: CopyCounts,
    expected: CopyCounts,
    quotas: &[latchkey_store::QuotaUsage],
) -> Result<()> {
    let found = CopyCounts {
        workspaces: target.list_workspaces().await?.len() as u64,
        credentials: target.count_credentials().await?,
        api_credentials: target.count_all_api_credentials().await?,
        audit_events: target.count_audit().await?,
    };
    if found != copied || copied != expected {
        return Err(CoreError::CopyMismatch(format!(
            "the source holds {expected:?}, {copied:?} were copied and the target holds {found:?}; was the source in use? Stop every server on it and copy into an empty target again"
        )));
    }
    let copied_quotas = target.quota_usage().await?;
    if copied_quotas != quotas {
        return Err(CoreError::CopyMismatch(format!(
            "the target's weekly quota counts differ from the source's ({} in the source, {} in the target); was the source in use? Stop every server on it and copy into an empty target again",
            quotas.len(),
            copied_quotas.len()
        )));
    }
    let ring = lk.key_ring();
    for ws in target.list_workspaces().await? {
        let mut after: Option<String> = None;
        loop {
            let rows = target
                .list_credentials(
                    &ws.id,
                    &CredentialFilter::default(),
                    after.as_deref(),
                    BATCH,
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in &rows {
                ring.open(
                    &Binding::new(&row.workspace_id, &row.id, row.revision),
                    &row.envelope,
                )
                .map_err(|e| {
                    CoreError::CopyMismatch(format!(
                        "credential {} does not open in the target: {e}",
                        row.id
                    ))
                })?;
            }
        }
    }
    Ok(())
}
