//! `latchkey store copy` as a process: everything of a store — workspaces, credentials with their
//! envelopes as they are, API credentials, the audit log — into an empty database; a non-empty
//! target is refused; the copy serves the same credentials with the same master key.

mod common;

use common::Env;
use latchkey_testdb::{Backend, TestDb};

/// From the data directory's SQLite file into an empty database of `target` (PostgreSQL: the move
/// this command is for).
async fn a_store_copies_into_an_empty_database_and_works_there(target: Backend) {
    let env = Env::new().await;
    env.add_demo("chorus", "Chorus").ok();
    env.add_demo("aircall", "Aircall").ok();
    env.run(&["workspaces", "add", "team-b"], "").ok();
    env.run(&["-w", "team-b", "api-credentials", "add", "etl"], "")
        .ok();
    let target_db = TestDb::new(target).await;
    let url = match target_db.database_url() {
        Some(url) => url,
        None => format!("sqlite://{}", target_db.dir().join("copy.db").display()),
    };
    if let Some(password) = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        env.secret(&password);
    }
    let data = env.data_dir();
    env.run(
        &[
            "store",
            "copy",
            "--from",
            data.to_str().unwrap(),
            "--to",
            &url,
            "--json",
        ],
        "",
    )
    .ok();
    let copied = env
        .run(
            &[
                "store",
                "copy",
                "--from",
                data.to_str().unwrap(),
                "--to",
                &url,
            ],
            "",
        )
        .code(1)
        .says("is not empty")
        .stderr
        .clone();
    assert!(copied.contains("copy into a new, empty database"));

    // The copy, opened with the same key file, holds and verifies the same credentials.
    let key = data.join("master.key");
    let on_copy = |args: &[&str]| {
        let mut all = vec![
            "--database-url",
            url.as_str(),
            "--master-key-file",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        env.run(&all, "")
    };
    let list = on_copy(&["credentials", "list", "--json"]).ok().json()["items"].clone();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    on_copy(&["credentials", "verify", "Chorus"]).ok();
    on_copy(&["credentials", "verify", "Aircall"]).ok();
    let keys = on_copy(&["-w", "team-b", "api-credentials", "list", "--json"])
        .ok()
        .json();
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    let audit = on_copy(&["audit", "--json"]).ok().json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "credential.create"),
        "{audit}"
    );
    env.run(
        &["store", "copy", "--from", "/nonexistent/dir", "--to", &url],
        "",
    )
    .code(2)
    .says("no such data directory");
    env.assert_no_secret_in_output();
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_store_copies_into_an_empty_database_and_works_there,
);
