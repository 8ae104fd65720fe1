//! The credential operations: create-and-verify, list, show, rename, describe, replace secrets,
//! verify, disable, enable, delete. Every rule about credentials lives here.

use crate::Latchkey;
use crate::audit::Target;
use crate::error::{CoreError, Result};
use crate::model::{
    Actor, Credential, CredentialName, SecretFieldView, Status, Timestamp, parse_description,
};
use crate::verify::{Values, Verification};
use latchkey_catalog::Provider;
use latchkey_store::{CredentialFilter, CredentialRow, StoreError, WorkspaceRow};
use latchkey_vault::{Binding, Secret, SecretFields};
use std::collections::BTreeMap;

/// A credential to create. Every value (secret or not) arrives as a [`Secret`]; the catalog
/// decides which are secret.
#[derive(Debug)]
pub struct NewCredential {
    pub provider: String,
    pub name: String,
    pub description: Option<String>,
    pub fields: BTreeMap<String, Secret>,
}

/// Whether to ask the provider before saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Save only what the provider accepts (the default).
    Verify,
    /// Save without asking; the credential is `unverified`.
    Skip,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub provider: Option<String>,
    pub status: Option<Status>,
    /// Part of the name, any case.
    pub name_contains: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to read the next page; `None` on the last page.
    pub next: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

const ACTIVE: &str = "active";
const UNVERIFIED: &str = "unverified";
const INVALID: &str = "invalid";

/// The outcome of `verify`: the credential as it now stands and what the provider said.
#[derive(Debug)]
pub struct VerifyReport {
    pub credential: Credential,
    pub verification: Verification,
}

