//! `latchkey api-credentials …`: the API credentials Latchkey issues to its own clients. The CLI
//! is the operator (always allowed). A token is printed once, by `add` and `regenerate`, and never
//! again.

use crate::output::{key_values, table};
use crate::{Refused, Usage, print_json};
use anyhow::Result;
use clap::Subcommand;
use latchkey_core::{Actor, ApiCredential, Latchkey, Role};
use latchkey_vault::Secret;
use std::io::{IsTerminal, Write};

#[derive(Debug, Subcommand)]
pub enum ApiCredentialsCommand {
    /// Issue a new API credential; its token is shown once.
    Add {
        /// The name (unique in the workspace, any case).
        name: String,
        /// admin (may manage API credentials) or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// List the workspace's API credentials (never their tokens).
    List,
    /// Show one API credential (by id or name).
    Show { reference: String },
    /// Rename an API credential; its token keeps working.
    Rename { reference: String, new_name: String },
    /// Disable an API credential: its token is refused until it is enabled again.
    Disable { reference: String },
    /// Enable a disabled API credential.
    Enable { reference: String },
    /// Issue a new token; the old one stops working at once, or after --grace-seconds.
    Regenerate {
        reference: String,
        /// Keep the old token valid this many seconds (at most 86400).
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
    /// Delete an API credential; its token stops working at once.
    Delete {
        reference: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(
    lk: &Latchkey,
    workspace: &str,
    json: bool,
    cmd: ApiCredentialsCommand,
) -> Result<()> {
    let actor = Actor::operator();
    let show = |c: &ApiCredential, what: &str| -> Result<()> {
        if json {
            print_json(c)
        } else {
            if !what.is_empty() {
                println!("{what}");
            }
            details(c);
            Ok(())
        }
    };
    match cmd {
        ApiCredentialsCommand::Add { name, role } => {
            let role = Role::parse(&role)?;
            let (c, token) = lk
                .add_api_credential(&actor, true, workspace, &name, role)
                .await?;
            issued(
                &c,
                &token,
                json,
                &format!("Added the API credential `{}` ({}).", c.name, c.role),
            )
        }
        ApiCredentialsCommand::List => {
            let items = lk.list_api_credentials(workspace).await?;
            if json {
                print_json(&serde_json::json!({ "items": items }))
            } else {
                list(&items);
                Ok(())
            }
        }
        ApiCredentialsCommand::Show { reference } => {
            show(&lk.get_api_credential(workspace, &reference).await?, "")
        }
        ApiCredentialsCommand::Rename {
            reference,
            new_name,
        } => {
            let c = lk
                .rename_api_credential(&actor, true, workspace, &reference, &new_name, None)
                .await?;
            show(&c, "Renamed; the token is unchanged.")
        }
        ApiCredentialsCommand::Disable { reference } => {
            let c = lk
                .disable_api_credential(&actor, true, workspace, &reference, None)
                .await?;
            show(
                &c,
                "Disabled: its token is refused until you enable it again.",
            )
        }
        ApiCredentialsCommand::Enable { reference } => {
            let c = lk
                .enable_api_credential(&actor, true, workspace, &reference, None)
                .await?;
            show(&c, "Enabled.")
        }
        ApiCredentialsCommand::Regenerate {
            reference,
            grace_seconds,
        } => {
            let (c, token) = lk
                .regenerate_api_credential(&actor, true, workspace, &reference, grace_seconds, None)
                .await?;
            let what = match c.grace_until {
                Some(until) => format!(
                    "Regenerated the token of `{}`. The old token keeps working until {until}.",
                    c.name
                ),
                None => format!(
                    "Regenerated the token of `{}`. The old token no longer works.",
                    c.name
                ),
            };
            issued(&c, &token, json, &what)
        }
        ApiCredentialsCommand::Delete { reference, yes } => {
            let c = lk.get_api_credential(workspace, &reference).await?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Usage(format!(
                        "deleting the API credential `{}` needs confirmation: run it in a terminal, or pass --yes",
                        c.name
                    ))
                    .into());
                }
                eprint!(
                    "Delete the API credential `{}`? Its token stops working at once. This cannot be undone. [y/N] ",
                    c.name
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    println!("Not deleted.");
                    return Err(Refused.into());
                }
            }
            let c = lk
                .delete_api_credential(&actor, true, workspace, &c.id, Some(c.revision))
                .await?;
            if json {
                print_json(&c)
            } else {
                println!("Deleted the API credential `{}`.", c.name);
                Ok(())
            }
        }
    }
}

/// The one time a token is printed.
fn issued(c: &ApiCredential, token: &Secret, json: bool, what: &str) -> Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "api_credential": c,
            "token": token.expose(),
        }));
    }
    println!("{what}");
    key_values(&[
        ("Workspace".to_owned(), c.workspace.clone()),
        ("Name".to_owned(), c.name.clone()),
        ("Role".to_owned(), c.role.to_string()),
        ("ID".to_owned(), c.id.clone()),
        ("Token".to_owned(), token.expose().to_owned()),
    ]);
    println!();
    println!("This token will not be shown again: store it now.");
    println!(
        "Send it as `Authorization: Bearer <token>`, or with HTTP Basic: username `{}`, password the token.",
        c.workspace
    );
    Ok(())
}

fn list(items: &[ApiCredential]) {
    if items.is_empty() {
        println!("No API credentials. Add one with `latchkey api-credentials add NAME`.");
        return;
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.role.to_string(),
                c.hint.clone(),
                c.created_at.to_string(),
                last_used(c),
                enabled(c),
                c.id.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "ROLE",
            "TOKEN",
            "CREATED",
            "LAST USED",
            "ENABLED",
            "ID",
        ],
        &rows,
    );
}

fn details(c: &ApiCredential) {
    let mut rows = vec![
        ("Name".to_owned(), c.name.clone()),
        ("ID".to_owned(), c.id.clone()),
        ("Workspace".to_owned(), c.workspace.clone()),
        ("Role".to_owned(), c.role.to_string()),
        ("Token".to_owned(), c.hint.clone()),
        ("Enabled".to_owned(), enabled(c)),
        ("Created".to_owned(), c.created_at.to_string()),
        ("Last used".to_owned(), last_used(c)),
    ];
    if let Some(until) = c.grace_until {
        rows.push(("Old token valid until".to_owned(), until.to_string()));
    }
    rows.push(("Revision".to_owned(), c.revision.to_string()));
    key_values(&rows);
}

fn last_used(c: &ApiCredential) -> String {
    c.last_used_at
        .map(|t| t.to_string())
        .unwrap_or_else(|| "never".to_owned())
}

fn enabled(c: &ApiCredential) -> String {
    if c.enabled { "yes" } else { "no" }.to_owned()
}
