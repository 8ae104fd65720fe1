//! The credential lifecycle through the real binary, against the real sandbox providers and a
//! real database of each backend.

mod common;

use base64::Engine as _;
use common::Env;
use latchkey_testdb::Backend;

/// Every secret the sandbox's demo holds and `extra` lists, in more forms than the shared scan
/// checks: base64 standard and URL-safe, padded or not, hex in either case, and the Basic
/// credentials built from them.
fn strict_forms(env: &Env, extra: &[&str]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let d = env.demo();
    let mut raw = vec![
        d.chorus_token.clone(),
        d.chorus_no_api_token.clone(),
        d.aircall_api_token.clone(),
        d.ccai_api_token.clone(),
        d.clari_api_password.clone(),
    ];
    raw.extend(extra.iter().map(|s| (*s).to_owned()));
    raw.push(format!("{}:{}", d.aircall_api_id, d.aircall_api_token));
    raw.push(format!("{}:{}", d.ccai_subdomain, d.ccai_api_token));
    let mut forms = Vec::new();
    for s in &raw {
        let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
        forms.push(hex.to_ascii_uppercase());
        forms.push(hex);
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            forms.push(engine.encode(s));
        }
        if !s.contains(':') {
            forms.push(s.clone());
        }
    }
    forms
}

/// No output of any run so far and nothing in the database holds a secret in any of the
/// strict forms (besides the shared checks).
async fn assert_no_secret_anywhere(env: &Env, extra: &[&str]) {
    env.assert_no_secret_in_output();
    env.assert_no_secret_stored().await;
    let outputs = env.outputs();
    let dump = env.db.dump().await;
    let dump = String::from_utf8_lossy(&dump);
    for form in strict_forms(env, extra) {
        for out in &outputs {
            assert!(
                !out.contains(&form),
                "a secret appeared in the output:\n{out}"
            );
        }
        assert!(!dump.contains(&form), "the database holds a secret");
    }
}

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

    assert_no_secret_anywhere(&env, &[]).await;
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
    assert_no_secret_anywhere(&env, &[&wrong]).await;
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
    // The unverified credential holds the demo token: sealed, so in no form in the database.
    assert_no_secret_anywhere(&env, &[]).await;
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
    assert_no_secret_anywhere(&env, &[&wrong]).await;
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
    assert_no_secret_anywhere(&env, &[&wrong]).await;
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
    .says("names none of them")
    .says("Aircall's fields for --set: api_id.")
    .says("secret fields (api_token)");
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
    // A secret mistyped as `--set <secret>` (no `=`, or base64 padding that looks like one) is
    // never printed back; the message says what the form must be and which fields there are.
    let padded = env.secret("bHgtdHlwZWQtc2VjcmV0LXRva2Vu==");
    for typed in [env.demo().aircall_api_token.as_str(), padded.as_str()] {
        add(
            &["aircall", "--name", "x", "--set", &id, "--set", typed],
            "",
        )
        .code(2)
        .says("--set takes field=value, e.g. --set api_id=value")
        .says("is not repeated here")
        .says("Aircall's fields for --set: api_id.");
    }
    let typed = add(&["aircall", "--name", "x", "--set", &padded], "");
    typed.code(2);
    assert!(!typed.stderr.contains(padded.trim_end_matches('=')));

    let list = env.run(&["credentials", "list", "--json"], "").ok().json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the first credential exists");
    assert_eq!(items[0]["revision"], 1, "and it is unchanged");
    assert_no_secret_anywhere(&env, &[&padded]).await;
}

