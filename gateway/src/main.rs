//! The `consentry` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "consentry",
    about = "Consent ledger and data-sharing gateway for recovery services"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a ready-made deployment from a folder (created on first run).
    Demo {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: SocketAddr,
    },
    /// Create a deployment in a folder: keys, config, first governance entry.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: String,
        /// The log's origin line in checkpoints, e.g. your domain + /log.
        #[arg(long, default_value = "consentry.local/log")]
        origin: String,
    },
    /// Run a deployment from its config file (see `init`).
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Re-verify a stopped deployment's whole log (signatures, frames,
    /// hashes, checkpoint), read-only and with public keys only.
    Fsck {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Public trust roots (default: DIR/keys/trust.json).
        #[arg(long)]
        trust: Option<PathBuf>,
        /// The log's verifier key (default: DIR/keys/log.vkey).
        #[arg(long)]
        vkey: Option<PathBuf>,
    },
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Demo { dir, listen } => {
            let keys = gateway::demo::keys(&dir)?;
            let dep = gateway::deployment::Deployment::open(
                &dir.join("data"),
                keys.gateway.clone(),
                gateway::demo::trust(&keys),
            )
            .context("opening the demo deployment")?;
            let written = gateway::demo::seed(
                &dep,
                &dir,
                &keys,
                now(),
                &format!("http://{listen}/upstream"),
            )
            .await?;
            let dep = Arc::new(dep);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!(
                "consentry demo: log {} with {} entries, data in {}",
                gateway::demo::ORIGIN,
                dep.log.size(),
                dir.join("data").display()
            );
            if !written.is_empty() {
                println!(
                    "wrote {} sample keys under {}",
                    written.len(),
                    dir.join("keys").display()
                );
            }
            println!("next steps:");
            println!("  curl http://{listen}/healthz");
            println!("  curl http://{listen}/v1/log/checkpoint");
            println!(
                "  curl 'http://{listen}/v1/log/proof/inclusion?index=0&size={}'",
                dep.log.size()
            );
            println!("  cargo run --release --bin consentry -- fsck --dir {}   (after stopping the demo)", dir.display());
            tokio::spawn(gateway::app::publish_checkpoints(
                dep.clone(),
                std::time::Duration::from_secs(1),
            ));
            axum::serve(listener, gateway::server::router(dep))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
        Cmd::Init {
            dir,
            listen,
            origin,
        } => {
            let done = gateway::config::init(&dir, &listen, &origin, now()).await?;
            println!(
                "created a deployment in {}: config {}, log of {} entry",
                dir.display(),
                done.config.display(),
                done.log_size
            );
            println!(
                "the governance key is {}: keep it offline; it signs agency enrolments and rules",
                done.governance_key.display()
            );
            println!(
                "run it: cargo run --release --bin consentry -- serve --config {}",
                done.config.display()
            );
            Ok(())
        }
        Cmd::Serve { config } => serve(&config).await,
        Cmd::Fsck { dir, trust, vkey } => {
            // Public keys only, and a read-only store: a check never needs a
            // secret and never changes what it checks.
            let trust = gateway::demo::read_trust(
                &trust.unwrap_or_else(|| dir.join(gateway::demo::TRUST_FILE)),
            )
            .context("reading the trust roots")?;
            let vkey_path = vkey.unwrap_or_else(|| dir.join("keys/log.vkey"));
            let vkey = ledger::NoteVerifier::parse(
                std::fs::read_to_string(&vkey_path)
                    .with_context(|| format!("reading {}", vkey_path.display()))?
                    .trim(),
            )?;
            let report = gateway::audit::fsck_dir(&dir.join("data"), trust, &vkey)?;
            let size = report.size;
            println!(
                "ok: {size} entries verified, checkpoint at size {}",
                report.checkpoint_size
            );
            Ok(())
        }
    }
}

/// `consentry serve`: one process, the embedded store, no outside service.
async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    use gateway::config::Config;
    let c = Config::load(path)?;
    let key = c.gateway_signing_key()?;
    let signer = ledger::NoteSigner::new(&c.origin, key.clone())?;
    let dep = Arc::new(
        gateway::deployment::Deployment::open(&c.path(&c.data_dir), signer, c.trust()?)
            .context("opening the deployment")?,
    );
    // The files are the editable source; the ledger's governance entry is
    // what is in force. Say so when they differ.
    {
        let state = dep.state.read().unwrap_or_else(|p| p.into_inner());
        let vocabulary = std::fs::read_to_string(c.path(&c.vocabulary))
            .ok()
            .and_then(|t| policy::Vocabulary::from_toml(&t).ok());
        let rules = std::fs::read_to_string(c.path(&c.rules))
            .ok()
            .and_then(|t| policy::Rules::from_toml(&t).ok());
        if vocabulary.as_ref() != Some(state.vocabulary()) || rules.as_ref() != Some(state.rules())
        {
            eprintln!(
                "note: {} or {} differ from the rules in force (version {}); they take effect only when a governance-signed governance.rules entry is submitted",
                c.vocabulary.display(),
                c.rules.display(),
                state.rules_version()
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(&c.listen)
        .await
        .with_context(|| format!("binding {}", c.listen))?;
    let bound = listener.local_addr()?;
    // A config may listen on port 0 (tests): agencies then sign against
    // the port actually bound.
    let public_url = match c.public_url.strip_suffix(":0") {
        Some(base) => format!("{base}:{}", bound.port()),
        None => c.public_url.clone(),
    };
    let gw = Arc::new(
        gateway::agency::Gateway::new(
            dep.clone(),
            Arc::new(gateway::clock::SystemClock),
            key,
            &public_url,
            std::time::Duration::from_secs(c.limits.upstream_timeout_secs),
            c.limits.upstream_body_bytes_max,
            gateway::agency::Limits::default(),
        )
        .map_err(anyhow::Error::msg)?,
    );
    tokio::spawn(gateway::app::publish_checkpoints(
        dep.clone(),
        std::time::Duration::from_secs(1),
    ));
    println!(
        "consentry serving log {} ({} entries) on {bound}, public url {public_url}",
        c.origin,
        dep.log.size()
    );
    gateway::app::run(
        listener,
        c.limits.connections_max,
        gateway::app::app(gw, &c.limits.http()),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(())
}
