//! Issued API credentials: the credentials Latchkey gives its own clients, the way a
//! contact-center platform does. Add (the token is shown once), list, show, rename, disable,
//! enable, regenerate (optionally keeping the old token valid for a grace period), delete — and
//! authenticate a presented token.
//!
//! Rules that live here:
//! - a token's shape, prefix and checksum are checked before any lookup (`latchkey_vault::token`);
//! - only the SHA-256 of a token is stored; the final comparison is constant-time;
//! - only the operator (CLI) or an admin API credential may manage API credentials;
//! - at most [`MAX_API_CREDENTIALS`] per workspace; grace periods up to [`MAX_GRACE_SECONDS`];
//! - successful lookups may be cached for [`CACHE_TTL`] (from [`REFRESH_AFTER`] on, one request
//!   looks the token up again while the others still use the entry, and a lookup that finds it
//!   invalid ends the entry), and every change made through this process drops that credential's
//!   entries at once; `last_used_at` is written at most once per credential per [`TOUCH_EVERY`].

use crate::Latchkey;
use crate::audit::Target;
use crate::error::{CoreError, Result};
use crate::model::{Actor, ActorKind, CredentialName, Timestamp, WorkspaceSlug};
use latchkey_store::{ApiCredentialRow, AuditRow, StoreError, WorkspaceRow};
use latchkey_vault::{Secret, TokenError, TokenHash};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most API credentials one workspace may hold.
pub const MAX_API_CREDENTIALS: usize = 100;
/// The longest grace period a regenerated token's predecessor may keep working.
pub const MAX_GRACE_SECONDS: u64 = 86_400;
/// How long a successful lookup may be reused without asking the database.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// From this age on, the first request to find a cached success looks the token up again while
/// the others still use the entry (until [`CACHE_TTL`]), so that the requests of a busy token do
/// not all ask the database at once when the entry expires.
const REFRESH_AFTER: Duration = Duration::from_secs(4);
/// `last_used_at` is written at most this often per credential (per process).
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Past this many entries, the in-memory maps drop what has expired (or everything).
const MAX_ENTRIES: usize = 10_000;

