//! Any presented API token is checked without panicking, and the checks agree: `parse_token`
//! accepts exactly what `token_hash` and `check_checksum` both accept, with the same hash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let parsed = latchkey_vault::parse_token(text);
    let hash = latchkey_vault::token_hash(text);
    let checksum = hash.is_ok().then(|| latchkey_vault::check_checksum(text));
    match parsed {
        Ok(parsed) => {
            assert!(matches!(checksum, Some(Ok(()))));
            assert!(hash.is_ok_and(|h| h == parsed.hash));
        }
        Err(_) => assert!(hash.is_err() || matches!(checksum, Some(Err(_)))),
    }
});
