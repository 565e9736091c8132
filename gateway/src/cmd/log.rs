//! `consentry log …`: the log in plain words, from the segment (readable
//! while the gateway runs).

use std::process::ExitCode;

use super::args::LogCmd;

pub fn run(cmd: LogCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        LogCmd::Tail { dir, lines } => tail(&dir, lines),
    }
}

fn tail(dir: &std::path::Path, lines: usize) -> anyhow::Result<ExitCode> {
    for line in gateway::logview::tail(&dir.join("data"), lines)? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
