//! `consentry audit …`: export a bundle, verify it. The checking itself is
//! `gateway::audit` (ledger and policy only); this file reads arguments,
//! draws the progress bar and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gateway::audit;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Write a self-contained audit bundle (C2SP tlog-tiles entries and
    /// hash tiles, each entry's signatures, the checkpoint with its
    /// cosignatures, the public keys) from a stopped deployment.
    Export {
        /// The deployment's folder (its store is DIR/data).
        #[arg(long)]
        dir: PathBuf,
        /// The new bundle folder.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Public trust roots (default: DIR/keys/trust.json).
        #[arg(long)]
        trust: Option<PathBuf>,
        /// The log's verifier key (default: DIR/keys/log.vkey).
        #[arg(long)]
        vkey: Option<PathBuf>,
    },
    /// Verify a bundle: signatures against the registry at each position,
    /// the tree against the checkpoint, consistency with the checkpoint you
    /// trusted before, every decision replayed, every release against its
    /// allow. Exits 1 and lists every finding with its index.
    Verify {
        bundle: PathBuf,
        /// Your state file: the checkpoint you trust, to resume from and to
        /// catch a rewritten history (created on the first clean run).
        #[arg(long)]
        state: Option<PathBuf>,
        /// The log's verifier key you trust (default: the bundle's
        /// log.vkey; bring your own copy to trust nothing in the bundle).
        #[arg(long)]
        vkey: Option<PathBuf>,
        /// The deployment's trust roots you trust (default: the bundle's).
        #[arg(long)]
        trust: Option<PathBuf>,
        /// Threads for the signature checks (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the findings and summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} entries, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn read_vkey(path: &std::path::Path) -> anyhow::Result<ledger::NoteVerifier> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(ledger::NoteVerifier::parse(text.trim())?)
}

pub fn run(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Export {
            dir,
            out,
            trust,
            vkey,
        } => {
            let trust = gateway::config::read_trust(
                &trust.unwrap_or_else(|| dir.join(gateway::config::TRUST_FILE)),
            )?;
            let vkey = read_vkey(&vkey.unwrap_or_else(|| dir.join("keys/log.vkey")))?;
            let pb = bar(0, "exporting");
            let size = audit::export_dir(&dir.join("data"), &trust, &vkey, &out, |done| {
                pb.set_position(done)
            })
            .with_context(|| format!("exporting {}", dir.display()))?;
            pb.finish_and_clear();
            println!(
                "wrote {} ({size} entries, with the checkpoint and public keys)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify {
            bundle,
            state,
            vkey,
            trust,
            threads,
            json,
        } => {
            let vkey = vkey.map(|p| read_vkey(&p)).transpose()?;
            let trust = trust.map(|p| gateway::config::read_trust(&p)).transpose()?;
            let b = audit::bundle::Bundle::open(&bundle, vkey, trust)?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let state = state.map(|p| audit::verify::StateFile::new(&p));
            let pb = bar(b.checkpoint.size, "verifying");
            let (findings, summary) =
                audit::verify::verify(&b, state.as_ref(), threads, |done, _| {
                    pb.set_position(done)
                })?;
            pb.finish_and_clear();
            if json {
                println!(
                    "{:#}",
                    serde_json::json!({
                        "log": b.log_key.name(),
                        "checkpoint_size": b.checkpoint.size,
                        "findings": findings,
                        "summary": summary,
                    })
                );
            } else {
                for f in &findings {
                    println!("#{}: {}", f.index, f.reason);
                }
                let checked = summary.to - summary.from.min(summary.to);
                println!(
                    "{}: {checked} entries checked (#{}..#{}) in {:.2?}: {} signatures, {} decisions replayed, {} releases checked; {} finding(s){}",
                    if findings.is_empty() { "ok" } else { "FAILED" },
                    summary.from,
                    summary.to,
                    summary.total,
                    summary.signatures,
                    summary.decisions_replayed,
                    summary.releases_checked,
                    summary.findings,
                    if summary.trusted { "; the checkpoint is now trusted in the state file" } else { "" },
                );
            }
            Ok(if summary.findings == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
