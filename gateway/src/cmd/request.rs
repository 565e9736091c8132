//! `consentry request`: an agency asks for a participant's records.

use std::process::ExitCode;

use gateway::client::{Ask, Reply};

use super::args::RequestArgs;
use super::common::{identity, now, print_json, split_list};

pub async fn run(a: RequestArgs) -> anyhow::Result<ExitCode> {
    let client = identity(a.who, a.agency.as_deref())?.client()?;
    let ask = Ask {
        holder: a.holder,
        participant: a.participant,
        path: a.path,
        purpose: a.purpose,
        categories: split_list(&a.categories),
    };
    let reply = client.request(&ask, now()).await?;
    if a.json {
        print_json(&reply_json(&reply));
    } else {
        print!("{}", gateway::client::describe(&reply));
    }
    Ok(if reply.status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The whole answer; a body that is not JSON is kept as text.
fn reply_json(reply: &Reply) -> serde_json::Value {
    let body: serde_json::Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| String::from_utf8_lossy(&reply.body).into());
    serde_json::json!({
        "status": reply.status,
        "decision_id": reply.decision_id,
        "log_index": reply.index,
        "released": reply.released,
        "notice": reply.notice,
        "body": body,
    })
}
