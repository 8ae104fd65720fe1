//! The master key ring in use, and master-key rotation.
//!
//! Rotation adds a new primary key to the key file, then re-wraps every credential's data key
//! under it in batches — no secret is decrypted or re-encrypted, and a credential's revision does
//! not change. It can stop at any point (even SIGKILL) and be run again: a ring whose primary does
//! not yet wrap every envelope is an unfinished rotation, and the next run finishes it before any
//! new key is added. An older key is retired (removed from the key file) only when no envelope
//! uses it any more.
//!
//! Running servers follow the key file by themselves: they look at it every
//! [`KEY_FILE_POLL`], and at once when an envelope names a key they do not hold.

use crate::Latchkey;
use crate::error::{CoreError, Result};
use crate::startup::KEY_CHECK;
use latchkey_store::EnvelopeRow;
use latchkey_vault::{Binding, KeyId, KeyRing, MasterKey};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often a server looks whether its key file changed.
pub const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// The key ring in use and where it came from.
pub(crate) struct KeyState {
    ring: RwLock<Arc<KeyRing>>,
    /// The key file the ring was read from; `None` when it came from `LATCHKEY_MASTER_KEY`.
    file: Option<PathBuf>,
    /// The key file as last read (modified time, length): it is read again only when it changed.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl KeyState {
    pub(crate) fn new(ring: KeyRing, file: Option<PathBuf>) -> KeyState {
        let stamp = file.as_deref().and_then(stamp_of);
        KeyState {
            ring: RwLock::new(Arc::new(ring)),
            file,
            stamp: Mutex::new(stamp),
        }
    }

    pub(crate) fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, ring: KeyRing) {
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// How much one master key is used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyUse {
    pub id: String,
    /// The key that seals new secrets and wraps re-wrapped ones.
    pub primary: bool,
    /// Whether the key file holds it (a key that wraps envelopes but is missing is a problem).
    pub in_ring: bool,
    /// How many credentials' envelopes it wraps.
    pub envelopes: u64,
    /// Whether it wraps the key check (the canary that tells a wrong key from a missing one).
    pub key_check: bool,
}

/// Where a rotation starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The primary key every envelope is re-wrapped under.
    pub primary: String,
    /// Whether this run finishes an earlier, unfinished rotation (no new key was added).
    pub resumed: bool,
    /// Credentials' envelopes still to re-wrap (the key check aside).
    pub pending: u64,
}

/// What one batch of a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapBatch {
    /// Envelopes read (not under the primary key).
    pub read: u64,
    /// Envelopes stored re-wrapped (fewer than read when a credential changed meanwhile).
    pub rewrapped: u64,
    /// The last credential id of the batch: where the next batch starts.
    pub last: Option<String>,
}

