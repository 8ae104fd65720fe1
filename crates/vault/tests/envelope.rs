//! Envelope encryption: SECURITY-TESTS 1–6 and the key-check canary.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use latchkey_vault::{Binding, KeyRing, MasterKey, VaultError, envelope_key_id};
use proptest::prelude::*;

const PLAINTEXT: &[u8] = b"sk_live_LATCHKEY-TEST-PLAINTEXT-7f3a9c1e5b2d4086";

fn binding() -> Binding {
    Binding::new("ws_01", "cred_01", 3)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Offsets inside an envelope sealed by a ring whose key ids have the standard 19 characters.
const ID_START: usize = 5;
const WRAP_NONCE_START: usize = ID_START + 19;
const WRAPPED_KEY_START: usize = WRAP_NONCE_START + 12;
const DATA_NONCE_START: usize = WRAPPED_KEY_START + 48;
const CIPHERTEXT_START: usize = DATA_NONCE_START + 12;

#[test]
fn layout_is_as_documented() {
    let ring = KeyRing::new(MasterKey::generate());
    let env = ring.seal(&binding(), PLAINTEXT).unwrap();
    assert_eq!(&env[..4], b"LKE1");
    assert_eq!(env[4], 19);
    assert_eq!(
        &env[ID_START..WRAP_NONCE_START],
        ring.primary_id().as_str().as_bytes()
    );
    assert_eq!(env.len(), CIPHERTEXT_START + PLAINTEXT.len() + 16);
    assert_eq!(&envelope_key_id(&env).unwrap(), ring.primary_id());
}

/// SECURITY-TESTS 1.
#[test]
fn envelope_never_contains_the_plaintext_in_any_form() {
    let ring = KeyRing::new(MasterKey::generate());
    let forms: Vec<Vec<u8>> = vec![
        PLAINTEXT.to_vec(),
        STANDARD.encode(PLAINTEXT).into_bytes(),
        STANDARD_NO_PAD.encode(PLAINTEXT).into_bytes(),
        URL_SAFE_NO_PAD.encode(PLAINTEXT).into_bytes(),
        hex(PLAINTEXT).into_bytes(),
        hex(PLAINTEXT).to_uppercase().into_bytes(),
        // a distinctive inner piece, in case only part of it leaked
        b"LATCHKEY-TEST-PLAINTEXT".to_vec(),
    ];
    for _ in 0..20 {
        let env = ring.seal(&binding(), PLAINTEXT).unwrap();
        // The envelope as stored, and as it would look base64- or hex-encoded in a text column.
        let stored = [
            env.clone(),
            STANDARD.encode(&env).into_bytes(),
            hex(&env).into_bytes(),
        ];
        for s in &stored {
            for form in &forms {
                assert!(
                    !contains(s, form),
                    "the envelope holds a form of the plaintext"
                );
            }
        }
        assert_eq!(ring.open(&binding(), &env).unwrap().expose(), PLAINTEXT);
    }
}

/// SECURITY-TESTS 2: every single-bit flip anywhere in the envelope fails to open.
#[test]
fn every_single_bit_flip_fails() {
    let ring = KeyRing::new(MasterKey::generate());
    let env = ring.seal(&binding(), PLAINTEXT).unwrap();
    for byte in 0..env.len() {
        for bit in 0..8 {
            let mut bad = env.clone();
            bad[byte] ^= 1 << bit;
            let err = ring
                .open(&binding(), &bad)
                .expect_err("a tampered envelope opened");
            // The failure is the expected kind for the region hit.
            match byte {
                0..ID_START => assert!(matches!(err, VaultError::MalformedEnvelope(_)), "{err:?}"),
                ID_START..WRAP_NONCE_START => assert!(
                    matches!(
                        err,
                        VaultError::MalformedEnvelope(_) | VaultError::UnknownKey(_)
                    ),
                    "{err:?}"
                ),
                _ => assert!(matches!(err, VaultError::OpenFailed), "{err:?}"),
            }
            // Rewrap must not accept it either (except for the data part, which it copies
            // unchanged: that is caught on open).
            if byte < DATA_NONCE_START {
                assert!(ring.rewrap(&binding(), &bad).is_err());
            }
        }
    }
}

#[test]
fn truncations_and_extensions_fail() {
    let ring = KeyRing::new(MasterKey::generate());
    let env = ring.seal(&binding(), PLAINTEXT).unwrap();
    for n in 0..env.len() {
        assert!(
            ring.open(&binding(), &env[..n]).is_err(),
            "truncated to {n}"
        );
    }
    let mut longer = env.clone();
    longer.push(0);
    assert!(matches!(
        ring.open(&binding(), &longer),
        Err(VaultError::OpenFailed)
    ));
    // The shortest well-formed envelope (empty plaintext) still opens.
    let empty = ring.seal(&binding(), b"").unwrap();
    assert_eq!(empty.len(), CIPHERTEXT_START + 16);
    assert!(ring.open(&binding(), &empty).unwrap().is_empty());
    assert!(matches!(
        ring.open(&binding(), &empty[..empty.len() - 1]),
        Err(VaultError::MalformedEnvelope(_))
    ));
}

/// SECURITY-TESTS 3.
#[test]
fn envelope_is_bound_to_workspace_credential_and_revision() {
    let ring = KeyRing::new(MasterKey::generate());
    let env = ring.seal(&binding(), PLAINTEXT).unwrap();
    for other in [
        Binding::new("ws_02", "cred_01", 3),
        Binding::new("ws_01", "cred_02", 3),
        Binding::new("ws_01", "cred_01", 4),
        Binding::new("ws_01", "cred_01", -3),
        Binding::new("", "cred_01", 3),
        // The same characters split differently: the encoding is length-prefixed.
        Binding::new("ws_01c", "red_01", 3),
        Binding::new("ws_0", "1cred_01", 3),
        Binding::key_check(),
    ] {
        assert!(
            matches!(ring.open(&other, &env), Err(VaultError::OpenFailed)),
            "opened under {other:?}"
        );
        assert!(matches!(
            ring.rewrap(&other, &env),
            Err(VaultError::OpenFailed)
        ));
    }
    assert!(ring.open(&binding(), &env).is_ok());
}

/// SECURITY-TESTS 4.
#[test]
fn ring_without_the_key_reports_unknown_key() {
    let sealer = KeyRing::new(MasterKey::generate());
    let other = KeyRing::new(MasterKey::generate());
    let env = sealer.seal(&binding(), PLAINTEXT).unwrap();
    match other.open(&binding(), &env) {
        Err(VaultError::UnknownKey(id)) => assert_eq!(&id, sealer.primary_id()),
        other => panic!("{other:?}"),
    }
    match other.rewrap(&binding(), &env) {
        Err(VaultError::UnknownKey(id)) => assert_eq!(&id, sealer.primary_id()),
        other => panic!("{other:?}"),
    }
    let message = other.open(&binding(), &env).unwrap_err().to_string();
    assert!(message.contains(sealer.primary_id().as_str()), "{message}");
}

#[test]
fn key_check_tells_a_wrong_key_and_names_the_expected_one() {
    let ring = KeyRing::new(MasterKey::generate());
    let canary = ring.make_key_check().unwrap();
    ring.check(&canary).unwrap();
    assert_eq!(&envelope_key_id(&canary).unwrap(), ring.primary_id());
    // The canary opens only under its own binding.
    assert_eq!(
        ring.open(&Binding::key_check(), &canary).unwrap().expose(),
        b"latchkey key check v1"
    );
    assert_eq!(
        Binding::key_check(),
        Binding::new("", "latchkey-key-check", 0)
    );

    let wrong = KeyRing::with_keys(MasterKey::generate(), vec![MasterKey::generate()]).unwrap();
    match wrong.check(&canary) {
        Err(VaultError::WrongMasterKey { expected, have }) => {
            assert_eq!(&expected, ring.primary_id());
            assert_eq!(have, wrong.ids());
        }
        other => panic!("{other:?}"),
    }
    let message = wrong.check(&canary).unwrap_err().to_string();
    assert!(message.contains(ring.primary_id().as_str()), "{message}");
    for id in wrong.ids() {
        assert!(message.contains(id.as_str()), "{message}");
    }

    // After rotation the old canary still checks; a tampered canary does not.
    let rotated = ring.with_new_primary(MasterKey::generate()).unwrap();
    rotated.check(&canary).unwrap();
    let mut bad = canary.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(ring.check(&bad), Err(VaultError::OpenFailed)));
    assert!(matches!(
        ring.check(b"garbage"),
        Err(VaultError::MalformedEnvelope(_))
    ));
    // A normal envelope is not a canary.
    let env = ring.seal(&binding(), b"latchkey key check v1").unwrap();
    assert!(ring.check(&env).is_err());
}

