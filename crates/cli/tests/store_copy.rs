//! `latchkey store copy` as a process: everything of a store — workspaces, credentials with their
//! envelopes as they are, API credentials, the audit log — into an empty database; a non-empty
//! target is refused; the counts it prints (as text and as JSON) are what the copy holds; the copy
//! serves the same credentials with the same master key.

mod common;

use common::{Env, Run};
use latchkey_testdb::{Backend, TestDb};
use serde_json::{Value, json};

/// What a store holds, counted through the CLI (`run` runs a command on that store), in the shape
/// of `store copy --json`.
fn counts(run: &dyn Fn(&[&str]) -> Run) -> Value {
    let workspaces = run(&["workspaces", "list", "--json"]).ok().json();
    let workspaces = workspaces.as_array().unwrap();
    let (mut credentials, mut api_credentials, mut audit_events) = (0, 0, 0);
    let items = |args: &[&str]| run(args).ok().json()["items"].as_array().unwrap().len();
    for ws in workspaces {
        let slug = ws["slug"].as_str().unwrap();
        credentials += items(&[
            "-w",
            slug,
            "credentials",
            "list",
            "--json",
            "--limit",
            "200",
        ]);
        api_credentials += items(&["-w", slug, "api-credentials", "list", "--json"]);
        audit_events += items(&["-w", slug, "audit", "--json", "--limit", "200"]);
    }
    json!({
        "workspaces": workspaces.len(),
        "credentials": credentials,
        "api_credentials": api_credentials,
        "audit_events": audit_events,
    })
}

/// The counts in `store copy`'s sentence: "Copied 2 workspace(s), 2 credential(s), …".
fn printed_counts(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Copied "))
        .unwrap_or_else(|| panic!("no counts in:\n{stdout}"));
    let number_before = |what: &str| -> u64 {
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("no {what} in {line}"));
        line[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    json!({
        "workspaces": number_before(" workspace(s)"),
        "credentials": number_before(" credential(s)"),
        "api_credentials": number_before(" API credential(s)"),
        "audit_events": number_before(" audit event(s)"),
    })
}

/// The store at `url` (or the data directory's SQLite file), opened directly.
async fn open_store(
    url: Option<&str>,
    data: &std::path::Path,
) -> std::sync::Arc<dyn latchkey_store::Repository> {
    let location = latchkey_store::Location::resolve(url, data).unwrap();
    latchkey_store::open(&location).await.unwrap()
}

/// A new, empty database of `backend` and its URL (on SQLite, a file in its own directory).
async fn empty_target(env: &Env, backend: Backend) -> (TestDb, String) {
    let db = TestDb::new(backend).await;
    let url = match db.database_url() {
        Some(url) => url,
        None => format!("sqlite://{}", db.dir().join("copy.db").display()),
    };
    if let Some(password) = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        env.secret(&password);
    }
    (db, url)
}

/// A provider account's weekly quota, as the proxy keys it, and a week (its start, UNIX seconds).
const QUOTA_KEY: &str = "clari-copilot/acct";
const WEEK: i64 = 1_764_460_800;

/// From the data directory's SQLite file into an empty database of `target` (PostgreSQL: the move
/// this command is for).
async fn a_store_copies_into_an_empty_database_and_works_there(target: Backend) {
    let env = Env::new().await;
    env.add_demo("chorus", "Chorus").ok();
    env.add_demo("aircall", "Aircall").ok();
    env.run(&["workspaces", "add", "team-b"], "").ok();
    env.run(&["-w", "team-b", "api-credentials", "add", "etl"], "")
        .ok();
    let source = counts(&|args| env.run(args, ""));
    assert_eq!(source["workspaces"], 2, "{source}");
    assert_eq!(source["credentials"], 2, "{source}");
    assert_eq!(source["api_credentials"], 1, "{source}");
    assert!(source["audit_events"].as_u64().unwrap() >= 4, "{source}");
    let (_target_db, url) = empty_target(&env, target).await;
    let data = env.data_dir();
    // Two signed-out web sessions: one still within its lifetime, one past it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    {
        let store = open_store(None, &data).await;
        store
            .revoke_session("signed-out-live", now + 3_600_000, now)
            .await
            .unwrap();
        store
            .revoke_session("signed-out-expired", now - 1, now - 2)
            .await
            .unwrap();
        // Three requests counted in a weekly quota this week.
        for _ in 0..3 {
            assert!(store.count_in_quota(QUOTA_KEY, WEEK, 100).await.unwrap());
        }
    }
    let copied = env
        .run(
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
        .ok()
        .json();
    assert_eq!(copied, source, "--json counts what the source holds");
    let refused = env
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
    assert!(refused.contains("copy into a new, empty database"));

    // A session signed out on the source stays signed out on the copy.
    {
        let copy = open_store(Some(&url), &data).await;
        assert!(copy.session_revoked("signed-out-live").await.unwrap());
        assert!(!copy.session_revoked("signed-out-expired").await.unwrap());
        // The weekly quota's count goes on from where the source left it: one more of four.
        assert_eq!(
            copy.quota_usage().await.unwrap(),
            [latchkey_store::QuotaUsage {
                key: QUOTA_KEY.to_owned(),
                week: WEEK,
                used: 3
            }]
        );
        assert!(copy.count_in_quota(QUOTA_KEY, WEEK, 4).await.unwrap());
        assert!(!copy.count_in_quota(QUOTA_KEY, WEEK, 4).await.unwrap());
    }

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
    assert_eq!(
        counts(&on_copy),
        copied,
        "the copy holds what --json counted"
    );
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

    // As text, into a second empty database: the sentence carries the same counts.
    let (_second_db, second) = empty_target(&env, target).await;
    let text = env
        .run(
            &[
                "store",
                "copy",
                "--from",
                data.to_str().unwrap(),
                "--to",
                &second,
            ],
            "",
        )
        .ok()
        .stdout
        .clone();
    assert_eq!(printed_counts(&text), source, "{text}");

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
