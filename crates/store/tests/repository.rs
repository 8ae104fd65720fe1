//! The repository, on each backend: scoping by workspace, uniqueness, optimistic concurrency, paging.

use latchkey_store::{
    CredentialFilter, CredentialRow, Location, Repository, StoreError, WorkspaceRow,
};
use latchkey_testdb::{Backend, TestDb};
use std::sync::Arc;

async fn store(backend: Backend) -> (TestDb, Arc<dyn Repository>) {
    let db = TestDb::new(backend).await;
    let location = Location::resolve(db.database_url().as_deref(), &db.data_dir()).unwrap();
    if backend == Backend::Sqlite {
        assert!(location.is_new());
    }
    let repo = latchkey_store::open(&location).await.unwrap();
    assert_eq!(
        repo.backend(),
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    (db, repo)
}

fn workspace(slug: &str) -> WorkspaceRow {
    WorkspaceRow {
        id: format!("ws-{slug}"),
        slug: slug.to_owned(),
        created_at: 1,
    }
}

fn row(ws: &str, id: &str, name: &str) -> CredentialRow {
    CredentialRow {
        id: id.to_owned(),
        workspace_id: ws.to_owned(),
        provider: "aircall".to_owned(),
        name: name.to_owned(),
        name_key: name.to_lowercase(),
        description: String::new(),
        settings: "{}".to_owned(),
        secret_hints: "{}".to_owned(),
        envelope: vec![1, 2, 3],
        key_id: "mk_0000000000000000".to_owned(),
        status: "active".to_owned(),
        status_reason: None,
        enabled: true,
        verified_at: None,
        identity: None,
        last_used_at: None,
        revision: 1,
        created_at: 1,
        updated_at: 1,
    }
}

async fn every_lookup_is_scoped_by_workspace(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_workspace(&workspace("a")).await.unwrap();
    repo.insert_workspace(&workspace("b")).await.unwrap();
    assert!(matches!(
        repo.insert_workspace(&workspace("a")).await,
        Err(StoreError::Duplicate)
    ));
    repo.insert_credential(&row("ws-a", "c1", "Prod"))
        .await
        .unwrap();
    assert!(repo.get_credential("ws-a", "c1").await.unwrap().is_some());
    assert!(repo.get_credential("ws-b", "c1").await.unwrap().is_none());
    assert!(
        repo.credential_by_name("ws-b", "prod")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        repo.delete_credential("ws-b", "c1", None).await,
        Err(StoreError::NotFound)
    ));
    let mut other = row("ws-b", "c1", "Prod");
    other.revision = 2;
    assert!(matches!(
        repo.update_credential(&other, 1).await,
        Err(StoreError::NotFound)
    ));
    // The same name is fine in another workspace, not in the same one.
    repo.insert_credential(&row("ws-b", "c2", "Prod"))
        .await
        .unwrap();
    assert!(matches!(
        repo.insert_credential(&row("ws-a", "c3", "PROD")).await,
        Err(StoreError::Duplicate)
    ));
}

async fn a_stale_revision_is_a_conflict(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_workspace(&workspace("a")).await.unwrap();
    repo.insert_credential(&row("ws-a", "c1", "Prod"))
        .await
        .unwrap();
    let mut next = row("ws-a", "c1", "Prod 2");
    next.name_key = "prod 2".to_owned();
    next.revision = 2;
    repo.update_credential(&next, 1).await.unwrap();
    assert!(matches!(
        repo.update_credential(&next, 1).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        repo.delete_credential("ws-a", "c1", Some(1)).await,
        Err(StoreError::Conflict)
    ));
    repo.delete_credential("ws-a", "c1", Some(2)).await.unwrap();
    assert_eq!(repo.count_credentials().await.unwrap(), 0);
}

async fn lists_page_by_id_and_filter(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_workspace(&workspace("a")).await.unwrap();
    for i in 0..7 {
        let mut r = row("ws-a", &format!("c{i}"), &format!("Name {i}"));
        if i % 2 == 0 {
            r.provider = "chorus".to_owned();
        }
        repo.insert_credential(&r).await.unwrap();
    }
    let all = CredentialFilter::default();
    let first = repo.list_credentials("ws-a", &all, None, 3).await.unwrap();
    let ids: Vec<_> = first.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c0", "c1", "c2"]);
    let second = repo
        .list_credentials("ws-a", &all, Some("c2"), 3)
        .await
        .unwrap();
    assert_eq!(second[0].id, "c3");
    let chorus = CredentialFilter {
        provider: Some("chorus".to_owned()),
        ..all.clone()
    };
    assert_eq!(
        repo.list_credentials("ws-a", &chorus, None, 50)
            .await
            .unwrap()
            .len(),
        4
    );
    let named = CredentialFilter {
        name_contains: Some("e 5".to_owned()),
        ..all.clone()
    };
    assert_eq!(
        repo.list_credentials("ws-a", &named, None, 50)
            .await
            .unwrap()
            .len(),
        1
    );
    // LIKE wildcards are plain characters here.
    let wild = CredentialFilter {
        name_contains: Some("%".to_owned()),
        ..all
    };
    assert_eq!(
        repo.list_credentials("ws-a", &wild, None, 50)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        repo.envelope_key_counts().await.unwrap(),
        vec![("mk_0000000000000000".to_owned(), 7)]
    );
}

#[test]
fn unknown_database_schemes_are_refused() {
    let err =
        Location::resolve(Some("mysql://localhost/x"), std::path::Path::new(".")).unwrap_err();
    assert!(
        err.to_string().contains("`mysql` is not supported"),
        "{err}"
    );
    assert_eq!(
        Location::resolve(Some("sqlite:///tmp/x.db"), std::path::Path::new(".")).unwrap(),
        Location::Sqlite("/tmp/x.db".into())
    );
}