/// SECURITY-TESTS 5 (fixed sizes; the property test is below).
#[test]
fn round_trip_empty_and_large_and_fresh_each_time() {
    let ring = KeyRing::new(MasterKey::generate());
    for len in [0usize, 1, 15, 16, 17, 100, 64 * 1024, 1024 * 1024] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let a = ring.seal(&binding(), &plaintext).unwrap();
        let b = ring.seal(&binding(), &plaintext).unwrap();
        assert_ne!(a, b, "same envelope twice for length {len}");
        // Both the wrapped key and the data part differ.
        assert_ne!(
            a[WRAP_NONCE_START..DATA_NONCE_START],
            b[WRAP_NONCE_START..DATA_NONCE_START]
        );
        assert_ne!(a[DATA_NONCE_START..], b[DATA_NONCE_START..]);
        assert_eq!(
            ring.open(&binding(), &a).unwrap().expose(),
            plaintext.as_slice()
        );
        assert_eq!(
            ring.open(&binding(), &b).unwrap().expose(),
            plaintext.as_slice()
        );
    }
}

/// SECURITY-TESTS 6: rotation, re-wrap and retiring the old key.
#[test]
fn rotation_rewrap_and_retire() {
    let old = KeyRing::new(MasterKey::generate());
    let old_id = old.primary_id().clone();
    let env = old.seal(&binding(), PLAINTEXT).unwrap();

    let rotated = old.with_new_primary(MasterKey::generate()).unwrap();
    let new_id = rotated.primary_id().clone();
    assert_ne!(new_id, old_id);
    assert_eq!(rotated.ids(), vec![new_id.clone(), old_id.clone()]);
    // Old rows still open before the re-wrap; new rows carry the new key id.
    assert_eq!(rotated.open(&binding(), &env).unwrap().expose(), PLAINTEXT);
    let fresh = rotated.seal(&binding(), PLAINTEXT).unwrap();
    assert_eq!(envelope_key_id(&fresh).unwrap(), new_id);

    let rewrapped = rotated.rewrap(&binding(), &env).unwrap();
    assert_eq!(envelope_key_id(&rewrapped).unwrap(), new_id);
    assert_eq!(rewrapped.len(), env.len());
    // The data nonce and ciphertext are byte-identical: no secret was re-encrypted.
    assert_eq!(rewrapped[DATA_NONCE_START..], env[DATA_NONCE_START..]);
    // The wrapped key changed.
    assert_ne!(
        rewrapped[WRAP_NONCE_START..DATA_NONCE_START],
        env[WRAP_NONCE_START..DATA_NONCE_START]
    );
    assert_eq!(
        rotated.open(&binding(), &rewrapped).unwrap().expose(),
        PLAINTEXT
    );
    // Re-wrapping twice is harmless.
    let again = rotated.rewrap(&binding(), &rewrapped).unwrap();
    assert_eq!(
        rotated.open(&binding(), &again).unwrap().expose(),
        PLAINTEXT
    );

    // Retire the old key: the re-wrapped row still opens, the un-rewrapped one names the key.
    let retired = rotated.without(&old_id).unwrap();
    assert_eq!(retired.ids(), vec![new_id.clone()]);
    assert!(!retired.contains(&old_id));
    assert_eq!(
        retired.open(&binding(), &rewrapped).unwrap().expose(),
        PLAINTEXT
    );
    assert!(
        matches!(retired.open(&binding(), &env), Err(VaultError::UnknownKey(id)) if id == old_id)
    );
    // The old ring alone cannot open the re-wrapped row.
    assert!(
        matches!(old.open(&binding(), &rewrapped), Err(VaultError::UnknownKey(id)) if id == new_id)
    );
}

