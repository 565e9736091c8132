//! `consentry init`: a new deployment in a folder, and what to do next.

use std::process::ExitCode;

use gateway::config::{InitTls, TlsMade};

use super::args::InitArgs;
use super::common::now;

pub async fn run(a: InitArgs) -> anyhow::Result<ExitCode> {
    let tls = match &a.tls {
        None => None,
        Some(list) => Some(InitTls {
            hosts: gateway::tls::pki::Host::parse_list(list)?,
            ca_key: a.tls_ca_key.clone(),
        }),
    };
    let done = gateway::config::init(
        &a.dir,
        &a.governance_key,
        &a.listen,
        &a.metrics_listen,
        &a.origin,
        tls.as_ref(),
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
    if let Some(t) = &done.tls {
        print_tls(t);
    }
    println!(
        "run it: cargo run --release --bin consentry -- serve --config {}",
        done.config.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `--tls` made, and what the operator does with each file.
fn print_tls(t: &TlsMade) {
    println!(
        "HTTPS at {}: a deployment CA constrained to this deployment's names, {} (public); the server's certificate {} and key {} (owner-only); the gateway's client certificate for record systems that ask for it, {} and key {} (owner-only)",
        t.public_url,
        t.ca_cert.display(),
        t.server_cert.display(),
        t.server_key.display(),
        t.client_cert.display(),
        t.client_key.display(),
    );
    match &t.ca_key {
        Some(k) => println!(
            "the CA's private key is {} (owner-only): it issues certificates for these names; keep it offline like the governance key",
            k.display()
        ),
        None => println!(
            "the CA's private key was discarded once it had issued: to issue again, run init in a new folder (or keep it next time with --tls-ca-key PATH)"
        ),
    }
    println!(
        "clients trust {} with --ca (consentry request, intake, revoke, participant, audit, witness: --ca {}); record systems that check the gateway's client certificate trust it too",
        t.ca_cert.display(),
        t.ca_cert.display(),
    );
    println!(
        "a phone or browser trusting this private root is for pilots only: a real deployment uses a real certificate (a county CA, or ACME), set in [tls] cert and key"
    );
}
