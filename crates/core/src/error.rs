//! Every way an operation can fail, named so that a user knows what to do. No variant ever holds a
//! secret: provider messages are scrubbed of the credential's values before they get here.

use latchkey_catalog::FieldError;

/// The broad class of a failure: decides the CLI's exit code and the API's HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong; nothing changed (exit 2 / 400 or 422).
    Invalid,
    NotFound,
    /// A unique rule or a stale revision; nothing changed (exit 1 / 409 or 412).
    Conflict,
    /// The provider refused the credential (exit 1 / 422).
    Rejected,
    /// The provider could not be asked (exit 1 / 502).
    Unavailable,
    /// The credential is disabled (exit 1 / 409).
    Refused,
    /// The caller may not do this (exit 1 / 403), e.g. a member API credential managing API
    /// credentials.
    Forbidden,
    /// Start-up or configuration problem (exit 1).
    Setup,
    /// Something inside Latchkey failed (exit 1 / 500); details only in the log.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("unknown provider `{given}`; known providers: {}", .known.join(", "))]
    UnknownProvider { given: String, known: Vec<String> },

    #[error("{0}")]
    InvalidField(#[from] FieldError),

    #[error("the credential name {0}")]
    InvalidName(String),

    #[error("the description is {0}")]
    InvalidDescription(String),

    #[error("the workspace name `{slug}` {reason}")]
    InvalidWorkspace { slug: String, reason: String },

    #[error(
        "a credential named `{name}` already exists in this workspace; choose another name or rename the existing one"
    )]
    DuplicateName { name: String },

    #[error("a workspace named `{slug}` already exists")]
    DuplicateWorkspace { slug: String },

    #[error(
        "no credential `{reference}` in workspace `{workspace}`; `latchkey credentials list` shows them"
    )]
    CredentialNotFound {
        workspace: String,
        reference: String,
    },

    #[error(
        "no API credential `{reference}` in workspace `{workspace}`; `latchkey api-credentials list` shows them"
    )]
    ApiCredentialNotFound {
        workspace: String,
        reference: String,
    },

    #[error(
        "an API credential named `{name}` already exists in this workspace; choose another name or rename the existing one"
    )]
    DuplicateApiCredentialName { name: String },

    #[error(
        "this workspace already has {limit} API credentials, the most it may hold; delete one it no longer needs first"
    )]
    ApiCredentialLimit { limit: usize },

    #[error("{0}")]
    Forbidden(String),

    #[error(
        "the grace period must be between 0 and {max} seconds (24 hours); give 0 to invalidate the old token at once",
        max = crate::MAX_GRACE_SECONDS
    )]
    InvalidGracePeriod,

    #[error("no workspace `{slug}`; `latchkey workspaces list` shows them")]
    WorkspaceNotFound { slug: String },

    #[error(
        "the credential was changed by someone else since you read it; read it again and retry"
    )]
    StaleRevision,

    #[error("{provider} rejected the credential (HTTP {status}). {hint}{} Check: {}.", provider_message.as_ref().map(|m| format!(" {provider} said: {m}.")).unwrap_or_default(), .fields.join(", "))]
    ProviderRejected {
        provider: String,
        status: u16,
        /// The keys of the fields to check.
        field_keys: Vec<String>,
        /// Their labels, for messages.
        fields: Vec<String>,
        hint: String,
        provider_message: Option<String>,
    },

    #[error(
        "{provider} could not be reached to verify the credential ({reason}). Nothing was saved. Try again later, or save it without verifying (CLI: --no-verify, API: ?verify=false); it is then marked unverified."
    )]
    ProviderUnreachable { provider: String, reason: String },

    #[error("the path cannot be proxied: {0}")]
    InvalidProxyPath(String),

    #[error("{provider} did not answer within {seconds} s; try again, or raise the proxy timeouts")]
    UpstreamTimeout { provider: String, seconds: u64 },

    #[error("{provider} could not be reached ({reason}); try again later")]
    UpstreamUnreachable { provider: String, reason: String },

    #[error(
        "{provider}'s rate limit leaves no slot within the time allowed; retry after {retry_after} s, or allow a longer wait with X-Latchkey-Max-Wait"
    )]
    RateLimited { provider: String, retry_after: u64 },

    #[error(
        "{provider}'s weekly quota of {quota} requests for this account is used up; it renews when the next week starts (Sunday 00:00 GMT), in {retry_after} s"
    )]
    QuotaExhausted {
        provider: String,
        quota: u64,
        retry_after: u64,
    },

    #[error("the credential `{name}` is disabled; enable it first")]
    CredentialDisabled { name: String },

    #[error("{0}")]
    MasterKeyMissing(String),

    #[error("{0}")]
    MasterKeyWrong(String),

    #[error("{0}")]
    Setup(String),

    #[error(
        "`{given}` is not a master key id: a key id is mk_ followed by 16 hexadecimal digits, as `latchkey keys status` shows"
    )]
    InvalidKeyId { given: String },

    #[error("master key {key} is not in the key ring{}", .file.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    KeyNotInRing { key: String, file: Option<String> },

    #[error(
        "master key {key} still wraps {envelopes} envelope(s){}; run `latchkey keys rotate` to re-wrap them under the primary key first",
        if *.key_check { " and the key check" } else { "" }
    )]
    KeyInUse {
        key: String,
        envelopes: u64,
        key_check: bool,
    },

    #[error(
        "master key {key} is the primary key; rotate to a new primary (`latchkey keys rotate`) before retiring it"
    )]
    KeyIsPrimary { key: String },

    #[error(
        "a rotation to master key {primary} is unfinished ({pending} envelope(s) still under older keys); run `latchkey keys rotate` without --new-key-file to finish it first"
    )]
    RotationUnfinished { primary: String, pending: u64 },

    #[error("the target {target} is not empty ({found}); copy into a new, empty database")]
    TargetNotEmpty { target: String, found: String },

    #[error("the copy does not match: {0}")]
    CopyMismatch(String),

    #[error("master key {key} is already in the key ring")]
    KeyAlreadyInRing { key: String },

    #[error("the stored secret of credential `{credential}` could not be opened: {source}")]
    Vault {
        credential: String,
        #[source]
        source: latchkey_vault::VaultError,
    },

    #[error("the database is unavailable; try again shortly")]
    StoreUnavailable(String),

    #[error("an internal error occurred")]
    Internal(String),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        use CoreError::*;
        match self {
            UnknownProvider { .. }
            | InvalidField(_)
            | InvalidName(_)
            | InvalidDescription(_)
            | InvalidWorkspace { .. }
            | InvalidGracePeriod
            | InvalidKeyId { .. } => ErrorKind::Invalid,
            KeyNotInRing { .. } => ErrorKind::NotFound,
            KeyInUse { .. }
            | KeyIsPrimary { .. }
            | RotationUnfinished { .. }
            | KeyAlreadyInRing { .. }
            | TargetNotEmpty { .. } => ErrorKind::Conflict,
            CopyMismatch(_) => ErrorKind::Internal,
            CredentialNotFound { .. } | WorkspaceNotFound { .. } | ApiCredentialNotFound { .. } => {
                ErrorKind::NotFound
            }
            DuplicateName { .. }
            | DuplicateWorkspace { .. }
            | StaleRevision
            | DuplicateApiCredentialName { .. }
            | ApiCredentialLimit { .. } => ErrorKind::Conflict,
            Forbidden(_) => ErrorKind::Forbidden,
            ProviderRejected { .. } => ErrorKind::Rejected,
            ProviderUnreachable { .. } | StoreUnavailable(_) => ErrorKind::Unavailable,
            CredentialDisabled { .. } => ErrorKind::Refused,
            InvalidProxyPath(_) => ErrorKind::Invalid,
            UpstreamTimeout { .. } | UpstreamUnreachable { .. } => ErrorKind::Unavailable,
            RateLimited { .. } | QuotaExhausted { .. } => ErrorKind::Unavailable,
            MasterKeyMissing(_) | MasterKeyWrong(_) | Setup(_) => ErrorKind::Setup,
            Vault { .. } | Internal(_) => ErrorKind::Internal,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        use CoreError::*;
        match self {
            UnknownProvider { .. } => "unknown_provider",
            InvalidField(FieldError::Unknown { .. }) => "unknown_field",
            InvalidField(FieldError::Missing { .. }) => "missing_field",
            InvalidField(FieldError::Invalid { .. }) => "invalid_field",
            InvalidName(_) => "invalid_name",
            InvalidDescription(_) => "invalid_description",
            InvalidWorkspace { .. } => "invalid_workspace",
            DuplicateName { .. } => "duplicate_name",
            DuplicateWorkspace { .. } => "duplicate_workspace",
            CredentialNotFound { .. } => "credential_not_found",
            WorkspaceNotFound { .. } => "workspace_not_found",
            ApiCredentialNotFound { .. } => "api_credential_not_found",
            DuplicateApiCredentialName { .. } => "duplicate_name",
            ApiCredentialLimit { .. } => "api_credential_limit",
            Forbidden(_) => "forbidden",
            InvalidGracePeriod => "invalid_grace_period",
            StaleRevision => "stale_revision",
            ProviderRejected { .. } => "provider_rejected",
            ProviderUnreachable { .. } => "provider_unreachable",
            CredentialDisabled { .. } => "credential_disabled",
            InvalidProxyPath(_) => "invalid_path",
            UpstreamTimeout { .. } => "upstream_timeout",
            UpstreamUnreachable { .. } => "upstream_unreachable",
            RateLimited { .. } => "rate_limited",
            QuotaExhausted { .. } => "quota_exhausted",
            MasterKeyMissing(_) => "master_key_missing",
            MasterKeyWrong(_) => "master_key_wrong",
            Setup(_) => "setup",
            InvalidKeyId { .. } => "invalid_key_id",
            KeyNotInRing { .. } => "key_not_in_ring",
            KeyInUse { .. } => "key_in_use",
            KeyIsPrimary { .. } => "key_is_primary",
            RotationUnfinished { .. } => "rotation_unfinished",
            KeyAlreadyInRing { .. } => "key_already_in_ring",
            TargetNotEmpty { .. } => "target_not_empty",
            CopyMismatch(_) => "copy_mismatch",
            Vault { .. } => "secret_unreadable",
            StoreUnavailable(_) => "store_unavailable",
            Internal(_) => "internal",
        }
    }

    /// The input field at fault, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            CoreError::InvalidField(e) => Some(e.field()),
            CoreError::InvalidName(_)
            | CoreError::DuplicateName { .. }
            | CoreError::DuplicateApiCredentialName { .. } => Some("name"),
            CoreError::InvalidGracePeriod => Some("grace_seconds"),
            CoreError::InvalidDescription(_) => Some("description"),
            CoreError::UnknownProvider { .. } => Some("provider"),
            CoreError::ProviderRejected { field_keys, .. } => {
                field_keys.first().map(String::as_str)
            }
            _ => None,
        }
    }
}

impl From<latchkey_store::StoreError> for CoreError {
    fn from(e: latchkey_store::StoreError) -> Self {
        match e {
            latchkey_store::StoreError::Unavailable(m) => CoreError::StoreUnavailable(m),
            other => CoreError::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
