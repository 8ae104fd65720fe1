//! The provider file as written on disk (TOML). Parsed with spans so that every
//! problem found after parsing can still name its line.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub docs_url: Option<Spanned<String>>,
    pub base_url: Spanned<String>,
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub fields: Vec<Spanned<RawField>>,
    pub auth: Spanned<RawAuth>,
    pub verify: Spanned<RawVerify>,
    #[serde(default)]
    pub rate_limit: Option<Spanned<RawRateLimit>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawField {
    pub key: Spanned<String>,
    pub label: String,
    #[serde(default)]
    pub help: String,
    #[serde(default)]
    pub secret: bool,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub max_length: Option<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawAuth {
    Header { headers: Vec<RawHeader> },
    Basic { username: String, password: String },
    Bearer { token: String },
    Query { param: String, value: String },
    Custom {},
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVerify {
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    pub valid: Vec<RawStatus>,
    pub rejected: Vec<RawStatus>,
    #[serde(default)]
    pub try_later: Vec<RawStatus>,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub expect: Option<RawExpect>,
    #[serde(default)]
    pub check_fields: Vec<String>,
    #[serde(default)]
    pub hints: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawStatus {
    Code(i64),
    Class(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub pointer: String,
    pub equals: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    #[serde(default)]
    pub requests: Option<u32>,
    #[serde(default)]
    pub per: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub configurable: bool,
    #[serde(default)]
    pub weekly: Option<u64>,
    #[serde(default)]
    pub reset_header: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}
