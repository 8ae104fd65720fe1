//! What core hands to the interfaces: plain views with no secret in them, and the newtypes that
//! parse input at the boundary.

use crate::error::{CoreError, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, stored as UNIX milliseconds, shown as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }
}

/// Parse an RFC 3339 time (e.g. `2026-11-01T00:00:00Z`).
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let time = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    let ms = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(Timestamp(i64::try_from(ms).ok()?))
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        write!(f, "{}", humantime::format_rfc3339_seconds(time))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A credential's status as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The last verification succeeded.
    Active,
    /// Saved without a successful check, by explicit choice.
    Unverified,
    /// The provider rejected it.
    Invalid,
    /// Disabled by a user: the proxy and pulls refuse it.
    Disabled,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Active,
        Status::Unverified,
        Status::Invalid,
        Status::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Unverified => "unverified",
            Status::Invalid => "invalid",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Result<Status> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                CoreError::InvalidField(latchkey_catalog::FieldError::Invalid {
                    field: "status".to_owned(),
                    label: "Status".to_owned(),
                    reason: "must be one of: active, unverified, invalid, disabled".to_owned(),
                })
            })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret field as shown: whether it is set and a masked hint, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecretFieldView {
    pub set: bool,
    pub hint: String,
}

/// A credential as every interface shows it. Holds no secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Credential {
    pub id: String,
    pub workspace: String,
    pub provider: String,
    pub provider_name: String,
    pub name: String,
    pub description: String,
    /// The non-secret values (e.g. Aircall's API ID, CCAI Platform's subdomain).
    pub settings: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretFieldView>,
    pub status: Status,
    pub status_reason: Option<String>,
    pub verified_at: Option<Timestamp>,
    pub identity: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub slug: String,
    pub created_at: Timestamp,
}

/// Who asks for an operation, and from where (recorded in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The request id of the API call, when there is one.
    pub request_id: Option<String>,
    /// The client's address, when known (written out only when an audit event is recorded).
    pub client: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    /// The local operator, through the CLI on the database.
    Operator,
    /// A client holding an API credential Latchkey issued.
    ApiCredential { id: Arc<str>, name: Arc<str> },
}

impl Actor {
    pub fn operator() -> Actor {
        Actor {
            kind: ActorKind::Operator,
            request_id: None,
            client: None,
        }
    }

    pub fn api_credential(id: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Actor {
        Actor {
            kind: ActorKind::ApiCredential {
                id: id.into(),
                name: name.into(),
            },
            request_id: None,
            client: None,
        }
    }

    pub fn with_request(
        mut self,
        request_id: Option<String>,
        client: Option<std::net::IpAddr>,
    ) -> Actor {
        self.request_id = request_id;
        self.client = client;
        self
    }
}

/// The longest credential name.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A credential name: trimmed, 1-200 characters, no control characters. Unique per workspace,
/// compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialName(String);

impl CredentialName {
    pub fn parse(text: &str) -> Result<CredentialName> {
        let name = text.trim();
        if name.is_empty() {
            return Err(CoreError::InvalidName("must not be empty".to_owned()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(CoreError::InvalidName(format!(
                "is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(CoreError::InvalidName(
                "must not contain control characters such as line breaks".to_owned(),
            ));
        }
        Ok(CredentialName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are compared in: Unicode lowercase.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A description: up to 2,000 characters, trimmed.
pub fn parse_description(text: &str) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(CoreError::InvalidDescription(format!(
            "longer than {MAX_DESCRIPTION_CHARS} characters; shorten it"
        )));
    }
    Ok(text.to_owned())
}

/// A workspace slug: 1-63 lowercase letters, digits and hyphens, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSlug(String);

impl WorkspaceSlug {
    pub fn parse(text: &str) -> Result<WorkspaceSlug> {
        let ok = !text.is_empty()
            && text.len() <= 63
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-');
        if !ok {
            return Err(CoreError::InvalidWorkspace {
                slug: text.chars().take(80).collect(),
                reason:
                    "must be 1-63 lowercase letters, digits and hyphens, not starting with a hyphen"
                        .to_owned(),
            });
        }
        Ok(WorkspaceSlug(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            CredentialName::parse("  Aircall – production ")
                .unwrap()
                .as_str(),
            "Aircall – production"
        );
        assert_eq!(CredentialName::parse("ÄBC").unwrap().key(), "äbc");
        assert!(CredentialName::parse("").is_err());
        assert!(CredentialName::parse("   ").is_err());
        assert!(CredentialName::parse(&"x".repeat(201)).is_err());
        assert!(CredentialName::parse(&"x".repeat(200)).is_ok());
        assert!(CredentialName::parse("a\nb").is_err());
        assert!(parse_description(&"d".repeat(2001)).is_err());
        assert!(parse_description(&"d".repeat(2000)).is_ok());
    }

    #[test]
    fn slugs() {
        assert!(WorkspaceSlug::parse("default").is_ok());
        assert!(WorkspaceSlug::parse("team-2").is_ok());
        for bad in ["", "Default", "-a", "a b", "a_b", &"a".repeat(64)] {
            assert!(WorkspaceSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_700_000_000_123).to_string(),
            "2023-11-14T22:13:20Z"
        );
    }
}
