//! `latchkey sandbox`: the simulated providers on loopback, with their demo credentials and the
//! base URL overrides that point Latchkey at them.

use anyhow::{Context, Result, bail};
use latchkey_sandbox::{DemoCredentials, PROVIDER_IDS, Sandbox, SandboxConfig};
use std::net::SocketAddr;

#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address of the first provider; the four take this port and the next three
    /// (chorus, aircall, ccai-platform, clari-copilot). Port 0 picks four free ports.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Delay added before every answer (e.g. 2s), to try timeouts.
    #[arg(long, value_name = "DURATION")]
    pub latency: Option<humantime::Duration>,
}

pub async fn run(args: SandboxArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "the sandbox listens on loopback addresses only (127.0.0.1 or ::1), not {}",
            args.listen.ip()
        );
    }
    let config = SandboxConfig {
        host: args.listen.ip(),
        base_port: args.listen.port(),
        demo: DemoCredentials::default(),
        latency: args.latency.map(Into::into).unwrap_or_default(),
    };
    let sandbox = Sandbox::start(config)
        .await
        .with_context(|| format!("cannot start the sandbox on {}", args.listen))?;
    println!("Latchkey sandbox: simulated providers on loopback. Stop with Ctrl-C.\n");
    println!("Point Latchkey at them (in the shell where you run latchkey):");
    for id in PROVIDER_IDS {
        let url = sandbox.base_url(id).unwrap_or_default();
        println!("  export {}={url}", override_var(id));
    }
    println!("\nDemo credentials (accepted by the sandbox only):");
    for id in PROVIDER_IDS {
        println!("  {id:<14} {}", demo_line(&sandbox, id));
    }
    println!("\nFor example:");
    println!(
        "  printf 'api_token=%s\\n' '{}' | latchkey credentials add aircall --name 'Aircall – sandbox' --set api_id={}",
        sandbox.demo().aircall_api_token,
        sandbox.demo().aircall_api_id
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
}

/// `LATCHKEY_PROVIDER_<ID>_BASE_URL` for a provider id.
pub fn override_var(id: &str) -> String {
    format!(
        "LATCHKEY_PROVIDER_{}_BASE_URL",
        id.to_ascii_uppercase().replace('-', "_")
    )
}

/// A provider's demo values as `key=value` pairs, for printing.
pub fn demo_line(sandbox: &Sandbox, id: &str) -> String {
    sandbox
        .demo()
        .fields(id)
        .iter()
        .map(|(k, v, _)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("  ")
}
