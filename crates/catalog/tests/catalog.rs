use base64::Engine as _;
use latchkey_catalog::{Catalog, FieldError, ProviderFile, RenderError, Verdict, join_path};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn header(req: &latchkey_catalog::OutboundRequest, name: &str) -> Option<String> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.expose_secret().to_owned())
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[test]
fn builtin_catalog_loads_with_seed_providers_first() {
    let catalog = Catalog::builtin().unwrap();
    assert_eq!(
        catalog.ids(),
        [
            "chorus",
            "aircall",
            "ccai-platform",
            "clari-copilot",
            "custom"
        ]
    );
    for p in catalog.providers() {
        assert!(!p.fields.is_empty(), "{}", p.id);
        for f in &p.fields {
            assert!(!f.help.is_empty(), "{}.{} has no help", p.id, f.key);
        }
    }
}

#[test]
fn chorus_sends_the_raw_token_without_bearer() {
    let catalog = Catalog::builtin().unwrap();
    let chorus = catalog.get("chorus").unwrap();
    let req = chorus
        .verification_request(&values(&[("api_token", "tok123")]))
        .unwrap();
    assert_eq!(req.method, "GET");
    assert_eq!(req.url().as_str(), "https://chorus.ai/api/v1/users/me");
    assert_eq!(header(&req, "Authorization").as_deref(), Some("tok123"));
    assert_eq!(req.headers.len(), 1);
    assert_eq!(chorus.verify.classify(200), Verdict::Valid);
    assert_eq!(chorus.verify.classify(401), Verdict::Rejected);
    assert_eq!(chorus.verify.classify(403), Verdict::Rejected);
    assert_eq!(chorus.verify.classify(429), Verdict::TryLater);
    assert_eq!(chorus.verify.classify(503), Verdict::TryLater);
    assert_eq!(chorus.verify.classify(302), Verdict::Unexpected);
    assert!(chorus.verify.hint(403).unwrap().contains("role"));
    let body = serde_json::json!({"data": {"attributes": {"email": "ada@example.com"}}});
    assert_eq!(
        chorus.verify.identity_in(&body).as_deref(),
        Some("ada@example.com")
    );
}

#[test]
fn aircall_uses_basic_with_id_and_token() {
    let catalog = Catalog::builtin().unwrap();
    let aircall = catalog.get("aircall").unwrap();
    let req = aircall
        .verification_request(&values(&[("api_id", "id1"), ("api_token", "tok:2")]))
        .unwrap();
    assert_eq!(req.url().as_str(), "https://api.aircall.io/v1/ping");
    assert_eq!(header(&req, "Authorization"), Some(basic("id1", "tok:2")));
    assert!(
        aircall
            .verify
            .hint(403)
            .unwrap()
            .contains("API ID or token")
    );
    assert!(
        aircall
            .verify
            .body_matches(Some(&serde_json::json!({"ping": "pong"})))
    );
    assert!(
        !aircall
            .verify
            .body_matches(Some(&serde_json::json!({"ping": "nope"})))
    );
    let limit = aircall.rate_limit.as_ref().unwrap();
    assert_eq!(limit.requests, Some(120));
    assert_eq!(limit.per, Some(std::time::Duration::from_secs(60)));
    assert!(limit.configurable);
    assert_eq!(
        aircall
            .account_key(&values(&[("api_id", "id1")]))
            .as_deref(),
        Some("id1")
    );
}

#[test]
fn ccai_platform_uses_subdomain_and_region_in_the_host() {
    let catalog = Catalog::builtin().unwrap();
    let ccai = catalog.get("ccai-platform").unwrap();
    let v = values(&[
        ("subdomain", "acme"),
        ("region", "uc1"),
        ("api_token", "t0k"),
    ]);
    let req = ccai.verification_request(&v).unwrap();
    assert_eq!(
        req.url().as_str(),
        "https://acme.uc1.ccaiplatform.com/manager/api/v1/settings/organization"
    );
    assert_eq!(header(&req, "Authorization"), Some(basic("acme", "t0k")));
    assert!(!req.trusted_host);
    assert!(ccai.field("subdomain").unwrap().host_label);
    assert!(ccai.field("region").unwrap().host_label);
    assert!(!ccai.field("api_token").unwrap().host_label);
    assert_eq!(ccai.rate_limit.as_ref().unwrap().requests, Some(10));
}

