//! `consentry witness`: cosign the gateway's checkpoints, round after
//! round; the checks and the state file are `gateway::witness`.

use std::process::ExitCode;
use std::time::Duration;

use gateway::client::AgencyClient;
use gateway::witness::{round, Round, StateFile};

use super::args::WitnessArgs;
use super::common::{now, read_vkey};

pub async fn run(a: WitnessArgs) -> anyhow::Result<ExitCode> {
    let key = gateway::config::read_key(&a.key)?;
    let cosigner = ledger::Cosigner::new(&a.name, key.clone())?;
    let log_key = read_vkey(&a.vkey)?;
    let client = AgencyClient::new(&a.gateway, &format!("{}:witness", a.name), key)?;
    let state = StateFile::new(&a.state);
    loop {
        match round(&client, &log_key, &cosigner, &state, now() as u64).await {
            Ok(Round::Cosigned(size)) => println!("cosigned the checkpoint of {size} entries"),
            Ok(Round::Unchanged(_)) => {}
            Ok(Round::Refused(why)) => {
                eprintln!("REFUSED, nothing cosigned: {why}");
                return Ok(ExitCode::from(2));
            }
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