impl Latchkey {
    /// The key ring in use.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.ring()
    }

    /// The key file the ring came from (`None`: from `LATCHKEY_MASTER_KEY`).
    pub fn key_file(&self) -> Option<&Path> {
        self.keys.file.as_deref()
    }

    /// Read the key file again if it changed since it was last read. `Ok(true)` when the ring in
    /// use changed. A file that cannot be read or parsed leaves the ring in use as it is.
    pub fn reload_key_ring(&self) -> Result<bool> {
        let Some(path) = self.keys.file.as_deref() else {
            return Ok(false);
        };
        let stamp = stamp_of(path);
        let mut last = self.keys.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if stamp.is_some() && *last == stamp {
            return Ok(false);
        }
        let ring = read_key_file(path)?;
        let current = self.keys.ring();
        *last = stamp;
        if ring.ids() == current.ids() {
            return Ok(false);
        }
        tracing::info!(primary = %ring.primary_id(), keys = ring.ids().len(), file = %path.display(), "master key ring reloaded");
        self.keys.replace(ring);
        Ok(true)
    }

    /// Follow the key file for as long as the process runs (servers call this once).
    pub fn watch_key_file(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.keys.file.as_ref()?;
        let lk = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_FILE_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = lk.reload_key_ring() {
                    tracing::warn!("the master key file changed but cannot be used: {e}");
                }
            }
        }))
    }

    /// How many envelopes each master key wraps: the ring's keys first (primary first), then any
    /// key that wraps envelopes but is not in the ring.
    pub async fn key_status(&self) -> Result<Vec<KeyUse>> {
        let _ = self.reload_key_ring();
        let ring = self.keys.ring();
        let counts = self.repo.envelope_key_counts().await?;
        let check = self
            .repo
            .get_meta(KEY_CHECK)
            .await?
            .and_then(|c| latchkey_vault::envelope_key_id(&c).ok())
            .map(|id| id.as_str().to_owned());
        let mut out: Vec<KeyUse> = ring
            .ids()
            .iter()
            .map(|id| KeyUse {
                id: id.as_str().to_owned(),
                primary: id == ring.primary_id(),
                in_ring: true,
                envelopes: 0,
                key_check: false,
            })
            .collect();
        for (id, n) in counts {
            match out.iter_mut().find(|k| k.id == id) {
                Some(k) => k.envelopes = n,
                None => out.push(KeyUse {
                    id,
                    primary: false,
                    in_ring: false,
                    envelopes: n,
                    key_check: false,
                }),
            }
        }
        if let Some(check) = check {
            match out.iter_mut().find(|k| k.id == check) {
                Some(k) => k.key_check = true,
                None => out.push(KeyUse {
                    id: check,
                    primary: false,
                    in_ring: false,
                    envelopes: 0,
                    key_check: true,
                }),
            }
        }
        Ok(out)
    }

    /// Start (or resume) a rotation. With nothing pending, `new_key` (or a generated key) becomes
    /// the primary: the key file is rewritten with it first and the older keys after. With
    /// envelopes still under older keys, the unfinished rotation is resumed instead, and a
    /// different `new_key` is refused.
    pub async fn begin_rotation(&self, new_key: Option<MasterKey>) -> Result<Rotation> {
        let path = self.writable_key_file()?;
        self.reload_key_ring()?;
        let ring = self.keys.ring();
        let primary = ring.primary_id().as_str().to_owned();
        let pending = self.pending_envelopes(&primary).await?;
        if pending > 0 {
            if let Some(key) = &new_key
                && key.id().as_str() != primary
            {
                return Err(CoreError::RotationUnfinished { primary, pending });
            }
            return Ok(Rotation {
                pending: self.credentials_not_under(&primary).await?,
                primary,
                resumed: true,
            });
        }
        let key = new_key.unwrap_or_else(MasterKey::generate);
        // A key already in the ring as an older key (put there on every machine beforehand, so
        // that all servers open what it wraps) is promoted to primary.
        let promoted = if ring.contains(key.id()) && ring.primary_id() != key.id() {
            Some(
                ring.without(key.id())
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
            )
        } else {
            None
        };
        let next = promoted
            .as_ref()
            .unwrap_or(&ring)
            .with_new_primary(key)
            .map_err(|e| match e {
                latchkey_vault::VaultError::DuplicateKey(id) => CoreError::KeyAlreadyInRing {
                    key: id.as_str().to_owned(),
                },
                other => CoreError::Internal(other.to_string()),
            })?;
        write_key_file(&path, &next)?;
        let primary = next.primary_id().as_str().to_owned();
        *self.keys.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_of(&path);
        self.keys.replace(next);
        tracing::info!(primary = %primary, file = %path.display(), "master key rotation begun");
        Ok(Rotation {
            pending: self.credentials_not_under(&primary).await?,
            primary,
            resumed: false,
        })
    }

    /// Re-wrap up to `limit` envelopes not under the primary key, from after credential id
    /// `after`. Each is stored only if its credential did not change meanwhile.
    pub async fn rewrap_batch(&self, after: Option<&str>, limit: u32) -> Result<RewrapBatch> {
        let ring = self.keys.ring();
        let primary = ring.primary_id().as_str().to_owned();
        let rows = self
            .repo
            .envelopes_not_under(&primary, after, limit.max(1))
            .await?;
        let last = rows.last().map(|r| r.id.clone());
        let read = rows.len() as u64;
        let mut rewrapped = Vec::with_capacity(rows.len());
        for row in rows {
            let binding = Binding::new(&row.workspace_id, &row.id, row.revision);
            let envelope =
                ring.rewrap(&binding, &row.envelope)
                    .map_err(|source| CoreError::Vault {
                        credential: row.id.clone(),
                        source,
                    })?;
            rewrapped.push(EnvelopeRow {
                envelope,
                key_id: primary.clone(),
                ..row
            });
        }
        let stored = self.repo.replace_envelopes(&rewrapped).await?;
        self.reads.clear();
        Ok(RewrapBatch {
            read,
            rewrapped: stored,
            last,
        })
    }

    /// After the batches: re-wrap the key check under the primary key too, and answer how many
    /// envelopes are still under older keys (0 when the rotation is complete).
    pub async fn finish_rotation(&self) -> Result<u64> {
        let ring = self.keys.ring();
        if let Some(check) = self.repo.get_meta(KEY_CHECK).await?
            && latchkey_vault::envelope_key_id(&check).ok().as_ref() != Some(ring.primary_id())
        {
            let rewrapped = ring
                .rewrap(&Binding::key_check(), &check)
                .map_err(|e| CoreError::Internal(format!("the key check did not re-wrap: {e}")))?;
            self.repo.set_meta(KEY_CHECK, &rewrapped).await?;
        }
        self.pending_envelopes(ring.primary_id().as_str()).await
    }

    /// Remove master key `id` from the key file; refused for the primary key and while any
    /// envelope (or the key check) still uses it.
    pub async fn retire_key(&self, id: &str) -> Result<()> {
        let key = KeyId::parse(id.trim()).map_err(|_| CoreError::InvalidKeyId {
            given: id.chars().take(40).collect(),
        })?;
        let path = self.writable_key_file()?;
        self.reload_key_ring()?;
        let ring = self.keys.ring();
        if ring.primary_id() == &key {
            return Err(CoreError::KeyIsPrimary {
                key: key.as_str().to_owned(),
            });
        }
        if !ring.contains(&key) {
            return Err(CoreError::KeyNotInRing {
                key: key.as_str().to_owned(),
                file: Some(path.display().to_string()),
            });
        }
        let status = self.key_status().await?;
        if let Some(used) = status
            .iter()
            .find(|k| k.id == key.as_str() && (k.envelopes > 0 || k.key_check))
        {
            return Err(CoreError::KeyInUse {
                key: used.id.clone(),
                envelopes: used.envelopes,
                key_check: used.key_check,
            });
        }
        let next = ring
            .without(&key)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        write_key_file(&path, &next)?;
        *self.keys.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_of(&path);
        self.keys.replace(next);
        tracing::info!(key = %key, file = %path.display(), "master key retired");
        Ok(())
    }

    /// Credentials' envelopes not under `primary`.
    async fn credentials_not_under(&self, primary: &str) -> Result<u64> {
        Ok(self
            .repo
            .envelope_key_counts()
            .await?
            .iter()
            .filter(|(id, _)| id != primary)
            .map(|(_, n)| n)
            .sum())
    }

    /// Envelopes (and the key check) not under `primary`.
    async fn pending_envelopes(&self, primary: &str) -> Result<u64> {
        let envelopes = self.credentials_not_under(primary).await?;
        let check = self.repo.get_meta(KEY_CHECK).await?.is_some_and(|c| {
            latchkey_vault::envelope_key_id(&c)
                .ok()
                .is_some_and(|id| id.as_str() != primary)
        });
        Ok(envelopes + u64::from(check))
    }

    fn writable_key_file(&self) -> Result<PathBuf> {
        self.keys.file.clone().ok_or_else(|| {
            CoreError::Setup(
                "the master key comes from LATCHKEY_MASTER_KEY, and rotating or retiring keys rewrites a key file: put the key in a file (one base64 key per line) and pass --master-key-file instead".to_owned(),
            )
        })
    }
}

/// Read and parse a key file; errors name the file, never a key.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyRing> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        CoreError::Setup(format!(
            "cannot read the master key file {}: {e}",
            path.display()
        ))
    })?);
    KeyRing::from_key_file(&bytes).map_err(|e| {
        CoreError::Setup(format!(
            "the master key file {} is not usable: {e}",
            path.display()
        ))
    })
}

/// Replace the key file atomically: a new file (mode 0600) beside it, synced, renamed over it.
fn write_key_file(path: &Path, ring: &KeyRing) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: std::io::Error| {
        CoreError::Setup(format!(
            "cannot write the master key file {}: {e}",
            path.display()
        ))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".new-{}", std::process::id()));
    let tmp = dir.join(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(failed)?;
    file.write_all(ring.to_key_file().expose().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