#[test]
fn clari_copilot_sends_both_headers() {
    let catalog = Catalog::builtin().unwrap();
    let clari = catalog.get("clari-copilot").unwrap();
    let req = clari
        .verification_request(&values(&[("api_key", "k1"), ("api_password", "p1")]))
        .unwrap();
    assert_eq!(
        req.url().as_str(),
        "https://rest-api.copilot.clari.com/users"
    );
    assert_eq!(header(&req, "X-Api-Key").as_deref(), Some("k1"));
    assert_eq!(header(&req, "X-Api-Password").as_deref(), Some("p1"));
    assert_eq!(clari.rate_limit.as_ref().unwrap().weekly, Some(100_000));
}

#[test]
fn custom_provider_renders_each_auth_type() {
    let catalog = Catalog::builtin().unwrap();
    let custom = catalog.get("custom").unwrap();
    let base = [
        ("base_url", "https://api.example.com/v2"),
        ("verify_path", "/me"),
        ("secret", "s3cr3t"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = values(&base);
        v.extend(values(extra));
        v
    };
    let header_req = custom
        .verification_request(&with(&[
            ("auth_type", "header"),
            ("header_name", "X-Token"),
            ("value_template", "Token {secret}"),
        ]))
        .unwrap();
    assert_eq!(header_req.url().as_str(), "https://api.example.com/v2/me");
    assert_eq!(
        header(&header_req, "X-Token").as_deref(),
        Some("Token s3cr3t")
    );

    let basic_req = custom
        .verification_request(&with(&[("auth_type", "basic"), ("username", "ada")]))
        .unwrap();
    assert_eq!(
        header(&basic_req, "Authorization"),
        Some(basic("ada", "s3cr3t"))
    );

    let bearer = custom
        .verification_request(&with(&[("auth_type", "bearer")]))
        .unwrap();
    assert_eq!(
        header(&bearer, "Authorization").as_deref(),
        Some("Bearer s3cr3t")
    );

    let query = custom
        .verification_request(&with(&[("auth_type", "query"), ("query_param", "api_key")]))
        .unwrap();
    assert_eq!(
        query.url().as_str(),
        "https://api.example.com/v2/me?api_key=s3cr3t"
    );
    assert!(!query.redacted_url().contains("s3cr3t"));
    assert!(!format!("{query:?}").contains("s3cr3t"));
    assert!(query.headers.is_empty());

    assert_eq!(custom.verify.classify(204), Verdict::Valid);
}

#[test]
fn custom_provider_refuses_non_https_base_urls() {
    let catalog = Catalog::builtin().unwrap();
    let custom = catalog.get("custom").unwrap();
    for bad in [
        "http://api.example.com",
        "ftp://x.example.com",
        "file:///etc/passwd",
        "https://user:pw@x.example.com",
        "gopher://x",
    ] {
        let v = [
            ("base_url", bad),
            ("auth_type", "bearer"),
            ("verify_path", "/"),
            ("secret", "s"),
        ];
        assert!(
            matches!(custom.check_values(&v), Err(FieldError::Invalid { ref field, .. }) if field == "base_url"),
            "{bad}"
        );
    }
    let v = [
        ("base_url", "https://x.example.com"),
        ("auth_type", "header"),
        ("verify_path", "/"),
        ("secret", "s"),
    ];
    assert!(
        matches!(custom.check_values(&v), Err(FieldError::Missing { ref field, .. }) if field == "header_name")
    );
}

#[test]
fn field_checks_name_the_field_and_never_the_value() {
    let catalog = Catalog::builtin().unwrap();
    let ccai = catalog.get("ccai-platform").unwrap();
    for bad in [
        "evil.com#",
        "a.evil.com/",
        "x@evil.com",
        "%2e",
        "a..b",
        "[::1]",
        "has space",
        "a\r\nb",
        "a.b",
    ] {
        let err = ccai
            .check_values(&[("subdomain", bad), ("region", "uc1"), ("api_token", "tok")])
            .unwrap_err();
        assert_eq!(err.field(), "subdomain", "{bad}");
        assert!(
            err.to_string().contains("DNS label") || err.to_string().contains("control"),
            "{err}"
        );
    }
    let unknown = ccai
        .check_values(&[
            ("subdomain", "acme"),
            ("region", "uc1"),
            ("api_token", "t"),
            ("colour", "x"),
        ])
        .unwrap_err();
    assert!(matches!(unknown, FieldError::Unknown { .. }));
    assert!(
        unknown.to_string().contains("subdomain, region, api_token"),
        "{unknown}"
    );
    let missing = ccai
        .check_values(&[("subdomain", "acme"), ("region", "uc1")])
        .unwrap_err();
    assert!(missing.to_string().contains("API Token"), "{missing}");
    assert!(
        missing.to_string().contains("Developer Settings"),
        "{missing}"
    );

    let aircall = catalog.get("aircall").unwrap();
    let err = aircall
        .check_values(&[("api_id", "bad id!"), ("api_token", "secret-value-123")])
        .unwrap_err();
    assert_eq!(err.field(), "api_id");
    assert!(!err.to_string().contains("secret-value-123"));
}

#[test]
fn host_values_that_escape_a_label_are_refused_at_render_too() {
    let catalog = Catalog::builtin().unwrap();
    let ccai = catalog.get("ccai-platform").unwrap();
    let v = values(&[
        ("subdomain", "evil.com#"),
        ("region", "uc1"),
        ("api_token", "t"),
    ]);
    assert!(matches!(
        ccai.verification_request(&v),
        Err(RenderError::InvalidHostValue(_))
    ));
}

#[test]
fn overrides_allow_http_and_mark_the_host_trusted() {
    let mut catalog = Catalog::builtin().unwrap();
    catalog
        .override_base_url("ccai-platform", "http://127.0.0.1:9003")
        .unwrap();
    catalog
        .override_base_url("aircall", "http://127.0.0.1:9002")
        .unwrap();
    let ccai = catalog.get("ccai-platform").unwrap();
    let req = ccai
        .verification_request(&values(&[
            ("subdomain", "acme"),
            ("region", "uc1"),
            ("api_token", "t"),
        ]))
        .unwrap();
    assert_eq!(
        req.url().as_str(),
        "http://127.0.0.1:9003/manager/api/v1/settings/organization"
    );
    assert!(req.trusted_host);

    catalog
        .override_base_url(
            "ccai-platform",
            "https://{subdomain}.{region}.gateway.internal",
        )
        .unwrap();
    let err = catalog.override_base_url("nope", "http://x").unwrap_err();
    assert!(err.message.contains("chorus"), "{err}");
    assert!(catalog.override_base_url("aircall", "ftp://x").is_err());
    catalog
        .override_base_url("aircall", "http://{api_id}.x")
        .unwrap();
    assert!(
        catalog
            .override_base_url("aircall", "http://x{api_id}.example")
            .is_err()
    );
}

#[test]
fn path_tricks_never_change_the_host() {
    let base = url::Url::parse("https://api.aircall.io/v1").unwrap();
    let ok = join_path(&base, "/calls?page=2&per_page=50").unwrap();
    assert_eq!(
        ok.as_str(),
        "https://api.aircall.io/v1/calls?page=2&per_page=50"
    );
    let at = join_path(&base, "/users/@evil.com").unwrap();
    assert_eq!(at.host_str(), Some("api.aircall.io"));
    for bad in [
        "/../secret",
        "/a/%2e%2e/b",
        "/a/%2E%2E",
        "/.",
        "//evil.com/x",
        "http://evil.com/x",
        "evil.com",
        "/a%2fb",
        "/a\r\nHost: evil.com",
        "/a?x=1\r\nb",
        "/a b",
        "/a\\..\\b",
        "/a#frag",
    ] {
        match join_path(&base, bad) {
            Err(_) => {}
            Ok(url) => assert_eq!(url.host_str(), Some("api.aircall.io"), "{bad} -> {url}"),
        }
    }
    assert!(join_path(&base, "/../x").is_err());
    assert!(join_path(&base, "//evil.com").is_err());
}

fn file(text: &str) -> ProviderFile {
    ProviderFile {
        path: "ops/acme.toml".to_owned(),
        text: text.to_owned(),
    }
}

const GOOD: &str = r#"id = "acme"
name = "Acme"
base_url = "https://api.acme.example"

[[fields]]
key = "token"
label = "Token"
help = "Acme > Settings > API"
secret = true

[auth]
type = "bearer"
token = "{token}"

[verify]
path = "/me"
valid = [200]
rejected = [401]
"#;

#[test]
fn operator_files_join_the_catalog() {
    let catalog = Catalog::from_files(&[file(GOOD)]).unwrap();
    let acme = catalog.get("acme").unwrap();
    assert_eq!(acme.source, "ops/acme.toml");
    let req = acme
        .verification_request(&values(&[("token", "t")]))
        .unwrap();
    assert_eq!(header(&req, "Authorization").as_deref(), Some("Bearer t"));
    assert_eq!(catalog.ids().last(), Some(&"acme"));
}

#[test]
fn malformed_files_name_file_line_and_problem() {
    let cases: &[(&str, usize, &str)] = &[
        (
            &GOOD.replace("type = \"bearer\"", "type = \"telepathy\""),
            12,
            "telepathy",
        ),
        (
            &GOOD.replace("label = \"Token\"", "label = \"Token\"\ncolour = \"red\""),
            8,
            "colour",
        ),
        (
            &GOOD.replace("token = \"{token}\"", "token = \"{tokn}\""),
            11,
            "tokn",
        ),
        (
            &GOOD.replace("https://api.acme.example", "http://api.acme.example"),
            3,
            "https",
        ),
        (
            &GOOD.replace("https://api.acme.example", "https://x{token}.acme.example"),
            3,
            "whole label",
        ),
        (
            &GOOD.replace("rejected = [401]", "rejected = [200]"),
            15,
            "more than one",
        ),
        (
            &GOOD.replace("id = \"acme\"", "id = \"Acme Inc\""),
            1,
            "lowercase",
        ),
        (
            &GOOD.replace("id = \"acme\"", "id = \"aircall\""),
            1,
            "already defined",
        ),
        (
            &GOOD.replace("secret = true", "secret = true\npattern = \"(\""),
            10,
            "pattern",
        ),
        (&GOOD.replace("valid = [200]", "valid = [200"), 18, "comma"),
    ];
    for (text, line, needle) in cases {
        let err = Catalog::from_files(&[file(text)]).unwrap_err();
        assert_eq!(err.file, "ops/acme.toml");
        assert_eq!(err.line, *line, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("ops/acme.toml:{line}: ")),
            "{err}"
        );
    }
}

