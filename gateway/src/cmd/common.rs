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

/// Who acts, where, and whose certificates they trust there.
pub struct Acting {
    pub gateway: String,
    pub key: ed25519_dalek::SigningKey,
    pub key_id: String,
    pub roots: gateway::tls::Roots,
}

impl Acting {
    /// The agency client these name (its key moved into it).
    pub fn client(self) -> anyhow::Result<gateway::client::AgencyClient> {
        Ok(gateway::client::AgencyClient::with_roots(
            &self.gateway,
            &self.key_id,
            self.key,
            &self.roots,
        )?)
    }
}

/// The gateway URL, key, key id and trust to act with: explicit flags, or
/// those of `who` in a demo folder.
pub fn identity(signer: Signer, who: Option<&str>) -> anyhow::Result<Acting> {
    let Signer {
        dir,
        gateway,
        key,
        key_id,
        ca,
    } = signer;
    let dir = dir.as_deref();
    let gateway = match (gateway, dir) {
        (Some(g), _) => g,
        (None, Some(d)) => demo_gateway(d)?,
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
    let roots = roots(ca.as_deref(), dir, &gateway);
    Ok(Acting {
        gateway,
        key,
        key_id,
        roots,
    })
}

/// The URL the demo in `dir` serves at, as it wrote it.
pub fn demo_gateway(dir: &Path) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE))
            .with_context(|| {
                format!(
                    "no gateway url in {} (is the demo running?); pass --gateway",
                    dir.display()
                )
            })?
            .trim()
            .to_string(),
    )
}

/// Whose certificates a client of `gateway` trusts: `--ca FILE`; else,
/// with `--dir DEMO` and an https gateway, the demo's own CA (the folder
/// named is the trust given); else the system's roots. Never none.
pub fn roots(ca: Option<&Path>, dir: Option<&Path>, gateway: &str) -> gateway::tls::Roots {
    use gateway::tls::Roots;
    if let Some(ca) = ca {
        return Roots::File(ca.into());
    }
    match dir.map(|d| d.join(gateway::demo::CA_FILE)) {
        Some(demo_ca) if gateway.starts_with("https://") && demo_ca.exists() => {
            Roots::File(demo_ca)
        }
        _ => Roots::System,
    }
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
