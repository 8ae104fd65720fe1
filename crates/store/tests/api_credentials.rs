//! The repository (each backend) for issued API credentials: scoping by workspace, name uniqueness per
//! workspace (by name key), optimistic concurrency, lookup by current and previous hash.

use latchkey_store::{ApiCredentialRow, Location, Repository, StoreError, WorkspaceRow};
use latchkey_testdb::{Backend, TestDb};
use std::sync::Arc;

async fn store(backend: Backend) -> (TestDb, Arc<dyn Repository>) {
    let db = TestDb::new(backend).await;
    let location = Location::resolve(db.database_url().as_deref(), &db.data_dir()).unwrap();
    let repo = latchkey_store::open(&location).await.unwrap();
    for slug in ["a", "b"] {
        repo.insert_workspace(&WorkspaceRow {
            id: format!("ws-{slug}"),
            slug: slug.to_owned(),
            created_at: 1,
        })
        .await
        .unwrap();
    }
    (db, repo)
}

fn row(ws: &str, id: &str, name: &str, hash: u8) -> ApiCredentialRow {
    ApiCredentialRow {
        id: id.to_owned(),
        workspace_id: ws.to_owned(),
        name: name.to_owned(),
        name_key: name.to_lowercase(),
        role: "member".to_owned(),
        token_hash: vec![hash; 32],
        token_hint: "lkt_…abcd".to_owned(),
        previous_hash: None,
        previous_expires_at: None,
        enabled: true,
        created_at: 10,
        updated_at: 10,
        last_used_at: None,
        revision: 1,
    }
}

