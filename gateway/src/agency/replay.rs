//! Replays across a restart: what a gateway process before this one may
//! have accepted, and how this one refuses it again.
//!
//! The nonce caches live in memory, so a new process cannot remember the
//! nonces the one before it saw. It does not need to, for two reasons:
//!
//! - **The agency path logs every signature it accepts.** A request whose
//!   signature `authenticate` accepted has an effect (an answer with a
//!   decision, or records) only after its `access.decided` entry, carrying
//!   the request digest (SHA-256 of the signature base and the signature,
//!   the same for every copy of the captured bytes), is durable. So at
//!   start the gateway reads those digests back from the log: they *are*
//!   the persisted nonces. (An accepted request that was refused for its
//!   forwarded path or its headers has no such entry; its replay is
//!   refused again for the same reason, which depends on its signed bytes
//!   only. One accepted but never logged, because the log failed or the
//!   process died first, was never answered: serving it once afterwards
//!   is serving it once.)
//! - **Anything else is refused if a process before could have accepted
//!   it** (an auditor's reads are not logged): a signature is accepted at
//!   time `t` only if `created <= t + skew`, and every earlier process
//!   stopped before this one's start `S`, so it can only have accepted
//!   signatures with `created <= S + skew`. This process refuses those
//!   ("signature-before-start"), and accepts only `created > S + skew`,
//!   which no earlier process can have seen. A client with a good clock
//!   waits at most `skew + 1` seconds after a restart.
//!
//! How long a digest matters: a signature accepted at `at` has
//! `created <= at + skew`, so `expires <= at + skew + L` (L, the longest
//! lifetime the policy allows) and is refused as expired once
//! `now > expires + skew`. Digests of decisions older than `S - (L + 2 ×
//! skew)` are not kept, and from `S + L + 2 × skew` on every signature
//! created up to `S + skew` is expired anyway, so the set is dropped.
//!
//! Both arguments read time from the gateway's clock and assume it does
//! not run backwards across a restart; to narrow that, `S` is never
//! earlier than the latest time the gateway wrote into its own access
//! entries. The scan reads every entry once (the replay that opens the
//! deployment already did); the digests kept are bounded
//! ([`DIGESTS_MAX`]), and a log holding more in the window fails closed:
//! every signature created up to `S + skew` is refused.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use policy::Event;

/// Most digests kept from the log: about 48 bytes each. More decisions
/// than this in the last `L + 2 × skew` seconds (about 2,900 a second
/// with the default policy) and the gateway refuses every signature a
/// process before could have accepted, as if it logged nothing.
pub const DIGESTS_MAX: usize = 1 << 20;

/// Why a signature is refused because of the processes before this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Its digest is in the log: it was answered before.
    #[error("this signed request was answered before")]
    Replayed,
    /// A process before this one may have accepted it, and this one
    /// cannot tell.
    #[error("the signature was created before the gateway started; sign the request again")]
    BeforeStart,
}

impl Refusal {
    /// The reason code, as the nonce caches name a replay.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Replayed => "nonce-replayed",
            Refusal::BeforeStart => "signature-before-start",
        }
    }
}

/// Whether the path a signature is checked for logs each accepted
/// signature's digest durably before it has an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digests {
    /// The agency path: `access.decided` carries it.
    Logged,
    /// An auditor's reads: nothing is logged.
    NotLogged,
}

/// What the processes before this one accepted, as far as this one
/// needs to know.
#[derive(Debug)]
pub struct Earlier {
    /// This process's start, `S`.
    start: i64,
    /// `L + 2 × skew`: how long after its decision a digest matters.
    window: i64,
    /// Digests of decisions from `S - window` on; emptied from
    /// `S + window` on, when nothing it holds can verify any more.
    digests: RwLock<HashSet<[u8; 32]>>,
    /// More digests were in the window than [`DIGESTS_MAX`].
    overflow: bool,
    /// The set was freed, the window being over.
    dropped: AtomicBool,
}

