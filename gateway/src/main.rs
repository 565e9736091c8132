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
    /// Re-verify a deployment's whole log (signatures, hashes, checkpoint).
    Fsck {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
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
        Cmd::Fsck { dir } => {
            let keys = gateway::demo::keys(&dir)?;
            let dep = gateway::deployment::Deployment::open(
                &dir.join("data"),
                keys.gateway.clone(),
                gateway::demo::trust(&keys),
            )
            .context("replaying the log")?;
            let n = dep.log.size();
            // Opening replayed and verified every entry against the registry;
            // the ledger's fsck then checks stored hashes and the checkpoint,
            // with the public keys the replayed registry holds for each signer.
            let signer_keys = {
                let state = dep.state.read().unwrap_or_else(|p| p.into_inner());
                let mut keys = ledger::StaticKeys::default();
                for i in 0..n {
                    let env = dep
                        .log
                        .entry(i)?
                        .context("entry below the log size is missing")?;
                    for sig in &env.signatures {
                        if let Some(k) = state
                            .key(&sig.key_id)
                            .and_then(|k| gateway::deployment::decode_key(&k.public_key))
                        {
                            keys = keys.with(&sig.key_id, k);
                        }
                    }
                }
                keys
            };
            dep.close();
            let vkey =
                ledger::NoteVerifier::parse(&std::fs::read_to_string(dir.join("keys/log.vkey"))?)?;
            let report = ledger::fsck::fsck_path(&dir.join("data"), &signer_keys, &vkey)?;
            println!(
                "ok: {n} entries verified, checkpoint at size {}",
                report.checkpoint_size
            );
            Ok(())
        }
    }
}