async fn every_lookup_is_scoped_by_workspace(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_api_credential(&row("ws-a", "k1", "Pipeline", 1))
        .await
        .unwrap();
    assert!(
        repo.get_api_credential("ws-a", "k1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        repo.get_api_credential("ws-b", "k1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        repo.api_credential_by_name("ws-a", "pipeline")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        repo.api_credential_by_name("ws-b", "pipeline")
            .await
            .unwrap()
            .is_none()
    );
    assert!(repo.list_api_credentials("ws-b").await.unwrap().is_empty());
    assert_eq!(repo.count_api_credentials("ws-a").await.unwrap(), 1);
    assert_eq!(repo.count_api_credentials("ws-b").await.unwrap(), 0);
    assert_eq!(repo.count_all_api_credentials().await.unwrap(), 1);

    let mut other = row("ws-b", "k1", "Pipeline", 1);
    other.revision = 2;
    assert!(matches!(
        repo.update_api_credential(&other, 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        repo.delete_api_credential("ws-b", "k1", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        repo.get_api_credential("ws-a", "k1")
            .await
            .unwrap()
            .is_some()
    );
}

async fn names_are_unique_per_workspace_ignoring_case(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_api_credential(&row("ws-a", "k1", "Pipeline", 1))
        .await
        .unwrap();
    // Same name key in the same workspace: refused.
    assert!(matches!(
        repo.insert_api_credential(&row("ws-a", "k2", "PIPELINE", 2))
            .await,
        Err(StoreError::Duplicate)
    ));
    // Fine in another workspace.
    repo.insert_api_credential(&row("ws-b", "k3", "Pipeline", 3))
        .await
        .unwrap();
    // The same token hash twice: refused.
    assert!(matches!(
        repo.insert_api_credential(&row("ws-a", "k4", "Other", 1))
            .await,
        Err(StoreError::Duplicate)
    ));
    // Renaming onto a taken name: refused.
    repo.insert_api_credential(&row("ws-a", "k5", "Notebook", 5))
        .await
        .unwrap();
    let mut renamed = row("ws-a", "k5", "pipeline", 5);
    renamed.revision = 2;
    assert!(matches!(
        repo.update_api_credential(&renamed, 1).await,
        Err(StoreError::Duplicate)
    ));
    // Creation order.
    let names: Vec<String> = repo
        .list_api_credentials("ws-a")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["Pipeline", "Notebook"]);
}

async fn stale_revisions_conflict(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_api_credential(&row("ws-a", "k1", "Pipeline", 1))
        .await
        .unwrap();
    let mut next = row("ws-a", "k1", "Renamed", 1);
    next.revision = 2;
    repo.update_api_credential(&next, 1).await.unwrap();
    let mut stale = row("ws-a", "k1", "Stale", 1);
    stale.revision = 2;
    assert!(matches!(
        repo.update_api_credential(&stale, 1).await,
        Err(StoreError::Conflict)
    ));
    let got = repo
        .get_api_credential("ws-a", "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.name.as_str(), got.revision), ("Renamed", 2));
    assert!(matches!(
        repo.delete_api_credential("ws-a", "k1", Some(1)).await,
        Err(StoreError::Conflict)
    ));
    repo.delete_api_credential("ws-a", "k1", Some(2))
        .await
        .unwrap();
    assert!(matches!(
        repo.delete_api_credential("ws-a", "k1", None).await,
        Err(StoreError::NotFound)
    ));
}

async fn lookup_by_current_and_previous_hash(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_api_credential(&row("ws-a", "k1", "Pipeline", 1))
        .await
        .unwrap();
    assert_eq!(
        repo.api_credential_by_hash(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .id,
        "k1"
    );
    assert!(
        repo.api_credential_by_hash(&[9; 32])
            .await
            .unwrap()
            .is_none()
    );

    // Regenerate with a grace period: the old hash is kept as the previous one.
    let mut regenerated = row("ws-a", "k1", "Pipeline", 2);
    regenerated.previous_hash = Some(vec![1; 32]);
    regenerated.previous_expires_at = Some(5_000);
    regenerated.revision = 2;
    repo.update_api_credential(&regenerated, 1).await.unwrap();
    let by_old = repo
        .api_credential_by_hash(&[1; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_old.id, "k1");
    assert_eq!(by_old.previous_expires_at, Some(5_000));
    assert_eq!(by_old.token_hash, vec![2; 32]);
    assert_eq!(
        repo.api_credential_by_hash(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .id,
        "k1"
    );

    // Regenerate without grace: the old hash finds nothing.
    let mut again = row("ws-a", "k1", "Pipeline", 3);
    again.revision = 3;
    repo.update_api_credential(&again, 2).await.unwrap();
    assert!(
        repo.api_credential_by_hash(&[1; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        repo.api_credential_by_hash(&[2; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        repo.api_credential_by_hash(&[3; 32])
            .await
            .unwrap()
            .is_some()
    );
}

async fn touch_sets_last_used_only(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    repo.insert_api_credential(&row("ws-a", "k1", "Pipeline", 1))
        .await
        .unwrap();
    repo.touch_api_credential("k1", 500).await.unwrap();
    repo.touch_api_credential("k1", 400).await.unwrap();
    let got = repo
        .get_api_credential("ws-a", "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.last_used_at, Some(500), "never moves backwards");
    assert_eq!(got.revision, 1);
    assert_eq!(got.updated_at, 10);
    // A touch of a row that is gone is harmless.
    repo.touch_api_credential("nope", 600).await.unwrap();
}

async fn debug_hides_hashes_and_the_schema_checks_roles(backend: Backend) {
    let (_dir, repo) = store(backend).await;
    let r = row("ws-a", "k1", "Pipeline", 0xab);
    let text = format!("{r:?}");
    assert!(text.contains("Pipeline"));
    assert!(!text.contains("171"), "{text}");
    assert!(!text.contains("ab, ab") && !text.contains("abab"), "{text}");
    repo.insert_api_credential(&r).await.unwrap();
    // A role outside admin|member is refused by the schema.
    let mut bad = row("ws-a", "k2", "Other", 2);
    bad.role = "owner".to_owned();
    assert!(repo.insert_api_credential(&bad).await.is_err());
}

latchkey_testdb::backend_tests!(
    every_lookup_is_scoped_by_workspace,
    names_are_unique_per_workspace_ignoring_case,
    stale_revisions_conflict,
    lookup_by_current_and_previous_hash,
    touch_sets_last_used_only,
    debug_hides_hashes_and_the_schema_checks_roles,
);
