#![doc = include_str!("../README.md")]

mod api_credentials;
mod audit;
mod cache;
pub mod copy;
mod credentials;
mod error;
pub mod keys;
mod model;
pub mod outbound;
mod providers;
pub mod proxy;
mod startup;
pub mod throttle;
mod verify;
mod workspaces;

pub use api_credentials::{
    ApiCredential, AuthFailure, MAX_API_CREDENTIALS, MAX_GRACE_SECONDS, Principal, Role,
};
pub use audit::{AuditActor, AuditEvent, AuditQuery, AuditTarget};
pub use credentials::{
    DEFAULT_PAGE, ListQuery, MAX_PAGE, NewCredential, Page, VerifyMode, VerifyReport,
};
pub use error::{CoreError, ErrorKind, Result};
pub use model::{
    Actor, ActorKind, Credential, CredentialName, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS,
    SecretFieldView, Status, Timestamp, Workspace, WorkspaceSlug, parse_description, parse_rfc3339,
};
pub use providers::provider_json;
pub use startup::{
    KEY_CHECK, MASTER_KEY_FILE, Notice, Settings, load_catalog, provider_overrides_from_env,
};
pub use verify::{RejectedBy, Verification};

use latchkey_catalog::Catalog;
use latchkey_store::Repository;
use latchkey_vault::KeyRing;
use outbound::Outbound;
use std::sync::Arc;

/// The workspace every new database starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Latchkey's operations. The CLI and the server both hold one and call its methods; every rule
/// lives behind them.
#[derive(Clone)]
pub struct Latchkey {
    repo: Arc<dyn Repository>,
    catalog: Arc<Catalog>,
    /// The master key ring in use, and the key file it follows.
    keys: Arc<keys::KeyState>,
    outbound: Outbound,
    /// Issued API credentials: the short-lived cache of successful authentications and the
    /// coalesced last-used writes.
    api_auth: Arc<api_credentials::AuthState>,
    /// The proxy's rate-limit throttle and coalesced last-used writes.
    proxy_state: Arc<proxy::ProxyState>,
    /// Operator overrides of providers' request limits (e.g. Aircall plans with 60 a minute).
    rate_limits: Arc<std::collections::BTreeMap<String, u32>>,
    /// Recent credential reads (at most a second old; every write here empties it).
    reads: Arc<cache::ReadCache>,
    /// Workspaces by slug (they never change once created).
    workspaces: Arc<std::sync::Mutex<WorkspaceRows>>,
}

/// The workspace rows read so far, by slug (foldhash: a lookup on every request).
type WorkspaceRows = std::collections::HashMap<
    String,
    Arc<latchkey_store::WorkspaceRow>,
    foldhash::fast::RandomState,
>;

impl Latchkey {
    pub fn new(
        repo: Arc<dyn Repository>,
        catalog: Arc<Catalog>,
        ring: KeyRing,
        key_file: Option<std::path::PathBuf>,
        outbound: Outbound,
    ) -> Latchkey {
        let throttle: Arc<dyn throttle::Throttle> = if repo.shares_throttle() {
            Arc::new(throttle::SharedThrottle::new(repo.clone()))
        } else {
            Arc::new(throttle::LocalThrottle::default())
        };
        let latchkey = Latchkey {
            repo,
            catalog,
            keys: Arc::new(keys::KeyState::new(ring, key_file)),
            outbound,
            api_auth: Arc::default(),
            proxy_state: Arc::new(proxy::ProxyState::new(throttle)),
            rate_limits: Arc::default(),
            workspaces: Arc::default(),
            reads: Arc::default(),
        };
        latchkey.follow_changes();
        latchkey
    }

    /// When the store has a change feed (PostgreSQL, shared by several instances), drop what the
    /// caches hold as soon as any process changes it: a credential change empties the read
    /// cache, an API credential change forgets that credential's verified tokens, and a gap in
    /// the feed forgets everything. The task ends with the store.
    fn follow_changes(&self) {
        use latchkey_store::Change;
        use tokio::sync::broadcast::error::RecvError;
        let Some(mut changes) = self.repo.changes() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let reads = Arc::downgrade(&self.reads);
        let auth = Arc::downgrade(&self.api_auth);
        runtime.spawn(async move {
            loop {
                let change = changes.recv().await;
                let (Some(reads), Some(auth)) = (reads.upgrade(), auth.upgrade()) else {
                    return;
                };
                match change {
                    Ok(Change::Credential { .. }) => reads.clear(),
                    Ok(Change::ApiCredential { id }) => auth.forget(&id),
                    Ok(Change::Unknown) | Err(RecvError::Lagged(_)) => {
                        reads.clear();
                        auth.forget_all();
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Use the operator's request limits instead of the catalog's, by provider id.
    pub fn with_rate_limits(mut self, limits: std::collections::BTreeMap<String, u32>) -> Latchkey {
        self.rate_limits = Arc::new(limits);
        self
    }

    pub(crate) fn rate_limit_override(&self, provider: &str) -> Option<u32> {
        self.rate_limits.get(provider).copied()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn repository(&self) -> &Arc<dyn Repository> {
        &self.repo
    }
}
