//! `consentry fsck`: the whole log of a stopped deployment re-verified.

use std::process::ExitCode;

use super::args::FsckArgs;
use super::common::read_vkey;

pub fn run(a: FsckArgs) -> anyhow::Result<ExitCode> {
    let FsckArgs { dir, trust, vkey } = a;
    // Public keys only, and a read-only store: a check never needs a
    // secret and never changes what it checks.
    let trust = gateway::config::read_trust(
        &trust.unwrap_or_else(|| dir.join(gateway::config::TRUST_FILE)),
    )?;
    let vkey = read_vkey(&vkey.unwrap_or_else(|| dir.join("keys/log.vkey")))?;
    let report = audit::fsck_dir(&dir.join("data"), trust, &vkey)?;
    println!(
        "ok: {} entries verified, checkpoint at size {}",
        report.size, report.checkpoint_size
    );
    Ok(ExitCode::SUCCESS)
}
