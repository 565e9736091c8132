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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ledger::{
    Envelope, FieldIndexer, KeyLookup, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store,
};
use policy::{
    access_decided, decide, parse_event, ConsentState, Decision, Event, NoticeKind, Request, Trust,
};
use thiserror::Error;

use crate::clock::{Clock, SystemClock};

/// How far the time an outside signer states may be from the gateway's
/// clock, for entries whose meaning depends on it (a key rotation's wait
/// is counted from its `at`).
pub const ENTRY_SKEW_SECS: i64 = 300;

/// Most rotations one activation round appends: bounds the work of one
/// round; the next round takes the rest.
pub const ACTIVATIONS_PER_ROUND_MAX: usize = 256;

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
    #[error(transparent)]
    Poisoned(#[from] Stopped),
    #[error("the log's queue is full; try again")]
    Busy,
    #[error("the trust roots' gateway key {0:?} is not an ed25519 public key")]
    BadTrust(String),
    #[error("replay failed: {0}")]
    Replay(#[from] audit::ReplayError),
    #[error("the entry says it was made at {at}, more than {ENTRY_SKEW_SECS} s from the gateway's clock ({now}); check the device's clock and sign it again")]
    Skew { at: i64, now: i64 },
    #[error("the log's key is not the trust roots' gateway key, so the gateway cannot sign the notices this entry needs")]
    NoGatewayKey,
    #[error("the data disk has {free_bytes} bytes free, below the reserve of {reserve_bytes}: new work is refused until space is freed (revocations are still taken)")]
    DiskReserve { free_bytes: u64, reserve_bytes: u64 },
}

/// The consent state cannot be read: a panic while an entry was being
/// applied poisoned its lock, so it may no longer be the replay of the log.
/// The deployment has fail-stopped, as on a failed write; a restart
/// replays the durable prefix.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("the consent state was left half-applied by a panic; the deployment stopped: restart it to replay the log")]
pub struct Stopped;

/// The free space kept on the data disk by default: below it new work is
/// refused with a clear answer, rather than the log fail-stopping on a
/// full disk.
pub const DISK_RESERVE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// How free space is read: the data folder's file system, or what a test
/// says.
pub type FreeSpace = Arc<dyn Fn() -> std::io::Result<u64> + Send + Sync>;

fn statvfs_free(dir: &std::path::Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Entries taken even below the disk reserve: they protect a person (a
/// revocation, a cancelled key move) and are small; the reserve is there
/// for them.
fn taken_below_reserve(event: &Event) -> bool {
    matches!(
        event,
        Event::ConsentRevoked(_) | Event::ParticipantRotationCancelled(_)
    )
}

pub use audit::{decode_key, RegistryKeys};

pub struct Deployment {
    pub log: Log,
    /// The replay of exactly the enqueued prefix of the log. Its write lock
    /// is the order in which entries are checked, numbered and applied; it
    /// is never held across an await. Read only through [`Deployment::state`],
    /// which fail-stops on a poisoned lock.
    state: std::sync::RwLock<ConsentState>,
    /// Set when the state may no longer be the replay of the log (a write
    /// failed after entries were applied): every later submit is refused
    /// until a restart replays the durable prefix.
    failed: AtomicBool,
    /// Entries applied that can change a decision (everything but access
    /// records and notices). Written only under the state's write lock, so
    /// a decision taken under the read lock is still the one `decide` gives
    /// at the enqueue position if this did not move in between.
    changes: AtomicU64,
    /// The trust root's gateway key, decoded once: it signs every access
    /// record, and the trust roots never change while the log is open.
    gateway: (String, StaticKeys),
    /// The gateway's own signing key, when the log's key is the trust
    /// roots' gateway key (as `init` and the demo make it): it signs the
    /// notices and activations the deployment writes on its own.
    own_key: Option<ed25519_dalek::SigningKey>,
    /// The gateway's clock: a rotation's wait is measured on it.
    clock: std::sync::RwLock<Arc<dyn Clock>>,
    disk_reserve_bytes: AtomicU64,
    free_space: std::sync::RwLock<FreeSpace>,
}

/// An `access.decided` entry, durable.
#[derive(Debug)]
pub struct Logged {
    pub decision: Decision,
    pub decision_id: String,
    pub index: u64,
    /// The `participant.notice` written with a break-glass allow.
    pub notice_index: Option<u64>,
}

/// True for entries that cannot change what `decide` answers.
fn is_access_record(event: &Event) -> bool {
    matches!(
        event,
        Event::AccessDecided(_)
            | Event::AccessRefused(_)
            | Event::AccessReleased(_)
            | Event::ParticipantNotice(_)
    )
}

/// How many times a decision is retaken when a consent change lands
/// between deciding and enqueueing, before it is taken under the write lock.
const DECIDE_RETRIES_MAX: usize = 4;

/// Replays the log's first `size` entries into a fresh consent state,
/// verifying every signature against the registry as it stood at each
/// position: the state a restart gives, and the one an auditor rebuilds.
pub fn replay(log: &Log, trust: Trust, size: u64) -> Result<ConsentState, SubmitError> {
    let store = log.store().as_ref();
    Ok(audit::replay_store(
        store,
        trust,
        size.min(log.size()),
        |_, _| {},
    )?)
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
        let signer_key = signer.signing_key().clone();
        let log = Log::open(
            store,
            signer,
            Arc::new(FieldIndexer::new(&policy::INDEXED_FIELDS)),
            LogConfig::default(),
        )?;
        let gateway_key = decode_key(&trust.gateway_public_key)
            .ok_or_else(|| SubmitError::BadTrust(trust.gateway_key_id.clone()))?;
        let gateway = (
            trust.gateway_key_id.clone(),
            StaticKeys::default().with(&trust.gateway_key_id, gateway_key),
        );
        let own_key = (signer_key.verifying_key() == gateway_key).then_some(signer_key);
        let state = replay(&log, trust, log.size())?;
        Ok(Self {
            gateway,
            own_key,
            clock: std::sync::RwLock::new(Arc::new(SystemClock)),
            disk_reserve_bytes: AtomicU64::new(DISK_RESERVE_BYTES_DEFAULT),
            free_space: std::sync::RwLock::new({
                let dir = data_dir.to_path_buf();
                Arc::new(move || statvfs_free(&dir))
            }),
            log,
            state: std::sync::RwLock::new(state),
            failed: AtomicBool::new(false),
            changes: AtomicU64::new(0),
        })
    }

    /// The clock the deployment measures waits on: the gateway sets its
    /// own (tests inject one).
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.clock.write().unwrap_or_else(|p| p.into_inner()) = clock;
    }

    /// The free space below which new work is refused.
    pub fn set_disk_reserve(&self, bytes: u64) {
        self.disk_reserve_bytes.store(bytes, Ordering::Release);
    }

    /// How free space is read (tests fill a disk this way).
    pub fn set_free_space(&self, probe: FreeSpace) {
        *self.free_space.write().unwrap_or_else(|p| p.into_inner()) = probe;
    }

    /// Refuses new work while the data disk is below its reserve. A disk
    /// that cannot be asked is not a reason to refuse: the write itself
    /// fails, and fail-stops, if space really is gone.
    fn check_disk(&self, protects_a_person: bool) -> Result<(), SubmitError> {
        if protects_a_person {
            return Ok(());
        }
        let reserve_bytes = self.disk_reserve_bytes.load(Ordering::Acquire);
        if reserve_bytes == 0 {
            return Ok(());
        }
        let probe = self
            .free_space
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match probe() {
            Ok(free_bytes) if free_bytes < reserve_bytes => Err(SubmitError::DiskReserve {
                free_bytes,
                reserve_bytes,
            }),
            _ => Ok(()),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.read().unwrap_or_else(|p| p.into_inner()).now()
    }

    /// Stops the sequencer after it drains what is queued. Holders of a
    /// cloned `Log` keep it alive; this is the owner's orderly shutdown.
    pub fn close(self) {
        self.log.close();
    }

    /// The consent state at the log's enqueued prefix, for reading. The
    /// guard is held for as long as the caller keeps it: never across an
    /// await. A poisoned lock stops the deployment instead of reading on.
    pub fn state(&self) -> Result<std::sync::RwLockReadGuard<'_, ConsentState>, Stopped> {
        self.state.read().map_err(|_| self.stop())
    }

    /// The state for the one path that changes it (check, enqueue, apply).
    fn state_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, ConsentState>, Stopped> {
        self.state.write().map_err(|_| self.stop())
    }

    fn stop(&self) -> Stopped {
        self.failed.store(true, Ordering::Release);
        Stopped
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
        if let Event::ParticipantKeyRotated(e) = &event {
            // The wait runs from `at`: a signer must not be able to start
            // it in the past (or delay it into the future).
            let now = self.now();
            if (e.at - now).abs() > ENTRY_SKEW_SECS {
                return Err(SubmitError::Skew { at: e.at, now });
            }
        }
        let keys = {
            let state = self.state()?;
            let registry = RegistryKeys {
                state: &state,
                own: event.self_signing_key(),
            };
            let mut keys = StaticKeys::default();
            for s in &envelope.signatures {
                // An id the registry does not know is checked against a
                // key nobody holds: the same verification as for a known
                // one (refused as a bad signature, the same answer), so
                // that the time taken does not tell who is enrolled.
                let k = registry
                    .verifying_key(&s.key_id)
                    .unwrap_or(*crate::httpsig::unheld_key());
                keys = keys.with(&s.key_id, k);
            }
            keys
        };
        let verified = envelope.verify(&keys)?;
        let signers: Vec<String> = verified.signers().map(str::to_string).collect();
        let refs: Vec<&str> = signers.iter().map(String::as_str).collect();
        self.append(&event, self.log.prepare(verified), &refs).await
    }

    /// The shared tail of every write: room in the queue before the lock
    /// (so that holding it never waits on the disk), then under the write
    /// lock check, enqueue and apply, with the notice the person must get
    /// about it (if any) right behind it, then wait for durability outside
    /// it. Answers the entry's index once both are durable.
    async fn append(
        &self,
        event: &Event,
        prepared: ledger::Prepared,
        signers: &[&str],
    ) -> Result<u64, SubmitError> {
        self.check_disk(taken_below_reserve(event))?;
        let notice = notice_kind(event);
        let reservation = self.log.reserve().await?;
        let second = match notice {
            Some(_) => Some(self.log.reserve().await?),
            None => None,
        };
        let pendings = {
            let mut state = self.state_mut()?;
            if notice.is_some() && self.own_key.is_none() {
                return Err(SubmitError::NoGatewayKey);
            }
            let first = self.enqueue_locked(&mut state, reservation, prepared, event, signers)?;
            let mut pendings = vec![first];
            if let (Some((participant, kind)), Some(r), Some(key)) =
                (notice, second, self.own_key.as_ref())
            {
                let index = pendings.first().map(ledger::Pending::index);
                let notice = Event::ParticipantNotice(policy::ParticipantNotice {
                    v: policy::V1or2::V2,
                    participant: participant.to_owned(),
                    at: self.now(),
                    kind: kind.code().into(),
                    decision_id: None,
                    entry_index: index,
                });
                let prep = self.sign_own(&notice, key)?;
                let gw = [self.gateway.0.as_str()];
                pendings.push(self.enqueue_locked(&mut state, r, prep, &notice, &gw)?);
            }
            pendings
        };
        let mut first = None;
        for p in pendings {
            let index = self.durable(p).await?;
            first.get_or_insert(index);
        }
        first.ok_or(SubmitError::Busy)
    }

    /// Appends a `participant.key_activated` for every pending rotation
    /// whose wait has passed on the gateway's clock (at most
    /// [`ACTIVATIONS_PER_ROUND_MAX`]), each with its notice; answers their
    /// indexes once durable. A rotation cancelled in the meantime is
    /// skipped: policy refuses its activation.
    pub async fn activate_due_rotations(&self) -> Result<Vec<u64>, SubmitError> {
        let Some(key) = self.own_key.clone() else {
            return Err(SubmitError::NoGatewayKey);
        };
        let now = self.now();
        let due = {
            let state = self.state()?;
            state.due_rotations(now, ACTIVATIONS_PER_ROUND_MAX)
        };
        let mut done = Vec::with_capacity(due.len());
        for r in due {
            let event = Event::ParticipantKeyActivated(policy::ParticipantKeyActivated {
                v: policy::V1,
                participant: r.participant,
                key_id: r.key_id,
                rotation_index: r.index,
                at: now,
            });
            match self.submit_own(&event, &key).await {
                Ok(index) => done.push(index),
                Err(SubmitError::Policy(policy::ApplyError::NoPendingRotation)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Check, enqueue (fixing the index) and apply, under the write lock.
    fn enqueue_locked(
        &self,
        state: &mut ConsentState,
        reservation: ledger::Reservation<'_>,
        prepared: ledger::Prepared,
        event: &Event,
        signers: &[&str],
    ) -> Result<ledger::Pending, SubmitError> {
        state.check(event, signers)?;
        let pending = reservation.enqueue(prepared)?;
        self.apply_enqueued(state, pending.index(), event, signers)?;
        Ok(pending)
    }

    /// An entry the gateway signs with `key`, which must be the trust
    /// root's gateway key, ready to enqueue (see `Envelope::sign_verified`).
    fn sign_own(
        &self,
        event: &Event,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<ledger::Prepared, SubmitError> {
        let (key_id, own) = &self.gateway;
        let verified = Envelope::sign_verified(event.to_json()?, key_id, key, own)?;
        Ok(self.log.prepare(verified))
    }

    /// Appends an entry the gateway itself signs (`access.refused`,
    /// `access.released`) with `key`, which must be the trust root's
    /// gateway key: signed without re-verifying, then checked, enqueued
    /// and applied like any entry, and answered once durable.
    pub async fn submit_own(
        &self,
        event: &Event,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<u64, SubmitError> {
        if !self.is_healthy() {
            return Err(SubmitError::Stopped);
        }
        let prepared = self.sign_own(event, key)?;
        self.append(event, prepared, &[self.gateway.0.as_str()])
            .await
    }

    /// Applies an entry just enqueued at `index`, under the write lock.
    fn apply_enqueued(
        &self,
        state: &mut ConsentState,
        index: u64,
        event: &Event,
        signers: &[&str],
    ) -> Result<(), SubmitError> {
        if let Err(e) = state.apply(index, event, signers) {
            // `check` passed at this very position under this lock, so
            // this is a bug; the entry is in the log but not the state.
            self.failed.store(true, Ordering::Release);
            return Err(e.into());
        }
        if !is_access_record(event) {
            self.changes.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    async fn durable(&self, pending: ledger::Pending) -> Result<u64, SubmitError> {
        match pending.durable().await {
            Ok(index) => Ok(index),
            Err(e) => {
                // The state holds entries that may never be durable.
                self.failed.store(true, Ordering::Release);
                Err(e.into())
            }
        }
    }

    /// Decides `request` at `now` against the state at the position its
    /// `access.decided` entry takes, logs that entry (signed by the
    /// gateway's `key`) and, for a break-glass allow, a `participant.notice`;
    /// answers once both are durable.
    ///
    /// The decision is taken under the read lock and signed outside any
    /// lock; under the write lock, for microseconds, it is enqueued only if
    /// no entry that can change a decision landed in between (else it is
    /// taken again; the last try holds the write lock throughout).
    /// Concurrent requests so share one sync.
    pub async fn decide_and_log(&self, d: &Deciding<'_>) -> Result<Logged, SubmitError> {
        if !self.is_healthy() {
            return Err(SubmitError::Stopped);
        }
        self.check_disk(false)?;
        for attempt in 0..=DECIDE_RETRIES_MAX {
            // Queue room before any lock; a second slot for a notice.
            let r1 = self.log.reserve().await?;
            let r2 = self.log.reserve().await?;
            let locked = attempt == DECIDE_RETRIES_MAX;
            let Some((decision, pendings)) = self.decide_enqueue(d, locked, r1, r2)? else {
                continue;
            };
            let mut indexes = Vec::with_capacity(pendings.len());
            for p in pendings {
                indexes.push(self.durable(p).await?);
            }
            return Ok(Logged {
                decision,
                decision_id: d.decision_id.to_owned(),
                index: indexes.first().copied().unwrap_or_default(),
                notice_index: indexes.get(1).copied(),
            });
        }
        Err(SubmitError::Busy)
    }

    /// One attempt of [`Deployment::decide_and_log`]; `None` if a change
    /// landed between deciding and enqueueing.
    fn decide_enqueue(
        &self,
        d: &Deciding<'_>,
        locked: bool,
        r1: ledger::Reservation<'_>,
        r2: ledger::Reservation<'_>,
    ) -> Result<Option<(Decision, Vec<ledger::Pending>)>, SubmitError> {
        let build = |state: &ConsentState| -> Result<_, SubmitError> {
            let decision = decide(state, d.request, d.now);
            let mut entries = Vec::with_capacity(2);
            let decided = Event::AccessDecided(access_decided(
                &decision,
                d.request,
                d.now,
                d.decision_id,
                d.evidence.clone(),
                d.forwarded.clone(),
            )?);
            entries.push(decided);
            if decision.break_glass() && decision.is_allow() {
                entries.push(Event::ParticipantNotice(policy::ParticipantNotice {
                    v: policy::V1or2::V2,
                    participant: d.request.participant.clone(),
                    at: d.now,
                    kind: NoticeKind::BreakGlass.code().into(),
                    decision_id: Some(d.decision_id.to_owned()),
                    entry_index: None,
                }));
            }
            let mut prepared = Vec::with_capacity(2);
            for event in entries {
                let prep = self.sign_own(&event, d.key)?;
                prepared.push((event, prep));
            }
            Ok((decision, prepared))
        };
        let write = || self.state_mut();
        let (mut state, (decision, prepared)) = if locked {
            let state = write()?;
            let built = build(&state)?;
            (state, built)
        } else {
            let (built, seen) = {
                let state = self.state()?;
                let seen = self.changes.load(Ordering::Acquire);
                (build(&state)?, seen)
            };
            let state = write()?;
            if self.changes.load(Ordering::Acquire) != seen {
                return Ok(None);
            }
            (state, built)
        };
        let signers = [self.gateway.0.as_str()];
        let mut pendings = Vec::with_capacity(2);
        for ((event, prep), r) in prepared.into_iter().zip([r1, r2]) {
            pendings.push(self.enqueue_locked(&mut state, r, prep, &event, &signers)?);
        }
        Ok(Some((decision, pendings)))
    }
}

/// What [`Deployment::decide_and_log`] needs: the request, the time, the
/// new decision id, the evidence that authenticated the agency, what the
/// request asks to have forwarded, and the gateway's signing key.
pub struct Deciding<'a> {
    pub request: &'a Request,
    pub now: i64,
    pub decision_id: &'a str,
    pub evidence: policy::Evidence,
    pub forwarded: Option<policy::Forwarded>,
    pub key: &'a ed25519_dalek::SigningKey,
}

/// The notice the person named by `event` must get, if any: a request to
/// move their key, its cancellation and its activation, told at once.
fn notice_kind(event: &Event) -> Option<(&str, NoticeKind)> {
    match event {
        Event::ParticipantKeyRotated(e) => Some((&e.participant, NoticeKind::KeyRotationRequested)),
        Event::ParticipantRotationCancelled(e) => {
            Some((&e.participant, NoticeKind::KeyRotationCancelled))
        }
        Event::ParticipantKeyActivated(e) => {
            Some((&e.participant, NoticeKind::KeyRotationActivated))
        }
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn open(dir: &std::path::Path) -> Deployment {
        let key = |b: u8| ed25519_dalek::SigningKey::from_bytes(&[b; 32]);
        let b64 = |k: &ed25519_dalek::SigningKey| {
            base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
        };
        let trust = policy::Trust {
            governance_key_id: "governance".into(),
            governance_public_key: b64(&key(1)),
            gateway_key_id: "gateway".into(),
            gateway_public_key: b64(&key(2)),
            board: Vec::new(),
            quorum: 1,
        };
        let signer = ledger::NoteSigner::new("test.consentry/log", key(2)).unwrap();
        Deployment::open(dir, signer, trust).unwrap()
    }

    /// A panic while the state is being changed leaves it maybe half
    /// applied: no longer the replay of the log. The deployment stops, as
    /// on a failed write, rather than read on.
    #[tokio::test]
    async fn a_poisoned_state_stops_the_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let dep = Arc::new(open(dir.path()));
        assert!(dep.state().is_ok());
        assert!(dep.is_healthy());
        let d = dep.clone();
        let panicked = std::thread::spawn(move || {
            let _held = d.state.write().unwrap();
            panic!("a bug in the middle of an apply");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(dep.state().err(), Some(Stopped));
        assert!(!dep.is_healthy(), "the health route must say so");
        let event = Event::ParticipantNotice(policy::ParticipantNotice {
            v: policy::V1or2::V2,
            participant: "p-0001".into(),
            at: 0,
            kind: NoticeKind::BreakGlass.code().into(),
            decision_id: None,
            entry_index: None,
        });
        let key = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
        assert!(matches!(
            dep.submit_own(&event, &key).await,
            Err(SubmitError::Stopped)
        ));
        assert_eq!(dep.log.size(), 0, "nothing was appended");
    }
}
