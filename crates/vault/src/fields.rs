use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::{Secret, SecretBytes, VaultError};

/// The secret fields of one credential: field key → value, e.g. `{"api_token": …}`.
pub type SecretFields = BTreeMap<String, Secret>;

fn len_u32(len: usize) -> [u8; 4] {
    u32::try_from(len)
        .expect("a secret field is larger than 4 GiB")
        .to_be_bytes()
}

/// Encodes fields into one zeroizing buffer.
///
/// Layout (all integers unsigned 32-bit big-endian): field count, then for each field in key
/// order: key length, key bytes (UTF-8), value length, value bytes (UTF-8). The buffer is sized
/// exactly up front, so no reallocation leaves a copy of a secret behind.
///
/// # Panics
/// If a key or value is longer than `u32::MAX` bytes, or there are more than `u32::MAX` fields.
pub fn encode_fields(fields: &SecretFields) -> SecretBytes {
    let size = 4 + fields
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    out.extend_from_slice(&len_u32(fields.len()));
    for (key, value) in fields {
        out.extend_from_slice(&len_u32(key.len()));
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&len_u32(value.len()));
        out.extend_from_slice(value.expose().as_bytes());
    }
    debug_assert_eq!(out.len(), size);
    SecretBytes::from_zeroizing(out)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VaultError> {
        if self.rest.len() < n {
            return Err(VaultError::MalformedFields);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, VaultError> {
        let bytes: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| VaultError::MalformedFields)?;
        usize::try_from(u32::from_be_bytes(bytes)).map_err(|_| VaultError::MalformedFields)
    }

    fn str(&mut self) -> Result<&'a str, VaultError> {
        let len = self.u32()?;
        std::str::from_utf8(self.take(len)?).map_err(|_| VaultError::MalformedFields)
    }
}

/// Decodes the output of [`encode_fields`]. Any malformed input (truncation, trailing bytes,
/// invalid UTF-8, keys out of order or repeated) is an error; it never panics.
pub fn decode_fields(bytes: &[u8]) -> Result<SecretFields, VaultError> {
    let mut reader = Reader { rest: bytes };
    let count = reader.u32()?;
    let mut fields = SecretFields::new();
    let mut previous: Option<&str> = None;
    for _ in 0..count {
        let key = reader.str()?;
        // Keys are written in strictly increasing order: anything else is not our encoding.
        if previous.is_some_and(|p| p >= key) {
            return Err(VaultError::MalformedFields);
        }
        previous = Some(key);
        let value = reader.str()?;
        fields.insert(key.to_owned(), Secret::from_str_ref(value));
    }
    if !reader.rest.is_empty() {
        return Err(VaultError::MalformedFields);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(pairs: &[(&str, &str)]) -> SecretFields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
            .collect()
    }

    fn assert_same(a: &SecretFields, b: &SecretFields) {
        assert_eq!(a.len(), b.len());
        for ((ka, va), (kb, vb)) in a.iter().zip(b) {
            assert_eq!(ka, kb);
            assert_eq!(va.expose(), vb.expose());
        }
    }

    #[test]
    fn round_trip_unicode_and_empty() {
        let f = fields(&[
            ("api_token", "sk_live_ünïcødé_🔑"),
            ("empty", ""),
            ("", "value under an empty key"),
            ("ключ", "значение"),
        ]);
        let bytes = encode_fields(&f);
        assert_same(&f, &decode_fields(bytes.expose()).unwrap());
    }

    #[test]
    fn round_trip_no_fields() {
        let f = SecretFields::new();
        let bytes = encode_fields(&f);
        assert_eq!(bytes.expose(), &[0, 0, 0, 0]);
        assert!(decode_fields(bytes.expose()).unwrap().is_empty());
    }

    #[test]
    fn exact_layout() {
        let bytes = encode_fields(&fields(&[("k", "vv")]));
        assert_eq!(
            bytes.expose(),
            &[0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 2, b'v', b'v']
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = encode_fields(&fields(&[("a", "1"), ("b", "2")]));
        let good = good.expose();
        // Every truncation fails.
        for n in 0..good.len() {
            assert!(
                matches!(decode_fields(&good[..n]), Err(VaultError::MalformedFields)),
                "truncated to {n}"
            );
        }
        // Trailing bytes fail.
        let mut long = good.to_vec();
        long.push(0);
        assert!(decode_fields(&long).is_err());
        // A huge count or length fails without allocating.
        assert!(decode_fields(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_fields(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Invalid UTF-8 in a value fails.
        assert!(decode_fields(&[0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 1, 0xff]).is_err());
        // Repeated or unordered keys fail.
        let dup = [
            0, 0, 0, 2, 0, 0, 0, 1, b'k', 0, 0, 0, 0, 0, 0, 0, 1, b'k', 0, 0, 0, 0,
        ];
        assert!(decode_fields(&dup).is_err());
        let unordered = [
            0, 0, 0, 2, 0, 0, 0, 1, b'b', 0, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0,
        ];
        assert!(decode_fields(&unordered).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(map in proptest::collection::btree_map(".*", ".*", 0..8)) {
            let f: SecretFields = map.iter().map(|(k, v)| (k.clone(), Secret::new(v.as_str()))).collect();
            let decoded = decode_fields(encode_fields(&f).expose()).unwrap();
            prop_assert_eq!(decoded.len(), map.len());
            for (k, v) in &map {
                prop_assert_eq!(decoded[k].expose(), v.as_str());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_fields(&bytes);
        }
    }
}
