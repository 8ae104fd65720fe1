//! `latchkey store copy`: move a store to another backend (the rules are in
//! `latchkey_core::copy`); this resolves `--from`, shows progress and prints what was copied.

use crate::print_json;
use anyhow::Result;
use clap::Subcommand;
use latchkey_core::Settings;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything (workspaces, credentials with their envelopes as they are, API credentials,
    /// the audit log) into an empty database, e.g. from SQLite to PostgreSQL; then check the
    /// counts and that every credential opens with the master key. Stop the servers first.
    Copy {
        /// The source: a data directory, a SQLite file, or a database URL.
        #[arg(long)]
        from: String,
        /// The target database URL (postgres://… or sqlite:///path), which must be empty.
        #[arg(long)]
        to: String,
    },
}

pub async fn run(mut settings: Settings, json: bool, cmd: StoreCommand) -> Result<()> {
    let StoreCommand::Copy { from, to } = cmd;
    if from.contains("://") {
        settings.database_url = Some(from.clone());
    } else {
        let path = PathBuf::from(&from);
        if path.is_dir() {
            settings.data_dir = path;
            settings.database_url = None;
        } else if path.is_file() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                settings.data_dir = dir.to_owned();
            }
            settings.database_url = Some(format!("sqlite://{}", path.display()));
        } else {
            return Err(crate::Usage(format!(
                "--from {from}: no such data directory or SQLite file (a database URL needs its scheme, e.g. postgres://)"
            ))
            .into());
        }
    }
    let tty = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        if tty {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows copied, {per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let started = std::time::Instant::now();
    let counts = latchkey_core::copy::copy_store(&settings, &to, &mut progress).await?;
    bar.finish_and_clear();
    if json {
        return print_json(&counts);
    }
    println!(
        "Copied {} workspace(s), {} credential(s), {} API credential(s) and {} audit event(s) in {:.1} s; the counts match and every credential opens with the master key.",
        counts.workspaces,
        counts.credentials,
        counts.api_credentials,
        counts.audit_events,
        started.elapsed().as_secs_f64()
    );
    println!("Start Latchkey on the copy with --database-url (the same master key file).");
    Ok(())
}