/// What an API credential may do. Only an admin may manage API credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role> {
        match text {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(CoreError::InvalidField(
                latchkey_catalog::FieldError::Invalid {
                    field: "role".to_owned(),
                    label: "Role".to_owned(),
                    reason: "must be admin or member".to_owned(),
                },
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API credential as shown: never the token or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiCredential {
    pub id: String,
    /// The workspace's slug.
    pub workspace: String,
    pub name: String,
    pub role: Role,
    /// `lkt_…` and the token's last 4 characters.
    pub hint: String,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// While the token before the last regenerate still works: until when.
    pub grace_until: Option<Timestamp>,
    pub revision: i64,
}

/// Who a request authenticated as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The workspace's slug.
    pub workspace: String,
    /// Shared with the actor each request makes of it, so that making one allocates nothing.
    pub api_credential_id: Arc<str>,
    pub name: Arc<str>,
    pub role: Role,
}

impl Principal {
    /// The actor to record in the audit log.
    pub fn actor(&self) -> Actor {
        Actor::api_credential(self.api_credential_id.clone(), self.name.clone())
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why authentication failed — for the log only; every failure answers the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token, or not the shape of a Latchkey token.
    Malformed,
    /// The shape is right but the checksum is not: a typo or a truncated token.
    BadChecksum,
    /// No API credential has this token (or the database could not be asked).
    Unknown,
    Disabled,
    /// The Basic username names another workspace than the token's.
    WrongWorkspace,
    /// The token was replaced by a regenerate and its grace period is over.
    GraceExpired,
    /// The database could not be asked: not the client's fault (the server answers 503).
    Unavailable,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "malformed",
            AuthFailure::BadChecksum => "bad_checksum",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Unavailable => "unavailable",
            AuthFailure::Disabled => "disabled",
            AuthFailure::WrongWorkspace => "wrong_workspace",
            AuthFailure::GraceExpired => "grace_expired",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// In-memory authentication state of one process: the short-lived cache of successful lookups,
/// when each credential's last use was last written, and workspace slugs by id.
#[derive(Default)]
pub(crate) struct AuthState {
    inner: Mutex<AuthInner>,
}

#[derive(Default)]
struct AuthInner {
    /// Bumped by every invalidation: a lookup that started before it is not cached.
    epoch: u64,
    /// By the hash of a token that was found (the keys are SHA-256 digests and the ids below
    /// are Latchkey's own, never a caller's text, so a fast hash will do).
    verified: HashMap<TokenHash, Cached, foldhash::fast::RandomState>,
    touched: HashMap<String, Instant, foldhash::fast::RandomState>,
    slugs: HashMap<String, String, foldhash::fast::RandomState>,
}

#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    at: Instant,
    /// Set when the token is a predecessor in its grace period (UNIX milliseconds).
    grace_until: Option<i64>,
    /// A request is looking the token up again (see [`REFRESH_AFTER`]).
    refreshing: bool,
}

impl AuthState {
    fn lock(&self) -> std::sync::MutexGuard<'_, AuthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached success for `hash`, or `None` when the caller is to look the token up (and
    /// `remember` it): when there is none, when it is past [`CACHE_TTL`], and for the first
    /// caller to find it past [`REFRESH_AFTER`].
    fn cached(&self, hash: &TokenHash) -> Option<Cached> {
        let mut inner = self.lock();
        let entry = inner.verified.get_mut(hash)?;
        let age = entry.at.elapsed();
        if age >= CACHE_TTL {
            inner.verified.remove(hash);
            return None;
        }
        if age >= REFRESH_AFTER && !entry.refreshing {
            entry.refreshing = true;
            return None;
        }
        Some(entry.clone())
    }

    /// A lookup found the token no longer valid: no request uses its cached success any more.
    fn forget_token(&self, hash: &TokenHash) {
        self.lock().verified.remove(hash);
    }

    fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Cache a success, unless something was invalidated since the lookup began.
    fn remember(&self, epoch: u64, hash: TokenHash, entry: Cached) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        if inner.verified.len() >= MAX_ENTRIES {
            inner.verified.retain(|_, e| e.at.elapsed() < CACHE_TTL);
            if inner.verified.len() >= MAX_ENTRIES {
                inner.verified.clear();
            }
        }
        inner.verified.insert(hash, entry);
    }

    /// Drop every cached success of this credential, at once.
    pub(crate) fn forget(&self, api_credential_id: &str) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner
            .verified
            .retain(|_, e| &*e.principal.api_credential_id != api_credential_id);
    }

    /// Drop every cached success (changes may have been missed).
    pub(crate) fn forget_all(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.verified.clear();
    }

    /// Whether this use should be written as `last_used_at` (then it counts as written).
    fn should_touch(&self, api_credential_id: &str) -> bool {
        let mut inner = self.lock();
        if let Some(at) = inner.touched.get(api_credential_id)
            && at.elapsed() < TOUCH_EVERY
        {
            return false;
        }
        if inner.touched.len() >= MAX_ENTRIES {
            inner.touched.retain(|_, at| at.elapsed() < TOUCH_EVERY);
        }
        inner
            .touched
            .insert(api_credential_id.to_owned(), Instant::now());
        true
    }
}

impl Latchkey {
    // ----- management -----

    async fn add_api_credential_inner(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        name: &str,
        role: Role,
    ) -> Result<(ApiCredential, Secret)> {
        may_manage(actor, caller_is_admin)?;
        let ws = self.workspace_row(workspace).await?;
        let name = parse_name(name)?;
        if self
            .repo
            .api_credential_by_name(&ws.id, &name.key())
            .await?
            .is_some()
        {
            return Err(CoreError::DuplicateApiCredentialName {
                name: name.as_str().to_owned(),
            });
        }
        if self.repo.count_api_credentials(&ws.id).await? >= MAX_API_CREDENTIALS as u64 {
            return Err(CoreError::ApiCredentialLimit {
                limit: MAX_API_CREDENTIALS,
            });
        }
        let (token, hash) = latchkey_vault::generate_token();
        let now = Timestamp::now().millis();
        let row = ApiCredentialRow {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: ws.id.clone(),
            name: name.as_str().to_owned(),
            name_key: name.key(),
            role: role.as_str().to_owned(),
            token_hash: hash.as_bytes().to_vec(),
            token_hint: latchkey_vault::token_hint(token.expose()),
            previous_hash: None,
            previous_expires_at: None,
            enabled: true,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            revision: 1,
        };
        self.repo
            .insert_api_credential(&row)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => CoreError::DuplicateApiCredentialName {
                    name: row.name.clone(),
                },
                other => other.into(),
            })?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, api_credential = %row.id, role = role.as_str(), "API credential created");
        Ok((api_view(&ws, &row), token))
    }

    /// A workspace's API credentials, in creation order. Never a token or its hash.
    pub async fn list_api_credentials(&self, workspace: &str) -> Result<Vec<ApiCredential>> {
        let ws = self.workspace_row(workspace).await?;
        Ok(self
            .repo
            .list_api_credentials(&ws.id)
            .await?
            .iter()
            .map(|row| api_view(&ws, row))
            .collect())
    }

    /// One API credential, by id or by name (any case).
    pub async fn get_api_credential(
        &self,
        workspace: &str,
        reference: &str,
    ) -> Result<ApiCredential> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find_api_credential(&ws, reference).await?;
        Ok(api_view(&ws, &row))
    }

    async fn rename_api_credential_inner(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        new_name: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        may_manage(actor, caller_is_admin)?;
        let name = parse_name(new_name)?;
        self.change_api_credential(
            actor,
            workspace,
            reference,
            expected_revision,
            "renamed",
            |row| {
                row.name = name.as_str().to_owned();
                row.name_key = name.key();
            },
        )
        .await
    }

    async fn set_api_credential_enabled(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        enabled: bool,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        may_manage(actor, caller_is_admin)?;
        self.change_api_credential(
            actor,
            workspace,
            reference,
            expected_revision,
            if enabled { "enabled" } else { "disabled" },
            |row| row.enabled = enabled,
        )
        .await
    }

    async fn regenerate_api_credential_inner(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        grace_seconds: Option<u64>,
        expected_revision: Option<i64>,
    ) -> Result<(ApiCredential, Secret)> {
        may_manage(actor, caller_is_admin)?;
        let grace = grace_seconds.unwrap_or(0);
        if grace > MAX_GRACE_SECONDS {
            return Err(CoreError::InvalidGracePeriod);
        }
        let (token, hash) = latchkey_vault::generate_token();
        let hint = latchkey_vault::token_hint(token.expose());
        let now = Timestamp::now().millis();
        let credential = self
            .change_api_credential(
                actor,
                workspace,
                reference,
                expected_revision,
                "regenerated",
                |row| {
                    let old = std::mem::replace(&mut row.token_hash, hash.as_bytes().to_vec());
                    row.token_hint = hint;
                    if grace > 0 {
                        row.previous_hash = Some(old);
                        row.previous_expires_at = Some(now + (grace as i64) * 1000);
                    } else {
                        row.previous_hash = None;
                        row.previous_expires_at = None;
                    }
                },
            )
            .await?;
        Ok((credential, token))
    }

    async fn delete_api_credential_inner(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        may_manage(actor, caller_is_admin)?;
        let ws = self.workspace_row(workspace).await?;
        let row = self.find_api_credential(&ws, reference).await?;
        check_revision(&row, expected_revision)?;
        let view = api_view(&ws, &row);
        let result = self
            .repo
            .delete_api_credential(&ws.id, &row.id, Some(row.revision))
            .await;
        self.api_auth.forget(&row.id);
        result.map_err(|e| api_write_error(e, &ws, reference, &row.name))?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, api_credential = %row.id, "API credential deleted");
        Ok(view)
    }

    /// Apply a change under the revision rule, write the next revision, and drop the
    /// credential's cached authentications.
    async fn change_api_credential(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
        what: &str,
        apply: impl FnOnce(&mut ApiCredentialRow),
    ) -> Result<ApiCredential> {
        let ws = self.workspace_row(workspace).await?;
        let row = self.find_api_credential(&ws, reference).await?;
        check_revision(&row, expected_revision)?;
        let mut updated = row.clone();
        apply(&mut updated);
        if updated.name_key != row.name_key
            && let Some(other) = self
                .repo
                .api_credential_by_name(&ws.id, &updated.name_key)
                .await?
            && other.id != row.id
        {
            return Err(CoreError::DuplicateApiCredentialName { name: updated.name });
        }
        updated.revision = row.revision + 1;
        updated.updated_at = Timestamp::now().millis();
        let result = self
            .repo
            .update_api_credential(&updated, row.revision)
            .await;
        // Drop cached successes even if the write failed: a stale cache is never worth keeping.
        self.api_auth.forget(&row.id);
        result.map_err(|e| api_write_error(e, &ws, &row.id, &updated.name))?;
        tracing::info!(actor = ?actor, workspace = %ws.slug, api_credential = %row.id, revision = updated.revision, "API credential {what}");
        Ok(api_view(&ws, &updated))
    }

    async fn find_api_credential(
        &self,
        ws: &WorkspaceRow,
        reference: &str,
    ) -> Result<ApiCredentialRow> {
        let reference = reference.trim();
        if uuid::Uuid::parse_str(reference).is_ok()
            && let Some(row) = self
                .repo
                .get_api_credential(&ws.id, &reference.to_ascii_lowercase())
                .await?
        {
            return Ok(row);
        }
        if let Some(row) = self
            .repo
            .api_credential_by_name(&ws.id, &reference.to_lowercase())
            .await?
        {
            return Ok(row);
        }
        Err(CoreError::ApiCredentialNotFound {
            workspace: ws.slug.clone(),
            reference: shown_reference(reference),
        })
    }

    // ----- authentication -----

    /// Authenticate a presented token. `workspace` is the Basic username when the client used
    /// Basic (it must name the token's workspace), `None` for Bearer.
    ///
    /// The prefix and checksum are checked before any database lookup; the lookup is by the
    /// token's SHA-256 and the match is confirmed in constant time; a regenerated token's
    /// predecessor works only until its grace period ends; a disabled credential is refused.
    /// Successes are cached for at most 5 s (changes through this process drop them at once), and
    /// `last_used_at` is written at most once a minute per credential.
    pub async fn authenticate(
        &self,
        workspace: Option<&str>,
        token: &str,
    ) -> std::result::Result<Arc<Principal>, AuthFailure> {
        let failure = |e| match e {
            TokenError::BadChecksum => AuthFailure::BadChecksum,
            _ => AuthFailure::Malformed,
        };
        let hash = latchkey_vault::token_hash(token).map_err(failure)?;
        let now = Timestamp::now().millis();

        // A cached hash is an issued token's, so its checksum was checked when it was cached.
        if let Some(hit) = self.api_auth.cached(&hash) {
            if hit.grace_until.is_some_and(|until| until <= now) {
                self.api_auth.forget(&hit.principal.api_credential_id);
                return Err(AuthFailure::GraceExpired);
            }
            check_workspace(workspace, &hit.principal.workspace)?;
            self.touch_api_credential(&hit.principal.api_credential_id, now)
                .await;
            return Ok(hit.principal);
        }

        let looked_up = self.look_up_token(workspace, token, hash, now).await;
        if let Err(failure) = looked_up
            && failure != AuthFailure::Unavailable
        {
            // A token found invalid again while others still used its cached success.
            self.api_auth.forget_token(&hash);
        }
        looked_up
    }

    /// `authenticate` past the cache: checks the token's checksum, looks it up, and caches a
    /// success.
    async fn look_up_token(
        &self,
        workspace: Option<&str>,
        token: &str,
        hash: TokenHash,
        now: i64,
    ) -> std::result::Result<Arc<Principal>, AuthFailure> {
        let failure = |e| match e {
            TokenError::BadChecksum => AuthFailure::BadChecksum,
            _ => AuthFailure::Malformed,
        };
        latchkey_vault::check_checksum(token).map_err(failure)?;
        let epoch = self.api_auth.epoch();
        let row = match self.repo.api_credential_by_hash(hash.as_bytes()).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(AuthFailure::Unknown),
            Err(e) => {
                tracing::error!(error = %e, "could not look up an API credential");
                return Err(AuthFailure::Unavailable);
            }
        };
        let grace_until = if hash.ct_eq_bytes(&row.token_hash) {
            None
        } else if row
            .previous_hash
            .as_deref()
            .is_some_and(|previous| hash.ct_eq_bytes(previous))
        {
            match row.previous_expires_at {
                Some(until) if until > now => Some(until),
                _ => return Err(AuthFailure::GraceExpired),
            }
        } else {
            return Err(AuthFailure::Unknown);
        };
        let Some(slug) = self.workspace_slug(&row.workspace_id).await else {
            return Err(AuthFailure::Unknown);
        };
        check_workspace(workspace, &slug)?;
        if !row.enabled {
            return Err(AuthFailure::Disabled);
        }
        let Ok(role) = Role::parse(&row.role) else {
            tracing::error!(api_credential = %row.id, "an API credential has an unknown role");
            return Err(AuthFailure::Unknown);
        };
        let principal = Arc::new(Principal {
            workspace: slug,
            api_credential_id: row.id.as_str().into(),
            name: row.name.as_str().into(),
            role,
        });
        self.api_auth.remember(
            epoch,
            hash,
            Cached {
                principal: principal.clone(),
                at: Instant::now(),
                grace_until,
                refreshing: false,
            },
        );
        self.touch_api_credential(&row.id, now).await;
        Ok(principal)
    }

    /// Record a failed authentication in the audit log (action `auth.failure`, the reason as its
    /// detail, in the workspace when one was named and exists). The actor is an unidentified API
    /// client.
    pub async fn record_auth_failure(
        &self,
        workspace: Option<&str>,
        failure: AuthFailure,
        request_id: Option<String>,
        client: Option<String>,
    ) {
        let workspace_id = match workspace {
            Some(slug) if WorkspaceSlug::parse(slug).is_ok() => self
                .repo
                .workspace_by_slug(slug)
                .await
                .ok()
                .flatten()
                .map(|w| w.id),
            _ => None,
        };
        let row = AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id,
            at: Timestamp::now().millis(),
            actor_kind: "api_credential".to_owned(),
            actor_id: None,
            actor_name: None,
            action: "auth.failure".to_owned(),
            target_kind: None,
            target_id: None,
            target_name: None,
            outcome: "failure".to_owned(),
            detail: Some(failure.as_str().to_owned()),
            request_id,
            client_addr: client,
        };
        if let Err(e) = self.repo.append_audit(&row).await {
            tracing::error!(error = %e, "could not write the audit event of a failed authentication");
        }
    }

    /// Create the `default` workspace's first API credential, `admin` (role admin), when the
    /// database holds no API credential at all. Returns the token only when it created one.
    pub async fn bootstrap_admin(&self) -> Result<Option<(ApiCredential, Secret)>> {
        if self.repo.count_all_api_credentials().await? > 0 {
            return Ok(None);
        }
        self.ensure_workspace(crate::DEFAULT_WORKSPACE).await?;
        match self
            .add_api_credential(
                &Actor::operator(),
                true,
                crate::DEFAULT_WORKSPACE,
                "admin",
                Role::Admin,
            )
            .await
        {
            Ok(created) => Ok(Some(created)),
            // Another instance bootstrapped at the same moment.
            Err(CoreError::DuplicateApiCredentialName { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn touch_api_credential(&self, id: &str, now: i64) {
        if self.api_auth.should_touch(id)
            && let Err(e) = self.repo.touch_api_credential(id, now).await
        {
            tracing::warn!(api_credential = %id, error = %e, "could not record an API credential's last use");
        }
    }

    /// A workspace's slug by id (slugs never change, so they are kept once read).
    async fn workspace_slug(&self, workspace_id: &str) -> Option<String> {
        if let Some(slug) = self.api_auth.lock().slugs.get(workspace_id) {
            return Some(slug.clone());
        }
        let all = match self.repo.list_workspaces().await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "could not read the workspaces");
                return None;
            }
        };
        let mut inner = self.api_auth.lock();
        if inner.slugs.len() >= MAX_ENTRIES {
            inner.slugs.clear();
        }
        for ws in all {
            inner.slugs.insert(ws.id, ws.slug);
        }
        inner.slugs.get(workspace_id).cloned()
    }
}