impl Latchkey {
    /// Create a credential: check every field against the catalog, ask the provider (unless told
    /// not to), and only then store it, sealed. Nothing is saved when anything fails.
    async fn create_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        new: NewCredential,
        mode: VerifyMode,
    ) -> Result<Credential> {
        let ws = self.workspace_row(workspace).await?;
        let provider = self.provider(&new.provider)?;
        let name = CredentialName::parse(&new.name)?;
        let description = parse_description(new.description.as_deref().unwrap_or(""))?;
        let (settings, secrets) = split_fields(provider, new.fields);
        check_fields(provider, &settings, &secrets)?;
        if self
            .repo
            .credential_by_name(&ws.id, &name.key())
            .await?
            .is_some()
        {
            return Err(CoreError::DuplicateName {
                name: name.as_str().to_owned(),
            });
        }

        let now = Timestamp::now();
        let (status, verified_at, identity) = match mode {
            VerifyMode::Skip => (UNVERIFIED, None, None),
            VerifyMode::Verify => {
                let values = values_of(&settings, &secrets);
                match self.ask_provider(provider, &values).await? {
                    Verification::Valid { identity } => (ACTIVE, Some(now.millis()), identity),
                    other => return Err(other.into_error(provider).expect("not valid")),
                }
            }
        };

        let id = uuid::Uuid::now_v7().to_string();
        let revision = 1;
        let (envelope, key_id) = self.seal(&ws.id, &id, revision, &secrets)?;
        let row = CredentialRow {
            id,
            workspace_id: ws.id.clone(),
            provider: provider.id.clone(),
            name: name.as_str().to_owned(),
            name_key: name.key(),
            description,
            settings: to_json(&settings),
            secret_hints: to_json(&hints(&secrets)),
            envelope,
            key_id,
            status: status.to_owned(),
            status_reason: None,
            enabled: true,
            verified_at,
            identity,
            last_used_at: None,
            revision,
            created_at: now.millis(),
            updated_at: now.millis(),
        };
        self.repo
            .insert_credential(&row)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => CoreError::DuplicateName {
                    name: row.name.clone(),
                },
                other => other.into(),
            })?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, credential = %row.id, provider = %row.provider, status, "credential created");
        self.view(&ws, &row)
    }

    /// A page of a workspace's credentials, in creation order.
    pub async fn list_credentials(
        &self,
        workspace: &str,
        query: &ListQuery,
    ) -> Result<Page<Credential>> {
        let ws = self.workspace_row(workspace).await?;
        if let Some(provider) = &query.provider {
            self.provider(provider)?;
        }
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let filter = CredentialFilter {
            provider: query.provider.clone(),
            status: query
                .status
                .filter(|s| *s != Status::Disabled)
                .map(|s| s.as_str().to_owned()),
            enabled: query.status.map(|s| s != Status::Disabled),
            name_contains: query
                .name_contains
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_lowercase),
        };
        let rows = self
            .repo
            .list_credentials(&ws.id, &filter, query.after.as_deref(), limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(|row| self.view(&ws, row))
            .collect::<Result<Vec<_>>>()?;
        let next = if more {
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// One credential, by id or by name.
    pub async fn get_credential(&self, workspace: &str, reference: &str) -> Result<Credential> {
        let (ws, row) = self.recent_row(workspace, reference).await?;
        self.view(&ws, &row)
    }

    /// The stored row of one credential, by id or by name, from the read cache when it was read
    /// in the last second (see [`crate::cache`]); reads that only look, such as the proxy's.
    pub(crate) async fn recent_row(
        &self,
        workspace: &str,
        reference: &str,
    ) -> Result<(std::sync::Arc<WorkspaceRow>, std::sync::Arc<CredentialRow>)> {
        let ws = self.workspace_row(workspace).await?;
        let trimmed = reference.trim();
        let has_upper = if trimmed.is_ascii() {
            trimmed.bytes().any(|b| b.is_ascii_uppercase())
        } else {
            trimmed.chars().any(char::is_uppercase)
        };
        let key = if has_upper {
            std::borrow::Cow::Owned(trimmed.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(trimmed)
        };
        if let Some(hit) = self.reads.get(workspace, &key) {
            return Ok((ws, hit));
        }
        let generation = self.reads.generation();
        let row = std::sync::Arc::new(self.find(&ws, reference).await?);
        self.reads.put(workspace, &key, &row, generation);
        Ok((ws, row))
    }

    async fn rename_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        new_name: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let name = CredentialName::parse(new_name)?;
        self.change(
            actor,
            workspace,
            reference,
            expected_revision,
            "renamed",
            |row| {
                row.name = name.as_str().to_owned();
                row.name_key = name.key();
                Ok(())
            },
        )
        .await
    }

    async fn describe_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        description: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let description = parse_description(description)?;
        self.change(
            actor,
            workspace,
            reference,
            expected_revision,
            "described",
            |row| {
                row.description = description.clone();
                Ok(())
            },
        )
        .await
    }

    async fn disable_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        self.change(
            actor,
            workspace,
            reference,
            expected_revision,
            "disabled",
            |row| {
                row.enabled = false;
                Ok(())
            },
        )
        .await
    }

    async fn enable_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        self.change(
            actor,
            workspace,
            reference,
            expected_revision,
            "enabled",
            |row| {
                row.enabled = true;
                Ok(())
            },
        )
        .await
    }

    /// Replace some of a credential's values (typically its secrets). The merged values are
    /// verified first (unless told not to): a rejected new secret leaves the old one in place.
    async fn replace_fields_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        fields: BTreeMap<String, Secret>,
        mode: VerifyMode,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find(&ws, reference).await?;
        check_revision(&row, expected_revision)?;
        let provider = self.provider(&row.provider)?;
        let mut settings: BTreeMap<String, String> = from_json(&row.settings);
        let mut secrets = self.open(&row)?;
        let (new_settings, new_secrets) = split_fields(provider, fields);
        if new_settings.is_empty() && new_secrets.is_empty() {
            return Err(CoreError::InvalidField(
                latchkey_catalog::FieldError::Missing {
                    field: provider
                        .secret_fields()
                        .next()
                        .map(|f| f.key.clone())
                        .unwrap_or_default(),
                    label: "A new value".to_owned(),
                    help: "Give at least one field to replace.".to_owned(),
                },
            ));
        }
        settings.extend(new_settings);
        secrets.extend(new_secrets);
        check_fields(provider, &settings, &secrets)?;
        let now = Timestamp::now();
        let mut updated = row.clone();
        match mode {
            VerifyMode::Skip => {
                updated.status = UNVERIFIED.to_owned();
                updated.status_reason = None;
            }
            VerifyMode::Verify => match self
                .ask_provider(provider, &values_of(&settings, &secrets))
                .await?
            {
                Verification::Valid { identity } => {
                    updated.status = ACTIVE.to_owned();
                    updated.status_reason = None;
                    updated.verified_at = Some(now.millis());
                    updated.identity = identity;
                }
                other => return Err(other.into_error(provider).expect("not valid")),
            },
        }
        updated.settings = to_json(&settings);
        updated.secret_hints = to_json(&hints(&secrets));
        self.save(&ws, updated, &secrets, actor, "fields replaced")
            .await
    }

    /// Ask the provider whether the stored credential still works, and record the answer:
    /// valid → `active`; rejected → `invalid` with the reason; unreachable → unchanged.
    async fn verify_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
    ) -> Result<VerifyReport> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find(&ws, reference).await?;
        let provider = self.provider(&row.provider)?;
        let settings = from_json(&row.settings);
        let secrets = self.open(&row)?;
        let verification = self
            .ask_provider(provider, &values_of(&settings, &secrets))
            .await?;
        let now = Timestamp::now().millis();
        let mut updated = row.clone();
        match &verification {
            Verification::Valid { identity } => {
                updated.status = ACTIVE.to_owned();
                updated.status_reason = None;
                updated.verified_at = Some(now);
                updated.identity = identity.clone();
            }
            Verification::Rejected(_) => {
                updated.status = INVALID.to_owned();
                updated.status_reason = verification
                    .clone()
                    .into_error(provider)
                    .map(|e| e.to_string());
                updated.verified_at = Some(now);
            }
            Verification::Unreachable { .. } => {
                return Ok(VerifyReport {
                    credential: self.view(&ws, &row)?,
                    verification,
                });
            }
        }
        let credential = self.save(&ws, updated, &secrets, actor, "verified").await?;
        Ok(VerifyReport {
            credential,
            verification,
        })
    }

    async fn delete_credential_inner(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find(&ws, reference).await?;
        check_revision(&row, expected_revision)?;
        let view = self.view(&ws, &row)?;
        let deleted = self
            .repo
            .delete_credential(&ws.id, &row.id, Some(row.revision))
            .await;
        self.reads.clear();
        deleted.map_err(|e| self.write_error(e, &ws, reference, &row.name))?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, credential = %row.id, "credential deleted");
        Ok(view)
    }

    // ----- internals -----

    pub(crate) fn provider(&self, id: &str) -> Result<&Provider> {
        self.catalog
            .get(id)
            .ok_or_else(|| CoreError::UnknownProvider {
                given: id.to_owned(),
                known: self.catalog.ids().into_iter().map(str::to_owned).collect(),
            })
    }

    pub(crate) async fn find(&self, ws: &WorkspaceRow, reference: &str) -> Result<CredentialRow> {
        let reference = reference.trim();
        if uuid::Uuid::parse_str(reference).is_ok()
            && let Some(row) = self
                .repo
                .get_credential(&ws.id, &reference.to_ascii_lowercase())
                .await?
        {
            return Ok(row);
        }
        if let Some(row) = self
            .repo
            .credential_by_name(&ws.id, &reference.to_lowercase())
            .await?
        {
            return Ok(row);
        }
        Err(CoreError::CredentialNotFound {
            workspace: ws.slug.clone(),
            reference: reference.chars().take(200).collect(),
        })
    }

    /// Apply a change that touches no secret, under the revision rule.
    async fn change(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
        what: &str,
        apply: impl FnOnce(&mut CredentialRow) -> Result<()>,
    ) -> Result<Credential> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find(&ws, reference).await?;
        check_revision(&row, expected_revision)?;
        let secrets = self.open(&row)?;
        let mut updated = row.clone();
        apply(&mut updated)?;
        if updated.name_key != row.name_key
            && let Some(other) = self
                .repo
                .credential_by_name(&ws.id, &updated.name_key)
                .await?
            && other.id != row.id
        {
            return Err(CoreError::DuplicateName { name: updated.name });
        }
        self.save(&ws, updated, &secrets, actor, what).await
    }

    /// Write a changed row at the next revision. The secrets are sealed again because their
    /// associated data binds them to the revision.
    pub(crate) async fn save(
        &self,
        ws: &WorkspaceRow,
        mut row: CredentialRow,
        secrets: &SecretFields,
        actor: &Actor,
        what: &str,
    ) -> Result<Credential> {
        let expected = row.revision;
        row.revision = expected + 1;
        row.updated_at = Timestamp::now().millis();
        let (envelope, key_id) = self.seal(&ws.id, &row.id, row.revision, secrets)?;
        row.envelope = envelope;
        row.key_id = key_id;
        let name = row.name.clone();
        let written = self.repo.update_credential(&row, expected).await;
        // After the write: a read that began before it is then not kept.
        self.reads.clear();
        written.map_err(|e| self.write_error(e, ws, &row.id, &name))?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, credential = %row.id, revision = row.revision, "credential {what}");
        self.view(ws, &row)
    }

    fn write_error(
        &self,
        e: StoreError,
        ws: &WorkspaceRow,
        reference: &str,
        name: &str,
    ) -> CoreError {
        match e {
            StoreError::Conflict => CoreError::StaleRevision,
            StoreError::Duplicate => CoreError::DuplicateName {
                name: name.to_owned(),
            },
            StoreError::NotFound => CoreError::CredentialNotFound {
                workspace: ws.slug.clone(),
                reference: reference.to_owned(),
            },
            other => other.into(),
        }
    }

    /// Seal `secrets` for one revision of one credential: the envelope and the id of the master
    /// key that wraps its data key (both from the same ring).
    fn seal(
        &self,
        workspace_id: &str,
        id: &str,
        revision: i64,
        secrets: &SecretFields,
    ) -> Result<(Vec<u8>, String)> {
        let plain = latchkey_vault::encode_fields(secrets);
        let ring = self.keys.ring();
        let envelope = ring
            .seal(&Binding::new(workspace_id, id, revision), plain.expose())
            .map_err(|e| CoreError::Internal(format!("sealing failed: {e}")))?;
        Ok((envelope, ring.primary_id().as_str().to_owned()))
    }

    /// Open a credential's secrets. An envelope under a key this process does not hold yet (a
    /// rotation elsewhere) makes it read the key file again once.
    pub(crate) fn open(&self, row: &CredentialRow) -> Result<SecretFields> {
        let vault_error = |source| CoreError::Vault {
            credential: row.name.clone(),
            source,
        };
        let binding = Binding::new(&row.workspace_id, &row.id, row.revision);
        let plain = match self.keys.ring().open(&binding, &row.envelope) {
            Err(latchkey_vault::VaultError::UnknownKey(_)) if self.reload_key_ring()? => {
                self.keys.ring().open(&binding, &row.envelope)
            }
            other => other,
        }
        .map_err(vault_error)?;
        latchkey_vault::decode_fields(plain.expose()).map_err(vault_error)
    }

    pub(crate) fn view(&self, ws: &WorkspaceRow, row: &CredentialRow) -> Result<Credential> {
        let hints: BTreeMap<String, String> = from_json(&row.secret_hints);
        let provider = self.catalog.get(&row.provider);
        let mut secrets: BTreeMap<String, SecretFieldView> = BTreeMap::new();
        if let Some(provider) = provider {
            for field in provider.secret_fields() {
                let hint = hints.get(&field.key);
                secrets.insert(
                    field.key.clone(),
                    SecretFieldView {
                        set: hint.is_some(),
                        hint: hint.cloned().unwrap_or_default(),
                    },
                );
            }
        }
        let status = if !row.enabled {
            Status::Disabled
        } else {
            match row.status.as_str() {
                ACTIVE => Status::Active,
                INVALID => Status::Invalid,
                _ => Status::Unverified,
            }
        };
        Ok(Credential {
            id: row.id.clone(),
            workspace: ws.slug.clone(),
            provider: row.provider.clone(),
            provider_name: provider
                .map(|p| p.name.clone())
                .unwrap_or_else(|| row.provider.clone()),
            name: row.name.clone(),
            description: row.description.clone(),
            settings: from_json(&row.settings),
            secrets,
            status,
            status_reason: if row.status == INVALID {
                row.status_reason.clone()
            } else {
                None
            },
            verified_at: row.verified_at.map(Timestamp),
            identity: row.identity.clone(),
            last_used_at: row.last_used_at.map(Timestamp),
            revision: row.revision,
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        })
    }
}