/// Values for CCAI Platform with these host-forming fields.
fn ccai(subdomain: &str, region: &str) -> BTreeMap<String, String> {
    values(&[
        ("subdomain", subdomain),
        ("region", region),
        ("api_token", "t0k"),
    ])
}

#[test]
fn a_host_forming_field_cannot_append_a_suffix_to_the_host() {
    let mut catalog = Catalog::builtin().unwrap();
    let suffixes = [
        ("acme.evil", "uc1", "subdomain"),
        ("acme%2eevil", "uc1", "subdomain"),
        ("acme%2Eevil", "uc1", "subdomain"),
        ("acme\u{3002}evil", "uc1", "subdomain"),
        ("acme\u{ff0e}evil", "uc1", "subdomain"),
        ("acme.uc1.ccaiplatform.com.evil.com", "uc1", "subdomain"),
        ("acme", "uc1.ccaiplatform.com.evil", "region"),
        ("acme", "uc1%2eevil", "region"),
        ("acme", "uc1.evil.com/", "region"),
        ("acme", "uc1:8443", "region"),
        ("acme", "uc1@evil.com", "region"),
    ];
    for round in ["catalog", "override"] {
        let ccai_provider = catalog.get("ccai-platform").unwrap();
        for (subdomain, region, field) in suffixes {
            let v = ccai(subdomain, region);
            let pairs: Vec<(&str, &str)> =
                v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let err = ccai_provider.check_values(&pairs).unwrap_err();
            assert_eq!(err.field(), field, "{round}: {subdomain} / {region}: {err}");
            assert!(
                !err.to_string().contains("evil"),
                "the value is not repeated: {err}"
            );
            assert!(
                matches!(
                    ccai_provider.verification_request(&v),
                    Err(RenderError::InvalidHostValue(ref f)) if f == field
                ),
                "{round}: {subdomain} / {region} renders"
            );
        }
        catalog
            .override_base_url(
                "ccai-platform",
                "https://{subdomain}.{region}.gateway.internal",
            )
            .unwrap();
    }
}

