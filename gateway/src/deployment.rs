//! A deployment: the log plus the consent state replayed from it.
//!
//! Every entry that changes state goes through [`Deployment::submit`]:
//! verify the signatures against keys the registry knows, parse the event,
//! let `policy` check it against the state at this position, append it
//! durably, and only then apply it. One lock orders those steps so that the
//! state is always the replay of exactly the log's prefix.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use ledger::{Envelope, FieldIndexer, KeyLookup, Log, LogConfig, NoteSigner, SledStore, Store};
use policy::{parse_event, ConsentState, Event, Trust};
use thiserror::Error;
use tokio::sync::Mutex;

#[derive(Debug, Error)]
pub enum SubmitError {
    #[error("entry refused: {0}")]
    Entry(#[from] ledger::EntryError),
    #[error("entry is not a consentry event: {0}")]
    Parse(#[from] policy::ParseError),
    #[error("entry refused by policy: {0}")]
    Policy(#[from] policy::ApplyError),
    #[error("log failure: {0}")]
    Log(#[from] ledger::LogError),
}

/// Keys the registry knows at this position, plus the key a self-enrolment
/// entry carries.
pub struct RegistryKeys<'a> {
    pub state: &'a ConsentState,
    pub own: Option<(&'a str, &'a str)>,
}

pub fn decode_key(b64: &str) -> Option<VerifyingKey> {
    let raw: [u8; 32] = B64.decode(b64).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

impl KeyLookup for RegistryKeys<'_> {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey> {
        if let Some((id, key)) = self.own {
            if id == key_id {
                return decode_key(key);
            }
        }
        self.state
            .key(key_id)
            .and_then(|k| decode_key(&k.public_key))
    }
}

pub struct Deployment {
    pub log: Log,
    pub state: Arc<std::sync::RwLock<ConsentState>>,
    order: Mutex<()>,
}

impl Deployment {
    /// Opens the sled store under `data_dir` and replays the log into a
    /// fresh consent state, verifying every entry on the way.
    pub fn open(
        data_dir: &std::path::Path,
        signer: NoteSigner,
        trust: Trust,
    ) -> Result<Self, SubmitError> {
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(data_dir).map_err(ledger::LogError::from)?);
        let log = Log::open(
            store,
            signer,
            Arc::new(FieldIndexer::consentry()),
            LogConfig::default(),
        )?;
        let mut state = ConsentState::new(trust);
        for i in 0..log.size() {
            let env = log.entry(i)?.ok_or(ledger::LogError::Closed)?;
            let event = parse_event(&env.entry)?;
            let verified = env.verify(&RegistryKeys {
                state: &state,
                own: event.self_signing_key(),
            })?;
            let signers: Vec<&str> = verified.signers().collect();
            state.apply(i, &event, &signers)?;
        }
        Ok(Self {
            log,
            state: Arc::new(std::sync::RwLock::new(state)),
            order: Mutex::new(()),
        })
    }

    /// Stops the sequencer after it drains what is queued. Holders of a
    /// cloned `Log` keep it alive; this is the owner's orderly shutdown.
    pub fn close(self) {
        self.log.close();
    }

    /// Verifies, checks, appends durably, then applies one entry.
    pub async fn submit(&self, envelope: Envelope) -> Result<u64, SubmitError> {
        let _turn = self.order.lock().await;
        let event = parse_event(&envelope.entry)?;
        let verified = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let verified = envelope.verify(&RegistryKeys {
                state: &state,
                own: event.self_signing_key(),
            })?;
            let signers: Vec<&str> = verified.signers().collect();
            state.check(&event, &signers)?;
            verified
        };
        let signers: Vec<String> = verified.signers().map(str::to_string).collect();
        let index = self.log.append(verified).await?;
        let refs: Vec<&str> = signers.iter().map(String::as_str).collect();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        // `check` passed at this very position under the lock, so apply
        // cannot disagree; if it ever did, the log is the truth and a
        // restart replays it.
        state.apply(index, &event, &refs)?;
        Ok(index)
    }
}

/// Serialises an event and signs it with one key.
pub fn sign_event(
    event: &Event,
    key_id: &str,
    key: &ed25519_dalek::SigningKey,
) -> Result<Envelope, SubmitError> {
    Ok(Envelope::sign(event.to_json()?, key_id, key))
}
