//! `latchkey keys …`: master-key status, rotation and retirement. The rules live in core
//! (`latchkey_core::keys`); this prints.

use crate::output::table;
use crate::print_json;
use anyhow::Result;
use clap::Subcommand;
use latchkey_core::Latchkey;
use latchkey_core::keys::KEY_FILE_POLL;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// How many credential envelopes each master key wraps.
    Status,
    /// Add a new primary master key and re-wrap every credential's data key under it (no secret
    /// is re-encrypted). Servers keep serving and pick the new key up by themselves. Safe to stop
    /// and run again: an unfinished rotation is finished first.
    Rotate {
        /// The new key: a file holding one base64 key (32 bytes). Default: a new random key.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// Envelopes re-wrapped per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
    },
    /// Remove an older master key from the key file; refused while any envelope still uses it.
    Retire {
        /// The key id, e.g. mk_0123456789abcdef (see `latchkey keys status`).
        id: String,
    },
}

pub async fn run(lk: &Latchkey, json: bool, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Status => {
            let keys = lk.key_status().await?;
            if json {
                return print_json(&keys);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let mut role = if k.primary { "primary" } else { "older" }.to_owned();
                    if !k.in_ring {
                        role = "MISSING from the key file".to_owned();
                    }
                    vec![
                        k.id.clone(),
                        role,
                        k.envelopes.to_string(),
                        if k.key_check { "yes" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            table(&["KEY", "ROLE", "ENVELOPES", "KEY CHECK"], &rows);
            if let Some(file) = lk.key_file() {
                println!("\nKey file: {}", file.display());
            }
            Ok(())
        }
        KeysCommand::Rotate {
            new_key_file,
            batch_size,
        } => {
            let new_key = match &new_key_file {
                None => None,
                Some(path) => {
                    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
                        anyhow::anyhow!("cannot read the new key file {}: {e}", path.display())
                    })?);
                    Some(
                        latchkey_vault::KeyRing::first_key_of_file(&bytes).map_err(|e| {
                            anyhow::anyhow!(
                                "the new key file {} is not usable: {e}",
                                path.display()
                            )
                        })?,
                    )
                }
            };
            rotate(lk, json, new_key, batch_size).await
        }
        KeysCommand::Retire { id } => {
            lk.retire_key(&id).await?;
            if json {
                print_json(&lk.key_status().await?)
            } else {
                println!("Retired master key {}.", id.trim());
                Ok(())
            }
        }
    }
}

async fn rotate(
    lk: &Latchkey,
    json: bool,
    new_key: Option<latchkey_vault::MasterKey>,
    batch_size: u32,
) -> Result<()> {
    let rotation = lk.begin_rotation(new_key).await?;
    let tty = std::io::stderr().is_terminal();
    if rotation.resumed {
        eprintln!(
            "Resuming the unfinished rotation to master key {}: {} envelope(s) to re-wrap.",
            rotation.primary, rotation.pending
        );
    } else {
        eprintln!(
            "New primary master key {} written to the key file; {} envelope(s) to re-wrap.",
            rotation.primary, rotation.pending
        );
        // Running servers look at the key file every second: let them load the new key before
        // envelopes they could not open yet appear (they would also reload on demand).
        tokio::time::sleep(2 * KEY_FILE_POLL).await;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(rotation.pending),
        if tty {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} envelopes re-wrapped, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut done = 0u64;
    let mut passes = 0;
    let remaining = loop {
        passes += 1;
        let mut after: Option<String> = None;
        loop {
            let batch = lk.rewrap_batch(after.as_deref(), batch_size).await?;
            if batch.read == 0 {
                break;
            }
            done += batch.rewrapped;
            bar.inc(batch.rewrapped);
            if !tty {
                // Without a terminal, one plain line per batch.
                eprintln!("re-wrapped {done}/{}", rotation.pending);
            }
            after = batch.last;
        }
        let remaining = lk.finish_rotation().await?;
        // Credentials changed during a pass may have been sealed by a server that had not loaded
        // the new key yet: another pass picks them up.
        if remaining == 0 || passes == 5 {
            break remaining;
        }
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        return print_json(&serde_json::json!({
            "primary": rotation.primary,
            "resumed": rotation.resumed,
            "rewrapped": done,
            "remaining": remaining,
            "seconds": seconds,
        }));
    }
    if remaining > 0 {
        anyhow::bail!(
            "{remaining} envelope(s) are still under older keys after {passes} passes (credentials changing under a server that has not loaded the new key?); run `latchkey keys rotate` again"
        );
    }
    println!(
        "Rotated to master key {}: {done} envelope(s) re-wrapped in {seconds:.1} s ({:.0}/s).",
        rotation.primary,
        done as f64 / seconds.max(1e-9)
    );
    let older: Vec<String> = lk
        .key_status()
        .await?
        .into_iter()
        .filter(|k| !k.primary && k.in_ring)
        .map(|k| k.id)
        .collect();
    if !older.is_empty() {
        println!(
            "No envelope uses the older key(s) any more; retire each with `latchkey keys retire ID`: {}",
            older.join(", ")
        );
    }
    Ok(())
}