#[test]
fn the_request_host_is_the_templates_host_exactly() {
    let catalog = Catalog::builtin().unwrap();
    let ccai_provider = catalog.get("ccai-platform").unwrap();
    let req = ccai_provider
        .verification_request(&ccai("acme", "uc1"))
        .unwrap();
    assert_eq!(req.host(), "acme.uc1.ccaiplatform.com");

    // An operator provider on a fixed host: no path makes `api.example.com.evil.com` (or any
    // other host that merely starts with the template's) the target.
    let fixed = GOOD.replace("https://api.acme.example", "https://api.example.com");
    let catalog = Catalog::from_files(&[file(&fixed)]).unwrap();
    let acme = catalog.get("acme").unwrap();
    for path in [
        ".evil.com/x",
        "/.evil.com",
        "%2eevil.com/x",
        "@evil.com/x",
        ":443@evil.com/x",
        "//api.example.com.evil.com/x",
        "https://api.example.com.evil.com/x",
        "/x/../../api.example.com.evil.com",
        "/x?next=https://api.example.com.evil.com",
    ] {
        match acme.render_request(&values(&[("token", "t")]), "GET", path) {
            Err(_) => {}
            Ok(req) => assert_eq!(req.host(), "api.example.com", "{path} -> {}", req.url()),
        }
    }
    let base = url::Url::parse("https://api.example.com").unwrap();
    assert!(join_path(&base, ".evil.com/x").is_err());
    assert!(join_path(&base, "//api.example.com.evil.com/").is_err());
}

