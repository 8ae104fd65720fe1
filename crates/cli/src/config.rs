//! Layered configuration: defaults → config file → environment (`LATCHKEY_…`) → flags. clap
//! already merges flags over the environment; this adds the file beneath them and checks it.

use anyhow::{Context, Result, bail};
use latchkey_core::Settings;
use latchkey_core::outbound::OutboundConfig;
use latchkey_vault::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The settings every command shares (global flags, each also an environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// A TOML config file (keys: data_dir, database_url, master_key_file, providers_dir,
    /// outbound_timeout, connect_timeout, [providers.ID] base_url).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database (and a generated master.key) live [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A database URL instead of the data directory: postgres://user:password@host/database
    /// (several instances can share one), or sqlite:///path/to/latchkey.db.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<DatabaseUrl>,
    /// The master key file (one base64 key per line, the first is the primary). The key itself
    /// may instead be given in LATCHKEY_MASTER_KEY.
    #[arg(
        long,
        env = "LATCHKEY_MASTER_KEY_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
    /// A directory of extra provider files (*.toml).
    #[arg(
        long,
        env = "LATCHKEY_PROVIDERS_DIR",
        global = true,
        value_name = "DIR"
    )]
    pub providers_dir: Option<PathBuf>,
    /// The workspace to act in.
    #[arg(
        long,
        short = 'w',
        env = "LATCHKEY_WORKSPACE",
        global = true,
        default_value = "default"
    )]
    pub workspace: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long a provider may take to answer a verification [default: 15s].
    #[arg(
        long,
        env = "LATCHKEY_OUTBOUND_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub outbound_timeout: Option<humantime::Duration>,
    /// How long connecting to a provider may take [default: 5s].
    #[arg(
        long,
        env = "LATCHKEY_CONNECT_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub connect_timeout: Option<humantime::Duration>,
    /// How long the proxy waits for a provider's answer to start [default: 30s].
    #[arg(
        long,
        env = "LATCHKEY_PROXY_FIRST_BYTE_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub proxy_first_byte_timeout: Option<humantime::Duration>,
    /// The longest pause the proxy allows while a body streams [default: 30s].
    #[arg(
        long,
        env = "LATCHKEY_PROXY_IDLE_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub proxy_idle_timeout: Option<humantime::Duration>,
}

/// A database URL as given (flag, variable or file); `Debug` shows it without its password.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&latchkey_store::redact_database_url(&self.0))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<std::net::SocketAddr>,
    request_timeout: Option<String>,
    head_timeout: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<DatabaseUrl>,
    master_key_file: Option<PathBuf>,
    providers_dir: Option<PathBuf>,
    outbound_timeout: Option<String>,
    connect_timeout: Option<String>,
    proxy_first_byte_timeout: Option<String>,
    proxy_idle_timeout: Option<String>,
    #[serde(default)]
    providers: BTreeMap<String, FileProvider>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    base_url: Option<String>,
    /// Requests per the catalog's period, for a provider whose limit is configurable.
    rate_limit: Option<u32>,
}

/// The `LATCHKEY_*` variables Latchkey reads; any other is warned about.
const KNOWN_VARS: &[&str] = &[
    "LATCHKEY_CONFIG",
    "LATCHKEY_DATA_DIR",
    "LATCHKEY_DATABASE_URL",
    "LATCHKEY_MASTER_KEY",
    "LATCHKEY_MASTER_KEY_FILE",
    "LATCHKEY_PROVIDERS_DIR",
    "LATCHKEY_WORKSPACE",
    "LATCHKEY_OUTBOUND_TIMEOUT",
    "LATCHKEY_CONNECT_TIMEOUT",
    "LATCHKEY_LOG",
    "LATCHKEY_LOG_FORMAT",
    "LATCHKEY_LISTEN",
    "LATCHKEY_REQUEST_TIMEOUT",
    "LATCHKEY_PROXY_FIRST_BYTE_TIMEOUT",
    "LATCHKEY_PROXY_IDLE_TIMEOUT",
];

/// Warnings for `LATCHKEY_*` variables that are not settings (a typo is never silently ignored).
pub fn unknown_variables() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("LATCHKEY_"))
        .filter(|k| !KNOWN_VARS.contains(&k.as_str()))
        .filter(|k| !(k.starts_with("LATCHKEY_PROVIDER_") && k.ends_with("_BASE_URL")))
        .map(|k| format!("{k} is not a Latchkey setting and is ignored"))
        .collect()
}

