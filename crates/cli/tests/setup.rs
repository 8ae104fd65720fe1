//! Start-up through the real binary: master key handling, the catalog and operator provider
//! files, configuration, the address guard, and the `sandbox` command itself.

mod common;

use base64::Engine as _;
use common::Env;
use latchkey_testdb::Backend;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_gets_a_master_key_once() {
    let env = Env::new().await;
    let first = env.run(&["credentials", "list"], "");
    first.ok().says("Created a new master key mk_");
    let key_file = env.data_dir().join("master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let second = env.run(&["credentials", "list"], "");
    second.ok();
    assert!(
        !second.stderr.contains("Created a new master key"),
        "said once only"
    );
    env.add_demo("chorus", "Chorus").ok();
    env.assert_no_secret_in_output();
}

/// On PostgreSQL too: the database holds the data, the key file is in the data directory.
async fn a_missing_or_wrong_master_key_is_refused_saying_which(backend: Backend) {
    let env = Env::on(backend).await;
    env.add_demo("aircall", "Aircall").ok();
    let key_file = env.data_dir().join("master.key");
    let saved = env.dir().join("saved.key");
    std::fs::rename(&key_file, &saved).unwrap();

    env.run(&["credentials", "list"], "")
        .code(1)
        .says("missing master key")
        .says("mk_");
    assert!(
        !key_file.exists(),
        "no new key is made for a database that holds data"
    );

    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    env.secret(&other);
    let mut cmd = env.command(&["credentials", "list"]);
    cmd.env("LATCHKEY_MASTER_KEY", &other);
    env.run_command(cmd, "").code(1).says("wrong master key");

    let wrong_file = env.dir().join("wrong.key");
    std::fs::write(&wrong_file, format!("{other}\n")).unwrap();
    env.run(
        &[
            "credentials",
            "list",
            "--master-key-file",
            wrong_file.to_str().unwrap(),
        ],
        "",
    )
    .code(1)
    .says("wrong master key");

    let bad_file = env.dir().join("bad.key");
    std::fs::write(&bad_file, "not base64 at all\n").unwrap();
    env.run(
        &[
            "credentials",
            "list",
            "--master-key-file",
            bad_file.to_str().unwrap(),
        ],
        "",
    )
    .code(1)
    .says("line 1");

    // The right key, from a file or the environment, opens everything again.
    env.run(
        &[
            "credentials",
            "verify",
            "Aircall",
            "--master-key-file",
            saved.to_str().unwrap(),
        ],
        "",
    )
    .ok();
    let key_text = std::fs::read_to_string(&saved).unwrap();
    let key_line = key_text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .trim()
        .to_owned();
    env.secret(&key_line);
    let mut cmd = env.command(&["credentials", "show", "Aircall"]);
    cmd.env("LATCHKEY_MASTER_KEY", &key_line);
    env.run_command(cmd, "").ok().says("active");
    env.assert_no_secret_in_output();
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_missing_or_wrong_master_key_is_refused_saying_which,
);

/// `LATCHKEY_DATABASE_URL` alone (no `--database-url`) selects PostgreSQL: the credential is
/// stored there and no SQLite file appears in the data directory; the flag wins over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_url_in_the_environment_selects_postgresql() {
    let env = Env::on(Backend::Postgres).await;
    let (args, stdin) = env.demo_input("aircall");
    let mut add = env.command_with_url_in_environment(&["credentials", "add", "aircall"]);
    add.args(["--name", "Kept in PostgreSQL"]).args(&args);
    env.run_command(add, &stdin).ok().says("active");

    let in_data_dir: Vec<String> = std::fs::read_dir(env.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(in_data_dir, ["master.key"], "no SQLite database was made");
    let dump = env.db.dump().await;
    assert!(
        String::from_utf8_lossy(&dump).contains("Kept in PostgreSQL"),
        "the credential is in the PostgreSQL database"
    );
    let listed = env.run_command(
        env.command_with_url_in_environment(&["credentials", "list", "--json"]),
        "",
    );
    assert_eq!(listed.ok().json()["items"][0]["name"], "Kept in PostgreSQL");

    // An unknown scheme in the environment is refused; the flag, when given, wins over it.
    let mut refused = env.command_with_url_in_environment(&["credentials", "list"]);
    refused.env("LATCHKEY_DATABASE_URL", "mysql://x");
    env.run_command(refused, "")
        .code(1)
        .says("scheme `mysql` is not supported");
    let mut flag = env.command(&["credentials", "show", "Kept in PostgreSQL"]);
    flag.env("LATCHKEY_DATABASE_URL", "mysql://x");
    env.run_command(flag, "").ok().says("active");
    env.assert_no_secret_in_output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_printed_and_extended_from_a_directory() {
    let env = Env::new().await;
    env.run(&["providers", "list"], "")
        .ok()
        .says("chorus")
        .says("aircall")
        .says("ccai-platform")
        .says("clari-copilot")
        .says("custom");
    env.run(&["providers", "show", "aircall"], "")
        .ok()
        .says("Company Settings > API Keys")
        .says("120 requests per minute per company")
        .says("/v1/ping");
    let json = env
        .run(&["providers", "show", "chorus", "--json"], "")
        .ok()
        .json();
    assert_eq!(json["verify"]["path"], "/api/v1/users/me");
    assert_eq!(json["fields"][0]["secret"], true);
    env.run(&["providers", "show", "nope"], "")
        .code(2)
        .says("unknown provider `nope`");

    let dir = env.dir().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("acme.toml"),
        "id = \"acme\"\nname = \"Acme\"\nbase_url = \"https://api.acme.example\"\n\n[[fields]]\nkey = \"token\"\nlabel = \"Token\"\nhelp = \"Acme > API\"\nsecret = true\n\n[auth]\ntype = \"bearer\"\ntoken = \"{token}\"\n\n[verify]\npath = \"/me\"\nvalid = [200]\nrejected = [401]\n",
    )
    .unwrap();
    let dir_arg = dir.to_str().unwrap();
    env.run(&["providers", "list", "--providers-dir", dir_arg], "")
        .ok()
        .says("acme");

    std::fs::write(
        dir.join("broken.toml"),
        "id = \"broken\"\nname = \"Broken\"\nbase_url = 42\n",
    )
    .unwrap();
    env.run(&["providers", "list", "--providers-dir", dir_arg], "")
        .code(1)
        .says("broken.toml:3:");
    env.run(&["credentials", "list", "--providers-dir", dir_arg], "")
        .code(1)
        .says("broken.toml:3:");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_checked() {
    let env = Env::new().await;
    env.set_env("LATCHKEY_PROVIDER_NOPE_BASE_URL", "http://127.0.0.1:1");
    env.run(&["credentials", "list"], "")
        .code(1)
        .says("LATCHKEY_PROVIDER_NOPE_BASE_URL names no known provider");

    let env = Env::new().await;
    env.set_env("LATCHKEY_DATA_DIRR", "typo");
    env.run(&["credentials", "list"], "")
        .ok()
        .says("warning: LATCHKEY_DATA_DIRR is not a Latchkey setting");

    let config = env.dir().join("latchkey.toml");
    std::fs::write(
        &config,
        "outbound_timeout = \"2s\"\n[providers.aircall]\nbase_url = \"ftp://x\"\n",
    )
    .unwrap();
    let mut cmd = env.command(&["credentials", "list", "--config", config.to_str().unwrap()]);
    cmd.env_remove(common::override_var("aircall"));
    env.run_command(cmd, "")
        .code(1)
        .says("base URL override for `aircall`");
    std::fs::write(&config, "data_dirr = \"x\"\n").unwrap();
    env.run(
        &["credentials", "list", "--config", config.to_str().unwrap()],
        "",
    )
    .code(1)
    .says("latchkey.toml:1")
    .says("data_dirr");

    // The config file's base URL override is used when the environment has none.
    let url = env.sandbox.base_url("clari-copilot").unwrap();
    std::fs::write(
        &config,
        format!("[providers.clari-copilot]\nbase_url = \"{url}\"\n"),
    )
    .unwrap();
    let mut cmd = env.command(&[
        "credentials",
        "add",
        "clari-copilot",
        "--name",
        "Clari",
        "--config",
        config.to_str().unwrap(),
    ]);
    cmd.env_remove(common::override_var("clari-copilot"));
    let (args, stdin) = env.demo_input("clari-copilot");
    cmd.args(&args);
    env.run_command(cmd, &stdin).ok().says("active");
    env.run(&["credentials", "list", "--database-url", "mysql://x"], "")
        .code(1)
        .says("scheme `mysql` is not supported");
    env.assert_no_secret_in_output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_guard_refuses_private_targets_the_operator_did_not_configure() {
    let env = Env::new().await;
    let dir = env.dir().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, host) in [
        ("loop", "127.0.0.1"),
        ("meta", "169.254.169.254"),
        ("local", "localhost"),
    ] {
        std::fs::write(
            dir.join(format!("{id}.toml")),
            format!("id = \"{id}\"\nname = \"{id}\"\nbase_url = \"https://{host}:9\"\n\n[[fields]]\nkey = \"token\"\nlabel = \"Token\"\nhelp = \"h\"\nsecret = true\n\n[auth]\ntype = \"bearer\"\ntoken = \"{{token}}\"\n\n[verify]\npath = \"/me\"\nvalid = [200]\nrejected = [401]\n"),
        )
        .unwrap();
    }
    let dir_arg = dir.to_str().unwrap();
    let token = env.secret("lk-guard-token-000111222333");
    for id in ["loop", "meta", "local"] {
        env.run(
            &[
                "credentials",
                "add",
                id,
                "--name",
                id,
                "--providers-dir",
                dir_arg,
            ],
            &format!("token={token}\n"),
        )
        .code(1)
        .says("refused by the address guard");
    }
    // The custom provider only takes https base URLs.
    env.run(
        &[
            "credentials",
            "add",
            "custom",
            "--name",
            "c",
            "--set",
            "base_url=http://127.0.0.1:9",
            "--set",
            "auth_type=bearer",
            "--set",
            "verify_path=/",
        ],
        &format!("secret={token}\n"),
    )
    .code(2)
    .says("must use https");
    env.assert_no_secret_in_output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_command_prints_its_addresses_and_demo_credentials() {
    let env = Env::new().await;
    let mut child = env
        .command(&["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut overrides = Vec::new();
    let mut demo_line = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("export ") {
            overrides.push(
                rest.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .unwrap(),
            );
        }
        if line.trim_start().starts_with("aircall ") {
            demo_line = Some(line.clone());
        }
        if line.contains("For example") {
            break;
        }
    }
    assert_eq!(overrides.len(), 4, "{overrides:?}");
    let demo_line = demo_line.expect("the aircall demo line");
    let field = |name: &str| {
        demo_line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let (api_id, api_token) = (field("api_id"), field("api_token"));
    // The sandbox prints its demo token (that is its job); nothing Latchkey prints may.
    env.secret(&api_token);
    env.secret(&format!("{api_id}:{api_token}"));
    // Use the printed addresses and demo credential, as a newcomer would.
    let mut cmd = env.command(&[
        "credentials",
        "add",
        "aircall",
        "--name",
        "Aircall – sandbox",
        "--set",
        &format!("api_id={api_id}"),
    ]);
    for (k, v) in &overrides {
        cmd.env(k, v);
    }
    env.run_command(cmd, &format!("api_token={api_token}\n"))
        .ok()
        .says("active");
    child.kill().unwrap();
    child.wait().unwrap();
    env.assert_no_secret_in_output();
    env.assert_no_secret_stored().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_from_the_environment_are_ignored_and_redirects_are_not_followed() {
    let env = Env::new().await;
    // HTTP(S)_PROXY pointing nowhere: verification still goes straight to the provider.
    env.set_env("HTTP_PROXY", "http://127.0.0.1:1");
    env.set_env("HTTPS_PROXY", "http://127.0.0.1:1");
    env.set_env("ALL_PROXY", "http://127.0.0.1:1");
    env.add_demo("aircall", "Aircall").ok().says("active");

    // A provider that answers with a redirect to the metadata address: not followed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    env.set_env(
        "LATCHKEY_PROVIDER_CHORUS_BASE_URL",
        &format!("http://127.0.0.1:{port}"),
    );
    env.add_demo("chorus", "Chorus")
        .code(1)
        .says("redirect")
        .says("not follow");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one request, no second hop"
    );
    env.assert_no_secret_in_output();
}