#[test]
fn the_templated_ccai_override_renders_on_the_gateway_and_is_trusted() {
    let mut catalog = Catalog::builtin().unwrap();
    catalog
        .override_base_url(
            "ccai-platform",
            "https://{subdomain}.{region}.gateway.internal",
        )
        .unwrap();
    let ccai_provider = catalog.get("ccai-platform").unwrap();
    assert!(ccai_provider.base_url_overridden());
    let req = ccai_provider
        .verification_request(&ccai("acme", "ue1"))
        .unwrap();
    assert_eq!(req.method, "GET");
    assert_eq!(req.host(), "acme.ue1.gateway.internal");
    assert_eq!(
        req.url().as_str(),
        "https://acme.ue1.gateway.internal/manager/api/v1/settings/organization"
    );
    assert!(req.trusted_host, "an operator-configured host is trusted");
    assert_eq!(header(&req, "Authorization"), Some(basic("acme", "t0k")));
    // Without the override the same values go to the provider's own host, untrusted.
    let builtin = Catalog::builtin().unwrap();
    let req = builtin
        .get("ccai-platform")
        .unwrap()
        .verification_request(&ccai("acme", "ue1"))
        .unwrap();
    assert_eq!(req.host(), "acme.ue1.ccaiplatform.com");
    assert!(!req.trusted_host);
}

/// The proxy builds each request's path and query without a URL (`PreparedAuth::path_and_query`);
/// it is the same text as the URL `PreparedAuth::request` builds, the query secret included, and
/// the same paths are refused. (The `proxy_path` fuzz target compares them on any input.)
#[test]
fn the_proxys_path_and_query_is_the_urls() {
    let query_auth = GOOD
        .replace(
            "type = \"bearer\"\ntoken = \"{token}\"",
            "type = \"query\"\nparam = \"api_key\"\nvalue = \"{token}\"",
        )
        .replace("https://api.acme.example", "https://api.acme.example/base/");
    assert!(query_auth.contains("type = \"query\""));
    let catalog = Catalog::from_files(&[file(&query_auth)]).unwrap();
    let with_query = catalog
        .get("acme")
        .unwrap()
        .prepare(&values(&[("token", "s3cr&t =é")]))
        .unwrap();
    let builtin = Catalog::builtin().unwrap();
    let bearer = builtin
        .get("chorus")
        .unwrap()
        .prepare(&values(&[("api_token", "t")]))
        .unwrap();
    for auth in [&with_query, &bearer] {
        for path in [
            "/v3/engagements",
            "/calls?page=2&per_page=50",
            "/calls?",
            "/a?b=\"<x>\"'&c=`{}`|^",
            "/é/ü?q=ß",
            "/a\"b<c>d`e{f}g|h^i[j]k",
            "/users/@evil.com",
            "/a/%2e%2e/b",
            "/a%2fb",
            "/a%zz/%41",
            "/a?x=%2e%2e&y=//z",
            "/../x",
            "//evil.com",
            "/a b",
            "/a\\b",
            "/a#f",
            "evil.com",
            "/a?x=1\r\nb",
            "/",
        ] {
            let fast = auth.path_and_query(path).map(|p| p.to_string());
            let url = auth
                .request("GET", path)
                .map(|r| r.url()[url::Position::BeforePath..].to_owned());
            assert_eq!(fast, url, "{path}");
        }
    }
    assert_eq!(
        with_query.path_and_query("/x?a=1").unwrap().as_str(),
        "/base/x?a=1&api_key=s3cr%26t+%3D%C3%A9"
    );
}
