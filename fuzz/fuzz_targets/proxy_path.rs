//! Any path and query a caller puts after `/v1/proxy/{credential}` is either refused or joined to
//! the provider's base URL without changing its scheme, host, port or user, and stays under the
//! base URL's path (SECURITY-TESTS 36).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|path_and_query: &str| {
    for base in [
        "https://api.chorus.ai",
        "https://acme.example.com/manager/api/v1/",
    ] {
        let base = url::Url::parse(base).expect("a base URL");
        let Ok(joined) = latchkey_catalog::join_path(&base, path_and_query) else {
            continue;
        };
        assert_eq!(
            joined.scheme(),
            base.scheme(),
            "{path_and_query:?} -> {joined}"
        );
        assert_eq!(
            joined.host_str(),
            base.host_str(),
            "{path_and_query:?} -> {joined}"
        );
        assert_eq!(joined.port(), base.port(), "{path_and_query:?} -> {joined}");
        assert_eq!(joined.username(), "", "{path_and_query:?} -> {joined}");
        assert_eq!(joined.password(), None, "{path_and_query:?} -> {joined}");
        assert_eq!(joined.fragment(), None, "{path_and_query:?} -> {joined}");
        let under = base.path().trim_end_matches('/');
        assert!(
            joined.path().starts_with(under),
            "{path_and_query:?} -> {joined} leaves {under}"
        );
        assert!(
            !joined.path().split('/').any(|s| s == "." || s == ".."),
            "{path_and_query:?} -> {joined}"
        );
    }
});
