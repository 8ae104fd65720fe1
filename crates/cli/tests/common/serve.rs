//! A running `latchkey serve` process and what it printed on start.
//!
//! The caller builds the command (`Env::command(&["serve", …])`, or `common::latchkey(dir)` with
//! `--sandbox`); [`Served::start`] runs it with stdin closed, reads stdout up to serve's last
//! start-up line ([`READY`]) and keeps draining it afterwards, so that serve never blocks on it.
//! A still-running server is killed when its `Served` is dropped: a failing test leaves none
//! behind.

use latchkey_sandbox::PROVIDER_IDS;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

/// The line serve prints once its start-up output is complete.
pub const READY: &str = "Stop with Ctrl-C.";

pub struct Served {
    child: Child,
    /// The reader of serve's stderr, when it is captured.
    stderr: Option<JoinHandle<String>>,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// The admin token printed on a first start.
    pub admin: Option<String>,
    /// Each seed provider's demo values as printed by `--sandbox` (provider id → `field=value`
    /// pairs), in the catalog's order.
    pub demo: Vec<(String, Vec<(String, String)>)>,
    /// The start-up lines, [`READY`] included.
    pub stdout: Vec<String>,
}

impl Served {
    /// Start `cmd` with its stderr captured (returned by [`Served::stop_with`]), and wait until
    /// it is ready.
    pub fn start(cmd: Command) -> Served {
        Served::spawn(cmd, None)
    }

    /// As [`Served::start`], with stderr going to `stderr` (a log file, `Stdio::null()`).
    pub fn start_with_stderr(cmd: Command, stderr: impl Into<Stdio>) -> Served {
        Served::spawn(cmd, Some(stderr.into()))
    }

    fn spawn(mut cmd: Command, stderr: Option<Stdio>) -> Served {
        let captured = stderr.is_none();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.unwrap_or_else(Stdio::piped))
            .spawn()
            .expect("latchkey runs");
        let stderr = captured.then(|| {
            let mut err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            })
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut served = Served {
            child,
            stderr,
            url: String::new(),
            admin: None,
            demo: Vec::new(),
            stdout: Vec::new(),
        };
        let mut token_next = false;
        let mut ready = false;
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Latchkey is listening on ") {
                served.url = rest.trim().to_owned();
            }
            if token_next {
                served.admin = Some(line.trim().to_owned());
            }
            token_next = line.starts_with("Admin API credential");
            if let Some(rest) = line.strip_prefix("  ") {
                let mut words = rest.split_whitespace();
                if let Some(id) = words.next().filter(|w| PROVIDER_IDS.contains(w)) {
                    let fields = words
                        .filter_map(|w| w.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    served.demo.push((id.to_owned(), fields));
                }
            }
            ready = line == READY;
            served.stdout.push(line);
            if ready {
                break;
            }
        }
        if !ready {
            let _ = served.child.kill();
            let (code, stderr) = served.wait();
            panic!(
                "serve ended (exit {code}) before it was ready\nstdout:\n{}\nstderr:\n{stderr}",
                served.stdout.join("\n")
            );
        }
        std::thread::spawn(move || for _ in lines {});
        served
    }

    /// The server's URL followed by `path` (`/v1/credentials`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Send `signal` (`TERM`, `INT`) and wait for the process to end: its exit code (-1 when a
    /// signal ended it) and its stderr (empty when not captured).
    pub fn stop_with(mut self, signal: &str) -> (i32, String) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
        self.wait()
    }

    /// [`Served::stop_with`] off the async runtime's threads.
    pub async fn stop_with_async(self, signal: &str) -> (i32, String) {
        let signal = signal.to_owned();
        tokio::task::spawn_blocking(move || self.stop_with(&signal))
            .await
            .unwrap()
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.wait();
    }

    fn wait(&mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        let stderr = self
            .stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), stderr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
