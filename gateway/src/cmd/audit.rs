//! `consentry audit …`: export a bundle, verify it. The checking itself is
//! the `audit` crate (ledger and policy only); this file reads arguments,
//! draws the progress bar and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::common::{now, read_vkey};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Write a self-contained audit bundle (C2SP tlog-tiles entries and
    /// hash tiles, each entry's signatures, the checkpoint with its
    /// cosignatures, the public keys) from a stopped deployment.
    Export(ExportArgs),
    /// Verify a bundle: signatures against the registry at each position,
    /// the tree against the checkpoint, consistency with the checkpoint you
    /// trusted before, every decision replayed, every release against its
    /// allow. Exits 1 and lists every finding with its index.
    Verify(VerifyArgs),
    /// What the log says happened: per agency and purpose, allowed and
    /// denied; emergency accesses; consents granted, revoked, expired; time
    /// from each revocation to its first denial; grievances. The bundle is
    /// verified first; a bundle with findings gets no report.
    Report(ReportArgs),
}

// The flags of each subcommand; its help line is the doc comment on its
// variant above, so these structs carry none of their own.

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A stopped deployment's folder (its store is DIR/data).
    #[arg(long, conflicts_with = "gateway")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
    /// The new bundle folder.
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Public trust roots (default: DIR/keys/trust.json).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// The log's verifier key (default: DIR/keys/log.vkey).
    #[arg(long)]
    vkey: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A bundle folder (or, with --gateway, where to mirror the log).
    #[arg(required_unless_present = "gateway")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
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
    /// Your witness policy (`witness KEY` lines and `quorum K`): the
    /// checkpoint counts only with K of those witnesses' cosignatures.
    #[arg(long)]
    witnesses: Option<PathBuf>,
    /// Print the findings and summary as JSON.
    #[arg(long)]
    json: bool,
    /// Also time the bare batch Ed25519 verification of the same
    /// signatures on the same threads (the benchmark's floor).
    #[arg(long)]
    floor: bool,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    bundle: PathBuf,
    /// text, json or html (one self-contained page, charts included).
    #[arg(long, default_value = "text")]
    format: String,
    /// Write here instead of standard output.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// Show participants' pseudonyms and consent ids (off by default).
    #[arg(long)]
    pseudonyms: bool,
    #[arg(long)]
    vkey: Option<PathBuf>,
    #[arg(long)]
    trust: Option<PathBuf>,
}

/// Reading a running gateway's log as an enrolled auditor.
#[derive(clap::Args)]
pub struct Remote {
    /// The gateway, e.g. http://127.0.0.1:8700 (entries are fetched as
    /// C2SP tlog-tiles, signed with your auditor key).
    #[arg(long)]
    gateway: Option<String>,
    /// Your auditor key file.
    #[arg(long, requires = "gateway")]
    key: Option<PathBuf>,
    /// Your auditor key's id in the registry, e.g. community-board:1.
    #[arg(long, requires = "gateway")]
    key_id: Option<String>,
    /// The CA certificate(s) to trust for an https:// gateway (PEM);
    /// default: the system's roots. Verification is never turned off.
    #[arg(long, value_name = "FILE", requires = "gateway")]
    ca: Option<PathBuf>,
}

impl Remote {
    /// Mirrors the gateway's log into `dir`; `trust` and `vkey` are the
    /// auditor's own copies of the public keys.
    async fn mirror(
        &self,
        dir: &std::path::Path,
        trust: &policy::Trust,
        vkey: &ledger::NoteVerifier,
    ) -> anyhow::Result<u64> {
        let (Some(gw), Some(key), Some(key_id)) = (&self.gateway, &self.key, &self.key_id) else {
            anyhow::bail!("--gateway needs --key and --key-id (your auditor key)");
        };
        let key = gateway::config::read_key(key)?;
        let roots = gateway::tls::Roots::from_flag(self.ca.as_deref());
        let client = gateway::client::AgencyClient::with_roots(gw, key_id, key, &roots)?;
        let pb = bar(0, "fetching");
        let size = gateway::client::mirror_log(&client, dir, trust, vkey, now, |done, len| {
            pb.set_length(len);
            pb.set_position(done)
        })
        .await?;
        pb.finish_and_clear();
        Ok(size)
    }
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

/// With --gateway, the auditor brings the public keys: nothing the
/// gateway serves is trusted for them.
fn own_keys(
    trust: Option<PathBuf>,
    vkey: Option<PathBuf>,
) -> anyhow::Result<(policy::Trust, ledger::NoteVerifier)> {
    let (Some(trust), Some(vkey)) = (trust, vkey) else {
        anyhow::bail!(
            "with --gateway, bring your own copies of the keys: --trust FILE --vkey FILE"
        );
    };
    Ok((gateway::config::read_trust(&trust)?, read_vkey(&vkey)?))
}

pub async fn run(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Export(a) => export(a).await,
        AuditCmd::Verify(a) => verify(a).await,
        AuditCmd::Report(a) => report(a),
    }
}