/// The audited entry points: each records its outcome in the audit log.
impl Latchkey {
    pub async fn create_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        new: NewCredential,
        mode: VerifyMode,
    ) -> Result<Credential> {
        let attempted = Target {
            kind: "credential",
            id: None,
            name: Some(new.name.trim().chars().take(200).collect()),
        };
        let result = self
            .create_credential_inner(actor, workspace, new, mode)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.create",
            attempted,
            target,
            result,
        )
        .await
    }

    pub async fn rename_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        new_name: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .rename_credential_inner(actor, workspace, reference, new_name, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.rename",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    pub async fn describe_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        description: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .describe_credential_inner(actor, workspace, reference, description, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.describe",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    pub async fn disable_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .disable_credential_inner(actor, workspace, reference, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.disable",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    pub async fn enable_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .enable_credential_inner(actor, workspace, reference, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.enable",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    /// Replace some of a credential's values (typically its secrets). The merged values are
    /// verified first (unless told not to): a rejected new secret leaves the old one in place.
    pub async fn replace_fields(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        fields: BTreeMap<String, Secret>,
        mode: VerifyMode,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .replace_fields_inner(actor, workspace, reference, fields, mode, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.replace_secrets",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    /// Ask the provider whether the stored credential still works, and record the answer:
    /// valid → `active`; rejected → `invalid` with the reason; unreachable → unchanged.
    pub async fn verify_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
    ) -> Result<VerifyReport> {
        let result = self
            .verify_credential_inner(actor, workspace, reference)
            .await;
        let workspace_id = self
            .repo
            .workspace_by_slug(workspace)
            .await
            .ok()
            .flatten()
            .map(|w| w.id);
        let workspace_id = workspace_id.as_deref();
        match &result {
            Ok(report) => {
                // A rejection or an unreachable provider is recorded as a failed verification.
                let error = match &report.verification {
                    Verification::Valid { .. } => None,
                    other => self
                        .provider(&report.credential.provider)
                        .ok()
                        .and_then(|p| other.clone().into_error(p)),
                };
                let t = Some(target(&report.credential));
                self.record(actor, workspace_id, "credential.verify", t, error.as_ref())
                    .await;
            }
            Err(e) => {
                self.record(
                    actor,
                    workspace_id,
                    "credential.verify",
                    Some(attempted(reference)),
                    Some(e),
                )
                .await
            }
        }
        result
    }

    pub async fn delete_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<Credential> {
        let result = self
            .delete_credential_inner(actor, workspace, reference, expected_revision)
            .await;
        self.audited(
            actor,
            workspace,
            "credential.delete",
            attempted(reference),
            target,
            result,
        )
        .await
    }
}

fn target(c: &Credential) -> Target {
    Target {
        kind: "credential",
        id: Some(c.id.clone()),
        name: Some(c.name.clone()),
    }
}

fn attempted(reference: &str) -> Target {
    let reference: String = reference.trim().chars().take(200).collect();
    if uuid::Uuid::parse_str(&reference).is_ok() {
        Target {
            kind: "credential",
            id: Some(reference),
            name: None,
        }
    } else {
        Target {
            kind: "credential",
            id: None,
            name: Some(reference),
        }
    }
}

fn check_revision(row: &CredentialRow, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(r) if r != row.revision => Err(CoreError::StaleRevision),
        _ => Ok(()),
    }
}

/// Split submitted values into non-secret settings and secrets, per the catalog; empty values
/// count as absent. Unknown keys go with the settings so that the field check names them.
fn split_fields(
    provider: &Provider,
    fields: BTreeMap<String, Secret>,
) -> (BTreeMap<String, String>, SecretFields) {
    let mut settings = BTreeMap::new();
    let mut secrets = SecretFields::new();
    for (key, value) in fields {
        if value.is_empty() {
            continue;
        }
        match provider.field(&key) {
            Some(field) if field.secret => {
                secrets.insert(key, value);
            }
            _ => {
                settings.insert(key, value.expose().to_owned());
            }
        }
    }
    (settings, secrets)
}

fn check_fields(
    provider: &Provider,
    settings: &BTreeMap<String, String>,
    secrets: &SecretFields,
) -> Result<()> {
    let values = values_of(settings, secrets);
    provider.check_values(&values.pairs)?;
    Ok(())
}

pub(crate) fn values_of<'a>(
    settings: &'a BTreeMap<String, String>,
    secrets: &'a SecretFields,
) -> Values<'a> {
    let mut pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.extend(secrets.iter().map(|(k, v)| (k.as_str(), v.expose())));
    Values {
        pairs,
        secrets: secrets.values().map(Secret::expose).collect(),
    }
}

fn hints(secrets: &SecretFields) -> BTreeMap<String, String> {
    secrets.iter().map(|(k, v)| (k.clone(), v.hint())).collect()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}
