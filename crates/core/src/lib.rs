#![doc = include_str!("../README.md")]

mod audit;
mod credentials;
mod error;
mod model;
pub mod outbound;
mod startup;
mod verify;
mod workspaces;

pub use audit::{AuditActor, AuditEvent, AuditQuery, AuditTarget};
pub use credentials::{
    DEFAULT_PAGE, ListQuery, MAX_PAGE, NewCredential, Page, VerifyMode, VerifyReport,
};
pub use error::{CoreError, ErrorKind, Result};
pub use model::{
    Actor, ActorKind, Credential, CredentialName, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS,
    SecretFieldView, Status, Timestamp, Workspace, WorkspaceSlug, parse_description,
};
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
    keys: Arc<KeyRing>,
    outbound: Outbound,
}

impl Latchkey {
    pub fn new(
        repo: Arc<dyn Repository>,
        catalog: Arc<Catalog>,
        keys: Arc<KeyRing>,
        outbound: Outbound,
    ) -> Latchkey {
        Latchkey {
            repo,
            catalog,
            keys,
            outbound,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn repository(&self) -> &Arc<dyn Repository> {
        &self.repo
    }

    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }
}
