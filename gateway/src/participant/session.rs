//! Sign-in for participants: a single-use challenge from the gateway,
//! signed with the participant's key, gives a short-lived session that can
//! only read. Every change is an entry the participant's key signs, so a
//! stolen session cannot grant or revoke.
//!
//! What a stranger can do to it is bounded by their own address
//! ([`crate::quota`]): asking for challenges and trying sign-ins are each
//! rate-limited per source, and the challenges waiting are a store with a
//! share per source, so that challenges asked for p-0001 by someone else
//! never stop p-0001 from getting their own. A challenge names a
//! participant, but nobody has proved to be them yet, so no quota is
//! counted per participant there.
//!
//! A session is authenticated work, so it counts against its participant:
//! at most `sessions_per_participant_max` each. One more ends that
//! participant's oldest rather than being refused: the person signing in
//! now is the one who needs in (to revoke, say), and refusing would let
//! whoever holds a copy of the key keep them out by signing in first.

use std::net::IpAddr;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use crate::quota::rate::{PerSource, Rate};
use crate::quota::shares::{ShareLimits, Shares, WhenShareFull};
use crate::quota::Refused;

/// What the participant's key signs to sign in: a fixed context, the
/// gateway's origin (so a signature for one deployment is worthless at
/// another), the participant and the challenge.
pub fn signin_message(origin: &str, participant: &str, challenge: &str) -> String {
    format!("consentry-signin-v1\n{origin}\n{participant}\n{challenge}\n")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    pub challenge_secs: i64,
    pub session_secs: i64,
    /// Challenges waiting, in all and from one source.
    pub challenges_max: usize,
    pub challenges_per_source_max: usize,
    /// Challenges one source may ask for.
    pub challenge_rate: Rate,
    /// Sign-in attempts (`POST /v1/participant/session`) from one source.
    pub sign_in_rate: Rate,
    /// Live sessions, in all and of one participant.
    pub sessions_max: usize,
    pub sessions_per_participant_max: usize,
    /// Sources each rate table follows at once.
    pub sources_tracked_max: usize,
}

impl Default for SessionLimits {
    /// Sized for a clinic's whole office behind one address: 60 sign-ins
    /// a minute, 120 at once. At that rate one source holds at most about
    /// 360 challenges (the burst and two minutes' worth), below its share
    /// of 500; filling the store of 100,000 (a few tens of MB) takes
    /// hundreds of sources.
    fn default() -> Self {
        let rate = Rate {
            burst_max: 120,
            per_minute: 60,
        };
        Self {
            challenge_secs: 120,
            session_secs: 15 * 60,
            challenges_max: 100_000,
            challenges_per_source_max: 500,
            challenge_rate: rate,
            sign_in_rate: rate,
            sessions_max: 100_000,
            sessions_per_participant_max: 8,
            sources_tracked_max: 65_536,
        }
    }
}

struct Session {
    /// The key that signed in: the session ends when it stops being the
    /// participant's current key (a rotation activated).
    key_id: String,
}

/// Challenges waiting for their signature, and live sessions.
pub struct Sessions {
    limits: SessionLimits,
    challenge_rate: PerSource,
    sign_in_rate: PerSource,
    /// Held for the source that asked; the value is the participant named.
    challenges: Mutex<Shares<IpAddr, String>>,
    /// Held for the participant who signed in.
    sessions: Mutex<Shares<String, Session>>,
}

