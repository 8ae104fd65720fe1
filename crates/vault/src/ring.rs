use std::fmt;

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use zeroize::Zeroizing;

use crate::envelope::{self, DATA_KEY_LEN, TAG_LEN, data_key};
use crate::{KeyId, MasterKey, Secret, SecretBytes, VaultError};

const KEY_CHECK_PLAINTEXT: &[u8] = b"latchkey key check v1";
const KEY_FILE_HEADER: &str = "# Latchkey master keys: keep this file secret. One base64 key per line; the first is the primary.\n";

/// What a ciphertext is bound to (its associated data): a copy on another row fails to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Workspace id.
    pub workspace: String,
    /// Credential id.
    pub credential: String,
    /// Revision of the credential's secret.
    pub revision: i64,
}

impl Binding {
    /// A binding to one revision of one credential of one workspace.
    pub fn new(workspace: impl Into<String>, credential: impl Into<String>, revision: i64) -> Self {
        Self {
            workspace: workspace.into(),
            credential: credential.into(),
            revision,
        }
    }

    /// The binding of the key-check canary: workspace `""`, credential `"latchkey-key-check"`,
    /// revision 0.
    pub fn key_check() -> Self {
        Self::new("", "latchkey-key-check", 0)
    }
}

/// The key ring: one primary key (seals and wraps) and older keys (open only).
pub struct KeyRing {
    primary: MasterKey,
    older: Vec<MasterKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn new(primary: MasterKey) -> Self {
        Self {
            primary,
            older: Vec::new(),
        }
    }

    /// A ring with a primary and older keys; a key given twice is refused.
    pub fn with_keys(primary: MasterKey, older: Vec<MasterKey>) -> Result<Self, VaultError> {
        let mut ring = Self::new(primary);
        for key in older {
            if ring.contains(key.id()) {
                return Err(VaultError::DuplicateKey(key.id().clone()));
            }
            ring.older.push(key);
        }
        Ok(ring)
    }

