//! Sign-in for participants: a single-use challenge from the gateway,
//! signed with the participant's key, gives a short-lived session that can
//! only read. Every change is an entry the participant's key signs, so a
//! stolen session cannot grant or revoke.
//!
//! Both maps are bounded; a full map refuses new items (after dropping the
//! expired ones), it never evicts a live one.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

/// What the participant's key signs to sign in: a fixed context, the
/// gateway's origin (so a signature for one deployment is worthless at
/// another), the participant and the challenge.
pub fn signin_message(origin: &str, participant: &str, challenge: &str) -> String {
    format!("consentry-signin-v1\n{origin}\n{participant}\n{challenge}\n")
}

#[derive(Clone, Debug)]
pub struct SessionLimits {
    pub challenge_secs: i64,
    pub session_secs: i64,
    pub challenges_max: usize,
    pub sessions_max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            challenge_secs: 120,
            session_secs: 15 * 60,
            challenges_max: 100_000,
            sessions_max: 100_000,
        }
    }
}

/// Why a challenge or session could not be had.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("too many sign-ins in progress; try again in a minute")]
    Busy,
}

struct Challenge {
    participant: String,
    expires_at: i64,
}

struct Session {
    participant: String,
    /// The key that signed in: the session ends when it stops being the
    /// participant's current key (a rotation activated).
    key_id: String,
    expires_at: i64,
}

/// Challenges waiting for their signature, and live sessions.
pub struct Sessions {
    limits: SessionLimits,
    challenges: Mutex<HashMap<String, Challenge>>,
    sessions: Mutex<HashMap<String, Session>>,
}

fn token() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    B64URL.encode(b)
}

fn make_room<T>(map: &mut HashMap<String, T>, max: usize, expired: impl Fn(&T) -> bool) -> bool {
    if map.len() >= max {
        map.retain(|_, v| !expired(v));
    }
    map.len() < max
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            challenges: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// A fresh challenge for `participant`, whoever that is: the answer is
    /// the same for an unknown id, so it tells nobody who is enrolled.
    pub fn challenge(&self, participant: &str, now: i64) -> Result<(String, i64), SessionError> {
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        if !make_room(&mut map, self.limits.challenges_max, |c| {
            c.expires_at <= now
        }) {
            return Err(SessionError::Busy);
        }
        let c = token();
        let expires_at = now + self.limits.challenge_secs;
        map.insert(
            c.clone(),
            Challenge {
                participant: participant.to_string(),
                expires_at,
            },
        );
        Ok((c, expires_at))
    }

    /// Takes the challenge out (single use, whatever follows) and says
    /// whether it was issued for `participant` and is still valid.
    pub fn redeem(&self, challenge: &str, participant: &str, now: i64) -> bool {
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(challenge) {
            Some(c) => c.participant == participant && now < c.expires_at,
            None => false,
        }
    }

    /// Opens a session for a participant whose signature was checked.
    pub fn open(
        &self,
        participant: &str,
        key_id: &str,
        now: i64,
    ) -> Result<(String, i64), SessionError> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if !make_room(&mut map, self.limits.sessions_max, |s| s.expires_at <= now) {
            return Err(SessionError::Busy);
        }
        let t = token();
        let expires_at = now + self.limits.session_secs;
        map.insert(
            t.clone(),
            Session {
                participant: participant.to_string(),
                key_id: key_id.to_string(),
                expires_at,
            },
        );
        Ok((t, expires_at))
    }

    /// The participant a live session belongs to.
    /// The participant of a live session whose key is still theirs:
    /// `current_key` says which key a participant has now.
    pub fn participant(
        &self,
        token: &str,
        now: i64,
        current_key: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(token) {
            Some(s)
                if now < s.expires_at
                    && current_key(&s.participant).as_deref() == Some(s.key_id.as_str()) =>
            {
                Some(s.participant.clone())
            }
            // Expired, or its key rotated away: gone for good.
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session (sign-out).
    pub fn close(&self, token: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_single_use_bound_and_short_lived() {
        let s = Sessions::new(SessionLimits::default());
        let (c, exp) = s.challenge("p-a", 1000).unwrap();
        assert!(!s.redeem(&c, "p-b", 1000), "bound to its participant");
        assert!(
            !s.redeem(&c, "p-a", 1000),
            "gone after one use, even a failed one"
        );
        let (c, _) = s.challenge("p-a", 1000).unwrap();
        assert!(!s.redeem(&c, "p-a", exp), "expired");
        let (c, _) = s.challenge("p-a", 1000).unwrap();
        assert!(s.redeem(&c, "p-a", 1001));
    }

    #[test]
    fn sessions_expire_and_full_maps_refuse() {
        let s = Sessions::new(SessionLimits {
            sessions_max: 1,
            challenges_max: 1,
            ..SessionLimits::default()
        });
        let (t, exp) = s.open("p-a", "k-a", 0).unwrap();
        let k_a = |_: &str| Some("k-a".to_string());
        assert_eq!(s.participant(&t, 1, k_a).as_deref(), Some("p-a"));
        assert_eq!(s.open("p-b", "k-b", 1), Err(SessionError::Busy));
        assert_eq!(s.participant(&t, exp, k_a), None);
        assert!(
            s.open("p-b", "k-b", exp).is_ok(),
            "room once the old one expired"
        );
        s.challenge("p-a", 0).unwrap();
        assert_eq!(s.challenge("p-a", 0), Err(SessionError::Busy));
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
    }
}