/// The audited entry points: each records its outcome in the audit log.
impl Latchkey {
    /// Issue a new API credential. The token is returned once and never again.
    pub async fn add_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        name: &str,
        role: Role,
    ) -> Result<(ApiCredential, Secret)> {
        let attempted = Target {
            kind: KIND,
            id: None,
            name: Some(shown_reference(name)),
        };
        let result = self
            .add_api_credential_inner(actor, caller_is_admin, workspace, name, role)
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.create",
            attempted,
            |(c, _): &(ApiCredential, Secret)| target(c),
            result,
        )
        .await
    }

    pub async fn rename_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        new_name: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        let result = self
            .rename_api_credential_inner(
                actor,
                caller_is_admin,
                workspace,
                reference,
                new_name,
                expected_revision,
            )
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.rename",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    /// Disable: its token is refused from the next request on.
    pub async fn disable_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        let result = self
            .set_api_credential_enabled(
                actor,
                caller_is_admin,
                workspace,
                reference,
                false,
                expected_revision,
            )
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.disable",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    pub async fn enable_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        let result = self
            .set_api_credential_enabled(
                actor,
                caller_is_admin,
                workspace,
                reference,
                true,
                expected_revision,
            )
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.enable",
            attempted(reference),
            target,
            result,
        )
        .await
    }

    /// New token at once; the old one is invalid immediately, or stays valid `grace_seconds`
    /// (at most [`MAX_GRACE_SECONDS`], else `InvalidGracePeriod`).
    pub async fn regenerate_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        grace_seconds: Option<u64>,
        expected_revision: Option<i64>,
    ) -> Result<(ApiCredential, Secret)> {
        let result = self
            .regenerate_api_credential_inner(
                actor,
                caller_is_admin,
                workspace,
                reference,
                grace_seconds,
                expected_revision,
            )
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.regenerate",
            attempted(reference),
            |(c, _): &(ApiCredential, Secret)| target(c),
            result,
        )
        .await
    }

    pub async fn delete_api_credential(
        &self,
        actor: &Actor,
        caller_is_admin: bool,
        workspace: &str,
        reference: &str,
        expected_revision: Option<i64>,
    ) -> Result<ApiCredential> {
        let result = self
            .delete_api_credential_inner(
                actor,
                caller_is_admin,
                workspace,
                reference,
                expected_revision,
            )
            .await;
        self.audited(
            actor,
            workspace,
            "api_credential.delete",
            attempted(reference),
            target,
            result,
        )
        .await
    }
}

