//! `consentry witness`: cosign the gateway's checkpoints, round after
//! round; the checks and the state file are `gateway::witness`.

use std::process::ExitCode;
use std::time::Duration;

use gateway::client::{AgencyClient, ClientError};
use gateway::tls::Roots;
use gateway::witness::{round, Round, StateFile, WitnessError};

use super::args::WitnessArgs;
use super::common::{now, read_vkey};

pub async fn run(a: WitnessArgs) -> anyhow::Result<ExitCode> {
    let key = gateway::config::read_key(&a.key)?;
    let cosigner = ledger::Cosigner::new(&a.name, key.clone())?;
    let log_key = read_vkey(&a.vkey)?;
    let client = AgencyClient::with_roots(
        &a.gateway,
        &format!("{}:witness", a.name),
        key,
        &Roots::from_flag(a.ca.as_deref()),
    )?;
    let state = StateFile::new(&a.state);
    loop {
        match round(&client, &log_key, &cosigner, &state, now() as u64).await {
            Ok(Round::Cosigned(size)) => println!("cosigned the checkpoint of {size} entries"),
            Ok(Round::Unchanged(_)) => {}
            Ok(Round::Refused(why)) => {
                eprintln!("REFUSED, nothing cosigned: {why}");
                return Ok(ExitCode::from(2));
            }
            // A gateway this witness does not trust stays untrusted until
            // its operator acts (--ca, or the gateway's certificate): stop.
            Err(WitnessError::Gateway(
                e @ (ClientError::Untrusted { .. }
                | ClientError::TlsFailed { .. }
                | ClientError::Tls(_)),
            )) => return Err(e.into()),
            // One round asked for, and it did nothing: not a success.
            Err(e) if a.once => return Err(e.into()),
            // The gateway down or slow: try again next round; the state is
            // unchanged unless a cosignature was made.
            Err(e) => eprintln!("witness: {e}"),
        }
        if a.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
    }
}
