//! A test environment: the real `latchkey` binary, the real sandbox providers (random demo
//! secrets, port 0), a fresh data directory and a fresh database of the chosen backend (SQLite in
//! the data directory, or a PostgreSQL database of its own given with `--database-url`). Every output is kept so that the test can check,
//! at the end, that no secret it used appeared anywhere.

#![allow(dead_code)]

pub mod serve;

use base64::Engine as _;
use latchkey_sandbox::{DemoCredentials, PROVIDER_IDS, Sandbox, SandboxConfig};
use latchkey_testdb::{Backend, TestDb};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub struct Env {
    pub db: TestDb,
    pub sandbox: Sandbox,
    outputs: Mutex<Vec<String>>,
    extra_secrets: Mutex<Vec<String>>,
    extra_env: Mutex<Vec<(String, String)>>,
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn says(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected {needle:?} in the output\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Env {
    /// On SQLite in the data directory.
    pub async fn new() -> Env {
        Env::on(Backend::Sqlite).await
    }

    pub async fn on(backend: Backend) -> Env {
        let config = SandboxConfig {
            demo: DemoCredentials::random(),
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config).await.expect("sandbox starts");
        let db = TestDb::new(backend).await;
        // The database password is a secret too: no output may show it.
        let extra_secrets = db
            .database_url()
            .and_then(|u| url::Url::parse(&u).ok()?.password().map(str::to_owned))
            .into_iter()
            .collect();
        Env {
            db,
            sandbox,
            outputs: Mutex::new(Vec::new()),
            extra_secrets: Mutex::new(extra_secrets),
            extra_env: Mutex::new(Vec::new()),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.db.data_dir()
    }

    /// `None` on SQLite (the data directory's database); the database URL on PostgreSQL.
    pub fn database_url(&self) -> Option<String> {
        self.db.database_url()
    }

    /// The temporary directory this test owns (the data directory is `data` in it).
    pub fn dir(&self) -> &Path {
        self.db.dir()
    }

    pub fn demo(&self) -> &DemoCredentials {
        self.sandbox.demo()
    }

    /// A secret this test used besides the sandbox's demo values (e.g. a wrong token).
    pub fn secret(&self, value: &str) -> String {
        self.extra_secrets.lock().unwrap().push(value.to_owned());
        value.to_owned()
    }

    pub fn set_env(&self, key: &str, value: &str) {
        self.extra_env
            .lock()
            .unwrap()
            .push((key.to_owned(), value.to_owned()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(args, false)
    }

    /// As `command`, but a PostgreSQL database is named in `LATCHKEY_DATABASE_URL` rather than
    /// with `--database-url`.
    pub fn command_with_url_in_environment(&self, args: &[&str]) -> Command {
        self.command_with(args, true)
    }

    fn command_with(&self, args: &[&str], url_in_environment: bool) -> Command {
        let mut cmd = latchkey(&self.data_dir());
        cmd.env("LATCHKEY_OUTBOUND_TIMEOUT", "5s")
            .env("LATCHKEY_LOG", "debug");
        for id in PROVIDER_IDS {
            cmd.env(override_var(id), self.sandbox.base_url(id).unwrap());
        }
        for (k, v) in self.extra_env.lock().unwrap().iter() {
            cmd.env(k, v);
        }
        match self.db.database_url() {
            Some(url) if url_in_environment => {
                cmd.env("LATCHKEY_DATABASE_URL", url);
            }
            Some(url) => {
                cmd.arg("--database-url").arg(url);
            }
            None => {}
        }
        cmd.args(args);
        cmd
    }

    /// Run the binary with `stdin` on standard input (not a terminal).
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_command(self.command(args), stdin)
    }

    pub fn run_command(&self, mut cmd: Command, stdin: &str) -> Run {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("latchkey runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.outputs
            .lock()
            .unwrap()
            .push(format!("{}\n{}", run.stdout, run.stderr));
        run
    }

    /// Add the sandbox's demo credential for `provider` under `name`, verified.
    pub fn add_demo(&self, provider: &str, name: &str) -> Run {
        let (args, stdin) = self.demo_input(provider);
        let mut all = vec!["credentials", "add", provider, "--name", name];
        all.extend(args.iter().map(String::as_str));
        self.run(&all, &stdin)
    }

    /// `--set` arguments for the demo's non-secret fields and stdin lines for its secret ones.
    pub fn demo_input(&self, provider: &str) -> (Vec<String>, String) {
        let mut args = Vec::new();
        let mut stdin = String::new();
        for (key, value, secret) in self.demo().fields(provider) {
            if secret {
                stdin.push_str(&format!("{key}={value}\n"));
            } else {
                args.push("--set".to_owned());
                args.push(format!("{key}={value}"));
            }
        }
        (args, stdin)
    }

    /// Every secret this test used, with the forms it could leak in (base64 of itself and of the
    /// Basic credentials built from it).
    pub fn secrets(&self) -> Vec<String> {
        let d = self.demo();
        let mut raw = vec![
            d.chorus_token.clone(),
            d.chorus_no_api_token.clone(),
            d.aircall_api_token.clone(),
            d.ccai_api_token.clone(),
            d.clari_api_password.clone(),
        ];
        raw.extend(self.extra_secrets.lock().unwrap().iter().cloned());
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut all = Vec::new();
        for s in &raw {
            all.push(s.clone());
            all.push(b64(s));
            all.push(hex(s.as_bytes()));
        }
        all.push(b64(&format!(
            "{}:{}",
            d.aircall_api_id, d.aircall_api_token
        )));
        all.push(b64(&format!("{}:{}", d.ccai_subdomain, d.ccai_api_token)));
        all
    }

    /// The stdout and stderr of every run so far, one entry per run.
    pub fn outputs(&self) -> Vec<String> {
        self.outputs.lock().unwrap().clone()
    }

    /// No output of any run so far holds any secret, in any of its forms.
    pub fn assert_no_secret_in_output(&self) {
        let outputs = self.outputs.lock().unwrap();
        assert!(!outputs.is_empty());
        for secret in self.secrets() {
            for out in outputs.iter() {
                assert!(
                    !out.contains(&secret),
                    "a secret appeared in the output:\n{out}"
                );
            }
        }
    }

    /// No file in the data directory, and nothing in the database, holds any secret, in any of
    /// its forms.
    pub async fn assert_no_secret_stored(&self) {
        let dump = self.db.dump().await;
        assert!(!dump.is_empty());
        for secret in self.secrets() {
            assert!(
                !contains(&dump, secret.as_bytes()),
                "the database holds a secret"
            );
        }
        self.assert_no_secret_in_data_dir();
    }

    /// No file in the data directory holds any secret, in any of its forms.
    pub fn assert_no_secret_in_data_dir(&self) {
        for path in files(&self.data_dir()) {
            if path.file_name().is_some_and(|n| n == "master.key") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            for secret in self.secrets() {
                assert!(
                    !contains(&bytes, secret.as_bytes()),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

/// The `latchkey` binary on `data_dir`, with none of this process's `LATCHKEY_` variables and no
/// colour; nothing else set (no sandbox, no database URL).
pub fn latchkey(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LATCHKEY_DATA_DIR", data_dir).env("NO_COLOR", "1");
    cmd
}

pub fn override_var(id: &str) -> String {
    format!(
        "LATCHKEY_PROVIDER_{}_BASE_URL",
        id.to_ascii_uppercase().replace('-', "_")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
