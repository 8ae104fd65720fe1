#![doc = include_str!("../README.md")]

mod load;
mod render;
mod schema;
mod template;
mod validate;

pub use load::{CatalogError, ProviderFile};
pub use render::{FieldValues, OutboundRequest, PreparedAuth, RenderError, join_path};
pub use template::Template;
pub use validate::{FieldError, is_dns_label};

use std::collections::BTreeMap;
use std::time::Duration;

/// The provider files compiled into the binary (`providers/*.toml` at the repository root).
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "providers/chorus.toml",
        include_str!("../../../providers/chorus.toml"),
    ),
    (
        "providers/aircall.toml",
        include_str!("../../../providers/aircall.toml"),
    ),
    (
        "providers/ccai-platform.toml",
        include_str!("../../../providers/ccai-platform.toml"),
    ),
    (
        "providers/clari-copilot.toml",
        include_str!("../../../providers/clari-copilot.toml"),
    ),
    (
        "providers/custom.toml",
        include_str!("../../../providers/custom.toml"),
    ),
];

/// All providers Latchkey knows: the built-in ones and any the operator added.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: Vec<Provider>,
}

impl Catalog {
    /// The built-in providers only.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_files(&[])
    }

    /// The built-in providers plus the operator's provider files (path, contents). A malformed
    /// file, or one that reuses a provider id, is refused with its file, line and what is wrong.
    pub fn from_files(extra: &[ProviderFile]) -> Result<Catalog, CatalogError> {
        let builtin = BUILTIN_FILES.iter().map(|(path, text)| ProviderFile {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        });
        let mut providers: Vec<Provider> = Vec::new();
        for file in builtin.chain(extra.iter().cloned()) {
            let provider = load::parse_provider(&file)?;
            if let Some(existing) = providers.iter().find(|p| p.id == provider.id) {
                return Err(CatalogError {
                    file: file.path.clone(),
                    line: provider.id_line,
                    message: format!(
                        "provider id `{}` is already defined by {}; choose another id",
                        provider.id, existing.source
                    ),
                });
            }
            providers.push(provider);
        }
        providers.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
        Ok(Catalog { providers })
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// Providers in display order: the four seed providers first, then the rest by id.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn ids(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.id.as_str()).collect()
    }

    /// Operator override of a provider's base URL (on-premises gateways, tests, the sandbox).
    /// `http` is allowed here and only here; the overridden host is trusted by the address guard.
    pub fn override_base_url(&mut self, id: &str, template: &str) -> Result<(), CatalogError> {
        let known = self.ids().join(", ");
        let provider = self
            .providers
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| CatalogError {
                file: "configuration".to_owned(),
                line: 0,
                message: format!(
                    "a base URL override names the unknown provider `{id}`; known providers: {known}"
                ),
            })?;
        let base = load::parse_base_url(template, &provider.fields, true).map_err(|message| {
            CatalogError {
                file: "configuration".to_owned(),
                line: 0,
                message: format!("the base URL override for `{id}` {message}"),
            }
        })?;
        provider.base_url = base;
        provider.base_overridden = true;
        Ok(())
    }
}

/// One provider: its fields, how auth is applied, how a credential is verified, its limits.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub description: String,
    pub docs_url: Option<String>,
    pub fields: Vec<Field>,
    pub auth: Auth,
    pub verify: Verify,
    pub rate_limit: Option<RateLimit>,
    pub order: u32,
    /// Which file defined it (e.g. `providers/aircall.toml`).
    pub source: String,
    base_url: BaseUrl,
    base_overridden: bool,
    id_line: usize,
}

impl Provider {
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    pub fn secret_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.secret)
    }

    /// The base URL template in force (the catalog's or the operator's override).
    pub fn base_url_template(&self) -> &str {
        self.base_url.template.as_str()
    }

    /// True when the operator configured this provider's base URL: its host is trusted.
    pub fn base_url_overridden(&self) -> bool {
        self.base_overridden
    }
}

/// What kind of value a field holds; decides the rules a value must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// An `https` URL (the custom provider's base URL).
    Url,
    /// A path starting with `/`.
    Path,
    /// An HTTP header name.
    HeaderName,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub key: String,
    pub label: String,
    /// Where in the provider's settings the value is found.
    pub help: String,
    pub secret: bool,
    pub required: bool,
    pub kind: FieldKind,
    /// Allowed values, when the field is a choice.
    pub options: Vec<String>,
    pub max_length: usize,
    /// The value becomes part of a host name, so it must be a single DNS label.
    pub host_label: bool,
    pattern: Option<(String, regex_lite::Regex)>,
}

impl Field {
    /// The advisory pattern, as written in the provider file.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(|(src, _)| src.as_str())
    }
}

/// How a credential's values are applied to every outbound request.
#[derive(Debug, Clone)]
pub enum Auth {
    /// One or more headers, each a template over the fields.
    Header(Vec<(String, Template)>),
    Basic {
        username: Template,
        password: Template,
    },
    Bearer {
        token: Template,
    },
    Query {
        param: String,
        value: Template,
    },
    /// The custom provider: the credential's own fields choose the method.
    Custom,
}

