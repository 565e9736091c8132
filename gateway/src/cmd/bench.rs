//! `consentry bench`: the load generator of `bench/run.sh`. Requests are
//! signed before the clock starts (`gateway::bench`), then sent.

use std::path::Path;
use std::process::ExitCode;

use gateway::bench::{Measured, Ready};
use gateway::client::{AgencyClient, Ask};
use gateway::tls::Roots;

use super::args::{BenchArgs, Signer};
use super::common::{identity, now};

/// The mix's traffic as (asking agency, holder, participant, purpose,
/// categories): allowed (p-0001 consented to Riverside Housing), denied
/// (no consent; wrong purpose), and emergencies (Hope Recovery Clinic, a
/// clinic, under break-glass). A quarter each, so that no agency outruns
/// its nonce cache (100,000 nonces kept 90 s: about 1,100 requests a
/// second per agency).
const MIX: [(&str, &str, &str, &str, &[&str]); 8] = [
    (
        "riverside-housing",
        "hope-clinic",
        "p-0001",
        "housing-placement",
        &["health.sud.treatment", "social.peer-support"],
    ),
    (
        "riverside-housing",
        "hope-clinic",
        "p-0001",
        "housing-placement",
        &["health.sud.treatment", "social.peer-support"],
    ),
    (
        "northside-jobs",
        "hope-clinic",
        "p-0001",
        "employment-support",
        &["social.employment"],
    ),
    (
        "northside-jobs",
        "hope-clinic",
        "p-0002",
        "employment-support",
        &["social.employment"],
    ),
    (
        "county-court",
        "hope-clinic",
        "p-0002",
        "care-coordination",
        &["health.sud.treatment"],
    ),
    (
        "county-court",
        "hope-clinic",
        "p-0001",
        "care-coordination",
        &["health.sud.treatment"],
    ),
    (
        "hope-clinic",
        "riverside-housing",
        "p-0001",
        "medical-emergency",
        &["health.sud"],
    ),
    (
        "hope-clinic",
        "riverside-housing",
        "p-0002",
        "medical-emergency",
        &["health.sud"],
    ),
];

/// What the gateway and direct targets release.
const CATEGORIES: [&str; 2] = ["health.sud.treatment", "social.peer-support"];

pub async fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    // `--ca FILE`, else the system's roots; never no verification.
    let roots = Roots::from_flag(a.ca.as_deref());
    let ready = match a.target.as_str() {
        "gateway" => gateway_requests(&a, &roots)?,
        "mix" => mix_requests(&a, &roots)?,
        "direct" | "proxy" => upstream_requests(&a)?,
        other => anyhow::bail!("unknown target {other:?}: gateway, mix, direct or proxy"),
    };
    let m = gateway::bench::run(ready, a.connections, a.rate, &roots).await?;
    print_measured(&a, &m);
    if let Some(why) = &m.failure {
        eprintln!("first request without an answer: {why}");
    }
    // In the mix, a denial is an answer too; anything else (a 5xx, a
    // dropped connection) fails the run.
    let answered = if a.target == "mix" {
        m.statuses
            .iter()
            .filter(|(s, _)| matches!(**s, 200 | 403))
            .map(|(_, n)| *n)
            .sum::<usize>()
    } else {
        m.ok()
    };
    Ok(if answered == m.sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// One allowed request, repeated, as Riverside Housing.
fn gateway_requests(a: &BenchArgs, roots: &Roots) -> anyhow::Result<Vec<Ready>> {
    let client = demo_agency(&a.dir, &a.url, "riverside-housing", roots)?;
    let ask = Ask {
        holder: "hope-clinic".into(),
        participant: "p-0001".into(),
        path: "Observation".into(),
        purpose: "housing-placement".into(),
        categories: CATEGORIES.map(String::from).to_vec(),
    };
    Ok(gateway::bench::presign_gateway(
        &client,
        &ask,
        a.requests,
        now(),
    )?)
}

fn mix_requests(a: &BenchArgs, roots: &Roots) -> anyhow::Result<Vec<Ready>> {
    let mut mix = Vec::new();
    for (agency, holder, participant, purpose, categories) in MIX {
        let ask = Ask {
            holder: holder.into(),
            participant: participant.into(),
            path: "Observation".into(),
            purpose: purpose.into(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
        };
        mix.push((demo_agency(&a.dir, &a.url, agency, roots)?, ask));
    }
    Ok(gateway::bench::presign_mix(&mix, a.requests, now())?)
}

/// The gateway's forwarded request, signed for the record system itself
/// (direct) or for the one behind a proxy.
fn upstream_requests(a: &BenchArgs) -> anyhow::Result<Vec<Ready>> {
    let key = gateway::config::read_key(&a.dir.join("keys/gateway.key"))?;
    let base = a.sign_for.clone().unwrap_or_else(|| a.url.clone());
    let base = base.trim_end_matches('/');
    Ok(gateway::bench::presign_upstream(
        &format!("{base}/Observation"),
        &a.url,
        "p-0001",
        &CATEGORIES.map(String::from),
        gateway::upstream::GATEWAY_KEY_ID,
        &key,
        a.requests,
        now(),
    )?)
}

/// A demo agency's client, with its key from the demo folder.
fn demo_agency(dir: &Path, url: &str, agency: &str, roots: &Roots) -> anyhow::Result<AgencyClient> {
    let signer = Signer {
        dir: Some(dir.to_path_buf()),
        gateway: Some(url.to_string()),
        key: None,
        key_id: None,
        ca: None,
    };
    let me = identity(signer, Some(agency))?;
    // Only signs here: `gateway::bench::run` sends, over its own client.
    Ok(AgencyClient::with_roots(url, &me.key_id, me.key, roots)?)
}

fn print_measured(a: &BenchArgs, m: &Measured) {
    println!(
        "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} sent, {} ok, statuses {:?}, {} connections ({} opened){}",
        a.target,
        m.per_sec(),
        m.p50.as_secs_f64() * 1e3,
        m.p99.as_secs_f64() * 1e3,
        m.sent,
        m.ok(),
        m.statuses,
        a.connections,
        m.opened,
        a.rate.map(|r| format!(", offered {r:.0}/s")).unwrap_or_default()
    );
}
