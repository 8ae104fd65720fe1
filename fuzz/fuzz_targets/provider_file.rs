//! A provider file of any content loads or is refused with an error naming the file; it never
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let file = latchkey_catalog::ProviderFile {
        path: "fuzz.toml".to_owned(),
        text: text.to_owned(),
    };
    if let Err(e) = latchkey_catalog::Catalog::from_files(&[file]) {
        assert!(!e.file.is_empty(), "{e}");
    }
});
