//! The credential lifecycle through the real binary, against the real sandbox providers and a
//! real database of each backend.

mod common;

use common::Env;
use latchkey_testdb::Backend;

async fn one_credential_per_provider_is_verified_and_stored(backend: Backend) {
    let env = Env::on(backend).await;
    for (provider, name) in [
        ("chorus", "Chorus – sales"),
        ("aircall", "Aircall – production"),
        ("ccai-platform", "CCAI Platform – support"),
        ("clari-copilot", "Clari Copilot – revenue"),
    ] {
        env.add_demo(provider, name)
            .ok()
            .says("Verified with")
            .says("active");
    }
    let list = env.run(&["credentials", "list", "--json"], "").ok().json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for item in items {
        assert_eq!(item["status"], "active", "{item}");
        assert!(item["verified_at"].as_str().unwrap().ends_with('Z'));
        for (_, secret) in item["secrets"].as_object().unwrap() {
            assert_eq!(secret["set"], true);
            assert!(
                secret["hint"].as_str().unwrap().starts_with("••••"),
                "{secret}"
            );
        }
    }
    let chorus = items.iter().find(|i| i["provider"] == "chorus").unwrap();
    assert_eq!(chorus["identity"], "ada.lovelace@example.com");
    let aircall = items.iter().find(|i| i["provider"] == "aircall").unwrap();
    assert_eq!(
        aircall["settings"]["api_id"],
        env.demo().aircall_api_id.as_str()
    );
    let ccai = items
        .iter()
        .find(|i| i["provider"] == "ccai-platform")
        .unwrap();
    assert_eq!(
        ccai["settings"]["subdomain"],
        env.demo().ccai_subdomain.as_str()
    );

    // The human table shows the masked hint (last 4 characters), never the token.
    let token = &env.demo().aircall_api_token;
    let hint = format!("••••{}", &token[token.len() - 4..]);
    env.run(&["credentials", "list"], "")
        .ok()
        .says(&hint)
        .says("Aircall – production");

    // Auth arrived exactly as each real API expects, from Latchkey's fixed User-Agent.
    let chorus_req = env.sandbox.requests("chorus");
    let auth = chorus_req[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(
        auth.1,
        env.demo().chorus_token,
        "Chorus gets the raw token, no Bearer"
    );
    let ua = chorus_req[0]
        .headers
        .iter()
        .find(|(k, _)| k == "user-agent")
        .unwrap();
    assert!(ua.1.starts_with("latchkey/"), "{}", ua.1);
    let clari = &env.sandbox.requests("clari-copilot")[0];
    assert!(
        clari
            .headers
            .iter()
            .any(|(k, v)| k == "x-api-key" && *v == env.demo().clari_api_key)
    );

    env.assert_no_secret_in_output();
    env.assert_no_secret_stored().await;
}

async fn each_provider_rejection_saves_nothing_and_says_what_to_check(backend: Backend) {
    let env = Env::on(backend).await;
    let wrong = env.secret("lk-wrong-secret-0123456789abcdef");
    let cases: Vec<(&str, Vec<String>, String, &str)> = vec![
        (
            "chorus",
            vec![],
            format!("api_token={wrong}\n"),
            "Chorus.ai rejected the credential (HTTP 401)",
        ),
        (
            "chorus",
            vec![],
            format!("api_token={}\n", env.demo().chorus_no_api_token),
            "role may not be allowed API access",
        ),
        (
            "aircall",
            vec![
                "--set".into(),
                format!("api_id={}", env.demo().aircall_api_id),
            ],
            format!("api_token={wrong}\n"),
            "Aircall rejected the API ID or token",
        ),
        (
            "ccai-platform",
            vec![
                "--set".into(),
                "subdomain=notacme".into(),
                "--set".into(),
                "region=uc1".into(),
            ],
            format!("api_token={}\n", env.demo().ccai_api_token),
            "CCAI Platform rejected the subdomain or API token",
        ),
        (
            "clari-copilot",
            vec![
                "--set".into(),
                format!("api_key={}", env.demo().clari_api_key),
            ],
            format!("api_password={wrong}\n"),
            "Clari Copilot rejected the API Key or API Password",
        ),
    ];
    for (provider, sets, stdin, needle) in cases {
        let mut args = vec!["credentials", "add", provider, "--name", "attempt"];
        args.extend(sets.iter().map(String::as_str));
        env.run(&args, &stdin).code(1).says(needle).says("Check:");
    }
    let list = env.run(&["credentials", "list", "--json"], "").ok().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing saved");
    env.assert_no_secret_in_output();
}

async fn provider_down_or_slow_saves_nothing_unless_told_not_to_verify(backend: Backend) {
    let env = Env::on(backend).await;
    // Down: nothing listens on the overridden address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    env.set_env(
        "LATCHKEY_PROVIDER_AIRCALL_BASE_URL",
        &format!("http://127.0.0.1:{port}"),
    );
    env.add_demo("aircall", "Aircall – down")
        .code(1)
        .says("Aircall could not be reached")
        .says("Nothing was saved")
        .says("--no-verify");
    let (mut args, stdin) = env.demo_input("aircall");
    args.splice(
        0..0,
        [
            "credentials",
            "add",
            "aircall",
            "--name",
            "Aircall – later",
            "--no-verify",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, &stdin).ok().says("unverified");

    // Slow: the provider answers after the timeout.
    env.sandbox.set_latency(std::time::Duration::from_secs(3));
    let mut cmd = env.command(&[
        "credentials",
        "add",
        "chorus",
        "--name",
        "Chorus – slow",
        "--outbound-timeout",
        "1s",
    ]);
    cmd.env_remove("LATCHKEY_LOG");
    env.run_command(cmd, &format!("api_token={}\n", env.demo().chorus_token))
        .code(1)
        .says("Chorus.ai could not be reached")
        .says("no answer within 1 s");
    env.sandbox.set_latency(std::time::Duration::ZERO);

    // 5xx and 429 are "try later", not a rejection.
    env.sandbox.set_forced_status(Some(503));
    env.add_demo("clari-copilot", "Clari – 503")
        .code(1)
        .says("HTTP 503");
    env.sandbox.set_forced_status(Some(429));
    env.add_demo("clari-copilot", "Clari – 429")
        .code(1)
        .says("HTTP 429");
    env.sandbox.set_forced_status(None);

    let list = env.run(&["credentials", "list", "--json"], "").ok().json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "unverified");
    env.assert_no_secret_in_output();
}