/// From a stopped deployment's folder, or mirrored from a running gateway.
async fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let ExportArgs {
        dir,
        remote,
        out,
        trust,
        vkey,
    } = a;
    let size = match dir {
        Some(dir) => {
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
            size
        }
        None => {
            let (trust, vkey) = own_keys(trust, vkey)?;
            if out.exists() {
                anyhow::bail!("{} already exists; choose a new folder", out.display());
            }
            remote.mirror(&out, &trust, &vkey).await?
        }
    };
    println!(
        "wrote {} ({size} entries, with the checkpoint and public keys)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Only a bundle that verifies is reported on.
fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let vkey = a.vkey.map(|p| read_vkey(&p)).transpose()?;
    let trust = a
        .trust
        .map(|p| gateway::config::read_trust(&p))
        .transpose()?;
    let b = audit::bundle::Bundle::open(&a.bundle, vkey, trust)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pb = bar(b.checkpoint.size, "verifying");
    let (findings, _) = audit::verify::verify(&b, None, threads, |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    if !findings.is_empty() {
        for f in &findings {
            eprintln!("#{}: {}", f.index, f.kind);
        }
        anyhow::bail!(
            "the bundle does not verify ({} finding(s)): no report",
            findings.len()
        );
    }
    let r = audit::report::report(&b, a.pseudonyms)?;
    let body = match a.format.as_str() {
        "text" => audit::report::text(&r),
        "json" => format!("{:#}\n", serde_json::to_value(&r)?),
        "html" => audit::report::html(&r),
        other => anyhow::bail!("--format is text, json or html, not {other:?}"),
    };
    match a.out {
        Some(p) => {
            std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
            println!("wrote {}", p.display());
        }
        None => print!("{body}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits 1 on any finding; the state file moves only on a clean run.
async fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let b = open_bundle(&a).await?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let state = a.state.as_ref().map(|p| audit::verify::StateFile::new(p));
    let pb = bar(b.checkpoint.size, "verifying");
    let (findings, summary) =
        audit::verify::verify(&b, state.as_ref(), threads, |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    let floor = if a.floor {
        Some(audit::verify::signature_floor(&b, threads)?)
    } else {
        None
    };
    let run = Run {
        findings: &findings,
        summary: &summary,
        threads,
        floor,
    };
    if a.json {
        println!("{:#}", run.json(&b));
    } else {
        run.print();
    }
    Ok(if summary.findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The bundle named, or the running gateway's log mirrored, with the
/// keys and the witness policy the auditor brings.
async fn open_bundle(a: &VerifyArgs) -> anyhow::Result<audit::bundle::Bundle> {
    let (bundle, vkey, trust) = match &a.remote.gateway {
        None => (
            a.bundle.clone().context("name the bundle, or --gateway")?,
            a.vkey.as_ref().map(|p| read_vkey(p)).transpose()?,
            a.trust
                .as_ref()
                .map(|p| gateway::config::read_trust(p))
                .transpose()?,
        ),
        Some(_) => {
            let (trust, vkey) = own_keys(a.trust.clone(), a.vkey.clone())?;
            let mirror = a
                .bundle
                .clone()
                .unwrap_or_else(|| PathBuf::from("consentry-mirror"));
            a.remote.mirror(&mirror, &trust, &vkey).await?;
            (mirror, Some(vkey), Some(trust))
        }
    };
    let mut b = audit::bundle::Bundle::open(&bundle, vkey, trust)?;
    if let Some(w) = &a.witnesses {
        let text =
            std::fs::read_to_string(w).with_context(|| format!("reading {}", w.display()))?;
        b.witness_policy = Some(ledger::WitnessPolicy::parse(&text)?);
    }
    Ok(b)
}

/// What one `audit verify` found, to print.
struct Run<'a> {
    findings: &'a [audit::Finding],
    summary: &'a audit::verify::Summary,
    threads: usize,
    floor: Option<(u64, std::time::Duration)>,
}

impl Run<'_> {
    fn json(&self, b: &audit::bundle::Bundle) -> serde_json::Value {
        serde_json::json!({
            "log": b.log_key.name(),
            "checkpoint_size": b.checkpoint.size,
            "findings": self.findings,
            "summary": self.summary,
            "threads": self.threads,
            "floor": self.floor.map(|(n, t)| serde_json::json!({
                "signatures": n,
                "seconds": t.as_secs_f64(),
            })),
        })
    }

    fn print(&self) {
        let (findings, summary) = (self.findings, self.summary);
        for f in findings {
            println!("#{}: {}", f.index, f.kind);
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
        if let Some((n, t)) = self.floor {
            println!(
                "floor: the same {n} signatures batch-verified in {t:.2?} on {} threads; this run took {:.2}x that",
                self.threads,
                summary.total.as_secs_f64() / t.as_secs_f64().max(1e-9)
            );
        }
    }
}
