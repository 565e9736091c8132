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
            dep.log.close();
            // Opening replayed and verified every entry against the registry;
            // the ledger's fsck then checks stored hashes and the checkpoint.
            let vkey =
                ledger::NoteVerifier::parse(&std::fs::read_to_string(dir.join("keys/log.vkey"))?)?;
            let report =
                ledger::fsck::fsck_path(&dir.join("data"), &AllKeys::load(&dir, &keys)?, &vkey)?;
            println!(
                "ok: {n} entries verified, checkpoint at size {}",
                report.checkpoint_size
            );
            Ok(())
        }
    }
}

/// Every public key the demo folder knows, for the ledger-level check.
struct AllKeys(ledger::StaticKeys);

impl AllKeys {
    fn load(dir: &std::path::Path, keys: &gateway::demo::DemoKeys) -> anyhow::Result<Self> {
        let mut k =
            ledger::StaticKeys::default().with("governance", keys.governance.verifying_key());
        for e in std::fs::read_dir(dir.join("keys"))? {
            let p = e?.path();
            let (Some(stem), Some("key")) = (
                p.file_stem().and_then(|s| s.to_str()),
                p.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            if stem == "governance" || stem == "gateway" {
                continue;
            }
            let text = std::fs::read_to_string(&p)?;
            let raw: [u8; 32] =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim())?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("bad key file {}", p.display()))?;
            k = k.with(
                &format!("{stem}:1"),
                ed25519_dalek::SigningKey::from_bytes(&raw).verifying_key(),
            );
        }
        Ok(Self(k))
    }
}

impl ledger::KeyLookup for AllKeys {
    fn verifying_key(&self, key_id: &str) -> Option<ed25519_dalek::VerifyingKey> {
        self.0.verifying_key(key_id)
    }
}