const KIND: &str = "api_credential";

/// The operator (CLI) may always manage API credentials; an API credential only as an admin.
fn may_manage(actor: &Actor, caller_is_admin: bool) -> Result<()> {
    if caller_is_admin || actor.kind == ActorKind::Operator {
        return Ok(());
    }
    Err(CoreError::Forbidden(
        "only an admin API credential can manage API credentials; ask an admin of this workspace, or use `latchkey api-credentials` on the server"
            .to_owned(),
    ))
}

/// A name follows the credential name rules, and must not be a token (names are shown to
/// everyone who can list API credentials).
fn parse_name(text: &str) -> Result<CredentialName> {
    let name = CredentialName::parse(text)?;
    if token_shaped(name.as_str()) {
        return Err(CoreError::InvalidName(
            "looks like a Latchkey token; a name is shown to everyone who lists API credentials, so choose one that is not a secret"
                .to_owned(),
        ));
    }
    Ok(name)
}

/// Whether the text has a token's shape (its checksum right or not).
fn token_shaped(text: &str) -> bool {
    matches!(
        latchkey_vault::parse_token(text),
        Ok(_) | Err(TokenError::BadChecksum)
    )
}

/// A reference as it may appear in an error or the audit log: a pasted token shows as its hint.
fn shown_reference(reference: &str) -> String {
    let reference = reference.trim();
    if token_shaped(reference) {
        latchkey_vault::token_hint(reference)
    } else {
        reference.chars().take(200).collect()
    }
}

