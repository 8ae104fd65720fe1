//! Starting Latchkey: open the store, find the master key (or create one for a new data
//! directory), load the catalog with the operator's provider files and base URL overrides.

use crate::Latchkey;
use crate::error::{CoreError, Result};
use crate::outbound::{Outbound, OutboundConfig};
use latchkey_catalog::{Catalog, ProviderFile};
use latchkey_store::Location;
use latchkey_vault::{KeyRing, MasterKey, Secret};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file a new data directory's master key is written to.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The meta entry holding the key-check canary.
pub const KEY_CHECK: &str = "key_check";

/// Everything start-up needs, already layered (defaults, file, environment, flags) by the caller.
/// `Debug` shows the database URL without its password (and the master key as `[redacted]`).
#[derive(Clone, Default)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// `LATCHKEY_MASTER_KEY`: base64 of 32 bytes.
    pub master_key: Option<Secret>,
    pub master_key_file: Option<PathBuf>,
    pub providers_dir: Option<PathBuf>,
    /// Base URL overrides by provider id.
    pub provider_base_urls: BTreeMap<String, String>,
    pub outbound: OutboundConfig,
    /// Request limits per provider id, for providers whose limit is configurable.
    pub rate_limits: BTreeMap<String, u32>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self
                    .database_url
                    .as_deref()
                    .map(latchkey_store::redact_database_url),
            )
            .field("master_key", &self.master_key)
            .field("master_key_file", &self.master_key_file)
            .field("providers_dir", &self.providers_dir)
            .field("provider_base_urls", &self.provider_base_urls)
            .field("outbound", &self.outbound)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// Something start-up wants the operator to know once (e.g. that a master key was created).
#[derive(Debug, Clone)]
pub struct Notice(pub String);

impl Latchkey {
    /// Open everything described by `settings`. Refuses a database holding credentials when the
    /// master key is missing or wrong, saying which.
    pub async fn start(settings: &Settings) -> Result<(Latchkey, Vec<Notice>)> {
        let catalog = load_catalog(
            settings.providers_dir.as_deref(),
            &settings.provider_base_urls,
        )?;
        let location = Location::resolve(settings.database_url.as_deref(), &settings.data_dir)
            .map_err(|e| CoreError::Setup(e.to_string()))?;
        let repo = latchkey_store::open(&location)
            .await
            .map_err(|e| CoreError::Setup(e.to_string()))?;
        let mut notices = Vec::new();
        let canary = repo.get_meta(KEY_CHECK).await?;
        let holds_data = canary.is_some() || repo.count_credentials().await? > 0;
        let default_key_file = match &location {
            Location::Sqlite(path) => path
                .parent()
                .unwrap_or(Path::new("."))
                .join(MASTER_KEY_FILE),
            // A server database has no directory of its own: the key file is in the data directory.
            Location::Postgres(_) => settings.data_dir.join(MASTER_KEY_FILE),
        };

        let (ring, key_file) = match find_key_ring(settings, &default_key_file)? {
            Some(found) => found,
            None if !holds_data => {
                let ring = KeyRing::new(MasterKey::generate());
                write_new_key_file(&default_key_file, &ring)?;
                notices.push(Notice(format!(
                    "Created a new master key {} in {} (mode 0600). Back it up: without it the stored credentials cannot be opened.",
                    ring.primary_id(),
                    default_key_file.display()
                )));
                (ring, Some(default_key_file.clone()))
            }
            None => {
                let sealed_with = canary
                    .as_deref()
                    .and_then(|c| latchkey_vault::envelope_key_id(c).ok())
                    .map(|id| format!(" (sealed with master key {id})"))
                    .unwrap_or_default();
                return Err(CoreError::MasterKeyMissing(format!(
                    "missing master key: {} holds credentials{sealed_with}, but no master key was given. Set LATCHKEY_MASTER_KEY, pass --master-key-file, or put the key file at {}.",
                    location.describe(),
                    default_key_file.display()
                )));
            }
        };

        // A new database takes this key's check, unless another process starting at the same
        // moment (an instance sharing a PostgreSQL database) stored its own first: then this key
        // must match that one.
        let canary = match canary {
            Some(canary) => Some(canary),
            None => {
                let check = ring
                    .make_key_check()
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
                if repo.insert_meta(KEY_CHECK, &check).await? {
                    None
                } else {
                    repo.get_meta(KEY_CHECK).await?
                }
            }
        };
        if let Some(canary) = canary {
            ring.check(&canary).map_err(|e| match e {
                latchkey_vault::VaultError::WrongMasterKey { .. } => {
                    CoreError::MasterKeyWrong(format!("{e} ({})", location.describe()))
                }
                other => CoreError::MasterKeyWrong(format!(
                    "the key check stored in {} did not open: {other}",
                    location.describe()
                )),
            })?;
        }
        // Every envelope's key must be in the ring (an older key may still be needed).
        for (key_id, count) in repo.envelope_key_counts().await? {
            let known = latchkey_vault::KeyId::parse(&key_id)
                .map(|id| ring.contains(&id))
                .unwrap_or(false);
            if !known {
                return Err(CoreError::MasterKeyWrong(format!(
                    "wrong master key: {count} credential(s) in {} are sealed with master key {key_id}, which the key ring does not hold; add that key to the key file",
                    location.describe()
                )));
            }
        }

        let outbound = Outbound::new(settings.outbound.clone())
            .map_err(|e| CoreError::Setup(e.to_string()))?;
        for (id, requests) in &settings.rate_limits {
            let configurable = catalog
                .get(id)
                .and_then(|p| p.rate_limit.as_ref())
                .is_some_and(|r| r.configurable && r.requests.is_some());
            if !configurable || *requests == 0 {
                return Err(CoreError::Setup(format!(
                    "the request limit of `{id}` cannot be set: only a provider whose catalog entry says its limit is configurable (e.g. aircall) takes one, above 0"
                )));
            }
        }
        let latchkey = Latchkey::new(repo, Arc::new(catalog), ring, key_file, outbound)
            .with_rate_limits(settings.rate_limits.clone());
        latchkey.ensure_workspace(crate::DEFAULT_WORKSPACE).await?;
        Ok((latchkey, notices))
    }
}

