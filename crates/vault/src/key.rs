use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{Secret, VaultError};

/// Length of a master key in bytes.
pub(crate) const MASTER_KEY_LEN: usize = 32;
const KEY_ID_PREFIX: &str = "mk_";
const KEY_ID_HEX_LEN: usize = 16;
pub(crate) const KEY_ID_LEN: usize = KEY_ID_PREFIX.len() + KEY_ID_HEX_LEN;
const KEY_ID_DOMAIN: &[u8] = b"latchkey-master-key-id\0";

/// A master key id: `mk_` followed by 16 lowercase hex digits (the first 8 bytes of
/// `SHA-256("latchkey-master-key-id\0" ‖ key)`). Not secret: it is shown in messages and stored
/// in every envelope.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Checks the shape `mk_` + 16 lowercase hex digits.
    pub fn parse(s: &str) -> Result<KeyId, VaultError> {
        let hex = s
            .strip_prefix(KEY_ID_PREFIX)
            .ok_or(VaultError::InvalidKeyId)?;
        if hex.len() == KEY_ID_HEX_LEN
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(VaultError::InvalidKeyId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of_key(key: &[u8; MASTER_KEY_LEN]) -> KeyId {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(KEY_ID_DOMAIN);
        ctx.update(key);
        let digest = ctx.finish();
        let mut id = String::with_capacity(KEY_ID_LEN);
        id.push_str(KEY_ID_PREFIX);
        for b in &digest.as_ref()[..KEY_ID_HEX_LEN / 2] {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        KeyId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A 32-byte master key, zeroized on drop. `Debug` prints `MasterKey(mk_…)` only.
///
/// The AES-256-GCM key schedule is built once, here, so sealing and opening do not redo it.
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
    id: KeyId,
    aead: LessSafeKey,
}

impl MasterKey {
    /// A new random master key from the system random number generator.
    ///
    /// # Panics
    /// If the system random number generator fails.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice())
            .expect("the system random number generator failed");
        Self::from_bytes(bytes).expect("AES-256-GCM accepts a 32-byte key")
    }

    /// Reads a key from standard, padded base64 (surrounding whitespace is ignored). It must
    /// decode to exactly 32 bytes. The error never contains the input.
    pub fn from_base64(s: &str) -> Result<MasterKey, VaultError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(VaultError::InvalidMasterKey {
                reason: "it is empty",
            });
        }
        let decoded =
            Zeroizing::new(
                STANDARD
                    .decode(s)
                    .map_err(|_| VaultError::InvalidMasterKey {
                        reason: "not valid base64",
                    })?,
            );
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if decoded.len() != MASTER_KEY_LEN {
            return Err(VaultError::InvalidMasterKey {
                reason: "must be 32 bytes",
            });
        }
        bytes.copy_from_slice(&decoded);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: Zeroizing<[u8; MASTER_KEY_LEN]>) -> Result<MasterKey, VaultError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes.as_slice()).map_err(|_| VaultError::Crypto)?;
        Ok(MasterKey {
            id: KeyId::of_key(&bytes),
            aead: LessSafeKey::new(unbound),
            bytes,
        })
    }

    /// The key in standard base64 (44 characters), as a [`Secret`].
    pub fn to_base64(&self) -> Secret {
        Secret::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }

    /// A second copy of this key (kept private: a ring needs it, callers should not).
    pub(crate) fn duplicate(&self) -> MasterKey {
        Self::from_bytes(self.bytes.clone()).expect("AES-256-GCM accepts a 32-byte key")
    }

    pub(crate) fn append_base64(&self, out: &mut String) {
        STANDARD.encode_string(self.bytes.as_slice(), out);
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// Same as `Debug`: the key id only.
impl fmt::Display for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_the_documented_hash() {
        let key = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let mut input = b"latchkey-master-key-id\0".to_vec();
        input.extend_from_slice(&[7u8; 32]);
        let d = digest::digest(&digest::SHA256, &input);
        let hex: String = d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key.id().as_str(), format!("mk_{hex}"));
        assert!(KeyId::parse(key.id().as_str()).is_ok());
    }

    #[test]
    fn key_id_parse_shape() {
        assert!(KeyId::parse("mk_0123456789abcdef").is_ok());
        for bad in [
            "",
            "mk_",
            "mk_0123456789abcde",
            "mk_0123456789abcdef0",
            "mk_0123456789ABCDEF",
            "mk_0123456789abcdeg",
            "MK_0123456789abcdef",
            "xx_0123456789abcdef",
            " mk_0123456789abcdef",
            "mk_0123456789abcdé",
        ] {
            assert!(
                matches!(KeyId::parse(bad), Err(VaultError::InvalidKeyId)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_id_serde_as_string() {
        let id = KeyId::parse("mk_0123456789abcdef").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""mk_0123456789abcdef""#
        );
        let back: KeyId = serde_json::from_str(r#""mk_0123456789abcdef""#).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<KeyId>(r#""mk_nothex""#).is_err());
        assert_eq!(format!("{id}"), "mk_0123456789abcdef");
        assert_eq!(format!("{id:?}"), "mk_0123456789abcdef");
    }

    #[test]
    fn base64_round_trip_and_whitespace() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        assert_eq!(b64.len(), 44);
        let again = MasterKey::from_base64(&format!("  \t{}\n", b64.expose())).unwrap();
        assert_eq!(again.id(), key.id());
        assert_ne!(MasterKey::generate().id(), key.id());
    }

    #[test]
    fn from_base64_errors() {
        let cases: [(&str, &str); 6] = [
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("not base64 at all!", "not valid base64"),
            // 32 bytes but unpadded
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "not valid base64",
            ),
            // 31 bytes
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
                "must be 32 bytes",
            ),
            // 33 bytes
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "must be 32 bytes",
            ),
        ];
        for (input, want) in cases {
            match MasterKey::from_base64(input) {
                Err(VaultError::InvalidMasterKey { reason }) => {
                    assert_eq!(reason, want, "{input:?}")
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
        // URL-safe alphabet is not standard base64.
        let urlsafe = base64::engine::general_purpose::URL_SAFE.encode([0xfb; 32]);
        assert!(MasterKey::from_base64(&urlsafe).is_err());
    }
}
