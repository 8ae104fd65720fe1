//! `latchkey keys status | rotate | retire` as a process, against real SQLite files and the real
//! sandbox: a rotation re-wraps every envelope under the new primary key without changing any
//! secret; it can be SIGKILLed and run again; older keys retire only once unused; a running server
//! keeps answering proxy and verification requests throughout a rotation.

mod common;

use common::Env;
use common::serve::Served;
use latchkey_core::{Actor, Latchkey, NewCredential, Settings, VerifyMode};
use latchkey_testdb::Backend;
use latchkey_vault::{Binding, KeyRing, Secret};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// `n` Chorus credentials (the sandbox's demo token) named `Chorus 000000…`, saved through core
/// without verification, straight into the test's data directory.
async fn seed(env: &Env, n: usize) {
    let settings = Settings {
        data_dir: env.data_dir(),
        database_url: env.database_url(),
        ..Settings::default()
    };
    let (lk, _) = Latchkey::start(&settings).await.unwrap();
    for i in 0..n {
        let fields = [(
            "api_token".to_owned(),
            Secret::new(env.demo().chorus_token.clone()),
        )]
        .into_iter()
        .collect();
        let new = NewCredential {
            provider: "chorus".to_owned(),
            name: format!("Chorus {i:06}"),
            description: None,
            fields,
        };
        lk.create_credential(&Actor::operator(), "default", new, VerifyMode::Skip)
            .await
            .unwrap();
    }
}

/// Open every stored envelope with the key file as it is now (the real check that nothing was
/// lost): returns how many opened, and each key's count.
async fn open_all(env: &Env) -> (usize, std::collections::BTreeMap<String, u64>) {
    let ring =
        KeyRing::from_key_file(&std::fs::read(env.data_dir().join("master.key")).unwrap()).unwrap();
    let location =
        latchkey_store::Location::resolve(env.database_url().as_deref(), &env.data_dir()).unwrap();
    let store = latchkey_store::open(&location).await.unwrap();
    let mut opened = 0;
    let mut after: Option<String> = None;
    // Every envelope is "not under" a key id that does not exist.
    loop {
        let rows = store
            .envelopes_not_under("none", after.as_deref(), 1000)
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        for row in &rows {
            ring.open(
                &Binding::new(&row.workspace_id, &row.id, row.revision),
                &row.envelope,
            )
            .unwrap_or_else(|e| panic!("credential {} does not open: {e}", row.id));
            opened += 1;
        }
    }
    let counts = store
        .envelope_key_counts()
        .await
        .unwrap()
        .into_iter()
        .collect();
    (opened, counts)
}

