//! The `consentry` binary: parse the arguments, then one call per command.
//! Each command is a function of its own in `cmd/`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

use cmd::args::{
    BenchArgs, DemoArgs, FsckArgs, InitArgs, IntakeArgs, LogCmd, RequestArgs, RevokeArgs,
    ServeArgs, WitnessArgs,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run a complete deployment on loopback: gateway, sample record
    /// systems, agencies, participants, a consent (created on first run).
    Demo(DemoArgs),
    /// Ask for a participant's records, as an agency (RFC 9421-signed).
    Request(RequestArgs),
    /// Confirm a participant's enrolment at this agency's intake: the
    /// person made their key in the portal (/portal/en/enrol) and shows
    /// the intake code; this co-signs it with the agency's key.
    Intake(IntakeArgs),
    /// Revoke a consent, signed with the participant's own key.
    Revoke(RevokeArgs),
    /// Run a witness: cosign the gateway's checkpoints that extend the
    /// last one this witness cosigned; refuse (exit 2, and say why)
    /// anything else.
    Witness(WitnessArgs),
    /// The auditor's side: export a bundle, verify it.
    Audit {
        #[command(subcommand)]
        cmd: cmd::audit::AuditCmd,
    },
    /// The participant's side: enrol, restore, consents, disclosures,
    /// grant, revoke, export, grievance.
    Participant {
        #[command(subcommand)]
        cmd: cmd::participant::ParticipantCmd,
    },
    /// Load generator for bench/run.sh: pre-signed requests, fresh nonces.
    Bench(BenchArgs),
    /// Read the log.
    Log {
        #[command(subcommand)]
        cmd: LogCmd,
    },
    /// Create a deployment in a folder: keys, config, first governance entry.
    Init(InitArgs),
    /// Run a deployment from its config file (see `init`).
    Serve(ServeArgs),
    /// Re-verify a stopped deployment's whole log (signatures, frames,
    /// hashes, checkpoint), read-only and with public keys only.
    Fsck(FsckArgs),
}

/// Errors end the process with one line, never a backtrace.
fn main() -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Cli::parse().cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Cmd) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Demo(a) => cmd::demo::run(a).await,
        Cmd::Request(a) => cmd::request::run(a).await,
        Cmd::Intake(a) => cmd::intake::run(a).await,
        Cmd::Revoke(a) => cmd::revoke::run(a).await,
        Cmd::Witness(a) => cmd::witness::run(a).await,
        Cmd::Audit { cmd: sub } => cmd::audit::run(sub).await,
        Cmd::Participant { cmd: sub } => cmd::participant::run(sub).await,
        Cmd::Bench(a) => cmd::bench::run(a).await,
        Cmd::Log { cmd: sub } => cmd::log::run(sub),
        Cmd::Init(a) => cmd::init::run(a).await,
        Cmd::Serve(a) => cmd::serve::run(&a.config).await,
        Cmd::Fsck(a) => cmd::fsck::run(a),
    }
}
