//! The key-file format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_vault::{Binding, KeyRing, MasterKey, VaultError};

fn key(byte: u8) -> (String, MasterKey) {
    let b64 = STANDARD.encode([byte; 32]);
    let key = MasterKey::from_base64(&b64).unwrap();
    (b64, key)
}

fn line_error(contents: &[u8]) -> (usize, &'static str) {
    match KeyRing::from_key_file(contents) {
        Err(VaultError::MalformedKeyFile { line, reason }) => (line, reason),
        other => panic!("expected a key-file error, got {other:?}"),
    }
}

#[test]
fn comments_blank_lines_whitespace_and_order() {
    let (a, ka) = key(1);
    let (b, kb) = key(2);
    let (c, kc) = key(3);
    let text = format!("# Latchkey keys\n\n   \n{a}\r\n  # older keys below\n\t{b}  \n\n#{c}\n{c}");
    let ring = KeyRing::from_key_file(text.as_bytes()).unwrap();
    assert_eq!(ring.primary_id(), ka.id());
    assert_eq!(
        ring.ids(),
        vec![ka.id().clone(), kb.id().clone(), kc.id().clone()]
    );
}

#[test]
fn first_key_is_primary_and_seals() {
    let (a, ka) = key(9);
    let (b, kb) = key(8);
    let ring = KeyRing::from_key_file(format!("{b}\n{a}\n").as_bytes()).unwrap();
    assert_eq!(ring.primary_id(), kb.id());
    let env = ring.seal(&Binding::new("w", "c", 1), b"x").unwrap();
    assert_eq!(&latchkey_vault::envelope_key_id(&env).unwrap(), kb.id());
    assert!(ring.contains(ka.id()));
}

#[test]
fn to_key_file_round_trips_with_a_header() {
    let ring = KeyRing::with_keys(
        MasterKey::generate(),
        vec![MasterKey::generate(), MasterKey::generate()],
    )
    .unwrap();
    let file = ring.to_key_file();
    let text = file.expose();
    assert!(text.starts_with('#'), "no comment header");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 3);
    let again = KeyRing::from_key_file(text.as_bytes()).unwrap();
    assert_eq!(again.ids(), ring.ids());
    assert_eq!(again.primary_id(), ring.primary_id());
    // The key file is a Secret: it does not print.
    assert_eq!(format!("{file:?}"), "[redacted]");
}

#[test]
fn empty_files_are_refused() {
    for text in ["", "\n\n", "# only a comment\n", "  \r\n\t\n# x\n"] {
        assert!(
            matches!(
                KeyRing::from_key_file(text.as_bytes()),
                Err(VaultError::EmptyKeyFile)
            ),
            "{text:?}"
        );
    }
}

#[test]
fn errors_name_the_line_number_and_the_problem() {
    let (a, _) = key(1);
    let short = STANDARD.encode([5u8; 31]);
    assert_eq!(
        line_error(format!("# c\n\n{a}\n{short}\n").as_bytes()),
        (4, "must be 32 bytes")
    );
    assert_eq!(
        line_error(format!("{a}\nnot base64!\n").as_bytes()),
        (2, "not valid base64")
    );
    // Two keys on one line are not one key.
    assert_eq!(
        line_error(format!("{a} {a}\n").as_bytes()),
        (1, "not valid base64")
    );
    assert_eq!(
        line_error(&[format!("# c\n{a}\nab").as_bytes(), b"\xffcd\n"].concat()),
        (3, "not valid UTF-8")
    );
    // Non-UTF-8 inside a comment is still refused, with its line.
    assert_eq!(line_error(b"# caf\xe9\n"), (1, "not valid UTF-8"));
}

#[test]
fn duplicate_keys_are_refused() {
    let (a, _) = key(1);
    let (b, _) = key(2);
    let (line, reason) = line_error(format!("{a}\n{b}\n\n  {a}  \n").as_bytes());
    assert_eq!(line, 4);
    assert!(reason.contains("earlier line"), "{reason}");
    let message = KeyRing::from_key_file(format!("{a}\n{a}\n").as_bytes())
        .unwrap_err()
        .to_string();
    assert!(message.contains("line 2"), "{message}");
}
