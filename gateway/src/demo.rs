//! `consentry demo`: a ready-made deployment in a folder: deployment keys,
//! four sample agencies with key files, two participants and a consent, all
//! as real signed ledger entries on the embedded sled store.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use ledger::NoteSigner;
use policy::{
    AgencyEnrolled, ConsentGranted, Event, Language, ParticipantEnrolled, Parties, Role, Trust, V1,
};

use crate::deployment::{sign_event, Deployment, SubmitError};

pub const ORIGIN: &str = "demo.consentry.local/log";

pub struct DemoKeys {
    pub governance: SigningKey,
    pub gateway: NoteSigner,
}

/// Loads a 32-byte seed from `path`, creating it (mode 0600) if absent.
fn seed_file(path: &Path) -> std::io::Result<SigningKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let raw: [u8; 32] = B64
            .decode(text.trim())
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a base64 ed25519 seed", path.display()),
                )
            })?;
        return Ok(SigningKey::from_bytes(&raw));
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(path, &B64.encode(key.to_bytes()))?;
    Ok(key)
}

fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    writeln!(f, "{text}")
}

pub fn keys(dir: &Path) -> anyhow::Result<DemoKeys> {
    std::fs::create_dir_all(dir.join("keys"))?;
    let governance = seed_file(&dir.join("keys/governance.key"))?;
    let gateway = NoteSigner::new(ORIGIN, seed_file(&dir.join("keys/gateway.key"))?)?;
    std::fs::write(
        dir.join("keys/log.vkey"),
        format!("{}\n", gateway.verifier()),
    )?;
    let k = DemoKeys {
        governance,
        gateway,
    };
    write_trust(&dir.join(TRUST_FILE), &trust(&k))?;
    Ok(k)
}

/// The public trust roots, for tools that must not read private keys.
pub const TRUST_FILE: &str = "keys/trust.json";

pub fn write_trust(path: &Path, t: &Trust) -> std::io::Result<()> {
    let json = serde_json::json!({
        "governance_key_id": t.governance_key_id,
        "governance_public_key": t.governance_public_key,
        "gateway_key_id": t.gateway_key_id,
        "gateway_public_key": t.gateway_public_key,
    });
    std::fs::write(path, format!("{json:#}\n"))
}

/// Reads the public trust roots written by [`write_trust`].
pub fn read_trust(path: &Path) -> anyhow::Result<Trust> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let field = |k: &str| -> anyhow::Result<String> {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("{} has no string {k:?}", path.display()))
    };
    Ok(Trust {
        governance_key_id: field("governance_key_id")?,
        governance_public_key: field("governance_public_key")?,
        gateway_key_id: field("gateway_key_id")?,
        gateway_public_key: field("gateway_public_key")?,
    })
}

pub fn trust(k: &DemoKeys) -> Trust {
    Trust {
        governance_key_id: "governance".into(),
        governance_public_key: B64.encode(k.governance.verifying_key().as_bytes()),
        gateway_key_id: "gateway".into(),
        gateway_public_key: B64.encode(k.gateway.signing_key().verifying_key().as_bytes()),
    }
}

/// (id, name, classes, upstream path)
const AGENCIES: &[(&str, &str, &[&str])] = &[
    (
        "hope-clinic",
        "Hope Recovery Clinic",
        &["clinic", "treatment"],
    ),
    ("riverside-housing", "Riverside Housing", &["housing"]),
    ("northside-jobs", "Northside Job Centre", &["employment"]),
    ("county-court", "County Recovery Court", &["court"]),
];

/// Seeds an empty deployment with the sample registry, participants and
/// consent. Does nothing if the log already has entries.
pub async fn seed(
    dep: &Deployment,
    dir: &Path,
    k: &DemoKeys,
    now: i64,
    upstream: &str,
) -> Result<Vec<PathBuf>, SeedError> {
    if dep.log.size() > 0 {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for (id, name, classes) in AGENCIES {
        let path = dir.join(format!("keys/{id}.key"));
        let key = seed_file(&path).map_err(SeedError::Io)?;
        written.push(path);
        let e = Event::AgencyEnrolled(AgencyEnrolled {
            v: V1,
            agency: id.to_string(),
            name: name.to_string(),
            key_id: format!("{id}:1"),
            public_key: B64.encode(key.verifying_key().as_bytes()),
            upstream: format!("{upstream}/{id}"),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            roles: vec![Role::Agency],
            at: now,
        });
        dep.submit(sign_event(&e, "governance", &k.governance)?)
            .await?;
    }
    for p in ["p-0001", "p-0002"] {
        let path = dir.join(format!("keys/{p}.key"));
        let key = seed_file(&path).map_err(SeedError::Io)?;
        written.push(path);
        let key_id = format!("{p}:1");
        let e = Event::ParticipantEnrolled(ParticipantEnrolled {
            v: V1,
            participant: p.into(),
            key_id: key_id.clone(),
            public_key: B64.encode(key.verifying_key().as_bytes()),
            at: now,
        });
        dep.submit(sign_event(&e, &key_id, &key)?).await?;
        if p == "p-0001" {
            let c = Event::ConsentGranted(ConsentGranted {
                v: V1,
                consent_id: "c-demo-0001".into(),
                participant: p.into(),
                holders: Parties::agencies(&["hope-clinic"]),
                recipients: Parties::agencies(&["riverside-housing"]),
                categories: vec!["social.housing".into(), "health.sud.treatment".into()],
                purposes: vec!["housing-placement".into()],
                effective_at: now,
                expires_at: Some(now + 180 * 86_400),
                signed_at: now,
                language: Language::En,
            });
            dep.submit(sign_event(&c, &key_id, &key)?).await?;
        }
    }
    dep.log.publish_checkpoint().map_err(SubmitError::from)?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("cannot write a demo key: {0}")]
    Io(std::io::Error),
}