fn token() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    B64URL.encode(b)
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            challenge_rate: PerSource::new(limits.challenge_rate, limits.sources_tracked_max),
            sign_in_rate: PerSource::new(limits.sign_in_rate, limits.sources_tracked_max),
            challenges: Mutex::new(Shares::new(ShareLimits {
                all_max: limits.challenges_max,
                per_owner_max: limits.challenges_per_source_max,
                when_share_full: WhenShareFull::Refuse,
            })),
            sessions: Mutex::new(Shares::new(ShareLimits {
                all_max: limits.sessions_max,
                per_owner_max: limits.sessions_per_participant_max,
                when_share_full: WhenShareFull::EndOldest,
            })),
            limits,
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// A fresh challenge for `participant`, whoever that is, asked from
    /// `source`: the answer is the same for an unknown id, so it tells
    /// nobody who is enrolled.
    pub fn challenge(
        &self,
        source: IpAddr,
        participant: &str,
        now: i64,
    ) -> Result<(String, i64), Refused> {
        self.challenge_rate.check(source, now)?;
        let c = token();
        let expires_at = now + self.limits.challenge_secs;
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(c.clone(), source, participant.to_string(), expires_at, now)?;
        Ok((c, expires_at))
    }

    /// One sign-in attempt from `source`, counted before any of its work
    /// (the signature check) is done.
    pub fn attempt(&self, source: IpAddr, now: i64) -> Result<(), Refused> {
        self.sign_in_rate.check(source, now)
    }

    /// Takes the challenge out (single use, whatever follows) and says
    /// whether it was issued for `participant` and is still valid.
    pub fn redeem(&self, challenge: &str, participant: &str, now: i64) -> bool {
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(challenge) {
            Some((p, expires_at)) => p == participant && now < expires_at,
            None => false,
        }
    }

    /// Opens a session for a participant whose signature was checked,
    /// ending their oldest if they already have their share.
    pub fn open(
        &self,
        participant: &str,
        key_id: &str,
        now: i64,
    ) -> Result<(String, i64), Refused> {
        let t = token();
        let expires_at = now + self.limits.session_secs;
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            t.clone(),
            participant.to_string(),
            Session {
                key_id: key_id.to_string(),
            },
            expires_at,
            now,
        )?;
        Ok((t, expires_at))
    }

    /// The participant of a live session whose key is still theirs:
    /// `current_key` says which key a participant has now.
    pub fn participant(
        &self,
        token: &str,
        now: i64,
        current_key: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let (participant, current) = {
            let (p, s) = map.get_with_owner(token, now)?;
            (
                p.clone(),
                current_key(p).as_deref() == Some(s.key_id.as_str()),
            )
        };
        if current {
            return Some(participant);
        }
        // Its key rotated away: gone for good.
        map.remove(token);
        None
    }

    /// Ends a session (sign-out).
    pub fn close(&self, token: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(token);
    }

    /// Challenges held, and those held for `source`.
    pub fn challenges_held(&self, source: IpAddr) -> (usize, usize) {
        let map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        (map.len(), map.held_by(&source))
    }

    /// Sessions held, and those of `participant`.
    pub fn sessions_held(&self, participant: &str) -> (usize, usize) {
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        (map.len(), map.held_by(&participant.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Limits with no rate limit in the way, for the tests of the stores.
    fn unhurried() -> SessionLimits {
        let fast = Rate {
            burst_max: u32::MAX,
            per_minute: 60_000,
        };
        SessionLimits {
            challenge_rate: fast,
            sign_in_rate: fast,
            ..SessionLimits::default()
        }
    }

    #[test]
    fn a_challenge_is_single_use_bound_and_short_lived() {
        let s = Sessions::new(SessionLimits::default());
        let me = ip("192.0.2.1");
        let (c, exp) = s.challenge(me, "p-a", 1000).unwrap();
        assert!(!s.redeem(&c, "p-b", 1000), "bound to its participant");
        assert!(
            !s.redeem(&c, "p-a", 1000),
            "gone after one use, even a failed one"
        );
        let (c, _) = s.challenge(me, "p-a", 1000).unwrap();
        assert!(!s.redeem(&c, "p-a", exp), "expired");
        let (c, _) = s.challenge(me, "p-a", 1000).unwrap();
        assert!(s.redeem(&c, "p-a", 1001));
        assert_eq!(s.challenges_held(me), (0, 0), "nothing left behind");
    }

    #[test]
    fn challenges_asked_in_someones_name_do_not_stop_them() {
        let s = Sessions::new(SessionLimits {
            challenges_per_source_max: 10,
            ..unhurried()
        });
        let stranger = ip("203.0.113.66");
        let p1 = ip("198.51.100.1");
        for _ in 0..10 {
            s.challenge(stranger, "p-0001", 0).unwrap();
        }
        for _ in 0..1000 {
            assert!(matches!(
                s.challenge(stranger, "p-0001", 0),
                Err(Refused::ShareFull { .. })
            ));
        }
        assert_eq!(s.challenges_held(stranger), (10, 10));
        let (c, _) = s.challenge(p1, "p-0001", 0).unwrap();
        assert!(s.redeem(&c, "p-0001", 1));
        // The stranger's share frees itself as its challenges expire.
        let later = s.limits().challenge_secs;
        assert!(s.challenge(stranger, "p-0001", later).is_ok());
        assert_eq!(s.challenges_held(stranger), (1, 1));
    }

    #[test]
    fn asking_too_fast_is_refused_for_that_source_only() {
        let s = Sessions::new(SessionLimits {
            challenge_rate: Rate {
                burst_max: 5,
                per_minute: 60,
            },
            ..SessionLimits::default()
        });
        let flooder = ip("203.0.113.66");
        for _ in 0..5 {
            s.challenge(flooder, "p-0001", 0).unwrap();
        }
        assert_eq!(
            s.challenge(flooder, "p-0001", 0),
            Err(Refused::TooFast {
                retry_after_secs: 1
            })
        );
        assert!(s.challenge(ip("198.51.100.1"), "p-0001", 0).is_ok());
        assert!(s.challenge(flooder, "p-0001", 1).is_ok(), "one a second");
        // Sign-in attempts have a rate of their own.
        for _ in 0..SessionLimits::default().sign_in_rate.burst_max {
            s.attempt(flooder, 1).unwrap();
        }
        assert!(matches!(
            s.attempt(flooder, 1),
            Err(Refused::TooFast { .. })
        ));
        assert!(s.attempt(ip("198.51.100.1"), 1).is_ok());
    }

    #[test]
    fn a_full_challenge_store_refuses_everyone_and_drops_nobodys() {
        let s = Sessions::new(SessionLimits {
            challenges_max: 4,
            challenges_per_source_max: 2,
            ..unhurried()
        });
        let mut held = Vec::new();
        for src in ["192.0.2.1", "192.0.2.2"] {
            for _ in 0..2 {
                held.push(s.challenge(ip(src), "p-x", 0).unwrap().0);
            }
        }
        assert_eq!(
            s.challenge(ip("192.0.2.3"), "p-x", 10),
            Err(Refused::StoreFull {
                retry_after_secs: 110
            })
        );
        for c in &held {
            assert!(s.redeem(c, "p-x", 10), "every live challenge kept");
        }
    }

    #[test]
    fn one_more_session_ends_that_participants_oldest_never_anothers() {
        let s = Sessions::new(SessionLimits {
            sessions_per_participant_max: 2,
            ..SessionLimits::default()
        });
        let key = |_: &str| Some("k".to_string());
        let (other, _) = s.open("p-b", "k", 0).unwrap();
        let (first, _) = s.open("p-a", "k", 0).unwrap();
        let (second, _) = s.open("p-a", "k", 1).unwrap();
        let (third, _) = s.open("p-a", "k", 2).unwrap();
        assert_eq!(s.participant(&first, 2, key), None, "the oldest ended");
        assert_eq!(s.participant(&second, 2, key).as_deref(), Some("p-a"));
        assert_eq!(s.participant(&third, 2, key).as_deref(), Some("p-a"));
        for i in 0..100 {
            s.open("p-a", "k", 3 + i).unwrap();
        }
        assert_eq!(s.participant(&other, 200, key).as_deref(), Some("p-b"));
        assert_eq!(s.sessions_held("p-a"), (3, 2));
    }

    #[test]
    fn sessions_expire_and_a_full_store_refuses() {
        let s = Sessions::new(SessionLimits {
            sessions_max: 1,
            ..SessionLimits::default()
        });
        let (t, exp) = s.open("p-a", "k-a", 0).unwrap();
        let k_a = |_: &str| Some("k-a".to_string());
        assert_eq!(s.participant(&t, 1, k_a).as_deref(), Some("p-a"));
        assert!(matches!(
            s.open("p-b", "k-b", 1),
            Err(Refused::StoreFull { .. })
        ));
        assert_eq!(s.participant(&t, exp, k_a), None);
        assert!(
            s.open("p-b", "k-b", exp).is_ok(),
            "room once the old one expired"
        );
    }

    #[test]
    fn a_session_ends_when_its_key_stops_being_current() {
        let s = Sessions::new(SessionLimits::default());
        let (t, _) = s.open("p-a", "k-a:1", 0).unwrap();
        assert_eq!(
            s.participant(&t, 1, |_| Some("k-a:1".into())).as_deref(),
            Some("p-a")
        );
        // A rotation activated: the old key's session is gone for good.
        assert_eq!(s.participant(&t, 1, |_| Some("k-a:2".into())), None);
        assert_eq!(s.participant(&t, 1, |_| Some("k-a:1".into())), None);
        assert_eq!(s.sessions_held("p-a"), (0, 0));
    }
}
