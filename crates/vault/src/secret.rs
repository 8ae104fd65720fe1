use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

const REDACTED: &str = "[redacted]";

/// A secret string: zeroized on drop; `Debug` and `Display` print `[redacted]`.
///
/// There is deliberately no `PartialEq` (use [`Secret::ct_eq`]) and no `Serialize`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a string. The given `String` is copied once into an exactly sized buffer and then
    /// zeroized, so no stray copy is left behind.
    pub fn new(s: impl Into<String>) -> Self {
        let mut s: String = s.into();
        let secret = Self::from_str_ref(&s);
        s.zeroize();
        secret
    }

    pub(crate) fn from_str_ref(s: &str) -> Self {
        Self(SecretString::from(s))
    }

    /// The secret value. Keep its use short and never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// A masked hint for display: `••••wxyz` (the last 4 characters) when the secret has 12 or
    /// more characters, otherwise `••••` only.
    pub fn hint(&self) -> String {
        const MASK: &str = "••••";
        let s = self.expose();
        let count = s.chars().count();
        if count < 12 {
            return MASK.to_owned();
        }
        let tail_start = s.char_indices().nth(count - 4).map_or(s.len(), |(i, _)| i);
        let mut hint = String::with_capacity(MASK.len() + s.len() - tail_start);
        hint.push_str(MASK);
        hint.push_str(&s[tail_start..]);
        hint
    }

    /// Compares two secrets in constant time with respect to their contents (the length is not
    /// hidden).
    pub fn ct_eq(&self, other: &Secret) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.expose().as_bytes(),
            other.expose().as_bytes(),
        )
        .is_ok()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::from_str_ref(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::from_str_ref(v))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
        }

        deserializer.deserialize_string(Visitor)
    }
}

/// Secret bytes, zeroized on drop; `Debug` prints `[redacted]`.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes (they are zeroized when this value drops).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Keep their use short and never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_short_and_long() {
        assert_eq!(Secret::new("").hint(), "••••");
        assert_eq!(Secret::new("abcdefghijk").hint(), "••••");
        assert_eq!(Secret::new("abcdefghijkl").hint(), "••••ijkl");
        assert_eq!(Secret::new("sk_live_0123456789wxyz").hint(), "••••wxyz");
        // 12 characters but more bytes: counted in characters.
        assert_eq!(Secret::new("ééééééééabcd").hint(), "••••abcd");
        assert_eq!(Secret::new("éééééééééééé").hint(), "••••éééé");
        // 11 characters, 22 bytes: too short for a hint.
        assert_eq!(Secret::new("ééééééééééé").hint(), "••••");
    }

    #[test]
    fn len_and_empty() {
        let s = Secret::new("héllo");
        assert_eq!(s.len(), 6);
        assert!(!s.is_empty());
        assert!(Secret::new(String::new()).is_empty());
    }

    #[test]
    fn ct_eq_compares_contents() {
        let a = Secret::new("same-value");
        assert!(a.ct_eq(&Secret::new("same-value")));
        assert!(a.ct_eq(&a.clone()));
        assert!(!a.ct_eq(&Secret::new("same-valuf")));
        assert!(!a.ct_eq(&Secret::new("same-value-longer")));
        assert!(!a.ct_eq(&Secret::new("")));
    }

    #[test]
    fn deserialize_from_json_string() {
        let s: Secret = serde_json::from_str(r#""tok\u00e9n""#).unwrap();
        assert_eq!(s.expose(), "tokén");
        let s: Secret = serde_json::from_str(r#""plain""#).unwrap();
        assert_eq!(s.expose(), "plain");
        assert!(serde_json::from_str::<Secret>("42").is_err());
        let map: std::collections::BTreeMap<String, Secret> =
            serde_json::from_str(r#"{"api_token":"abc"}"#).unwrap();
        assert_eq!(map["api_token"].expose(), "abc");
    }

    #[test]
    fn secret_bytes_expose() {
        let b = SecretBytes::new(vec![1, 2, 3]);
        assert_eq!(b.expose(), &[1, 2, 3]);
        assert_eq!(b.len(), 3);
        assert!(!b.is_empty());
    }
}