#[test]
fn postgres_urls_choose_postgres_and_never_show_the_password() {
    for url in [
        "postgres://latchkey:pg-s3cret@db.internal:5432/latchkey",
        "postgresql://latchkey:pg-s3cret@db.internal/latchkey?sslmode=disable",
    ] {
        let location = Location::resolve(Some(url), std::path::Path::new(".")).unwrap();
        let Location::Postgres(pg) = &location else {
            panic!("{location:?}")
        };
        assert_eq!(pg.expose(), url);
        assert!(!location.is_new());
        for shown in [format!("{location:?}"), location.describe()] {
            assert!(shown.contains("db.internal"), "{shown}");
            assert!(!shown.contains("pg-s3cret"), "{shown}");
        }
    }
}

/// A server that cannot be reached: opening fails with a message naming it, without the password.
#[tokio::test]
async fn an_unreachable_postgres_server_is_a_clean_open_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://latchkey:pg-s3cret@127.0.0.1:{port}/latchkey");
    let location = Location::resolve(Some(&url), std::path::Path::new(".")).unwrap();
    let err = match latchkey_store::open(&location).await {
        Ok(_) => panic!("nothing listens on {port}"),
        Err(e) => e,
    };
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Open(_)), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("pg-s3cret"), "{text}");
}

/// The database going away under an open store: every operation answers `Unavailable` (core
/// maps it to 503), promptly and without a panic, and works again once it is back.
#[tokio::test]
async fn a_postgres_outage_is_unavailable_then_passes() {
    let db = TestDb::new(Backend::Postgres).await;
    let gate = db.gate().await;
    let url = db.database_url_through(&gate);
    let location = Location::resolve(Some(&url), &db.data_dir()).unwrap();
    let repo = latchkey_store::open(&location).await.unwrap();
    repo.insert_workspace(&workspace("a")).await.unwrap();
    gate.close();
    let started = std::time::Instant::now();
    assert!(matches!(
        repo.get_credential("ws-a", "c1").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        repo.insert_credential(&row("ws-a", "c1", "Prod")).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    gate.open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while repo
        .insert_credential(&row("ws-a", "c1", "Prod"))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(repo.get_credential("ws-a", "c1").await.unwrap().is_some());
}

latchkey_testdb::backend_tests!(
    every_lookup_is_scoped_by_workspace,
    a_stale_revision_is_a_conflict,
    lists_page_by_id_and_filter,
);

/// Two stores on one PostgreSQL database (as two instances would be): a committed change through
/// one reaches the other's change feed at once; recording a use (last_used_at) says nothing.
#[tokio::test]
async fn postgres_changes_reach_every_store_on_the_database() {
    use latchkey_store::Change;
    use std::time::Duration;
    let db = TestDb::new(Backend::Postgres).await;
    let location = Location::resolve(db.database_url().as_deref(), &db.data_dir()).unwrap();
    let a = latchkey_store::open(&location).await.unwrap();
    let b = latchkey_store::open(&location).await.unwrap();
    let mut feed = b.changes().expect("PostgreSQL has a change feed");
    let next = async |feed: &mut tokio::sync::broadcast::Receiver<Change>| {
        tokio::time::timeout(Duration::from_secs(1), feed.recv())
            .await
            .expect("a change within a second")
            .unwrap()
    };
    a.insert_workspace(&workspace("a")).await.unwrap();
    a.insert_credential(&row("ws-a", "c1", "Prod"))
        .await
        .unwrap();
    a.touch_credential("ws-a", "c1", 5).await.unwrap();
    let mut next_row = row("ws-a", "c1", "Prod");
    next_row.revision = 2;
    next_row.enabled = false;
    a.update_credential(&next_row, 1).await.unwrap();
    assert_eq!(
        next(&mut feed).await,
        Change::Credential { id: "c1".into() }
    );
    a.delete_credential("ws-a", "c1", None).await.unwrap();
    assert_eq!(
        next(&mut feed).await,
        Change::Credential { id: "c1".into() }
    );
    assert!(feed.try_recv().is_err(), "nothing else was said");

    // SQLite has no feed.
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let location = Location::resolve(None, &sqlite.data_dir()).unwrap();
    assert!(
        latchkey_store::open(&location)
            .await
            .unwrap()
            .changes()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_run_with_wal_foreign_keys_and_a_busy_timeout() {
    use sqlx::Connection as _;
    let db = TestDb::new(Backend::Sqlite).await;
    let path = db.data_dir().join(latchkey_store::SQLITE_FILE);
    let store = Arc::new(latchkey_store::SqliteStore::open(&path).await.unwrap());

    // Every connection of the store's pool (it holds up to four) has the pragmas in force.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(store.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let busy_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert!(busy_ms >= 1000, "busy_timeout is {busy_ms} ms");
    }
    drop(held);

    // Foreign keys are enforced: a credential of a workspace that does not exist is refused.
    assert!(
        store
            .insert_credential(&row("ws-missing", "c1", "Orphan"))
            .await
            .is_err()
    );

    // The busy timeout: while another connection holds the write lock, a write waits for it
    // instead of failing with "database is locked".
    let url = format!("sqlite://{}", path.display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let writer = store.clone();
    let write = tokio::spawn(async move { writer.insert_workspace(&workspace("waited")).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    write
        .await
        .unwrap()
        .expect("the write succeeds once the lock is free");
    assert!(store.workspace_by_slug("waited").await.unwrap().is_some());
}