#[test]
fn ring_management_rules() {
    let a = MasterKey::generate();
    let a_again = MasterKey::from_base64(a.to_base64().expose()).unwrap();
    let a_id = a.id().clone();
    assert!(matches!(
        KeyRing::with_keys(a, vec![a_again]),
        Err(VaultError::DuplicateKey(id)) if id == a_id
    ));

    let b = MasterKey::generate();
    let c = MasterKey::generate();
    let c_copy = MasterKey::from_base64(c.to_base64().expose()).unwrap();
    let (b_id, c_id) = (b.id().clone(), c.id().clone());
    assert!(matches!(
        KeyRing::with_keys(MasterKey::generate(), vec![b, c, c_copy]),
        Err(VaultError::DuplicateKey(id)) if id == c_id
    ));

    let ring = KeyRing::with_keys(
        MasterKey::generate(),
        vec![MasterKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap()],
    )
    .unwrap();
    let primary = ring.primary_id().clone();
    assert!(matches!(ring.without(&primary), Err(VaultError::RemovePrimary(id)) if id == primary));
    assert!(matches!(ring.without(&b_id), Err(VaultError::UnknownKey(id)) if id == b_id));
    // Rotating to a key already in the ring is refused.
    let same = MasterKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
    assert!(matches!(
        ring.with_new_primary(same),
        Err(VaultError::DuplicateKey(_))
    ));
    assert!(ring.contains(&primary));
    assert!(!ring.contains(&c_id));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// SECURITY-TESTS 5: open(seal(x)) == x; two seals differ.
    #[test]
    fn open_seal_round_trip(
        plaintext in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..=64 * 1024),
        ],
        workspace in ".{0,12}",
        credential in ".{0,12}",
        revision in any::<i64>(),
    ) {
        let ring = KeyRing::new(MasterKey::generate());
        let binding = Binding::new(workspace, credential, revision);
        let a = ring.seal(&binding, &plaintext).unwrap();
        let b = ring.seal(&binding, &plaintext).unwrap();
        prop_assert_ne!(&a, &b);
        let opened = ring.open(&binding, &a).unwrap();
        prop_assert_eq!(opened.expose(), plaintext.as_slice());
        let opened = ring.open(&binding, &b).unwrap();
        prop_assert_eq!(opened.expose(), plaintext.as_slice());
    }
}