/// Merge flags/environment over the config file over the defaults, and check the result.
pub fn settings(args: &GlobalArgs) -> Result<Settings> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let duration = |flag: Option<humantime::Duration>,
                    file: &Option<String>,
                    name: &str,
                    default: Duration|
     -> Result<Duration> {
        let value = match (flag, file) {
            (Some(d), _) => d.into(),
            (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                format!("{name} in the config file must be a duration such as 15s or 500ms")
            })?,
            (None, None) => default,
        };
        if value.is_zero() {
            bail!("{name} must be longer than zero");
        }
        Ok(value)
    };
    let defaults = OutboundConfig::default();
    let outbound = OutboundConfig {
        timeout: duration(
            args.outbound_timeout,
            &file.outbound_timeout,
            "outbound_timeout",
            defaults.timeout,
        )?,
        connect_timeout: duration(
            args.connect_timeout,
            &file.connect_timeout,
            "connect_timeout",
            defaults.connect_timeout,
        )?,
        first_byte_timeout: duration(
            args.proxy_first_byte_timeout,
            &file.proxy_first_byte_timeout,
            "proxy_first_byte_timeout",
            defaults.first_byte_timeout,
        )?,
        idle_timeout: duration(
            args.proxy_idle_timeout,
            &file.proxy_idle_timeout,
            "proxy_idle_timeout",
            defaults.idle_timeout,
        )?,
    };

    // Base URL overrides: the file's, then the environment's over them.
    let catalog = latchkey_core::load_catalog(
        args.providers_dir
            .as_deref()
            .or(file.providers_dir.as_deref()),
        &BTreeMap::new(),
    )?;
    let ids = catalog.ids();
    let mut provider_base_urls = BTreeMap::new();
    let mut rate_limits = BTreeMap::new();
    for (id, p) in &file.providers {
        if !ids.contains(&id.as_str()) {
            bail!(
                "the config file has [providers.{id}], but there is no provider `{id}`; known providers: {}",
                ids.join(", ")
            );
        }
        if let Some(url) = &p.base_url {
            provider_base_urls.insert(id.clone(), url.clone());
        }
        if let Some(limit) = p.rate_limit {
            rate_limits.insert(id.clone(), limit);
        }
    }
    provider_base_urls.extend(latchkey_core::provider_overrides_from_env(
        &ids,
        std::env::vars(),
    )?);

    let master_key = std::env::var("LATCHKEY_MASTER_KEY").ok().map(Secret::new);
    Ok(Settings {
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("latchkey-data")),
        database_url: args
            .database_url
            .clone()
            .or(file.database_url)
            .map(|url| url.0),
        master_key,
        master_key_file: args.master_key_file.clone().or(file.master_key_file),
        providers_dir: args.providers_dir.clone().or(file.providers_dir),
        provider_base_urls,
        outbound,
        rate_limits,
    })
}

/// `serve`'s own settings from the config file (`listen`, `request_timeout`, `head_timeout`),
/// when there is one.
#[derive(Debug, Default)]
pub struct ServeFile {
    pub listen: Option<std::net::SocketAddr>,
    pub request_timeout: Option<Duration>,
    pub head_timeout: Option<Duration>,
}

pub fn serve_file(args: &GlobalArgs) -> Result<ServeFile> {
    let Some(path) = &args.config else {
        return Ok(ServeFile::default());
    };
    let file = read_file(path)?;
    Ok(ServeFile {
        listen: file.listen,
        request_timeout: file_timeout("request_timeout", file.request_timeout.as_deref())?,
        head_timeout: file_timeout("head_timeout", file.head_timeout.as_deref())?,
    })
}

/// A timeout of the config file: a duration longer than zero.
fn file_timeout(key: &str, text: Option<&str>) -> Result<Option<Duration>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let value = humantime::parse_duration(text)
        .with_context(|| format!("{key} in the config file must be a duration such as 60s"))?;
    if value.is_zero() {
        bail!("{key} must be longer than zero");
    }
    Ok(Some(value))
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        anyhow::anyhow!(
            "config file {}:{line}: {}",
            path.display(),
            e.message().trim()
        )
    })
}
