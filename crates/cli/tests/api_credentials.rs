//! Issued API credentials through the real binary and a real database of each backend: the token is printed
//! exactly once (by add or regenerate), never by list, show or audit, and no form of it lands in
//! the data directory.

mod common;

use common::Env;
use latchkey_core::{AuthFailure, Latchkey, Settings};
use latchkey_testdb::Backend;

/// The tokens an output shows.
fn tokens_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '"')
        .filter(|w| w.starts_with("lkt_") && w.len() == 42)
        .map(str::to_owned)
        .collect()
}

fn one_token(text: &str) -> String {
    let found = tokens_in(text);
    assert_eq!(found.len(), 1, "expected one token in:\n{text}");
    found.into_iter().next().unwrap()
}

async fn latchkey(env: &Env) -> Latchkey {
    let settings = Settings {
        data_dir: env.data_dir(),
        database_url: env.db.database_url(),
        ..Default::default()
    };
    Latchkey::start(&settings).await.unwrap().0
}

async fn the_lifecycle_through_the_binary(backend: Backend) {
    let env = Env::on(backend).await;

    // Add: the token is printed once, with its workspace and the warning.
    let add = env.run(&["api-credentials", "add", "Pipeline"], "");
    add.ok()
        .says("This token will not be shown again: store it now.")
        .says("default")
        .says("member");
    let first = one_token(&add.stdout);
    assert!(!add.stderr.contains(&first));
    let mut issued = vec![first.clone()];

    let add_json = env
        .run(
            &[
                "api-credentials",
                "add",
                "Notebook",
                "--role",
                "admin",
                "--json",
            ],
            "",
        )
        .ok()
        .json();
    assert_eq!(add_json["api_credential"]["role"], "admin");
    assert_eq!(add_json["api_credential"]["workspace"], "default");
    assert_eq!(add_json["api_credential"]["enabled"], true);
    let admin_token = add_json["token"].as_str().unwrap().to_owned();
    assert!(admin_token.starts_with("lkt_"));
    issued.push(admin_token.clone());

    // The printed tokens are the real ones.
    {
        let lk = latchkey(&env).await;
        let p = lk.authenticate(Some("default"), &first).await.unwrap();
        assert_eq!(&*p.name, "Pipeline");
        assert!(
            lk.authenticate(None, &admin_token)
                .await
                .unwrap()
                .is_admin()
        );
    }

    // List and show: name, role, hint, created, last used, enabled — never the token.
    let hint = format!("lkt_…{}", &first[first.len() - 4..]);
    env.run(&["api-credentials", "list"], "")
        .ok()
        .says("Pipeline")
        .says("Notebook")
        .says(&hint)
        .says("LAST USED")
        .says("ENABLED");
    let list = env
        .run(&["api-credentials", "list", "--json"], "")
        .ok()
        .json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "Pipeline");
    assert_eq!(items[0]["hint"], hint.as_str());
    assert!(
        items[0]["last_used_at"].is_string(),
        "the use above is recorded"
    );
    assert!(items[0].get("token").is_none());
    let id = items[0]["id"].as_str().unwrap().to_owned();
    env.run(&["api-credentials", "show", "pipeline"], "")
        .ok()
        .says(&id)
        .says(&hint);
    env.run(&["api-credentials", "show", &id, "--json"], "")
        .ok();

    // Rename keeps the token.
    env.run(
        &["api-credentials", "rename", "Pipeline", "ETL nightly"],
        "",
    )
    .ok()
    .says("ETL nightly");
    // Disable and enable.
    let disabled = env
        .run(&["api-credentials", "disable", "ETL nightly", "--json"], "")
        .ok()
        .json();
    assert_eq!(disabled["enabled"], false);
    {
        let lk = latchkey(&env).await;
        assert_eq!(
            lk.authenticate(None, &first).await.unwrap_err(),
            AuthFailure::Disabled
        );
    }
    env.run(&["api-credentials", "enable", &id], "")
        .ok()
        .says("Enabled");
    {
        let lk = latchkey(&env).await;
        assert_eq!(
            lk.authenticate(None, &first).await.unwrap().name.as_ref(),
            "ETL nightly"
        );
    }

    // Regenerate: a new token, printed once; the old one stops working.
    let regen = env.run(&["api-credentials", "regenerate", "ETL nightly"], "");
    regen
        .ok()
        .says("This token will not be shown again: store it now.")
        .says("no longer works");
    let second = one_token(&regen.stdout);
    assert_ne!(second, first);
    issued.push(second.clone());
    {
        let lk = latchkey(&env).await;
        assert_eq!(
            lk.authenticate(None, &first).await.unwrap_err(),
            AuthFailure::Unknown
        );
        lk.authenticate(None, &second).await.unwrap();
    }
    // With a grace period the old one keeps working for a while.
    let graced = env
        .run(
            &[
                "api-credentials",
                "regenerate",
                &id,
                "--grace-seconds",
                "600",
                "--json",
            ],
            "",
        )
        .ok()
        .json();
    assert!(graced["api_credential"]["grace_until"].is_string());
    let third = graced["token"].as_str().unwrap().to_owned();
    issued.push(third.clone());
    {
        let lk = latchkey(&env).await;
        lk.authenticate(None, &second).await.unwrap();
        lk.authenticate(None, &third).await.unwrap();
    }
    env.run(&["api-credentials", "show", &id], "")
        .ok()
        .says("Old token valid until");
    env.run(
        &[
            "api-credentials",
            "regenerate",
            &id,
            "--grace-seconds",
            "90000",
        ],
        "",
    )
    .code(2)
    .says("grace period");

    // Delete asks first; without a terminal it needs --yes (a usage error, nothing deleted).
    env.run(&["api-credentials", "delete", "ETL nightly"], "")
        .code(2)
        .says("--yes");
    env.run(&["api-credentials", "show", &id], "").ok();
    env.run(&["api-credentials", "delete", "ETL nightly", "--yes"], "")
        .ok()
        .says("Deleted");
    env.run(&["api-credentials", "show", &id], "")
        .code(1)
        .says("no API credential");
    {
        let lk = latchkey(&env).await;
        assert_eq!(
            lk.authenticate(None, &third).await.unwrap_err(),
            AuthFailure::Unknown
        );
    }

    // The audit log has every change, and no token.
    let audit = env.run(&["audit", "--json"], "");
    audit.ok();
    for action in [
        "api_credential.create",
        "api_credential.rename",
        "api_credential.disable",
        "api_credential.enable",
        "api_credential.regenerate",
        "api_credential.delete",
    ] {
        assert!(audit.stdout.contains(action), "{action}");
    }
    env.run(&["audit"], "").ok();
    env.run(&["api-credentials", "list"], "").ok();

    // Each token appeared exactly once in everything the binary printed (debug logs included):
    // in its add or regenerate answer.
    let outputs = env.outputs();
    for token in &issued {
        let runs = outputs
            .iter()
            .filter(|o| o.contains(token.as_str()))
            .count();
        let times: usize = outputs
            .iter()
            .map(|o| o.matches(token.as_str()).count())
            .sum();
        assert_eq!(
            (runs, times),
            (1, 1),
            "token seen {times} times in {runs} runs"
        );
        let random = &token[4..36];
        assert_eq!(
            outputs
                .iter()
                .map(|o| o.matches(random).count())
                .sum::<usize>(),
            1
        );
    }

    // No form of any token is in the data directory (raw, base64, hex).
    for token in &issued {
        env.secret(token);
    }
    env.assert_no_secret_stored().await;
}