fn check_workspace(presented: Option<&str>, actual: &str) -> std::result::Result<(), AuthFailure> {
    match presented {
        Some(ws) if ws != actual => Err(AuthFailure::WrongWorkspace),
        _ => Ok(()),
    }
}

fn check_revision(row: &ApiCredentialRow, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(r) if r != row.revision => Err(CoreError::StaleRevision),
        _ => Ok(()),
    }
}

fn api_write_error(e: StoreError, ws: &WorkspaceRow, reference: &str, name: &str) -> CoreError {
    match e {
        StoreError::Conflict => CoreError::StaleRevision,
        StoreError::Duplicate => CoreError::DuplicateApiCredentialName {
            name: name.to_owned(),
        },
        StoreError::NotFound => CoreError::ApiCredentialNotFound {
            workspace: ws.slug.clone(),
            reference: shown_reference(reference),
        },
        other => other.into(),
    }
}

fn api_view(ws: &WorkspaceRow, row: &ApiCredentialRow) -> ApiCredential {
    let now = Timestamp::now().millis();
    ApiCredential {
        id: row.id.clone(),
        workspace: ws.slug.clone(),
        name: row.name.clone(),
        role: Role::parse(&row.role).unwrap_or(Role::Member),
        hint: row.token_hint.clone(),
        enabled: row.enabled,
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
        last_used_at: row.last_used_at.map(Timestamp),
        grace_until: row
            .previous_expires_at
            .filter(|until| row.previous_hash.is_some() && *until > now)
            .map(Timestamp),
        revision: row.revision,
    }
}