async fn a_credential_lives_its_whole_life(backend: Backend) {
    let env = Env::on(backend).await;
    env.add_demo("aircall", "Aircall – production").ok();
    env.run(
        &[
            "credentials",
            "rename",
            "aircall – PRODUCTION",
            "Aircall – prod",
        ],
        "",
    )
    .ok()
    .says("Renamed");
    env.run(
        &[
            "credentials",
            "describe",
            "Aircall – prod",
            "Calls for the revenue dashboard",
        ],
        "",
    )
    .ok();
    let shown = env
        .run(&["credentials", "show", "Aircall – prod", "--json"], "")
        .ok()
        .json();
    assert_eq!(shown["description"], "Calls for the revenue dashboard");
    assert_eq!(shown["revision"], 3);
    let id = shown["id"].as_str().unwrap().to_owned();
    env.run(&["credentials", "show", &id], "")
        .ok()
        .says("Aircall – prod");

    // A rejected new secret leaves the old one in place.
    let wrong = env.secret("lk-another-wrong-token-9876543210");
    env.run(
        &["credentials", "set-secret", &id],
        &format!("api_token={wrong}\n"),
    )
    .code(1)
    .says("Aircall rejected");
    env.run(&["credentials", "verify", &id], "")
        .ok()
        .says("Aircall accepted the credential");
    // A good one replaces it.
    env.run(
        &["credentials", "set-secret", &id],
        &format!("api_token={}\n", env.demo().aircall_api_token),
    )
    .ok()
    .says("Verified and replaced");

    env.run(&["credentials", "disable", &id], "")
        .ok()
        .says("disabled");
    let listed = env
        .run(
            &["credentials", "list", "--status", "disabled", "--json"],
            "",
        )
        .ok()
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    env.run(&["credentials", "enable", &id], "")
        .ok()
        .says("active");

    // Deleting needs confirmation when not interactive.
    env.run(&["credentials", "delete", &id], "")
        .code(2)
        .says("--yes");
    env.run(&["credentials", "delete", &id, "--yes"], "")
        .ok()
        .says("Deleted");
    env.run(&["credentials", "show", &id], "")
        .code(1)
        .says("no credential");
    env.assert_no_secret_in_output();
    env.assert_no_secret_stored().await;
}

