//! SECURITY-TESTS 27 and 28: nothing secret is ever printed, in values or in errors.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use latchkey_vault::{
    Binding, KeyRing, MasterKey, Secret, SecretBytes, SecretFields, VaultError, encode_fields,
};

const RAW: &str = "sk_live_REDACTION-TEST-9d8c7b6a5f4e";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every printable form of `secret` we would not want to see.
fn forms(secret: &[u8]) -> Vec<String> {
    vec![
        String::from_utf8_lossy(secret).into_owned(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        hex(secret),
        format!("{secret:?}"),
    ]
    .into_iter()
    .filter(|f| !f.is_empty())
    .collect()
}

fn assert_clean(printed: &str, secret: &[u8]) {
    for form in forms(secret) {
        assert!(
            !printed.contains(&form),
            "printed text holds secret material: {printed}"
        );
    }
}

fn key_bytes(key: &MasterKey) -> Vec<u8> {
    STANDARD.decode(key.to_base64().expose()).unwrap()
}

#[test]
fn secret_prints_a_placeholder() {
    let s = Secret::new(RAW);
    for printed in [
        format!("{s:?}"),
        format!("{s}"),
        format!("{s:#?}"),
        format!("{s:>40}"),
    ] {
        assert!(printed.contains("[redacted]"), "{printed}");
        assert_clean(&printed, RAW.as_bytes());
    }
    assert_eq!(format!("{s:?}"), "[redacted]");
    assert_eq!(format!("{s}"), "[redacted]");
    // Inside containers too.
    let mut fields = SecretFields::new();
    fields.insert("api_token".into(), s.clone());
    let printed = format!("{fields:?}");
    assert!(
        printed.contains("api_token") && printed.contains("[redacted]"),
        "{printed}"
    );
    assert_clean(&printed, RAW.as_bytes());
    // The hint shows the last 4 characters only.
    assert_eq!(s.hint(), "••••5f4e");
    assert_clean(&s.hint(), &RAW.as_bytes()[..RAW.len() - 4]);
}

#[test]
fn secret_bytes_print_a_placeholder() {
    let b = SecretBytes::new(RAW.as_bytes().to_vec());
    for printed in [format!("{b:?}"), format!("{b}"), format!("{b:#?}")] {
        assert_eq!(printed, "[redacted]");
    }
    let mut fields = SecretFields::new();
    fields.insert("k".into(), Secret::new(RAW));
    let encoded = encode_fields(&fields);
    assert_eq!(format!("{encoded:?}"), "[redacted]");
}

#[test]
fn master_key_and_ring_print_ids_only() {
    let key = MasterKey::generate();
    let raw = key_bytes(&key);
    let id = key.id().clone();
    let b64 = key.to_base64();
    assert_eq!(b64.expose(), STANDARD.encode(&raw));
    assert_eq!(format!("{b64:?}"), "[redacted]");
    for printed in [format!("{key:?}"), format!("{key}"), format!("{key:#?}")] {
        assert_eq!(printed, format!("MasterKey({id})"));
        assert_clean(&printed, &raw);
    }

    let older = MasterKey::generate();
    let older_raw = key_bytes(&older);
    let older_id = older.id().clone();
    let ring = KeyRing::with_keys(key, vec![older]).unwrap();
    for printed in [format!("{ring:?}"), format!("{ring}"), format!("{ring:#?}")] {
        assert!(
            printed.contains(id.as_str()) && printed.contains(older_id.as_str()),
            "{printed}"
        );
        assert_clean(&printed, &raw);
        assert_clean(&printed, &older_raw);
    }
}

/// Collects the error of every failing path, with the secrets that must not appear in it.
#[test]
fn error_messages_never_hold_secret_material() {
    let key = MasterKey::generate();
    let key_raw = key_bytes(&key);
    let key_b64 = key.to_base64().expose().to_owned();
    let ring = KeyRing::new(key);
    let binding = Binding::new("ws", "cred", 1);
    let envelope = ring.seal(&binding, RAW.as_bytes()).unwrap();

    let mut errors: Vec<(VaultError, Vec<Vec<u8>>)> = Vec::new();
    let mut push = |e: VaultError, secrets: &[&[u8]]| {
        errors.push((e, secrets.iter().map(|s| s.to_vec()).collect()));
    };

    // Key files with key-like lines that are not keys.
    let almost = format!("{}==", &key_b64[..42]); // 31 bytes
    let too_long = format!("{key_b64}{key_b64}");
    let bad_char = format!("{}!", &key_b64[..43]);
    for (file, line) in [
        (format!("# keys\n{almost}\n"), almost.as_bytes()),
        (format!("{key_b64}\n{too_long}\n"), too_long.as_bytes()),
        (format!("{bad_char}\n"), bad_char.as_bytes()),
        (format!("{key_b64}\n{key_b64}\n"), key_b64.as_bytes()),
    ] {
        let e = KeyRing::from_key_file(file.as_bytes()).unwrap_err();
        assert!(matches!(e, VaultError::MalformedKeyFile { .. }), "{e:?}");
        push(e, &[line, &key_raw]);
    }
    let mut non_utf8 = key_b64.as_bytes().to_vec();
    non_utf8[10] = 0xff;
    let e = KeyRing::from_key_file(&non_utf8).unwrap_err();
    push(e, &[&key_b64.as_bytes()[..10], &key_b64.as_bytes()[11..]]);

    // Bad base64 master keys.
    for bad in [almost.as_str(), too_long.as_str(), bad_char.as_str(), RAW] {
        let e = MasterKey::from_base64(bad).unwrap_err();
        assert!(matches!(e, VaultError::InvalidMasterKey { .. }), "{e:?}");
        push(e, &[bad.as_bytes(), &key_raw]);
    }

    // Tampered envelopes, wrong bindings, wrong rings.
    for at in [0, 4, 10, 30, 60, 90, envelope.len() - 1] {
        let mut bad = envelope.clone();
        bad[at] ^= 0x20;
        let e = ring.open(&binding, &bad).unwrap_err();
        push(e, &[RAW.as_bytes(), &key_raw]);
    }
    push(
        ring.open(&Binding::new("ws", "other", 1), &envelope)
            .unwrap_err(),
        &[RAW.as_bytes(), &key_raw],
    );
    let other = KeyRing::new(MasterKey::generate());
    push(
        other.open(&binding, &envelope).unwrap_err(),
        &[RAW.as_bytes(), &key_raw],
    );
    let canary = ring.make_key_check().unwrap();
    push(other.check(&canary).unwrap_err(), &[&key_raw]);
    push(
        latchkey_vault::decode_fields(RAW.as_bytes()).unwrap_err(),
        &[RAW.as_bytes()],
    );

    assert!(errors.len() >= 18);
    for (e, secrets) in &errors {
        let printed = [format!("{e}"), format!("{e:?}")];
        for p in &printed {
            assert!(!p.is_empty());
            for secret in secrets {
                assert_clean(p, secret);
            }
        }
    }
}

/// SECURITY-TESTS 28, panic messages: a caller that unwraps a vault result (or prints a secret
/// into a panic) panics with a message that holds no secret material. The hook collects the
/// messages of this test's thread; other threads' panics go to the previous hook.
#[test]
fn panic_messages_never_hold_secret_material() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, Mutex};

    let key = MasterKey::generate();
    let key_raw = key_bytes(&key);
    let key_b64 = key.to_base64().expose().to_owned();
    let ring = KeyRing::new(key);
    let binding = Binding::new("ws", "cred", 1);
    let envelope = ring.seal(&binding, RAW.as_bytes()).unwrap();
    let mut fields = SecretFields::new();
    fields.insert("api_token".into(), Secret::new(RAW));
    let almost = format!("{}==", &key_b64[..42]);

    let previous = Arc::new(std::panic::take_hook());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let me = std::thread::current().id();
    {
        let (previous, seen) = (previous.clone(), seen.clone());
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() != me {
                return previous(info);
            }
            let payload = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| {
                    info.payload()
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                })
                .unwrap_or_default();
            seen.lock().unwrap().push(format!("{payload}\n{info}"));
        }));
    }

    let paths: Vec<Box<dyn Fn()>> = vec![
        // The opened plaintext, unwrapped the wrong way round: its Debug is in the message.
        Box::new(|| {
            ring.open(&binding, &envelope).unwrap_err();
        }),
        Box::new(|| {
            ring.open(&Binding::new("ws", "other", 1), &envelope)
                .unwrap();
        }),
        Box::new(|| {
            KeyRing::new(MasterKey::generate())
                .open(&binding, &envelope)
                .expect("opening with another key");
        }),
        Box::new(|| {
            MasterKey::from_base64(&almost).unwrap();
        }),
        Box::new(|| {
            MasterKey::from_base64(RAW).unwrap();
        }),
        Box::new(|| {
            KeyRing::from_key_file(format!("{key_b64}\n{almost}\n").as_bytes()).unwrap();
        }),
        Box::new(|| {
            latchkey_vault::decode_fields(RAW.as_bytes()).unwrap();
        }),
        Box::new(|| {
            let opened = latchkey_vault::decode_fields(encode_fields(&fields).expose());
            opened.unwrap_err();
        }),
        Box::new(|| panic!("while using {fields:?} and {:?}", Secret::new(RAW))),
        Box::new(|| panic!("{:?}", SecretBytes::from(RAW.as_bytes().to_vec()))),
        Box::new(|| {
            let encoded: Result<(), _> = std::hint::black_box(Err(encode_fields(&fields)));
            encoded.unwrap();
        }),
        Box::new(|| panic!("the ring {ring:?} with key {:?}", MasterKey::generate())),
    ];
    for path in &paths {
        assert!(catch_unwind(AssertUnwindSafe(path)).is_err(), "it panics");
    }
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), paths.len(), "{seen:?}");
    for message in seen.iter() {
        assert_clean(message, RAW.as_bytes());
        assert_clean(message, &key_raw);
        assert!(!message.contains(&key_b64), "{message}");
    }
}
