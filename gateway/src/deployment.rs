//! A deployment: the log plus the consent state replayed from it.
//!
//! Every entry that changes state goes through [`Deployment::submit`]:
//! parse the event, verify the signatures against keys the registry knows,
//! then, under one short lock, let `policy` check it against the state at
//! this position, enqueue it in the log (which fixes its index) and apply
//! it; and answer only once it is durable. The state is therefore always
//! the replay of exactly the enqueued prefix, in log order, and everything
//! answered is durable. A failed write stops the deployment (fail-stop)
//! until a restart replays the durable prefix.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use std::sync::atomic::{AtomicBool, Ordering};

use ledger::{
    Envelope, FieldIndexer, KeyLookup, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store,
};
use policy::{parse_event, ConsentState, Event, Trust};
use thiserror::Error;

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
    #[error("the deployment stopped after a failed write; restart it to replay the log")]
    Stopped,
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
    /// The replay of exactly the enqueued prefix of the log. Its write lock
    /// is the order in which entries are checked, numbered and applied; it
    /// is never held across an await.
    pub state: Arc<std::sync::RwLock<ConsentState>>,
    /// Set when the state may no longer be the replay of the log (a write
    /// failed after entries were applied): every later submit is refused
    /// until a restart replays the durable prefix.
    failed: AtomicBool,
}

/// Replays the log's first `size` entries into a fresh consent state,
/// verifying every signature against the registry as it stood at each
/// position: the state a restart gives, and the one an auditor rebuilds.
pub fn replay(log: &Log, trust: Trust, size: u64) -> Result<ConsentState, SubmitError> {
    replay_store(log.store().as_ref(), trust, size.min(log.size()), |_, _| {})
}

/// [`replay`] straight from a store (e.g. one opened read-only), telling
/// `on_key` every (key id, public key) that verified an entry.
pub fn replay_store(
    store: &dyn Store,
    trust: Trust,
    size: u64,
    mut on_key: impl FnMut(&str, VerifyingKey),
) -> Result<ConsentState, SubmitError> {
    let mut state = ConsentState::new(trust);
    for i in 0..size {
        let rec = store.record(i).map_err(ledger::LogError::from)?.ok_or(
            ledger::LogError::Inconsistent(format!("entry {i} is missing")),
        )?;
        let env = Envelope::decode(&rec)?;
        let event = parse_event(&env.entry)?;
        let keys = RegistryKeys {
            state: &state,
            own: event.self_signing_key(),
        };
        for s in &env.signatures {
            if let Some(k) = keys.verifying_key(&s.key_id) {
                on_key(&s.key_id, k);
            }
        }
        let verified = env.verify(&keys)?;
        let signers: Vec<&str> = verified.signers().collect();
        state.apply(i, &event, &signers)?;
    }
    Ok(state)
}

impl Deployment {
    /// Opens the store under `data_dir` and replays the log into a fresh
    /// consent state, verifying every entry on the way.
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
        let state = replay(&log, trust, log.size())?;
        Ok(Self {
            log,
            state: Arc::new(std::sync::RwLock::new(state)),
            failed: AtomicBool::new(false),
        })
    }

    /// Stops the sequencer after it drains what is queued. Holders of a
    /// cloned `Log` keep it alive; this is the owner's orderly shutdown.
    pub fn close(self) {
        self.log.close();
    }

    /// False once a write failed: the deployment then refuses every change
    /// until a restart replays the durable prefix.
    pub fn is_healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire) && !self.log.is_poisoned()
    }

    /// Verifies, checks, enqueues and applies one entry, then waits until
    /// it is durable; answers only then.
    ///
    /// Signatures are verified outside any lock, with the keys the registry
    /// holds for the signers' key ids (a key id is never reused, so the key
    /// cannot change before the check). Under the state's write lock, for
    /// microseconds: `check` against the state at this position, enqueue
    /// (which fixes the index), apply. The wait for the sync happens after
    /// the lock is released, so concurrent submitters share one sync.
    pub async fn submit(&self, envelope: Envelope) -> Result<u64, SubmitError> {
        if !self.is_healthy() {
            return Err(SubmitError::Stopped);
        }
        // The one entry size limit is the ledger's; `policy` relies on it,
        // so it is checked before the entry is parsed.
        if envelope.entry.len() > ledger::entry::ENTRY_BYTES_MAX {
            return Err(ledger::EntryError::Oversized {
                len: envelope.entry.len(),
                max: ledger::entry::ENTRY_BYTES_MAX,
            }
            .into());
        }
        let event = parse_event(&envelope.entry)?;
        let keys = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let registry = RegistryKeys {
                state: &state,
                own: event.self_signing_key(),
            };
            let mut keys = StaticKeys::default();
            for s in &envelope.signatures {
                if let Some(k) = registry.verifying_key(&s.key_id) {
                    keys = keys.with(&s.key_id, k);
                }
            }
            keys
        };
        let verified = envelope.verify(&keys)?;
        let signers: Vec<String> = verified.signers().map(str::to_string).collect();
        let refs: Vec<&str> = signers.iter().map(String::as_str).collect();
        let prepared = self.log.prepare(verified);
        // Room in the queue is taken before the lock, so that holding the
        // lock never waits on the disk.
        let reservation = self.log.reserve().await?;
        let pending = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.check(&event, &refs)?;
            let pending = reservation.enqueue(prepared)?;
            if let Err(e) = state.apply(pending.index(), &event, &refs) {
                // `check` passed at this very position under this lock, so
                // this is a bug; the entry is in the log but not the state.
                self.failed.store(true, Ordering::Release);
                return Err(e.into());
            }
            pending
        };
        match pending.durable().await {
            Ok(index) => Ok(index),
            Err(e) => {
                // The state holds entries that may never be durable.
                self.failed.store(true, Ordering::Release);
                Err(e.into())
            }
        }
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
