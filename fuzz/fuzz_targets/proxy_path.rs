//! Any path and query a caller puts after `/v1/proxy/{credential}` is either refused or joined to
//! the provider's base URL without changing its scheme, host, port or user, and stays under the
//! base URL's path (SECURITY-TESTS 36). The path and query the proxy sends
//! (`PreparedAuth::path_and_query`, built without a URL) are the URL's, and it refuses the same.
#![no_main]

use latchkey_catalog::{Catalog, PreparedAuth, ProviderFile};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A bearer credential (Chorus) and one that sends its secret in the query, under a base path.
fn prepared() -> &'static [PreparedAuth; 2] {
    static PREPARED: OnceLock<[PreparedAuth; 2]> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let values = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let builtin = Catalog::builtin().expect("the built-in catalog");
        let chorus = builtin.get("chorus").expect("chorus");
        let file = ProviderFile {
            path: "acme.toml".to_owned(),
            text: "id = \"acme\"\nname = \"Acme\"\nbase_url = \"https://api.acme.example/base/\"\n\
                   [[fields]]\nkey = \"token\"\nlabel = \"Token\"\nhelp = \"Settings\"\nsecret = true\n\
                   [auth]\ntype = \"query\"\nparam = \"api_key\"\nvalue = \"{token}\"\n\
                   [verify]\npath = \"/me\"\nvalid = [200]\nrejected = [401]\n"
                .to_owned(),
        };
        let acme = Catalog::from_files(&[file]).expect("a provider file");
        [
            chorus.prepare(&values("api_token", "t")).expect("chorus"),
            acme.get("acme")
                .expect("acme")
                .prepare(&values("token", "s3cr&t =é"))
                .expect("acme"),
        ]
    })
}

fuzz_target!(|path_and_query: &str| {
    for auth in prepared() {
        let fast = auth.path_and_query(path_and_query).map(|p| p.to_string());
        let url = auth
            .request("GET", path_and_query)
            .map(|r| r.url()[url::Position::BeforePath..].to_owned());
        assert_eq!(fast, url, "{path_and_query:?}");
    }
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
