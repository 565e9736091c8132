//! `consentry revoke`: a consent revoked with the participant's own key.

use std::process::ExitCode;

use super::args::RevokeArgs;
use super::common::{identity, now};

pub async fn run(a: RevokeArgs) -> anyhow::Result<ExitCode> {
    let RevokeArgs {
        who,
        participant,
        consent,
    } = a;
    let me = identity(who, Some(&participant))?;
    let event = policy::Event::ConsentRevoked(policy::ConsentRevoked {
        v: policy::V1,
        consent_id: consent.clone(),
        participant: participant.clone(),
        at: now(),
        assisted_by: None,
    });
    let env = gateway::deployment::sign_event(&event, &me.key_id, &me.key)?;
    let client = me.client()?;
    let reply = client.post_entry(env.to_json()).await?;
    if reply.status != 201 {
        print!("{}", gateway::client::describe(&reply));
        return Ok(ExitCode::from(2));
    }
    let index = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["index"].as_u64());
    println!(
        "{participant} revoked consent {consent}: log entry #{}",
        index.map_or("?".into(), |i| i.to_string())
    );
    Ok(ExitCode::SUCCESS)
}