fn status(env: &Env) -> Vec<serde_json::Value> {
    env.run(&["keys", "status", "--json"], "")
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn primary(keys: &[serde_json::Value]) -> String {
    keys.iter().find(|k| k["primary"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn rotate_then_retire_the_older_key_and_every_credential_still_works(backend: Backend) {
    let env = Env::on(backend).await;
    for (provider, name) in [
        ("chorus", "Chorus"),
        ("aircall", "Aircall"),
        ("clari-copilot", "Clari"),
    ] {
        env.add_demo(provider, name).ok();
    }
    let before = status(&env);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["envelopes"], 3);
    assert_eq!(before[0]["key_check"], true);
    let old = primary(&before);

    // The new key from a file of the operator's.
    let new_key = KeyRing::new(latchkey_vault::MasterKey::generate());
    let new_key_file = env.dir().join("new.key");
    std::fs::write(&new_key_file, new_key.to_key_file().expose()).unwrap();
    let new = new_key.primary_id().as_str().to_owned();
    // Retiring the only (primary) key is refused.
    env.run(&["keys", "retire", &old], "")
        .code(1)
        .says("is the primary key");

    env.run(
        &[
            "keys",
            "rotate",
            "--new-key-file",
            new_key_file.to_str().unwrap(),
            "--batch-size",
            "2",
        ],
        "",
    )
    .ok()
    .says(&format!(
        "Rotated to master key {new}: 3 envelope(s) re-wrapped"
    ));
    let after = status(&env);
    assert_eq!(primary(&after), new);
    let by_id = |id: &str| after.iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(by_id(&new)["envelopes"], 3);
    assert_eq!(by_id(&new)["key_check"], true);
    assert_eq!(by_id(&old)["envelopes"], 0);
    let (opened, counts) = open_all(&env).await;
    assert_eq!(opened, 3);
    assert_eq!(counts.get(&new), Some(&3));
    // The secrets are unchanged: each credential still verifies against its provider.
    for name in ["Chorus", "Aircall", "Clari"] {
        env.run(&["credentials", "verify", name], "").ok();
    }
    // The same key again, with nothing pending: refused, nothing changes.
    env.run(
        &[
            "keys",
            "rotate",
            "--new-key-file",
            new_key_file.to_str().unwrap(),
        ],
        "",
    )
    .code(1)
    .says("already in the key ring");

    env.run(&["keys", "retire", "mk_nothex"], "")
        .code(2)
        .says("is not a master key id");
    env.run(&["keys", "retire", "mk_0123456789abcdef"], "")
        .code(1)
        .says("is not in the key ring");
    env.run(&["keys", "retire", &old], "")
        .ok()
        .says(&format!("Retired master key {old}"));
    let keys = status(&env);
    assert_eq!(keys.len(), 1);
    assert_eq!(primary(&keys), new);
    for name in ["Chorus", "Aircall", "Clari"] {
        env.run(&["credentials", "verify", name], "").ok();
    }
    env.assert_no_secret_in_output();
}

async fn an_older_key_that_still_wraps_envelopes_is_not_retired(backend: Backend) {
    let env = Env::on(backend).await;
    seed(&env, 4).await;
    let old = primary(&status(&env));
    // Add a new primary key to the key file by hand, as an operator preparing a rotation would:
    // nothing is re-wrapped yet, so the old key still wraps all four envelopes.
    let path = env.data_dir().join("master.key");
    let ring = KeyRing::from_key_file(&std::fs::read(&path).unwrap()).unwrap();
    let ring = ring
        .with_new_primary(latchkey_vault::MasterKey::generate())
        .unwrap();
    std::fs::write(&path, ring.to_key_file().expose()).unwrap();
    env.run(&["keys", "retire", &old], "")
        .code(1)
        .says(&format!(
            "master key {old} still wraps 4 envelope(s) and the key check"
        ));
    // A rotation now resumes (the new key is primary but wraps nothing): no third key.
    env.run(&["keys", "rotate"], "")
        .ok()
        .says("Resuming the unfinished rotation");
    assert_eq!(status(&env).len(), 2);
    env.run(&["keys", "retire", &old], "").ok();
    assert_eq!(open_all(&env).await.0, 4);
}

async fn a_key_from_the_environment_is_not_rotated(backend: Backend) {
    let env = Env::on(backend).await;
    let key = KeyRing::new(latchkey_vault::MasterKey::generate());
    let text = key.to_key_file();
    let line = text
        .expose()
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .to_owned();
    env.set_env("LATCHKEY_MASTER_KEY", &line);
    env.secret(&line);
    env.run(&["keys", "rotate"], "")
        .code(1)
        .says("comes from LATCHKEY_MASTER_KEY");
    env.assert_no_secret_in_output();
}

async fn a_rotation_killed_midway_completes_when_run_again(backend: Backend) {
    let env = Env::on(backend).await;
    seed(&env, 2_000).await;
    let old = primary(&status(&env));
    let mut child = env
        .command(&["keys", "rotate", "--batch-size", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("progress lines").unwrap();
        if line.starts_with("re-wrapped ") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let midway = status(&env);
    let new = primary(&midway);
    assert_ne!(new, old);
    let count = |keys: &[serde_json::Value], id: &str| {
        keys.iter().find(|k| k["id"] == id).unwrap()["envelopes"]
            .as_u64()
            .unwrap()
    };
    assert!(count(&midway, &new) > 0, "{midway:?}");
    assert!(count(&midway, &old) > 0, "killed midway: {midway:?}");
    assert_eq!(
        open_all(&env).await.0,
        2_000,
        "midway, every credential opens"
    );

    env.run(&["keys", "rotate"], "").ok().says(&format!(
        "Resuming the unfinished rotation to master key {new}"
    ));
    let done = status(&env);
    assert_eq!(done.len(), 2, "no third key: {done:?}");
    assert_eq!(count(&done, &new), 2_000);
    assert_eq!(count(&done, &old), 0);
    let (opened, _) = open_all(&env).await;
    assert_eq!(opened, 2_000);
    env.run(&["keys", "retire", &old], "").ok();
    assert_eq!(open_all(&env).await.0, 2_000);
}

/// `n` Chorus credentials written straight into the store (sealed with the data directory's key
/// file, as core seals them) — fast enough for 100,000 in a test.
async fn seed_in_store(env: &Env, n: usize) {
    let settings = Settings {
        data_dir: env.data_dir(),
        database_url: env.database_url(),
        ..Settings::default()
    };
    let (lk, _) = Latchkey::start(&settings).await.unwrap();
    let repo = lk.repository().clone();
    let ring = lk.key_ring();
    let ws = repo.workspace_by_slug("default").await.unwrap().unwrap();
    let token = Secret::new(env.demo().chorus_token.clone());
    let hints = serde_json::json!({ "api_token": token.hint() }).to_string();
    let fields: latchkey_vault::SecretFields =
        [("api_token".to_owned(), token)].into_iter().collect();
    let plain = latchkey_vault::encode_fields(&fields);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..4 {
        let (repo, ring, ws, hints) = (repo.clone(), ring.clone(), ws.clone(), hints.clone());
        let plain = plain.expose().to_vec();
        tasks.spawn(async move {
            for i in (chunk..n).step_by(4) {
                let id = uuid::Uuid::now_v7().to_string();
                let name = format!("Chorus {i:06}");
                let row = latchkey_store::CredentialRow {
                    envelope: ring.seal(&Binding::new(&ws.id, &id, 1), &plain).unwrap(),
                    key_id: ring.primary_id().as_str().to_owned(),
                    id,
                    workspace_id: ws.id.clone(),
                    provider: "chorus".to_owned(),
                    name_key: name.to_lowercase(),
                    name,
                    description: String::new(),
                    settings: "{}".to_owned(),
                    secret_hints: hints.clone(),
                    status: "unverified".to_owned(),
                    status_reason: None,
                    enabled: true,
                    verified_at: None,
                    identity: None,
                    last_used_at: None,
                    revision: 1,
                    created_at: 0,
                    updated_at: 0,
                };
                repo.insert_credential(&row).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Proxy and verification requests to a running server all succeed while `keys rotate`
/// re-wraps 100,000 envelopes beside it; afterwards the server seals with the new key.
async fn a_server_keeps_serving_through_a_rotation_of_100000_credentials(backend: Backend) {
    const N: usize = 100_000;
    let env = Env::on(backend).await;
    let seeding = std::time::Instant::now();
    seed_in_store(&env, N).await;
    eprintln!("seeded {N} credentials in {:.1?}", seeding.elapsed());
    let old = primary(&status(&env));

    let mut command = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("LATCHKEY_LOG", "warn");
    let server = Served::start_with_stderr(command, Stdio::null());
    let url = server.url.clone();
    let token = server
        .admin
        .clone()
        .expect("a first start prints the admin token");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut rotation = env
        .command(&["keys", "rotate", "--batch-size", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    let mut i = 0usize;
    while rotation.try_wait().unwrap().is_none() {
        // Spread over the whole id range: some already re-wrapped, some not yet.
        let name = format!("Chorus%20{:06}", (i * 7_919) % N);
        let request = if i % 4 == 3 {
            client.post(format!("{url}/v1/credentials/{name}/verify"))
        } else {
            client.get(format!(
                "{url}/v1/proxy/{name}/v3/engagements?max_date=2025-01-01"
            ))
        };
        let response = request.bearer_auth(&token).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let outcome = if status == 200 {
            "200".to_owned()
        } else {
            format!("{status} {body}")
        };
        *outcomes.entry(outcome).or_default() += 1;
        i += 1;
    }
    let rotated = rotation.wait_with_output().unwrap();
    assert!(rotated.status.success());
    let said = String::from_utf8_lossy(&rotated.stdout);
    // Verifications during the rotation save their credential again (sealed under the new key
    // by then): those need no re-wrap.
    assert!(said.contains("envelope(s) re-wrapped"), "{said}");
    eprintln!("{said}during it: {outcomes:?}");
    assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["200"], "{outcomes:?}");
    assert!(
        outcomes["200"] >= 50,
        "requests made during the rotation: {outcomes:?}"
    );

    let done = status(&env);
    let new = primary(&done);
    assert_ne!(new, old);
    // The server loaded the new ring: a secret replaced now is sealed under the new key.
    tokio::time::sleep(latchkey_core::keys::KEY_FILE_POLL * 2).await;
    let replaced = client
        .put(format!("{url}/v1/credentials/Chorus%20000001/secrets"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "fields": { "api_token": env.demo().chorus_token } }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200, "{}", replaced.text().await.unwrap());
    let after = status(&env);
    let count = |id: &str| {
        after.iter().find(|k| k["id"] == id).unwrap()["envelopes"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((count(&new), count(&old)), (N as u64, 0));
    server.kill();
}

/// Servers on several machines: the new key goes into every key file as an older key first; the
/// rotation then promotes it to primary.
async fn a_key_already_in_the_ring_as_an_older_key_is_promoted(backend: Backend) {
    let env = Env::on(backend).await;
    seed(&env, 3).await;
    let old = primary(&status(&env));
    let new_key = KeyRing::new(latchkey_vault::MasterKey::generate());
    let new_id = new_key.primary_id().as_str().to_owned();
    let new_line = new_key
        .to_key_file()
        .expose()
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .to_owned();
    let path = env.data_dir().join("master.key");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{new_line}\n"));
    std::fs::write(&path, &text).unwrap();
    let keys = status(&env);
    assert_eq!((keys.len(), primary(&keys)), (2, old.clone()));
    let new_file = env.dir().join("new.key");
    std::fs::write(&new_file, format!("{new_line}\n")).unwrap();
    env.run(
        &[
            "keys",
            "rotate",
            "--new-key-file",
            new_file.to_str().unwrap(),
        ],
        "",
    )
    .ok()
    .says(&format!("Rotated to master key {new_id}: 3 envelope(s)"));
    let keys = status(&env);
    assert_eq!((keys.len(), primary(&keys)), (2, new_id));
    assert_eq!(open_all(&env).await.0, 3);
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rotate_then_retire_the_older_key_and_every_credential_still_works,
    an_older_key_that_still_wraps_envelopes_is_not_retired,
    a_key_from_the_environment_is_not_rotated,
    a_rotation_killed_midway_completes_when_run_again,
    a_server_keeps_serving_through_a_rotation_of_100000_credentials,
    a_key_already_in_the_ring_as_an_older_key_is_promoted,
);