async fn refusals_have_the_right_exit_codes(backend: Backend) {
    let env = Env::on(backend).await;
    env.run(&["api-credentials", "add", "Pipeline"], "").ok();
    // A duplicate name (any case): refused, exit 1.
    env.run(&["api-credentials", "add", "PIPELINE"], "")
        .code(1)
        .says("already exists");
    // An unknown role or an empty name: usage, exit 2.
    env.run(&["api-credentials", "add", "X", "--role", "owner"], "")
        .code(2)
        .says("admin or member");
    env.run(&["api-credentials", "add", "  "], "").code(2);
    // Unknown references: exit 1.
    for cmd in ["show", "disable", "enable", "regenerate"] {
        env.run(&["api-credentials", cmd, "nope"], "")
            .code(1)
            .says("no API credential `nope`");
    }
    env.run(&["api-credentials", "rename", "nope", "x"], "")
        .code(1);
    env.run(&["api-credentials", "delete", "nope", "--yes"], "")
        .code(1);
    // Another workspace is another world.
    env.run(&["workspaces", "add", "team-b"], "").ok();
    env.run(&["-w", "team-b", "api-credentials", "show", "Pipeline"], "")
        .code(1);
    env.run(&["-w", "team-b", "api-credentials", "list"], "")
        .ok()
        .says("No API credentials");
    // Nothing but the one add printed a token.
    let printed: usize = env.outputs().iter().map(|o| tokens_in(o).len()).sum();
    assert_eq!(printed, 1);
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_lifecycle_through_the_binary,
    refusals_have_the_right_exit_codes,
);