async fn workspaces_and_list_filters_scope_what_is_shown(backend: Backend) {
    let env = Env::on(backend).await;
    let slugs = |run: &common::Run| -> Vec<String> {
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = env.run(&["workspaces", "list", "--json"], "");
    assert_eq!(slugs(listed.ok()), ["default"]);
    env.run(&["workspaces", "add", "other-team"], "")
        .ok()
        .says("Added workspace other-team");
    let listed = env.run(&["workspaces", "list", "--json"], "");
    let mut found = slugs(listed.ok());
    found.sort();
    assert_eq!(found, ["default", "other-team"]);
    env.run(&["workspaces", "list"], "")
        .ok()
        .says("WORKSPACE")
        .says("other-team");

    env.add_demo("aircall", "Aircall").ok();
    env.add_demo("chorus", "Chorus").ok();
    let (mut args, stdin) = env.demo_input("clari-copilot");
    args.splice(
        0..0,
        [
            "credentials",
            "add",
            "clari-copilot",
            "--name",
            "Clari",
            "--no-verify",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, &stdin).ok();

    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["credentials", "list", "--json"];
        all.extend_from_slice(args);
        let mut names: Vec<String> = env.run(&all, "").ok().json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&["--provider", "aircall"]), ["Aircall"]);
    assert_eq!(names(&["--provider", "chorus"]), ["Chorus"]);
    assert!(names(&["--provider", "ccai-platform"]).is_empty());
    assert_eq!(names(&["--status", "active"]), ["Aircall", "Chorus"]);
    assert_eq!(names(&["--status", "unverified"]), ["Clari"]);
    assert_eq!(
        names(&["--status", "active", "--provider", "clari-copilot"]),
        Vec::<String>::new()
    );
    env.run(&["credentials", "list", "--provider", "salesforce"], "")
        .code(2)
        .says("unknown provider `salesforce`");
    env.run(&["credentials", "list", "--provider", "aircall"], "")
        .ok()
        .says("Aircall");

    // Another workspace sees none of them, by name or by id, and cannot change them.
    let id = env
        .run(&["credentials", "show", "Aircall", "--json"], "")
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(names(&["-w", "other-team"]).is_empty());
    for reference in ["Aircall", id.as_str()] {
        env.run(&["credentials", "show", reference, "-w", "other-team"], "")
            .code(1)
            .says("no credential");
        env.run(
            &[
                "-w",
                "other-team",
                "credentials",
                "delete",
                reference,
                "--yes",
            ],
            "",
        )
        .code(1)
        .says("no credential");
        env.run(
            &[
                "credentials",
                "rename",
                reference,
                "Stolen",
                "--workspace",
                "other-team",
            ],
            "",
        )
        .code(1);
    }
    env.run(&["credentials", "list", "-w", "nope"], "")
        .code(1)
        .says("no workspace `nope`");
    // In its own workspace it is unchanged.
    let shown = env
        .run(&["credentials", "show", &id, "--json"], "")
        .ok()
        .json();
    assert_eq!(shown["name"], "Aircall");
    assert_eq!(shown["revision"], 1);
    assert_no_secret_anywhere(&env, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_flag_chooses_the_database_over_the_environment() {
    let env = Env::new().await;
    let elsewhere = env.dir().join("elsewhere");
    let flag = elsewhere.to_str().unwrap();
    // LATCHKEY_DATA_DIR is set (to the test's data directory); the flag wins.
    env.add_demo("chorus", "In the environment's").ok();
    let (args, stdin) = env.demo_input("aircall");
    let mut all = vec![
        "credentials",
        "add",
        "aircall",
        "--name",
        "In the flag's",
        "--data-dir",
        flag,
    ];
    all.extend(args.iter().map(String::as_str));
    env.run(&all, &stdin)
        .ok()
        .says("Created a new master key")
        .says("active");
    assert!(elsewhere.join("latchkey.db").is_file());
    assert!(elsewhere.join("master.key").is_file());
    let names = |run: &common::Run| -> Vec<String> {
        run.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_flag = env.run(&["credentials", "list", "--json", "--data-dir", flag], "");
    assert_eq!(names(by_flag.ok()), ["In the flag's"]);
    let by_env = env.run(&["credentials", "list", "--json"], "");
    assert_eq!(names(by_env.ok()), ["In the environment's"]);
    // Without the environment variable, the flag alone.
    let mut cmd = env.command(&["credentials", "list", "--json", "--data-dir", flag]);
    cmd.env_remove("LATCHKEY_DATA_DIR");
    let alone = env.run_command(cmd, "");
    assert_eq!(names(alone.ok()), ["In the flag's"]);

    let dump: Vec<u8> = ["latchkey.db", "latchkey.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(elsewhere.join(f)).ok())
        .flatten()
        .collect();
    let dump = String::from_utf8_lossy(&dump);
    for form in strict_forms(&env, &[]) {
        assert!(!dump.contains(&form), "the flag's database holds a secret");
    }
    assert_no_secret_anywhere(&env, &[]).await;
}

/// Drives a command through a pseudo-terminal: waits for each prompt (the output ending with
/// it) and for the terminal's echo to be off, then types the answer. Prints the transcript.
/// Arguments: the number of prompts, the prompts, then the command; answers on stdin.
const PTY_DRIVER: &str = r#"
import os, pty, select, sys, termios, time
count = int(sys.argv[1])
prompts = [p.encode() for p in sys.argv[2:2 + count]]
command = sys.argv[2 + count:]
answers = sys.stdin.read().splitlines()
pid, fd = pty.fork()
if pid == 0:
    os.execv(command[0], command)
out = b""
def read(deadline):
    global out
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            out += chunk
            return True
    return True
for prompt, answer in zip(prompts, answers):
    deadline = time.time() + 30
    while not out.rstrip(b" ").endswith(prompt.rstrip(b" ")):
        if not read(deadline) or time.time() >= deadline:
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit("no prompt " + prompt.decode())
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() >= deadline:
            sys.exit("the terminal still echoes at " + prompt.decode())
        time.sleep(0.01)
    os.write(fd, answer.encode() + b"\n")
deadline = time.time() + 30
while read(deadline) and time.time() < deadline:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interactive_prompt_does_not_echo_the_secret() {
    let env = Env::new().await;
    let latchkey = env.command(&["credentials", "add", "chorus", "--name", "Chorus – typed"]);
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", PTY_DRIVER, "1", "API Token: "]);
    cmd.arg(latchkey.get_program()).args(latchkey.get_args());
    for (key, value) in latchkey.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let typed = env.run_command(cmd, &format!("{}\n", env.demo().chorus_token));
    typed
        .ok()
        .says("API Token: In Chorus.ai go to")
        .says("Verified with")
        .says("active");
    assert!(
        !typed.stdout.contains(&env.demo().chorus_token),
        "the terminal showed the typed token:\n{}",
        typed.stdout
    );
    let listed = env.run(&["credentials", "list", "--json"], "").ok().json();
    assert_eq!(listed["items"][0]["name"], "Chorus – typed");
    assert_eq!(listed["items"][0]["status"], "active");
    assert_no_secret_anywhere(&env, &[]).await;
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    one_credential_per_provider_is_verified_and_stored,
    each_provider_rejection_saves_nothing_and_says_what_to_check,
    provider_down_or_slow_saves_nothing_unless_told_not_to_verify,
    a_credential_lives_its_whole_life,
    verification_of_a_stored_credential_records_a_rejection,
    bad_input_gets_a_clear_message_and_changes_nothing,
    workspaces_and_list_filters_scope_what_is_shown,
);