/// The built-in catalog plus the operator's provider files (`*.toml` in `providers_dir`), with the
/// base URL overrides applied.
pub fn load_catalog(
    providers_dir: Option<&Path>,
    overrides: &BTreeMap<String, String>,
) -> Result<Catalog> {
    let mut files = Vec::new();
    if let Some(dir) = providers_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            CoreError::Setup(format!(
                "cannot read the providers directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                CoreError::Setup(format!(
                    "cannot read the provider file {}: {e}",
                    path.display()
                ))
            })?;
            files.push(ProviderFile {
                path: path.display().to_string(),
                text,
            });
        }
    }
    let mut catalog = Catalog::from_files(&files)
        .map_err(|e| CoreError::Setup(format!("provider file refused: {e}")))?;
    for (id, url) in overrides {
        catalog
            .override_base_url(id, url)
            .map_err(|e| CoreError::Setup(e.message))?;
    }
    Ok(catalog)
}

/// `LATCHKEY_PROVIDER_<ID>_BASE_URL` variables → overrides by provider id (id upper-cased, `-`
/// as `_`). A variable naming no provider is refused.
pub fn provider_overrides_from_env(
    catalog_ids: &[&str],
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in vars {
        let Some(middle) = name
            .strip_prefix("LATCHKEY_PROVIDER_")
            .and_then(|m| m.strip_suffix("_BASE_URL"))
        else {
            continue;
        };
        let id = catalog_ids
            .iter()
            .find(|id| id.to_ascii_uppercase().replace('-', "_") == middle)
            .ok_or_else(|| {
                CoreError::Setup(format!(
                    "{name} names no known provider; known providers: {}",
                    catalog_ids.join(", ")
                ))
            })?;
        out.insert((*id).to_owned(), value);
    }
    Ok(out)
}

/// The key ring from `LATCHKEY_MASTER_KEY`, the key file named in the settings, or the data
/// directory's `master.key` — in that order — with the file it came from; `None` when there is
/// none of them.
fn find_key_ring(
    settings: &Settings,
    default_file: &Path,
) -> Result<Option<(KeyRing, Option<PathBuf>)>> {
    if let Some(key) = &settings.master_key {
        let key = MasterKey::from_base64(key.expose())
            .map_err(|e| CoreError::Setup(format!("LATCHKEY_MASTER_KEY is not usable: {e}")))?;
        return Ok(Some((KeyRing::new(key), None)));
    }
    let (path, named) = match &settings.master_key_file {
        Some(path) => (path.as_path(), true),
        None => (default_file, false),
    };
    if !named && !path.exists() {
        return Ok(None);
    }
    let ring = crate::keys::read_key_file(path)?;
    Ok(Some((ring, Some(path.to_owned()))))
}

fn write_new_key_file(path: &Path, ring: &KeyRing) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CoreError::Setup(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            CoreError::Setup(format!(
                "cannot create the master key file {}: {e}",
                path.display()
            ))
        })?;
    file.write_all(ring.to_key_file().expose().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            CoreError::Setup(format!(
                "cannot write the master key file {}: {e}",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_database_password_or_the_master_key() {
        let settings = Settings {
            database_url: Some("postgres://latchkey:pg-s3cret@db.internal/latchkey".to_owned()),
            master_key: Some(Secret::new("bWFzdGVyLWtleS1zM2NyZXQ=".to_owned())),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(shown.contains("db.internal"), "{shown}");
        assert!(!shown.contains("pg-s3cret"), "{shown}");
        assert!(!shown.contains("bWFzdGVy"), "{shown}");
    }

    #[test]
    fn env_overrides_map_to_ids() {
        let ids = ["chorus", "clari-copilot", "ccai-platform"];
        let vars = vec![
            (
                "LATCHKEY_PROVIDER_CLARI_COPILOT_BASE_URL".to_owned(),
                "http://127.0.0.1:9004".to_owned(),
            ),
            ("LATCHKEY_DATA_DIR".to_owned(), "x".to_owned()),
        ];
        let out = provider_overrides_from_env(&ids, vars).unwrap();
        assert_eq!(
            out.get("clari-copilot").map(String::as_str),
            Some("http://127.0.0.1:9004")
        );
        let bad = vec![("LATCHKEY_PROVIDER_NOPE_BASE_URL".to_owned(), "x".to_owned())];
        assert!(provider_overrides_from_env(&ids, bad).is_err());
    }
}
