//! What more than one command needs: the clock, the keys an agency or a
//! checker acts with, and the shapes of what is printed for scripts.

use std::path::Path;

use anyhow::Context;

use super::args::Signer;

/// Seconds since the epoch; a clock before 1970 reads as 0 rather than
/// stopping a command.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The gateway URL, key and key id to act with: explicit flags, or those
/// of `who` in a demo folder.
pub fn identity(
    signer: Signer,
    who: Option<&str>,
) -> anyhow::Result<(String, ed25519_dalek::SigningKey, String)> {
    let Signer {
        dir,
        gateway,
        key,
        key_id,
    } = signer;
    let dir = dir.as_deref();
    let gateway = match (gateway, dir) {
        (Some(g), _) => g,
        (None, Some(d)) => std::fs::read_to_string(d.join(gateway::demo::GATEWAY_URL_FILE))
            .with_context(|| {
                format!(
                    "no gateway url in {} (is the demo running?); pass --gateway",
                    d.display()
                )
            })?
            .trim()
            .to_string(),
        (None, None) => "http://127.0.0.1:8700".into(),
    };
    let key_path = match (key, dir, who) {
        (Some(k), _, _) => k,
        (None, Some(d), Some(w)) => d.join(format!("keys/{w}.key")),
        _ => anyhow::bail!("name a key: --key FILE (or --dir DEMO with --as AGENCY)"),
    };
    let key = gateway::config::read_key(&key_path)?;
    let key_id = match (key_id, who) {
        (Some(k), _) => k,
        (None, Some(w)) => format!("{w}:1"),
        (None, None) => anyhow::bail!("name the key id: --key-id ID"),
    };
    Ok((gateway, key, key_id))
}

/// The log's verifier key from its file (one line; surrounding space is
/// not part of it).
pub fn read_vkey(path: &Path) -> anyhow::Result<ledger::NoteVerifier> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(ledger::NoteVerifier::parse(text.trim())?)
}

/// A comma-separated list of codes; empty items are dropped.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// One JSON document on one line: what `--json` prints, for scripts.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
