//! The binary envelope: parsing (never panics) and the associated-data encodings.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::key::{KEY_ID_LEN, MasterKey};
use crate::{Binding, KeyId, VaultError};

pub(crate) const MAGIC: &[u8; 4] = b"LKE1";
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const DATA_KEY_LEN: usize = 32;
pub(crate) const WRAPPED_KEY_LEN: usize = DATA_KEY_LEN + TAG_LEN;
const DATA_AAD_PREFIX: &[u8] = b"latchkey/data/v1";
const DEK_AAD_PREFIX: &[u8] = b"latchkey/dek/v1";

/// A parsed envelope; all slices borrow from the input.
pub(crate) struct Parsed<'a> {
    pub key_id: KeyId,
    pub wrap_nonce: [u8; NONCE_LEN],
    pub wrapped_key: &'a [u8],
    /// The data nonce followed by ciphertext‖tag: copied unchanged by a re-wrap.
    pub data_part: &'a [u8],
}

impl Parsed<'_> {
    pub fn data_nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&self.data_part[..NONCE_LEN]);
        n
    }

    pub fn ciphertext(&self) -> &[u8] {
        &self.data_part[NONCE_LEN..]
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], VaultError> {
        if self.0.len() < n {
            return Err(VaultError::MalformedEnvelope(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], VaultError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| VaultError::MalformedEnvelope(what))
    }
}

pub(crate) fn parse(envelope: &[u8]) -> Result<Parsed<'_>, VaultError> {
    let mut c = Cursor(envelope);
    if c.take(MAGIC.len(), "too short for the magic bytes")? != MAGIC {
        return Err(VaultError::MalformedEnvelope(
            "wrong magic bytes or unsupported version",
        ));
    }
    let [id_len] = c.take_array::<1>("too short for the key id length")?;
    if usize::from(id_len) != KEY_ID_LEN {
        return Err(VaultError::MalformedEnvelope("wrong key id length"));
    }
    let id_bytes = c.take(usize::from(id_len), "too short for the key id")?;
    let key_id = std::str::from_utf8(id_bytes)
        .ok()
        .and_then(|s| KeyId::parse(s).ok())
        .ok_or(VaultError::MalformedEnvelope("the key id is malformed"))?;
    let wrap_nonce = c.take_array::<NONCE_LEN>("too short for the key-wrap nonce")?;
    let wrapped_key = c.take(WRAPPED_KEY_LEN, "too short for the wrapped data key")?;
    let data_part = c.0;
    if data_part.len() < NONCE_LEN {
        return Err(VaultError::MalformedEnvelope(
            "too short for the data nonce",
        ));
    }
    if data_part.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::MalformedEnvelope(
            "too short for the authentication tag",
        ));
    }
    Ok(Parsed {
        key_id,
        wrap_nonce,
        wrapped_key,
        data_part,
    })
}

/// The key id recorded in an envelope (no key needed).
pub fn envelope_key_id(envelope: &[u8]) -> Result<KeyId, VaultError> {
    parse(envelope).map(|p| p.key_id)
}

fn push_binding(out: &mut Vec<u8>, binding: &Binding) {
    for s in [&binding.workspace, &binding.credential] {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&binding.revision.to_be_bytes());
}

fn binding_len(binding: &Binding) -> usize {
    8 + binding.workspace.len() + 8 + binding.credential.len() + 8
}

/// `"latchkey/data/v1" ‖ binding`.
pub(crate) fn data_aad(binding: &Binding) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_AAD_PREFIX.len() + binding_len(binding));
    aad.extend_from_slice(DATA_AAD_PREFIX);
    push_binding(&mut aad, binding);
    aad
}

/// `"latchkey/dek/v1" ‖ u8 id length ‖ key id ‖ binding`.
pub(crate) fn dek_aad(key_id: &KeyId, binding: &Binding) -> Vec<u8> {
    let id = key_id.as_str().as_bytes();
    let mut aad = Vec::with_capacity(DEK_AAD_PREFIX.len() + 1 + id.len() + binding_len(binding));
    aad.extend_from_slice(DEK_AAD_PREFIX);
    aad.push(KEY_ID_LEN as u8);
    aad.extend_from_slice(id);
    push_binding(&mut aad, binding);
    aad
}

pub(crate) fn random_nonce() -> Result<[u8; NONCE_LEN], VaultError> {
    let mut n = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut n).map_err(|_| VaultError::Crypto)?;
    Ok(n)
}

/// Appends `magic ‖ id length ‖ id ‖ wrap nonce ‖ wrapped data key` to `out`.
pub(crate) fn push_header(
    out: &mut Vec<u8>,
    master: &MasterKey,
    binding: &Binding,
    data_key: &[u8; DATA_KEY_LEN],
) -> Result<(), VaultError> {
    let id = master.id().as_str().as_bytes();
    let wrap_nonce = random_nonce()?;
    out.extend_from_slice(MAGIC);
    out.push(KEY_ID_LEN as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&wrap_nonce);
    let start = out.len();
    out.extend_from_slice(data_key);
    let aad = dek_aad(master.id(), binding);
    let tag = master
        .aead()
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(wrap_nonce),
            Aad::from(aad.as_slice()),
            &mut out[start..],
        )
        .map_err(|_| VaultError::Crypto)?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

pub(crate) fn header_len() -> usize {
    MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN + WRAPPED_KEY_LEN
}

/// Unwraps the data key of `parsed` with `master` (checking the key id and the binding).
pub(crate) fn unwrap_data_key(
    master: &MasterKey,
    parsed: &Parsed<'_>,
    binding: &Binding,
) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, VaultError> {
    let mut buf = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
    buf.copy_from_slice(parsed.wrapped_key);
    let aad = dek_aad(&parsed.key_id, binding);
    let plain = master
        .aead()
        .open_in_place(
            Nonce::assume_unique_for_key(parsed.wrap_nonce),
            Aad::from(aad.as_slice()),
            buf.as_mut_slice(),
        )
        .map_err(|_| VaultError::OpenFailed)?;
    let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    data_key.copy_from_slice(plain);
    Ok(data_key)
}

/// An AES-256-GCM key for a data key.
pub(crate) fn data_key(bytes: &[u8; DATA_KEY_LEN]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Crypto)
}