impl Auth {
    /// A one-line human description, e.g. `HTTP Basic ({api_id}:{api_token})`.
    pub fn describe(&self) -> String {
        match self {
            Auth::Header(headers) => headers
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.as_str()))
                .collect::<Vec<_>>()
                .join("; "),
            Auth::Basic { username, password } => {
                format!("HTTP Basic ({}:{})", username.as_str(), password.as_str())
            }
            Auth::Bearer { token } => format!("Authorization: Bearer {}", token.as_str()),
            Auth::Query { param, value } => format!("query parameter {param}={}", value.as_str()),
            Auth::Custom => {
                "chosen per credential: header, HTTP Basic, Bearer or query parameter".to_owned()
            }
        }
    }
}

/// A set of HTTP statuses: one code or a whole class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSet {
    Code(u16),
    Class(u16),
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        match *self {
            StatusSet::Code(code) => code == status,
            StatusSet::Class(class) => status / 100 == class,
        }
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusSet::Code(code) => write!(f, "{code}"),
            StatusSet::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// What a provider's answer to a verification (or any proxied) request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credential works.
    Valid,
    /// The provider refused the credential: the user must fix it. Never retried.
    Rejected,
    /// The provider is throttling or failing: try again later.
    TryLater,
    /// An answer the catalog does not classify.
    Unexpected,
}

#[derive(Debug, Clone)]
pub struct Verify {
    pub method: String,
    pub path: Template,
    pub valid: Vec<StatusSet>,
    pub rejected: Vec<StatusSet>,
    pub try_later: Vec<StatusSet>,
    /// JSON pointer to the account identity in a valid answer (e.g. the user's email).
    pub identity: Option<String>,
    /// A valid answer must hold this value at this JSON pointer (e.g. Aircall's `pong`).
    pub expect: Option<(String, String)>,
    /// The fields a user should check when the provider rejects the credential.
    pub check_fields: Vec<String>,
    hints: BTreeMap<u16, String>,
}

impl Verify {
    pub fn classify(&self, status: u16) -> Verdict {
        if self.valid.iter().any(|s| s.contains(status)) {
            Verdict::Valid
        } else if self.rejected.iter().any(|s| s.contains(status)) {
            Verdict::Rejected
        } else if self.try_later.iter().any(|s| s.contains(status)) {
            Verdict::TryLater
        } else {
            Verdict::Unexpected
        }
    }

    /// The catalog's advice for a rejection with this status.
    pub fn hint(&self, status: u16) -> Option<&str> {
        self.hints.get(&status).map(String::as_str)
    }

    pub fn hints(&self) -> &BTreeMap<u16, String> {
        &self.hints
    }

    /// Whether a valid answer's body is what the catalog expects (true when nothing is expected).
    pub fn body_matches(&self, body: Option<&serde_json::Value>) -> bool {
        match (&self.expect, body) {
            (None, _) => true,
            (Some((pointer, want)), Some(body)) => {
                body.pointer(pointer).and_then(|v| v.as_str()) == Some(want.as_str())
            }
            (Some(_), None) => false,
        }
    }

    /// The account identity found in a valid answer, if the catalog says where it is.
    pub fn identity_in(&self, body: &serde_json::Value) -> Option<String> {
        let value = body.pointer(self.identity.as_deref()?)?;
        match value {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(200).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A provider's documented rate limit.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// `requests` per `per`, when the provider documents one.
    pub requests: Option<u32>,
    pub per: Option<Duration>,
    /// Whose budget it is (`company`, `customer`, `workspace`).
    pub scope: Option<String>,
    /// Which credential values identify that account (requests of credentials sharing it share the budget).
    pub account: Option<Template>,
    /// Whether the operator may change `requests` (e.g. Aircall: 120 now, 60 in older plans).
    pub configurable: bool,
    /// A second, weekly cap (Clari Copilot: 100,000 a week from Sunday 00:00 GMT).
    pub weekly: Option<u64>,
    /// The header that says when a throttled window refreshes (UNIX time).
    pub reset_header: Option<String>,
    pub note: Option<String>,
}

impl RateLimit {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(requests), Some(per)) = (self.requests, self.per) {
            let per = match per.as_secs() {
                1 => "second".to_owned(),
                60 => "minute".to_owned(),
                3600 => "hour".to_owned(),
                s => format!("{s} s"),
            };
            let scope = self
                .scope
                .as_deref()
                .map(|s| format!(" per {s}"))
                .unwrap_or_default();
            parts.push(format!("{requests} requests per {per}{scope}"));
        }
        if let Some(weekly) = self.weekly {
            parts.push(format!("{weekly} per week"));
        }
        if self.configurable {
            parts.push("configurable".to_owned());
        }
        if parts.is_empty() {
            "none documented".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// A base URL template, e.g. `https://{subdomain}.{region}.ccaiplatform.com`.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    pub template: Template,
    /// The whole base URL comes from one field of kind `url` (the custom provider).
    pub from_field: Option<String>,
}
