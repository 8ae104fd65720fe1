//! Two instances on one PostgreSQL database behave as one: a change made through either reaches
//! the other's caches (credential reads, verified API tokens) within a second, through the
//! store's change feed (`LISTEN/NOTIFY`). Without it a read would stay cached for up to two
//! seconds and a verified token for five.

use latchkey_core::{
    Actor, AuthFailure, Latchkey, NewCredential, Role, Settings, Status, VerifyMode,
};
use latchkey_testdb::{Backend, TestDb};
use latchkey_vault::Secret;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WS: &str = "default";

/// Poll `check` until it holds, failing after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "{what}: not seen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fields(token: &str) -> BTreeMap<String, Secret> {
    BTreeMap::from([
        ("api_id".to_owned(), Secret::new("4242")),
        ("api_token".to_owned(), Secret::new(token)),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_reaches_the_others_caches() {
    let db = TestDb::new(Backend::Postgres).await;
    let settings = Settings {
        data_dir: db.data_dir(),
        database_url: db.database_url(),
        ..Default::default()
    };
    let (a, _) = Latchkey::start(&settings).await.unwrap();
    let (b, _) = Latchkey::start(&settings).await.unwrap();
    let op = Actor::operator();

    // Credential reads: B has read (and cached) the credential when A changes it. Half a
    // second is below the read cache's one-second freshness: only the feed can explain it.
    let new = NewCredential {
        provider: "aircall".to_owned(),
        name: "Prod".to_owned(),
        description: None,
        fields: fields("first-token-aaaaaaaaaaaaaaaa"),
    };
    a.create_credential(&op, WS, new, VerifyMode::Skip)
        .await
        .unwrap();
    let before = b.get_credential(WS, "Prod").await.unwrap();
    a.replace_fields(
        &op,
        WS,
        "Prod",
        fields("second-token-bbbbbbbbbbbbbbbb"),
        VerifyMode::Skip,
        None,
    )
    .await
    .unwrap();
    let half = Duration::from_millis(500);
    eventually(half, "a replaced secret", async || {
        b.get_credential(WS, "Prod").await.unwrap().revision > before.revision
    })
    .await;
    a.disable_credential(&op, WS, "Prod", None).await.unwrap();
    eventually(half, "a disabled credential", async || {
        b.get_credential(WS, "Prod").await.unwrap().status == Status::Disabled
    })
    .await;
    a.delete_credential(&op, WS, "Prod", None).await.unwrap();
    eventually(half, "a deleted credential", async || {
        b.get_credential(WS, "Prod").await.is_err()
    })
    .await;

    // Verified tokens (cached five seconds): B has just accepted the token when A changes it.
    let second = Duration::from_secs(1);
    let (created, token) = a
        .add_api_credential(&op, true, WS, "Pipeline", Role::Member)
        .await
        .unwrap();
    let t = token.expose().to_owned();
    b.authenticate(None, &t).await.unwrap();
    a.disable_api_credential(&op, true, WS, &created.id, None)
        .await
        .unwrap();
    eventually(second, "a disabled API credential", async || {
        b.authenticate(None, &t).await.err() == Some(AuthFailure::Disabled)
    })
    .await;
    a.enable_api_credential(&op, true, WS, &created.id, None)
        .await
        .unwrap();
    b.authenticate(None, &t).await.unwrap();
    let (_, regenerated) = a
        .regenerate_api_credential(&op, true, WS, &created.id, None, None)
        .await
        .unwrap();
    eventually(second, "a regenerated API credential", async || {
        b.authenticate(None, &t).await.is_err()
    })
    .await;
    let new_token = regenerated.expose().to_owned();
    b.authenticate(None, &new_token).await.unwrap();
    a.delete_api_credential(&op, true, WS, &created.id, None)
        .await
        .unwrap();
    eventually(second, "a deleted API credential", async || {
        b.authenticate(None, &new_token).await.is_err()
    })
    .await;
}

/// Instances started at the same moment on a new database with different master keys: the key
/// check of the first to store one holds, every other instance refuses to start (wrong key),
/// never two instances serving with two keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_agree_on_one_master_key() {
    use base64::Engine as _;
    let db = TestDb::new(Backend::Postgres).await;
    let starts = (0..4u8).map(|i| {
        let settings = Settings {
            data_dir: db.data_dir(),
            database_url: db.database_url(),
            master_key: Some(Secret::new(
                base64::engine::general_purpose::STANDARD.encode([i + 1; 32]),
            )),
            ..Default::default()
        };
        tokio::spawn(async move { Latchkey::start(&settings).await.map(|_| ()) })
    });
    let mut started = 0;
    for start in starts {
        match start.await.unwrap() {
            Ok(()) => started += 1,
            Err(e) => assert!(
                matches!(e, latchkey_core::CoreError::MasterKeyWrong(_)),
                "{e}"
            ),
        }
    }
    assert_eq!(started, 1, "exactly one master key serves the database");
}
