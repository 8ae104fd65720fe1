#![doc = include_str!("../README.md")]

use sqlx::{Connection, PgConnection, Row};
use std::path::{Path, PathBuf};

/// The variable naming the PostgreSQL cluster the tests create their databases on.
pub const POSTGRES_URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// As `Repository::backend` names it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One test's database (and a temporary directory for its data directory, key file and the rest).
pub struct TestDb {
    backend: Backend,
    dir: tempfile::TempDir,
    postgres: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        TestDb {
            backend,
            dir,
            postgres,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The temporary directory this test owns.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (`<dir>/data`): the SQLite file and the master key file live here.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `None` for SQLite (the data directory's database), the database's URL for PostgreSQL.
    pub fn database_url(&self) -> Option<String> {
        self.postgres.as_ref().map(|p| p.url.clone())
    }

    /// The PostgreSQL database's URL, reached through `gate` (a loopback forwarder the test can
    /// close to take the database away, and open again). Panics for SQLite.
    pub fn database_url_through(&self, gate: &Gate) -> String {
        let pg = self
            .postgres
            .as_ref()
            .expect("only a PostgreSQL database can be reached through a gate");
        let mut url = url::Url::parse(&pg.url).expect("a valid URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(gate.addr.port())).expect("a port");
        url.to_string()
    }

    /// A gate in front of this test's PostgreSQL server (see `database_url_through`).
    pub async fn gate(&self) -> Gate {
        let pg = self
            .postgres
            .as_ref()
            .expect("only a PostgreSQL database can be reached through a gate");
        let url = url::Url::parse(&pg.url).expect("a valid URL");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().unwrap_or(5432)
        );
        Gate::start(upstream).await
    }

    /// Everything the database holds, as bytes a test can search: every file under the data
    /// directory for SQLite (database, WAL), every row of every table as text for PostgreSQL.
    pub async fn dump(&self) -> Vec<u8> {
        match &self.postgres {
            None => {
                let mut out = Vec::new();
                read_files(&self.data_dir(), &mut out);
                out
            }
            Some(pg) => pg.dump().await,
        }
    }
}

fn read_files(dir: &Path, out: &mut Vec<u8>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend_from_slice(&bytes);
        }
    }
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "this test runs on PostgreSQL and {POSTGRES_URL_VAR} is not set. Run the suite with \
                 scripts/test, or wrap the command in scripts/with-postgres (it starts a throwaway \
                 PostgreSQL 15 cluster and sets the variable), e.g. \
                 `scripts/with-postgres cargo nextest run -p latchkey-store`"
            )
        });
        let name = format!("lk_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("cannot connect to the test cluster named by {POSTGRES_URL_VAR}: {e}")
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        )))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("a valid URL in the variable");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    async fn dump(&self) -> Vec<u8> {
        let mut conn = PgConnection::connect(&self.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut out = Vec::new();
        for table in tables {
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT t::text AS row FROM \"{table}\" t"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for row in rows {
                let text: String = row.get("row");
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
        }
        out
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Dropped from inside a test's runtime: do it on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// Generates, for each named `async fn NAME(backend: Backend)`, the tests `NAME::sqlite` and
/// `NAME::postgres`. An attribute first replaces the default `#[tokio::test]`:
///
/// ```rust,ignore
/// latchkey_testdb::backend_tests!(lookups_are_scoped, stale_revisions_conflict);
/// latchkey_testdb::backend_tests!(#[tokio::test(flavor = "multi_thread")] two_writers);
/// ```
#[macro_export]
macro_rules! backend_tests {
    (#[$attr:meta] $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[$attr]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[$attr]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
    ($($name:ident),+ $(,)?) => {
        $crate::backend_tests!(#[tokio::test] $($name),+);
    };
}

/// A loopback TCP forwarder to the database server that a test can close (every connection
/// through it is cut and new ones are dropped at once, as when the server goes away) and open
/// again.
pub struct Gate {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start(upstream: String) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let open = std::sync::Arc::new(tokio::sync::watch::channel(true).0);
        let state = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue;
                }
                let mut closed = state.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = closed.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Gate { addr, open, task }
    }

    /// Cut every connection and drop new ones until `open`.
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
