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
            let publisher = dep.clone();
            // Checkpoints are published on a cadence, not per append, so
            // witnesses can cosign a stable tree head.
            tokio::spawn(async move {
                let mut last = publisher.log.size();
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let size = publisher.log.size();
                    if size != last && publisher.log.publish_checkpoint().is_ok() {
                        last = size;
                    }
                }
            });
            axum::serve(listener, gateway::server::router(dep))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
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
            let store = ledger::fsck::open_for_check(&dir.join("data"))?;
            let size = ledger::Store::size(&store)?;
            // Replaying verifies every entry against the registry as it stood
            // at its position and collects the keys that signed them; the
            // ledger's fsck then checks frames, hashes and the checkpoint.
            let mut signer_keys = ledger::StaticKeys::default();
            gateway::deployment::replay_store(&store, trust, size, |id, k| {
                signer_keys.0.insert(id.to_string(), k);
            })
            .context("replaying the log")?;
            let report = ledger::fsck::fsck(&store, &signer_keys, &vkey, 2, |_, _| {})?;
            println!(
                "ok: {size} entries verified, checkpoint at size {}",
                report.checkpoint_size
            );
            Ok(())
        }
    }
}