    /// Reads a key file: UTF-8 text, one base64 key per line; blank lines and lines starting
    /// with `#` are ignored; the first key is the primary. Errors name the 1-based line number,
    /// never its content.
    pub fn from_key_file(contents: &[u8]) -> Result<Self, VaultError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, raw) in contents.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let text = std::str::from_utf8(raw).map_err(|_| VaultError::MalformedKeyFile {
                line,
                reason: "not valid UTF-8",
            })?;
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let key = MasterKey::from_base64(text).map_err(|e| VaultError::MalformedKeyFile {
                line,
                reason: match e {
                    VaultError::InvalidMasterKey { reason } => reason,
                    _ => "not a master key",
                },
            })?;
            if keys.iter().any(|k| k.id() == key.id()) {
                return Err(VaultError::MalformedKeyFile {
                    line,
                    reason: "repeats a key given on an earlier line",
                });
            }
            keys.push(key);
        }
        let mut keys = keys.into_iter();
        let primary = keys.next().ok_or(VaultError::EmptyKeyFile)?;
        Ok(Self {
            primary,
            older: keys.collect(),
        })
    }

    /// The key-file text for this ring (primary first) with a comment header line.
    pub fn to_key_file(&self) -> Secret {
        let mut out = String::with_capacity(KEY_FILE_HEADER.len() + 45 * (1 + self.older.len()));
        out.push_str(KEY_FILE_HEADER);
        for key in self.keys() {
            key.append_base64(&mut out);
            out.push('\n');
        }
        Secret::new(out)
    }

    fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        std::iter::once(&self.primary).chain(&self.older)
    }

    fn key(&self, id: &KeyId) -> Option<&MasterKey> {
        self.keys().find(|k| k.id() == id)
    }

    /// The id of the primary key.
    pub fn primary_id(&self) -> &KeyId {
        self.primary.id()
    }

    /// All key ids, primary first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys().map(|k| k.id().clone()).collect()
    }

    /// Whether the ring holds key `id`.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.key(id).is_some()
    }

    /// A new ring whose primary is `key` and whose older keys are all current keys (rotation).
    /// Refused if `key` is already in the ring.
    pub fn with_new_primary(&self, key: MasterKey) -> Result<KeyRing, VaultError> {
        if self.contains(key.id()) {
            return Err(VaultError::DuplicateKey(key.id().clone()));
        }
        Ok(KeyRing {
            primary: key,
            older: self.keys().map(MasterKey::duplicate).collect(),
        })
    }

    /// The primary key of a key file's text (its first key): the new key a rotation brings.
    pub fn first_key_of_file(contents: &[u8]) -> Result<MasterKey, VaultError> {
        Ok(Self::from_key_file(contents)?.primary)
    }

    /// A new ring without key `id`. Removing the primary is refused; an id not in the ring is
    /// [`VaultError::UnknownKey`].
    pub fn without(&self, id: &KeyId) -> Result<KeyRing, VaultError> {
        if self.primary.id() == id {
            return Err(VaultError::RemovePrimary(id.clone()));
        }
        if !self.contains(id) {
            return Err(VaultError::UnknownKey(id.clone()));
        }
        Ok(KeyRing {
            primary: self.primary.duplicate(),
            older: self
                .older
                .iter()
                .filter(|k| k.id() != id)
                .map(MasterKey::duplicate)
                .collect(),
        })
    }

    /// Seals `plaintext` under a fresh data key wrapped by the primary key, bound to `binding`.
    pub fn seal(&self, binding: &Binding, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut dek = Zeroizing::new([0u8; DATA_KEY_LEN]);
        aws_lc_rs::rand::fill(dek.as_mut_slice()).map_err(|_| VaultError::Crypto)?;
        let data_nonce = envelope::random_nonce()?;
        let total = envelope::header_len() + NONCE_LEN + plaintext.len() + TAG_LEN;
        // Zeroizing while it is being built: on an error part of it may still be plaintext.
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        envelope::push_header(&mut out, &self.primary, binding, &dek)?;
        out.extend_from_slice(&data_nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let aad = envelope::data_aad(binding);
        let tag = data_key(&dek)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(data_nonce),
                Aad::from(aad.as_slice()),
                &mut out[start..],
            )
            .map_err(|_| VaultError::Crypto)?;
        out.extend_from_slice(tag.as_ref());
        debug_assert_eq!(out.len(), total);
        Ok(std::mem::take(&mut *out))
    }

    /// Opens an envelope sealed under any key of the ring for the same `binding`.
    pub fn open(&self, binding: &Binding, envelope: &[u8]) -> Result<SecretBytes, VaultError> {
        let parsed = envelope::parse(envelope)?;
        let master = self
            .key(&parsed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(parsed.key_id.clone()))?;
        let dek = data_key(&*envelope::unwrap_data_key(master, &parsed, binding)?)?;
        let mut buf = Zeroizing::new(parsed.ciphertext().to_vec());
        let aad = envelope::data_aad(binding);
        let len = dek
            .open_in_place(
                Nonce::assume_unique_for_key(parsed.data_nonce()),
                Aad::from(aad.as_slice()),
                buf.as_mut_slice(),
            )
            .map_err(|_| VaultError::OpenFailed)?
            .len();
        buf.truncate(len);
        Ok(SecretBytes::from_zeroizing(buf))
    }

    /// Re-wraps the data key under the primary key; the data nonce and ciphertext are copied
    /// unchanged (master-key rotation without re-encrypting secrets).
    pub fn rewrap(&self, binding: &Binding, envelope: &[u8]) -> Result<Vec<u8>, VaultError> {
        let parsed = envelope::parse(envelope)?;
        let master = self
            .key(&parsed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(parsed.key_id.clone()))?;
        let data_key = envelope::unwrap_data_key(master, &parsed, binding)?;
        let mut out = Vec::with_capacity(envelope::header_len() + parsed.data_part.len());
        envelope::push_header(&mut out, &self.primary, binding, &data_key)?;
        out.extend_from_slice(parsed.data_part);
        Ok(out)
    }

    /// A key-check canary to store beside the data, so a later start can tell a wrong key
    /// from a missing one.
    pub fn make_key_check(&self) -> Result<Vec<u8>, VaultError> {
        self.seal(&Binding::key_check(), KEY_CHECK_PLAINTEXT)
    }

    /// `Ok` if this ring opens the canary; [`VaultError::WrongMasterKey`] if the ring lacks the
    /// key that sealed it. A canary that names a key of the ring but does not open was altered:
    /// [`VaultError::OpenFailed`].
    pub fn check(&self, canary: &[u8]) -> Result<(), VaultError> {
        let expected = envelope::envelope_key_id(canary)?;
        if !self.contains(&expected) {
            return Err(VaultError::WrongMasterKey {
                expected,
                have: self.ids(),
            });
        }
        let opened = self.open(&Binding::key_check(), canary)?;
        if opened.expose() == KEY_CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(VaultError::OpenFailed)
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", self.primary.id())
            .field(
                "older",
                &self.older.iter().map(MasterKey::id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Same as `Debug`: key ids only.
impl fmt::Display for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
