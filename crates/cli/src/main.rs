//! `latchkey`: one binary. The CLI is a thin adapter: it parses input, calls core directly on the
//! database as the local operator, and prints the answer.

mod api_credentials;
mod config;
mod input;
mod keys;
mod output;
mod sandbox;
mod serve;
mod store;

/// mimalloc rather than glibc's allocator: a proxied request makes many small allocations, and
/// glibc's malloc and free with their helpers took about 11% of the proxy's samples
/// (`scripts/bench-proxy --profile`, docs/BENCHMARKS.md at b6d1dd4). Built without transparent huge pages
/// (`no_thp`), which otherwise raised the idle RSS from 21 MiB to 33 MiB (`scripts/bench-api`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use config::GlobalArgs;
use input::Purpose;
use latchkey_core::{
    Actor, CoreError, ErrorKind, Latchkey, ListQuery, NewCredential, Status, Verification,
    VerifyMode,
};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Latchkey: a self-hosted credential broker for SaaS data connectors.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The provider catalog.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Stored credentials: add, list, show, rename, describe, set-secret, verify, disable, enable, delete.
    #[command(subcommand, alias = "credential")]
    Credentials(CredentialsCommand),
    /// Workspaces (tenants).
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
    /// Issued API credentials: add (token shown once), list, show, rename, disable, enable, regenerate, delete.
    #[command(subcommand)]
    ApiCredentials(api_credentials::ApiCredentialsCommand),
    /// Master keys: status (what each key wraps), rotate (a new primary, every data key re-wrapped), retire.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The database itself: copy it to another backend (e.g. SQLite to PostgreSQL).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Serve the REST API (with --sandbox, also the simulated providers).
    Serve(serve::ServeArgs),
    /// Run simulated versions of the four seed providers on loopback, for trying Latchkey out.
    Sandbox(sandbox::SandboxArgs),
    /// The workspace's audit log, newest first.
    Audit {
        /// Only this action, e.g. credential.create.
        #[arg(long)]
        action: Option<String>,
        /// Only events about this target (id or name).
        #[arg(long)]
        target: Option<String>,
        /// Only events by this actor (API credential id or name).
        #[arg(long)]
        actor: Option<String>,
        /// Only events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ProvidersCommand {
    /// List the providers.
    List,
    /// Show one provider: fields, auth, verification, rate limits.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// Add a credential; it is verified against the provider before it is saved.
    ///
    /// Non-secret values come from --set; secret values from a no-echo prompt, or, when standard
    /// input is not a terminal, from `field=value` lines on standard input.
    Add {
        /// The provider id (see `latchkey providers list`).
        provider: String,
        /// The Credential Name (unique in the workspace).
        #[arg(long)]
        name: String,
        /// The Credential Description: what it is for, who owns it.
        #[arg(long)]
        description: Option<String>,
        /// A non-secret value, as field=value (repeatable).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        sets: Vec<String>,
        /// Save without asking the provider; the credential is marked unverified.
        #[arg(long)]
        no_verify: bool,
    },
    /// List credentials, secrets masked.
    List {
        #[arg(long)]
        provider: Option<String>,
        /// active, unverified, invalid or disabled.
        #[arg(long)]
        status: Option<String>,
        /// Part of the name, any case.
        #[arg(long)]
        search: Option<String>,
        /// At most this many (one page); without it, all.
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this id (the `next` cursor of a previous page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one credential (by id or name), secrets masked.
    Show { credential: String },
    /// Rename a credential.
    Rename {
        credential: String,
        new_name: String,
    },
    /// Set a credential's description.
    Describe {
        credential: String,
        description: String,
    },
    /// Replace secret values (and, with --set, non-secret ones); verified before they replace the old.
    SetSecret {
        credential: String,
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        no_verify: bool,
    },
    /// Ask the provider whether the stored credential still works, and record the answer.
    Verify { credential: String },
    /// Disable a credential: the proxy and pulls refuse it.
    Disable { credential: String },
    /// Enable a disabled credential.
    Enable { credential: String },
    /// Delete a credential.
    Delete {
        credential: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WorkspacesCommand {
    List,
    /// Add a workspace (lowercase letters, digits and hyphens).
    Add {
        slug: String,
    },
}

/// A usage error: exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A refusal already explained on the terminal: exit code 1.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    for warning in config::unknown_variables() {
        eprintln!("warning: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn report(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<Refused>().is_some() {
        return ExitCode::from(1);
    }
    if let Some(usage) = e.downcast_ref::<Usage>() {
        eprintln!("error: {usage}");
        return ExitCode::from(2);
    }
    if let Some(core) = e.downcast_ref::<CoreError>() {
        eprintln!("error: {core}");
        return match core.kind() {
            ErrorKind::Invalid => ExitCode::from(2),
            _ => ExitCode::from(1),
        };
    }
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}

async fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Serve(args) => serve::run(&g, args).await,
        Command::Providers(cmd) => {
            let settings = config::settings(&g)?;
            let catalog = latchkey_core::load_catalog(
                settings.providers_dir.as_deref(),
                &settings.provider_base_urls,
            )?;
            match cmd {
                ProvidersCommand::List => {
                    if g.json {
                        print_json(
                            &catalog
                                .providers()
                                .iter()
                                .map(latchkey_core::provider_json)
                                .collect::<Vec<_>>(),
                        )
                    } else {
                        output::providers(catalog.providers());
                        Ok(())
                    }
                }
                ProvidersCommand::Show { id } => {
                    let provider = catalog.get(&id).ok_or_else(|| CoreError::UnknownProvider {
                        given: id.clone(),
                        known: catalog.ids().into_iter().map(str::to_owned).collect(),
                    })?;
                    if g.json {
                        print_json(&latchkey_core::provider_json(provider))
                    } else {
                        output::provider(provider);
                        Ok(())
                    }
                }
            }
        }
        Command::Workspaces(cmd) => {
            let lk = open(&g).await?;
            match cmd {
                WorkspacesCommand::List => {
                    let items = lk.list_workspaces().await?;
                    if g.json {
                        print_json(&items)
                    } else {
                        {
                            output::workspaces(&items);
                            Ok(())
                        }
                    }
                }
                WorkspacesCommand::Add { slug } => {
                    let ws = lk.create_workspace(&Actor::operator(), &slug).await?;
                    if g.json {
                        print_json(&ws)
                    } else {
                        {
                            println!("Added workspace {}.", ws.slug);
                            Ok(())
                        }
                    }
                }
            }
        }
        Command::Credentials(cmd) => credentials(&g, cmd).await,
        Command::Store(cmd) => store::run(config::settings(&g)?, g.json, cmd).await,
        Command::Keys(cmd) => {
            let lk = open(&g).await?;
            keys::run(&lk, g.json, cmd).await
        }
        Command::ApiCredentials(cmd) => {
            let lk = open(&g).await?;
            api_credentials::run(&lk, &g.workspace, g.json, cmd).await
        }
        Command::Audit {
            action,
            target,
            actor,
            since,
            limit,
        } => {
            let since = since
                .map(|s| {
                    latchkey_core::parse_rfc3339(&s).ok_or_else(|| {
                        Usage(format!(
                            "--since takes an RFC 3339 time such as 2026-11-01T00:00:00Z, not `{s}`"
                        ))
                    })
                })
                .transpose()?;
            let lk = open(&g).await?;
            let query = latchkey_core::AuditQuery {
                action,
                target,
                actor,
                since,
                before: None,
                limit: Some(limit),
            };
            let page = lk.list_audit(&g.workspace, &query).await?;
            if g.json {
                print_json(&page)
            } else {
                output::audit(&page.items);
                Ok(())
            }
        }
    }
}

async fn open(g: &GlobalArgs) -> Result<Latchkey> {
    let settings = config::settings(g)?;
    let (lk, notices) = Latchkey::start(&settings).await?;
    for notice in notices {
        eprintln!("{}", notice.0);
    }
    Ok(lk)
}

async fn credentials(g: &GlobalArgs, cmd: CredentialsCommand) -> Result<()> {
    let lk = open(g).await?;
    let ws = g.workspace.as_str();
    let actor = Actor::operator();
    let mode = |no_verify: bool| {
        if no_verify {
            VerifyMode::Skip
        } else {
            VerifyMode::Verify
        }
    };
    let show = |c: &latchkey_core::Credential, what: &str| -> Result<()> {
        if g.json {
            print_json(c)
        } else {
            println!("{what}");
            output::credential(c);
            Ok(())
        }
    };
    match cmd {
        CredentialsCommand::Add {
            provider,
            name,
            description,
            sets,
            no_verify,
        } => {
            let p = lk
                .catalog()
                .get(&provider)
                .ok_or_else(|| CoreError::UnknownProvider {
                    given: provider.clone(),
                    known: lk.catalog().ids().into_iter().map(str::to_owned).collect(),
                })?;
            let fields = input::collect(p, &sets, Purpose::Create)?;
            let provider_name = p.name.clone();
            if !no_verify && !g.json {
                eprintln!("Verifying with {provider_name}…");
            }
            let new = NewCredential {
                provider,
                name,
                description,
                fields,
            };
            let c = lk
                .create_credential(&actor, ws, new, mode(no_verify))
                .await?;
            let what = match c.status {
                Status::Active => format!("Verified with {provider_name} and saved."),
                _ => "Saved without verifying (status: unverified).".to_owned(),
            };
            show(&c, &what)
        }
        CredentialsCommand::List {
            provider,
            status,
            search,
            limit,
            after,
        } => {
            let status = status.as_deref().map(Status::parse).transpose()?;
            let mut query = ListQuery {
                provider,
                status,
                name_contains: search,
                after,
                limit,
            };
            let mut items = Vec::new();
            let mut next;
            loop {
                let page = lk.list_credentials(ws, &query).await?;
                items.extend(page.items);
                next = page.next;
                if limit.is_some() || next.is_none() {
                    break;
                }
                query.after = next.clone();
            }
            if g.json {
                print_json(&serde_json::json!({ "items": items, "next": next }))
            } else {
                output::credentials(&items);
                if let Some(next) = next {
                    println!("More: --after {next}");
                }
                Ok(())
            }
        }
        CredentialsCommand::Show { credential } => {
            show(&lk.get_credential(ws, &credential).await?, "")
        }
        CredentialsCommand::Rename {
            credential,
            new_name,
        } => {
            let c = lk
                .rename_credential(&actor, ws, &credential, &new_name, None)
                .await?;
            show(&c, "Renamed.")
        }
        CredentialsCommand::Describe {
            credential,
            description,
        } => {
            let c = lk
                .describe_credential(&actor, ws, &credential, &description, None)
                .await?;
            show(&c, "Description saved.")
        }
        CredentialsCommand::SetSecret {
            credential,
            sets,
            no_verify,
        } => {
            let current = lk.get_credential(ws, &credential).await?;
            let p =
                lk.catalog()
                    .get(&current.provider)
                    .ok_or_else(|| CoreError::UnknownProvider {
                        given: current.provider.clone(),
                        known: lk.catalog().ids().into_iter().map(str::to_owned).collect(),
                    })?;
            let fields = input::collect(p, &sets, Purpose::Replace)?;
            let c = lk
                .replace_fields(
                    &actor,
                    ws,
                    &current.id,
                    fields,
                    mode(no_verify),
                    Some(current.revision),
                )
                .await?;
            let what = match c.status {
                Status::Active => "Verified and replaced.",
                _ => "Replaced without verifying (status: unverified).",
            };
            show(&c, what)
        }
        CredentialsCommand::Verify { credential } => {
            let report = lk.verify_credential(&actor, ws, &credential).await?;
            let provider = lk
                .catalog()
                .get(&report.credential.provider)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let (outcome, ok, message) = match &report.verification {
                Verification::Valid { .. } => (
                    "valid",
                    true,
                    format!("{provider} accepted the credential."),
                ),
                Verification::Rejected(_) => (
                    "rejected",
                    false,
                    report
                        .credential
                        .status_reason
                        .clone()
                        .unwrap_or_else(|| format!("{provider} rejected the credential.")),
                ),
                Verification::Unreachable { reason } => (
                    "unreachable",
                    false,
                    format!(
                        "{provider} could not be reached ({reason}); the status is unchanged. Try again later."
                    ),
                ),
            };
            if g.json {
                print_json(
                    &serde_json::json!({ "outcome": outcome, "message": message, "credential": report.credential }),
                )?;
            } else {
                println!("{message}");
                output::credential(&report.credential);
            }
            if ok { Ok(()) } else { Err(Refused.into()) }
        }
        CredentialsCommand::Disable { credential } => {
            let c = lk.disable_credential(&actor, ws, &credential, None).await?;
            show(&c, "Disabled.")
        }
        CredentialsCommand::Enable { credential } => {
            let c = lk.enable_credential(&actor, ws, &credential, None).await?;
            show(&c, "Enabled.")
        }
        CredentialsCommand::Delete { credential, yes } => {
            let c = lk.get_credential(ws, &credential).await?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Usage(format!(
                        "deleting `{}` needs confirmation: run it in a terminal, or pass --yes",
                        c.name
                    ))
                    .into());
                }
                eprint!(
                    "Delete the {} credential `{}`? This cannot be undone. [y/N] ",
                    c.provider_name, c.name
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
                .delete_credential(&actor, ws, &c.id, Some(c.revision))
                .await?;
            if g.json {
                print_json(&c)
            } else {
                {
                    println!("Deleted `{}`.", c.name);
                    Ok(())
                }
            }
        }
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn debug_of_the_parsed_command_line_never_shows_the_database_password() {
        let cli = Cli::try_parse_from([
            "latchkey",
            "--database-url",
            "postgres://latchkey:pg-s3cret@db.internal/latchkey",
            "credentials",
            "list",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(shown.contains("db.internal"), "{shown}");
        assert!(!shown.contains("pg-s3cret"), "{shown}");
    }
}
