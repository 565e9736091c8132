//! `consentry init`: a new deployment in a folder, and what to do next.

use std::process::ExitCode;

use super::args::InitArgs;
use super::common::now;

pub async fn run(a: InitArgs) -> anyhow::Result<ExitCode> {
    let done = gateway::config::init(
        &a.dir,
        &a.governance_key,
        &a.listen,
        &a.metrics_listen,
        &a.origin,
        now(),
    )
    .await?;
    println!(
        "created a deployment in {}: config {}, log of {} entry",
        a.dir.display(),
        done.config.display(),
        done.log_size
    );
    println!(
        "the governance key is {}: it signs agency enrolments and rules. Keep it offline (a USB stick in the board's safe, or the board member's own machine), never on the server; copy it nowhere else",
        done.governance_key.display()
    );
    println!(
        "run it: cargo run --release --bin consentry -- serve --config {}",
        done.config.display()
    );
    Ok(ExitCode::SUCCESS)
}
