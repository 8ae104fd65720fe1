//! SECURITY-TESTS 9: the parsers take arbitrary input and return errors, never panic.

use latchkey_vault::{
    Binding, KeyRing, MasterKey, Secret, SecretFields, decode_fields, encode_fields,
    envelope_key_id,
};
use proptest::prelude::*;
use std::sync::LazyLock;

static RING: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(MasterKey::generate()));
static ENVELOPE: LazyLock<Vec<u8>> =
    LazyLock::new(|| RING.seal(&Binding::new("w", "c", 1), b"fuzz me").unwrap());

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn envelope_parsers_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = envelope_key_id(&bytes);
        prop_assert!(RING.open(&Binding::new("w", "c", 1), &bytes).is_err());
        prop_assert!(RING.rewrap(&Binding::new("w", "c", 1), &bytes).is_err());
        prop_assert!(RING.check(&bytes).is_err());
    }

    /// Mutations of a valid envelope reach past the magic bytes into the deeper checks.
    #[test]
    fn envelope_parsers_on_mutated_envelopes(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut bytes = ENVELOPE.clone();
        for (at, value) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.extend_from_slice(&tail);
        let binding = Binding::new("w", "c", 1);
        let _ = envelope_key_id(&bytes);
        if bytes != *ENVELOPE {
            prop_assert!(RING.open(&binding, &bytes).is_err());
        }
        let _ = RING.rewrap(&binding, &bytes);
    }

    #[test]
    fn key_file_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = KeyRing::from_key_file(&bytes);
    }

    #[test]
    fn key_file_on_key_like_text(lines in proptest::collection::vec("[A-Za-z0-9+/=# \t\r]{0,48}", 0..6)) {
        let _ = KeyRing::from_key_file(lines.join("\n").as_bytes());
    }

    #[test]
    fn decode_fields_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_fields(&bytes);
    }

    #[test]
    fn decode_fields_on_mutated_encodings(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let fields: SecretFields = [("api_token", "tok"), ("user", "ü")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Secret::new(v)))
            .collect();
        let mut bytes = encode_fields(&fields).expose().to_vec();
        for (at, value) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = decode_fields(&bytes);
    }

    #[test]
    fn master_key_from_arbitrary_strings(s in ".{0,64}") {
        let _ = MasterKey::from_base64(&s);
    }

    #[test]
    fn master_key_from_base64_like_strings(s in "[A-Za-z0-9+/=]{40,48}") {
        let _ = MasterKey::from_base64(&s);
    }
}
