//! `consentry serve`: one process, the embedded store, no outside service.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gateway::config::{Config, Serving};
use gateway::deployment::Deployment;
use gateway::server::AppState;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let c = Config::load(path)?;
    // Before anything is opened: limits that cannot work together are a
    // mistake in the file, not a reason to hold the store.
    let limits = c.limits.http()?;
    c.limits.sessions()?;
    c.limits.intakes()?;
    let key = c.gateway_signing_key()?;
    let dep = deployment(&c, &key)?;
    note_rules_not_in_force(&c, &dep);
    let listener = tokio::net::TcpListener::bind(&c.listen)
        .await
        .with_context(|| format!("binding {}", c.listen))?;
    let bound = listener.local_addr()?;
    // Before the store is served: TLS, or plain HTTP where it is allowed.
    let tls = match c.serving(bound)? {
        Serving::Tls(files) => Some(gateway::tls::ServerTls::load(files)?),
        Serving::Plain { warning } => {
            if let Some(w) = warning {
                eprintln!("{w}");
            }
            None
        }
    };
    let public_url = public_url(&c, bound);
    let state = AppState::new(
        dep.clone(),
        Arc::new(gateway::clock::SystemClock),
        key,
        c.settings(&public_url)?,
    )?;
    let metrics_listener = tokio::net::TcpListener::bind(&c.metrics_listen)
        .await
        .with_context(|| format!("binding {} for /metrics", c.metrics_listen))?;
    let metrics_bound = metrics_listener.local_addr()?;
    println!(
        "consentry serving log {} ({} entries) on {bound}, public url {public_url} ({}), metrics on http://{metrics_bound}/metrics",
        c.origin,
        dep.log.size(),
        if tls.is_some() { "TLS" } else { "plain HTTP" },
    );
    gateway::server::serve_until_interrupted(listener, metrics_listener, state, &limits, tls)
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// The log and the state replayed from it, with the free-space reserve.
fn deployment(c: &Config, key: &ed25519_dalek::SigningKey) -> anyhow::Result<Arc<Deployment>> {
    let signer = ledger::NoteSigner::new(&c.origin, key.clone())?;
    let dep = Arc::new(
        Deployment::open(&c.path(&c.data_dir), signer, c.trust()?)
            .context("opening the deployment")?,
    );
    dep.set_disk_reserve(c.limits.disk_reserve_bytes);
    Ok(dep)
}

/// The files are the editable source; the ledger's governance entry is
/// what is in force. Say so when they differ.
fn note_rules_not_in_force(c: &Config, dep: &Deployment) {
    let Ok(state) = dep.state() else {
        return;
    };
    let vocabulary = std::fs::read_to_string(c.path(&c.vocabulary))
        .ok()
        .and_then(|t| policy::Vocabulary::from_toml(&t).ok());
    let rules = std::fs::read_to_string(c.path(&c.rules))
        .ok()
        .and_then(|t| policy::Rules::from_toml(&t).ok());
    if vocabulary.as_ref() != Some(state.vocabulary()) || rules.as_ref() != Some(state.rules()) {
        eprintln!(
            "note: {} or {} differ from the rules in force (version {}); they take effect only when a governance-signed governance.rules entry is submitted",
            c.vocabulary.display(),
            c.rules.display(),
            state.rules_version()
        );
    }
}

/// A config may listen on port 0 (tests): agencies then sign against the
/// port actually bound.
fn public_url(c: &Config, bound: SocketAddr) -> String {
    match c.public_url.strip_suffix(":0") {
        Some(base) => format!("{base}:{}", bound.port()),
        None => c.public_url.clone(),
    }
}