fn target(c: &ApiCredential) -> Target {
    Target {
        kind: KIND,
        id: Some(c.id.clone()),
        name: Some(c.name.clone()),
    }
}

fn attempted(reference: &str) -> Target {
    let reference = shown_reference(reference);
    if uuid::Uuid::parse_str(&reference).is_ok() {
        Target {
            kind: KIND,
            id: Some(reference),
            name: None,
        }
    } else {
        Target {
            kind: KIND,
            id: None,
            name: Some(reference),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("member").unwrap(), Role::Member);
        for bad in ["Admin", "", "owner", " admin"] {
            let e = Role::parse(bad).unwrap_err();
            assert_eq!(e.field(), Some("role"));
        }
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "admin");
    }

    #[test]
    fn pasted_tokens_never_echo() {
        let (token, _) = latchkey_vault::generate_token();
        let t = token.expose();
        let shown = shown_reference(t);
        assert!(!shown.contains(&t[4..38]));
        assert!(shown.starts_with("lkt_…"));
        // A mistyped token too.
        let typo = format!("{}{}", &t[..41], if t.ends_with('a') { 'b' } else { 'a' });
        assert!(!shown_reference(&typo).contains(&t[4..38]));
        assert!(parse_name(t).is_err());
        assert_eq!(shown_reference(" Pipeline "), "Pipeline");
    }

    #[test]
    fn operator_always_manages_members_never() {
        assert!(may_manage(&Actor::operator(), false).is_ok());
        assert!(may_manage(&Actor::api_credential("id", "n"), true).is_ok());
        let e = may_manage(&Actor::api_credential("id", "n"), false).unwrap_err();
        assert_eq!(e.code(), "forbidden");
        assert_eq!(e.kind(), crate::ErrorKind::Forbidden);
    }

    #[test]
    fn cache_is_dropped_by_forget_and_not_refilled_by_an_older_lookup() {
        let state = AuthState::default();
        let (_, hash) = latchkey_vault::generate_token();
        let entry = Cached {
            principal: Arc::new(Principal {
                workspace: "default".to_owned(),
                api_credential_id: "k1".into(),
                name: "n".into(),
                role: Role::Member,
            }),
            at: Instant::now(),
            grace_until: None,
            refreshing: false,
        };
        let epoch = state.epoch();
        state.remember(epoch, hash, entry.clone());
        assert!(state.cached(&hash).is_some());
        state.forget("k1");
        assert!(state.cached(&hash).is_none());
        // A lookup that began before the invalidation is not cached.
        state.remember(epoch, hash, entry.clone());
        assert!(state.cached(&hash).is_none());
        // Entries expire.
        let old = Cached {
            at: Instant::now() - CACHE_TTL,
            ..entry.clone()
        };
        state.remember(state.epoch(), hash, old);
        assert!(state.cached(&hash).is_none());
        // Near its end, one caller looks the token up again while the others keep the entry.
        let ageing = Cached {
            at: Instant::now() - REFRESH_AFTER,
            ..entry.clone()
        };
        state.remember(state.epoch(), hash, ageing);
        assert!(state.cached(&hash).is_none(), "the first caller refreshes");
        assert!(state.cached(&hash).is_some(), "the others still get it");
        assert!(state.cached(&hash).is_some());
        // A refresh that finds the token invalid ends it for everyone.
        state.forget_token(&hash);
        assert!(state.cached(&hash).is_none());
        // A refreshed entry is fresh again.
        state.remember(state.epoch(), hash, entry);
        assert!(state.cached(&hash).is_some());
        assert!(state.cached(&hash).is_some());
    }

    #[test]
    fn touches_are_coalesced() {
        let state = AuthState::default();
        assert!(state.should_touch("k1"));
        assert!(!state.should_touch("k1"));
        assert!(state.should_touch("k2"));
    }

    #[test]
    fn failures_have_stable_names() {
        let all = [
            AuthFailure::Malformed,
            AuthFailure::BadChecksum,
            AuthFailure::Unknown,
            AuthFailure::Disabled,
            AuthFailure::WrongWorkspace,
            AuthFailure::GraceExpired,
        ];
        let names: std::collections::BTreeSet<_> = all.iter().map(|f| f.as_str()).collect();
        assert_eq!(names.len(), all.len());
    }
}
