//! A small W3C WebDriver client (over reqwest, already a test dependency) driving headless
//! Chromium through `/usr/bin/chromedriver`. Each browser gets its own chromedriver on a free port
//! and a fresh profile directory, so tests run in parallel. A missing chromedriver or Chromium
//! fails the test: browser tests never skip.

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    port: u16,
    session_id: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Element(String);

/// Keys, for `press`.
pub const ESCAPE: &str = "\u{E00C}";
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
/// Shift down, Tab, Shift up.
pub const SHIFT_TAB: &str = "\u{E008}\u{E004}\u{E008}";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where screenshots go: `target/screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Start chromedriver and a headless Chromium at the given window size.
    pub async fn start(width: u32, height: u32) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium and chromium-driver; scripts/test installs them)"
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            let base = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            let mut ready = false;
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == json!(true)
                {
                    ready = true;
                    break;
                }
                if let Ok(Some(_)) = driver.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ready {
                let _ = driver.kill();
                let _ = driver.wait();
                last_error = format!("chromedriver on port {port} did not become ready");
                continue;
            }
            let profile = tempfile::tempdir().unwrap();
            let caps = json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:loggingPrefs": { "browser": "ALL" },
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": [
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--no-first-run",
                                "--disable-quic",
                                "--disable-dev-shm-usage",
                                format!("--user-data-dir={}", profile.path().display()),
                                format!("--window-size={width},{height}"),
                            ]
                        }
                    }
                }
            });
            let answer: Value = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let Some(id) = answer["value"]["sessionId"].as_str() else {
                let _ = driver.kill();
                let _ = driver.wait();
                last_error = format!("chromedriver could not start Chromium: {answer}");
                continue;
            };
            return Browser {
                http,
                session: format!("{base}/session/{id}"),
                port,
                session_id: id.to_owned(),
                driver,
                _profile: profile,
            };
        }
        panic!("{last_error}");
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                value["value"]["error"].as_str().unwrap_or("error"),
                value["value"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(|id| Element(id.to_owned())))
    }

    /// The element, waiting up to 30 s for it to appear (a loaded CI machine is slow).
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let source = self.source().await;
                panic!(
                    "no element matches {css} at {}; page:\n{source}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    pub async fn click_css(&self, css: &str) {
        let e = self.find(css).await;
        self.click(&e).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// Keys to whatever has the focus.
    pub async fn press(&self, keys: &str) {
        let active = self.get("/element/active").await;
        let id = active[ELEMENT].as_str().expect("an element has the focus");
        self.post(&format!("/element/{id}/value"), json!({ "text": keys }))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn property(&self, css: &str, name: &str) -> Value {
        let e = self.find(css).await;
        self.get(&format!("/element/{}/property/{name}", e.0)).await
    }

    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Wait until `script` (a function body) returns true.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            if self.run(script, vec![]).await == json!(true) {
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let source = self.source().await;
                panic!(
                    "timed out waiting for {what} at {}; page:\n{source}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) {
        let script = format!(
            "var e = document.querySelector({}); return !!e && e.textContent.indexOf({}) >= 0;",
            json!(css),
            json!(needle)
        );
        self.wait_until(&format!("`{needle}` in {css}"), &script)
            .await;
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = screenshot_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser console's errors since the last call (a Content-Security-Policy violation, a
    /// script error, a resource that failed to load), less the page's own 4xx and 502 answers.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            // A page answered with 4xx or 502 on purpose (a rejected form, a provider that
            // cannot be reached) is not a console error.
            .filter(|e| {
                let m = e["message"].as_str().unwrap_or_default();
                !(m.contains("the server responded with a status of 4")
                    || m.contains("the server responded with a status of 502"))
            })
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every visible input, select and textarea of the page that has no label.
    pub async fn unlabelled_inputs(&self) -> Vec<String> {
        let found = self
            .run(
                "return Array.prototype.filter.call(document.querySelectorAll('input:not([type=hidden]), select, textarea'), function (e) { return e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'); }).map(function (e) { return e.id || e.name; });",
                vec![],
            )
            .await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The value of the page's cookie `name`, HttpOnly ones included (WebDriver sees them all).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.call(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await
            .ok()
            .and_then(|c| c["value"].as_str().map(str::to_owned))
    }

    /// Let the page use a permission, e.g. `clipboard-read`.
    pub async fn grant(&self, permission: &str) {
        self.post(
            "/permissions",
            json!({ "descriptor": { "name": permission }, "state": "granted" }),
        )
        .await;
    }

    /// What the page's clipboard holds (needs `clipboard-read`, see [`Browser::grant`]).
    pub async fn clipboard(&self) -> String {
        self.post(
            "/execute/async",
            json!({
                "script": "var done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, function (e) { done('error: ' + e); });",
                "args": []
            }),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Whether a dialog with this id is open.
    pub async fn dialog_open(&self, id: &str) -> bool {
        self.run(
            "var d = document.getElementById(arguments[0]); return !!d && d.open;",
            vec![json!(id)],
        )
        .await
            == json!(true)
    }

    /// The id of the element that has the focus ("" when it has none).
    pub async fn focused(&self) -> String {
        self.run(
            "return (document.activeElement && document.activeElement.id) || '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Keyboard only: with the dialog `id` open and the focus in it, Tab `rounds` times and
    /// Shift+Tab `rounds + 2` times keep the focus inside; Escape closes it and gives the focus
    /// back to the element `opener` (a CSS selector; `body` when nothing opened it).
    pub async fn assert_focus_trapped_and_escape_closes(
        &self,
        id: &str,
        rounds: usize,
        opener: &str,
    ) {
        self.wait_until(
            &format!("the dialog {id} with the focus"),
            &format!(
                "var d = document.getElementById({}); return !!d && d.open && d.contains(document.activeElement);",
                json!(id)
            ),
        )
        .await;
        let keys =
            std::iter::repeat_n(TAB, rounds).chain(std::iter::repeat_n(SHIFT_TAB, rounds + 2));
        for key in keys {
            self.press(key).await;
            let inside = self
                .run(
                    "return document.getElementById(arguments[0]).contains(document.activeElement);",
                    vec![json!(id)],
                )
                .await;
            assert_eq!(inside, json!(true), "the focus stays in {id}");
        }
        // The dialog is closed at once, but its `close` event (where the page gives the focus back
        // to the opener) comes later: wait for it too, so that it cannot move the focus after the
        // next step has set it. The page listens while capturing, so it has run by the time this
        // listener on the dialog itself runs.
        self.run(
            "window.__closed = false; document.getElementById(arguments[0]).addEventListener('close', function () { window.__closed = true; }, { once: true }); return true;",
            vec![json!(id)],
        )
        .await;
        self.press(ESCAPE).await;
        self.wait_until(
            &format!("{id} closed"),
            &format!(
                "return !document.getElementById({}).open && window.__closed === true;",
                json!(id)
            ),
        )
        .await;
        let back = self
            .run(
                "return document.activeElement === document.querySelector(arguments[0]);",
                vec![json!(opener)],
            )
            .await;
        assert_eq!(
            back,
            json!(true),
            "the focus goes back to {opener} from {id}"
        );
    }

    /// Open the Add New Credential overlay and choose `provider`: its fields are shown.
    pub async fn open_add_overlay(&self, provider: &str) {
        self.click_css("#add-credential").await;
        self.wait_until(
            "the overlay",
            "return document.getElementById('add-dialog').open;",
        )
        .await;
        self.click_css(&format!("#add-provider option[value='{provider}']"))
            .await;
        self.wait_until(
            "the provider's fields",
            &format!(
                "return !document.querySelector(\"fieldset[data-provider='{provider}']\").hidden;"
            ),
        )
        .await;
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }
}

impl Drop for Browser {
    /// End the session (which closes Chromium), then stop chromedriver.
    fn drop(&mut self) {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session_id
            );
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The CSS selector of the credential tile named `name`.
pub fn tile(name: &str) -> String {
    format!("a.tile[data-credential='{name}']")
}

/// Every page source a browser test saw, to search for secrets at the end.
#[derive(Default)]
pub struct Sources(Vec<(String, String)>);

impl Sources {
    /// Keep the page's source; check on the way that every input is labelled and that the
    /// console shows no error (a CSP violation would).
    pub async fn keep(&mut self, b: &Browser, label: &str) {
        self.0.push((label.to_owned(), b.source().await));
        assert_eq!(
            b.unlabelled_inputs().await,
            Vec::<String>::new(),
            "unlabelled inputs on {label}"
        );
        assert_eq!(
            b.console_errors().await,
            Vec::<String>::new(),
            "console errors on {label}"
        );
    }

    /// No page kept (but those labelled in `except`) holds any of `secrets`.
    pub fn assert_free_of(&self, secrets: &[String], except: &[&str]) {
        assert!(!self.0.is_empty());
        for (label, source) in &self.0 {
            if except.contains(&label.as_str()) {
                continue;
            }
            for s in secrets {
                assert!(
                    !source.contains(s.as_str()),
                    "a secret in the page source of {label}"
                );
            }
        }
    }
}