/// The log could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("reading the log back for the signatures it accepted: {0}")]
pub struct ScanError(#[from] ledger::LogError);

impl Earlier {
    /// Reads the log's access entries: the latest time the gateway wrote
    /// (so that `S` is at least that, and at least `now`), and the digests
    /// of decisions within `window` before `S`.
    pub fn scan(log: &ledger::Log, now: i64, window: i64) -> Result<Self, ScanError> {
        let mut start = now;
        let mut decided: Vec<(i64, [u8; 32])> = Vec::new();
        let mut newest = i64::MIN;
        let mut overflow = false;
        for index in 0..log.size() {
            let Some(env) = log.entry(index)? else {
                break;
            };
            // Only the gateway's own access entries matter: skip the
            // parse of everything else.
            if !env.entry.windows(8).any(|w| w == b"\"access.") {
                continue;
            }
            let (at, digest) = match policy::parse_event(&env.entry) {
                Ok(Event::AccessDecided(e)) => {
                    let digest = e
                        .evidence
                        .as_ref()
                        .map(|ev| ev.digest.as_str())
                        .or(e.request_digest.as_deref())
                        .and_then(unhex);
                    (e.at, digest)
                }
                Ok(Event::AccessRefused(e)) => (e.at, None),
                Ok(Event::AccessReleased(e)) => (e.at, None),
                _ => continue,
            };
            start = start.max(at);
            newest = newest.max(at);
            if let (Some(d), false) = (digest, overflow) {
                // Those certainly too old for any start at or after
                // `newest` are dropped as the scan goes, which bounds the
                // memory to about the window's decisions; a window too
                // full for that fails closed at once.
                decided.push((at, d));
                if decided.len() > 2 * DIGESTS_MAX {
                    let cutoff = newest.saturating_sub(window);
                    decided.retain(|(at, _)| *at >= cutoff);
                    if decided.len() > DIGESTS_MAX {
                        overflow = true;
                        decided = Vec::new();
                    }
                }
            }
        }
        let cutoff = start.saturating_sub(window);
        let mut digests = HashSet::new();
        for (at, d) in decided {
            if at < cutoff {
                continue;
            }
            if digests.len() >= DIGESTS_MAX {
                overflow = true;
                break;
            }
            digests.insert(d);
        }
        Ok(Self {
            start,
            window,
            digests: RwLock::new(digests),
            overflow,
            dropped: AtomicBool::new(false),
        })
    }

    /// This process's start, `S`, on the gateway's clock.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Refuses a verified signature (created at `created`, with `digest`,
    /// checked at `now` with `skew`) if a process before this one
    /// accepted it, or may have and this one cannot tell.
    pub fn check(
        &self,
        created: i64,
        digest: &str,
        now: i64,
        skew: i64,
        lifetime: Option<i64>,
        path: Digests,
    ) -> Result<(), Refusal> {
        let past_window = now > self.start.saturating_add(self.window);
        if past_window && !self.dropped.load(Ordering::Relaxed) {
            // From here on nothing the set holds can verify: free it.
            *self.digests.write().unwrap_or_else(|p| p.into_inner()) = HashSet::new();
            self.dropped.store(true, Ordering::Relaxed);
        }
        if created > self.start.saturating_add(skew) {
            // No process before this one can have accepted it.
            return Ok(());
        }
        // The digests answer only for a path that logs them, when they
        // were all kept, and for signatures that expire within the
        // window they were kept for.
        let covered = path == Digests::Logged
            && !self.overflow
            && lifetime.is_some_and(|l| l.saturating_add(skew.saturating_mul(2)) <= self.window);
        if !covered {
            return Err(Refusal::BeforeStart);
        }
        let Some(d) = unhex(digest) else {
            return Err(Refusal::BeforeStart);
        };
        if past_window {
            // Nothing created up to S + skew verifies any more (the caller
            // verified this one under a policy the window does not cover,
            // or a clock that ran backwards): fail closed.
            return Err(Refusal::BeforeStart);
        }
        let seen = self
            .digests
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&d);
        if seen {
            Err(Refusal::Replayed)
        } else {
            Ok(())
        }
    }

    /// Digests kept (for tests).
    pub fn len(&self) -> usize {
        self.digests.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A 64-digit lowercase hex digest as bytes.
fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi)?, digit(*lo)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earlier(digests: &[[u8; 32]], overflow: bool) -> Earlier {
        Earlier {
            start: 1_000,
            window: 360,
            digests: RwLock::new(digests.iter().copied().collect()),
            overflow,
            dropped: AtomicBool::new(false),
        }
    }

    const D: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn what_a_process_before_may_have_accepted_is_refused() {
        let seen = earlier(&[unhex(D).unwrap()], false);
        let other = &D.replace("00", "11");
        let ok = |created, digest, path| seen.check(created, digest, 1_010, 30, Some(300), path);
        // Logged and seen: a replay, whenever it was created.
        assert_eq!(ok(990, D, Digests::Logged), Err(Refusal::Replayed));
        assert_eq!(ok(1_030, D, Digests::Logged), Err(Refusal::Replayed));
        // Logged and not seen: never answered before.
        assert_eq!(ok(1_030, other, Digests::Logged), Ok(()));
        // Not logged: refused up to S + skew, accepted after.
        assert_eq!(
            ok(1_030, other, Digests::NotLogged),
            Err(Refusal::BeforeStart)
        );
        assert_eq!(ok(1_031, other, Digests::NotLogged), Ok(()));
        // Created after S + skew: no earlier process saw it.
        assert_eq!(ok(1_031, D, Digests::Logged), Ok(()));
        // A lifetime longer than the window the digests cover: refused.
        assert_eq!(
            seen.check(1_000, other, 1_010, 30, Some(3_600), Digests::Logged),
            Err(Refusal::BeforeStart)
        );
        assert_eq!(
            seen.check(1_000, other, 1_010, 30, None, Digests::Logged),
            Err(Refusal::BeforeStart)
        );
        // Too many to keep: fails closed.
        let full = earlier(&[], true);
        assert_eq!(
            full.check(1_000, other, 1_010, 30, Some(300), Digests::Logged),
            Err(Refusal::BeforeStart)
        );
        // Past the window (a clock run backwards to verify it): refused,
        // and the set is dropped.
        assert_eq!(
            seen.check(1_000, other, 1_361, 30, Some(300), Digests::Logged),
            Err(Refusal::BeforeStart)
        );
        assert!(seen.is_empty());
    }

    #[test]
    fn unhex_reads_only_lowercase_sha256_hex() {
        assert_eq!(unhex(D).map(|d| d[1]), Some(0x11));
        assert_eq!(unhex(&D.to_uppercase()), None);
        assert_eq!(unhex(&D[1..]), None);
        assert_eq!(unhex("zz"), None);
    }
}
