//! A running application on a real socket (port 0), over a fresh database of the given backend
//! (a SQLite data directory, or a PostgreSQL database of its own), with the real sandbox providers
//! (random demo secrets) behind the catalog's base URL overrides.

#![allow(dead_code)]

pub mod browser;

use latchkey_core::{Latchkey, Settings};
use latchkey_sandbox::{DemoCredentials, PROVIDER_IDS, Sandbox, SandboxConfig};
use latchkey_server::{AppState, Application};
use latchkey_testdb::{Backend, TestDb};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub sandbox: Sandbox,
    pub lk: Latchkey,
    pub admin_token: String,
    pub db: TestDb,
    /// What Latchkey was started with (another instance on the same database can use them).
    pub settings: Settings,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_on(TestDb::new(backend).await, None).await
    }

    /// On `db`, reached at `database_url` when given (e.g. through a `Gate`).
    pub async fn spawn_on(db: TestDb, database_url: Option<String>) -> TestApp {
        TestApp::spawn_configured(db, database_url, |_, _| {}).await
    }

    /// [`TestApp::spawn`] with `configure` changing the settings before Latchkey starts (a
    /// providers directory, base URLs, timeouts); it sees the sandbox, already listening.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Settings, &Sandbox),
    ) -> TestApp {
        TestApp::spawn_configured(TestDb::new(backend).await, None, configure).await
    }

    async fn spawn_configured(
        db: TestDb,
        database_url: Option<String>,
        configure: impl FnOnce(&mut Settings, &Sandbox),
    ) -> TestApp {
        let sandbox = Sandbox::start(SandboxConfig {
            demo: DemoCredentials::random(),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let mut settings = Settings {
            data_dir: db.data_dir(),
            database_url: database_url.or_else(|| db.database_url()),
            ..Settings::default()
        };
        settings.outbound.timeout = std::time::Duration::from_secs(5);
        settings.outbound.first_byte_timeout = std::time::Duration::from_secs(2);
        for id in PROVIDER_IDS {
            settings
                .provider_base_urls
                .insert(id.to_owned(), sandbox.base_url(id).unwrap());
        }
        configure(&mut settings, &sandbox);
        let (lk, _) = Latchkey::start(&settings).await.unwrap();
        let (_, token) = lk
            .bootstrap_admin()
            .await
            .unwrap()
            .expect("a new database gets an admin");
        let app = Application::bind("127.0.0.1:0".parse().unwrap(), AppState::new(lk.clone()))
            .await
            .unwrap();
        let addr = app.local_addr().unwrap();
        tokio::spawn(app.serve(std::future::pending()));
        TestApp {
            addr,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            sandbox,
            lk,
            admin_token: token.expose().to_owned(),
            db,
            settings,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// A request as the admin (Bearer).
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub fn with_token(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// The JSON body to create the sandbox's demo credential for `provider`.
    pub fn demo_body(&self, provider: &str, name: &str) -> Value {
        let fields: serde_json::Map<String, Value> = self
            .sandbox
            .demo()
            .fields(provider)
            .into_iter()
            .map(|(k, v, _)| (k.to_owned(), Value::String(v)))
            .collect();
        json!({ "provider": provider, "name": name, "description": "test", "fields": fields })
    }

    pub async fn create_demo(&self, provider: &str, name: &str) -> Value {
        let response = self
            .admin(Method::POST, "/v1/credentials")
            .json(&self.demo_body(provider, name))
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Every third-party secret of the sandbox's demo credentials.
    pub fn secrets(&self) -> Vec<String> {
        let d = self.sandbox.demo();
        vec![
            d.chorus_token.clone(),
            d.chorus_no_api_token.clone(),
            d.aircall_api_token.clone(),
            d.ccai_api_token.clone(),
            d.clari_api_password.clone(),
        ]
    }
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Send and read, asserting the status.
pub async fn expect(request: RequestBuilder, status: u16) -> Value {
    let (got, body) = read(request.send().await.unwrap()).await;
    assert_eq!(got.as_u16(), status, "{body}");
    body
}
