//! `latchkey serve`: the REST API and the web page (and, with `--sandbox`, the simulated providers
//! in-process).

use crate::config::{self, GlobalArgs};
use anyhow::{Context, Result};
use latchkey_core::Latchkey;
use latchkey_sandbox::{DemoCredentials, PROVIDER_IDS, Sandbox, SandboxConfig};
use latchkey_server::{AppState, Application};
use std::net::SocketAddr;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on [default: 127.0.0.1:8080; config file key: listen].
    #[arg(long, env = "LATCHKEY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// How long a request (other than a proxied one) may take before it answers 408
    /// [default: 60s; config file key: request_timeout].
    #[arg(long, env = "LATCHKEY_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<humantime::Duration>,
    /// How long a connection may go without sending a request head (after it is opened, or after
    /// its previous answer) before it is closed [default: 30s; config file key: head_timeout].
    #[arg(long, env = "LATCHKEY_HEAD_TIMEOUT", value_name = "DURATION")]
    pub head_timeout: Option<humantime::Duration>,
    /// Also run the sandbox providers in-process and point the catalog at them, so that everything
    /// can be tried with no provider account.
    #[arg(long)]
    pub sandbox: bool,
}

/// A timeout from its flag (or environment variable), else the config file, else `default`; zero
/// is refused.
fn timeout(
    flag: &str,
    arg: Option<humantime::Duration>,
    file: Option<std::time::Duration>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match arg.map(std::time::Duration::from) {
        Some(d) if d.is_zero() => anyhow::bail!("{flag} must be longer than zero"),
        Some(d) => Ok(d),
        None => Ok(file.unwrap_or(default)),
    }
}

pub async fn run(g: &GlobalArgs, args: ServeArgs) -> Result<()> {
    // Listen for SIGTERM before anything is printed, so that a stop right after start is graceful too.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut settings = config::settings(g)?;
    let file = config::serve_file(g)?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let request_timeout = timeout(
        "--request-timeout",
        args.request_timeout,
        file.request_timeout,
        latchkey_server::DEFAULT_REQUEST_TIMEOUT,
    )?;
    let head_timeout = timeout(
        "--head-timeout",
        args.head_timeout,
        file.head_timeout,
        latchkey_server::DEFAULT_HEAD_TIMEOUT,
    )?;
    let sandbox = if args.sandbox {
        let sandbox = Sandbox::start(SandboxConfig {
            demo: DemoCredentials::default(),
            base_port: 0,
            ..SandboxConfig::default()
        })
        .await
        .context("cannot start the sandbox providers")?;
        for id in PROVIDER_IDS {
            if let Some(url) = sandbox.base_url(id) {
                settings.provider_base_urls.insert(id.to_owned(), url);
            }
        }
        Some(sandbox)
    } else {
        None
    };

    let (lk, notices) = Latchkey::start(&settings).await?;
    for notice in notices {
        println!("{}", notice.0);
    }
    let admin = lk.bootstrap_admin().await?;
    // A rotation (`latchkey keys rotate`) rewrites the key file: follow it.
    let _key_watch = lk.watch_key_file();
    let app = Application::bind(
        listen,
        AppState::new(lk)
            .with_request_timeout(request_timeout)
            .with_head_timeout(head_timeout),
    )
    .await
    .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = app.local_addr()?;
    println!("Latchkey is listening on http://{addr}");
    println!("Web page: http://{addr}/ (sign in with a workspace and an API credential token)");
    if let Some((credential, token)) = admin {
        println!();
        println!(
            "Admin API credential `{}` of workspace `{}`:",
            credential.name, credential.workspace
        );
        println!("  {}", token.expose());
        println!("This token will not be shown again: store it now.");
        println!(
            "Use it as HTTP Basic (user name `{}`, password the token) or as a Bearer token:",
            credential.workspace
        );
        println!("  curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/v1/credentials");
        println!("Lost it? `latchkey api-credentials add NAME --role admin` makes another.");
    }
    if let Some(sandbox) = &sandbox {
        println!();
        println!("Sandbox providers (simulated, on loopback) and their demo credentials:");
        for id in PROVIDER_IDS {
            let line = crate::sandbox::demo_line(sandbox, id);
            println!(
                "  {id:<14} {}  {line}",
                sandbox.base_url(id).unwrap_or_default()
            );
        }
    }
    println!();
    println!("Stop with Ctrl-C.");
    app.serve(shutdown_signal(term))
        .await
        .context("the server stopped with an error")?;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    eprintln!("Latchkey stopped.");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, let requests in flight finish.
async fn shutdown_signal(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