async fn verification_of_a_stored_credential_records_a_rejection(backend: Backend) {
    let env = Env::on(backend).await;
    // Saved without verifying, with a token the provider does not accept.
    let wrong = env.secret("lk-stale-token-abcdefabcdef0000");
    env.run(
        &[
            "credentials",
            "add",
            "chorus",
            "--name",
            "Chorus",
            "--no-verify",
        ],
        &format!("api_token={wrong}\n"),
    )
    .ok();
    env.run(&["credentials", "verify", "chorus"], "")
        .code(1)
        .says("Chorus.ai rejected");
    let shown = env
        .run(&["credentials", "show", "Chorus", "--json"], "")
        .ok()
        .json();
    assert_eq!(shown["status"], "invalid");
    assert!(
        shown["status_reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 401")
    );
    // Fixing the secret clears it.
    env.run(
        &["credentials", "set-secret", "Chorus"],
        &format!("api_token={}\n", env.demo().chorus_token),
    )
    .ok();
    let shown = env
        .run(&["credentials", "show", "Chorus", "--json"], "")
        .ok()
        .json();
    assert_eq!(shown["status"], "active");
    assert!(shown["status_reason"].is_null());
    env.assert_no_secret_in_output();
}

async fn bad_input_gets_a_clear_message_and_changes_nothing(backend: Backend) {
    let env = Env::on(backend).await;
    env.add_demo("aircall", "Existing").ok();
    let id = format!("api_id={}", env.demo().aircall_api_id);
    let token = format!("api_token={}\n", env.demo().aircall_api_token);
    let add = |extra: &[&str], stdin: &str| {
        let mut args = vec!["credentials", "add"];
        args.extend_from_slice(extra);
        env.run(&args, stdin)
    };
    add(&["salesforce", "--name", "x"], "")
        .code(2)
        .says("unknown provider `salesforce`")
        .says("aircall");
    add(
        &[
            "aircall",
            "--name",
            "x",
            "--set",
            &id,
            "--set",
            "colour=red",
        ],
        &token,
    )
    .code(2)
    .says("`colour` is not a field of Aircall")
    .says("api_id, api_token");
    add(&["aircall", "--name", "x"], &token)
        .code(2)
        .says("API ID (`api_id`) is required")
        .says("Company Settings");
    for bad in ["evil.com#", "a.b", "x@y", "a b"] {
        let sub = format!("subdomain={bad}");
        add(
            &[
                "ccai-platform",
                "--name",
                "x",
                "--set",
                &sub,
                "--set",
                "region=uc1",
            ],
            &format!("api_token={}\n", env.demo().ccai_api_token),
        )
        .code(2)
        .says("single DNS label");
    }
    add(&["aircall", "--name", "   ", "--set", &id], &token)
        .code(2)
        .says("must not be empty");
    let long = "n".repeat(201);
    add(&["aircall", "--name", &long, "--set", &id], &token)
        .code(2)
        .says("longer than 200");
    add(&["aircall", "--name", "EXISTING", "--set", &id], &token)
        .code(1)
        .says("already exists");
    let desc = "d".repeat(2001);
    add(
        &[
            "aircall",
            "--name",
            "x",
            "--description",
            &desc,
            "--set",
            &id,
        ],
        &token,
    )
    .code(2)
    .says("longer than 2000");
    env.run(&["credentials", "show", "nope"], "")
        .code(1)
        .says("no credential `nope`");
    env.run(
        &[
            "credentials",
            "rename",
            "0190a6b2-0000-7000-8000-000000000000",
            "y",
        ],
        "",
    )
    .code(1)
    .says("no credential");
    env.run(&["credentials", "list", "--status", "sleepy"], "")
        .code(2)
        .says("active, unverified, invalid, disabled");
    env.run(
        &["credentials", "add", "aircall", "--name", "x", "--set"],
        "",
    )
    .code(2);
    add(
        &["aircall", "--name", "x", "--set", &id],
        "not a field line\n",
    )
    .code(2)
    .says("line 1");

    // A secret on the command line is refused, and says why.
    let secret_arg = format!("api_token={}", env.demo().aircall_api_token);
    let refused = add(
        &["aircall", "--name", "x", "--set", &id, "--set", &secret_arg],
        "",
    );
    refused
        .code(2)
        .says("never takes secrets from the command line");

    let list = env.run(&["credentials", "list", "--json"], "").ok().json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the first credential exists");
    assert_eq!(items[0]["revision"], 1, "and it is unchanged");
    env.assert_no_secret_in_output();
    env.assert_no_secret_stored().await;
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    one_credential_per_provider_is_verified_and_stored,
    each_provider_rejection_saves_nothing_and_says_what_to_check,
    provider_down_or_slow_saves_nothing_unless_told_not_to_verify,
    a_credential_lives_its_whole_life,
    verification_of_a_stored_credential_records_a_rejection,
    bad_input_gets_a_clear_message_and_changes_nothing,
);
