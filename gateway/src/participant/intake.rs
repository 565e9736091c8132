//! Enrolment at an agency's intake, with the key made in the person's own
//! browser. The entry that enrols someone needs two signatures: the new
//! key's and the enrolling agency's. Neither side holds the other's key,
//! so the gateway keeps the half-signed entry for a few minutes under a
//! short intake code:
//!
//! 1. the browser sends its public key and the agency it is enrolling at
//!    (`POST /v1/participant/intakes`); the gateway gives a fresh
//!    participant id, the exact entry bytes and an intake code;
//! 2. the browser checks the entry names its key and that agency, signs it
//!    and sends the signature (`POST …/intakes/{code}/signature`), checked
//!    here at once;
//! 3. the staff member, given the code, fetches the intake
//!    (`GET …/intakes/{code}`), co-signs the same bytes with the agency's
//!    key and posts the entry to `/v1/entries` (`AgencyClient::confirm_intake`,
//!    `consentry intake`).
//!
//! The intake holds nothing secret: a pseudonymous id, a public key and a
//! signature. Whoever guesses a code learns no more, and only the named
//! agency's key can complete it.
//!
//! Starting an intake is unauthenticated work, so it counts against the
//! address that asked ([`crate::quota`]): a rate per source, and a share
//! per source of the intakes waiting. Nothing counts against the agency
//! named: a stranger naming hope-clinic must not use up hope-clinic's
//! enrolments. A full share refuses that source; a full store refuses
//! everyone until intakes expire; neither ever drops a live intake. The
//! agency's side (reading the intake, posting the co-signed entry) is not
//! limited here at all.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::participant::state::Participants;
use crate::problem::Problem;
use crate::quota::rate::{PerSource, Rate};
use crate::quota::shares::{ShareLimits, Shares, WhenShareFull};
use crate::source::ClientSource;
use audit::decode_key;
use policy::{Event, ParticipantEnrolled, Role, V1};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeLimits {
    /// How long a started intake waits for the agency.
    pub intake_secs: i64,
    /// Intakes waiting, in all and started from one source.
    pub intakes_max: usize,
    pub intakes_per_source_max: usize,
    /// Intakes one source may start.
    pub intake_rate: Rate,
    /// Sources the rate table follows at once.
    pub sources_tracked_max: usize,
}

impl Default for IntakeLimits {
    /// An enrolment takes a person minutes at a desk: two a minute from
    /// one address, 30 at once (an enrolment day at a clinic), is far
    /// above what one office does. At that rate one source holds at most
    /// 60 intakes (the burst and 15 minutes' worth), below its share of
    /// 100; filling the store of 10,000 takes more than 160 sources.
    fn default() -> Self {
        Self {
            intake_secs: 15 * 60,
            intakes_max: 10_000,
            intakes_per_source_max: 100,
            intake_rate: Rate {
                burst_max: 30,
                per_minute: 2,
            },
            sources_tracked_max: 65_536,
        }
    }
}

struct Intake {
    participant: String,
    key_id: String,
    agency: String,
    entry: Vec<u8>,
    signature: Option<[u8; 64]>,
    expires_at: i64,
}

pub struct Intakes {
    limits: IntakeLimits,
    rate: PerSource,
    /// Held for the source that started each.
    map: Mutex<Shares<IpAddr, Intake>>,
}

/// Ten Crockford base32 letters (50 bits) in two groups of five: short
/// enough to read aloud to a staff member, too many to guess in the
/// minutes an intake lives.
fn new_code() -> String {
    let s = super::random_base32(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", 10);
    format!("{}-{}", &s[..5], &s[5..])
}

/// The code as typed: case, spaces and the dash do not matter; the
/// letters people confuse read as the digits they look like.
pub fn normalise_code(code: &str) -> String {
    let s: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if s.len() == 10 {
        format!("{}-{}", &s[..5], &s[5..])
    } else {
        s
    }
}

impl Intakes {
    pub fn new(limits: IntakeLimits) -> Self {
        Self {
            rate: PerSource::new(limits.intake_rate, limits.sources_tracked_max),
            map: Mutex::new(Shares::new(ShareLimits {
                all_max: limits.intakes_max,
                per_owner_max: limits.intakes_per_source_max,
                when_share_full: WhenShareFull::Refuse,
            })),
            limits,
        }
    }

    pub fn limits(&self) -> &IntakeLimits {
        &self.limits
    }

    /// Intakes held, and those started from `source`.
    pub fn held(&self, source: IpAddr) -> (usize, usize) {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        (map.len(), map.held_by(&source))
    }
}

/// What an intake start asks for, in the refusal's words.
const INTAKES: &str = "enrolments";

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Participants>: FromRef<S>,
{
    Router::new()
        .route("/v1/participant/intakes", post(start))
        .route("/v1/participant/intakes/{code}", get(show))
        .route("/v1/participant/intakes/{code}/signature", post(sign))
}

fn malformed(detail: &str) -> Problem {
    Problem::MalformedRequest(detail.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    agency: String,
    /// Base64 of the 32-byte Ed25519 public key.
    public_key: String,
}

async fn start(
    State(g): State<Arc<Participants>>,
    ClientSource(source): ClientSource,
    body: Bytes,
) -> Result<Response, Problem> {
    // Counted before any work, malformed requests included.
    g.intakes
        .rate
        .check(source, g.clock.now())
        .map_err(|e| e.problem(INTAKES))?;
    let Ok(b) = serde_json::from_slice::<StartBody>(&body) else {
        return Err(malformed("want {\"agency\", \"public_key\"}"));
    };
    if decode_key(&b.public_key).is_none() {
        return Err(malformed("public_key is not a base64 Ed25519 public key"));
    }
    let enrolling = {
        let state = g.dep.state()?;
        state
            .agency(&b.agency)
            .is_some_and(|a| !a.retired && a.enrolled.roles.contains(&Role::Agency))
    };
    if !enrolling {
        return Err(Problem::UnknownAgency);
    }
    let now = g.clock.now();
    let participant = super::new_participant_id();
    let key_id = format!("{participant}:1");
    let event = Event::ParticipantEnrolled(ParticipantEnrolled {
        v: V1,
        participant: participant.clone(),
        key_id: key_id.clone(),
        public_key: b.public_key,
        at: now,
        enrolled_by: b.agency.clone(),
    });
    let entry = event.to_json().map_err(|e| malformed(&e.to_string()))?;
    let expires_at = now + g.intakes.limits.intake_secs;
    let code = new_code();
    {
        let mut map = g.intakes.map.lock().unwrap_or_else(|p| p.into_inner());
        let held = map.insert(
            code.clone(),
            source,
            Intake {
                participant: participant.clone(),
                key_id: key_id.clone(),
                agency: b.agency.clone(),
                entry: entry.clone(),
                signature: None,
                expires_at,
            },
            expires_at,
            now,
        );
        held.map_err(|e| e.problem(INTAKES))?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "intake": code,
            "participant": participant,
            "key_id": key_id,
            "agency": b.agency,
            "entry": B64.encode(&entry),
            "expires_at": expires_at,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    signature: String,
}

async fn sign(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let Ok(b) = serde_json::from_slice::<SignBody>(&body) else {
        return Err(malformed("want {\"signature\"}"));
    };
    let Some(sig) = B64
        .decode(b.signature.as_bytes())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
    else {
        return Err(malformed("signature is not a base64 Ed25519 signature"));
    };
    let now = g.clock.now();
    let mut map = g.intakes.map.lock().unwrap_or_else(|p| p.into_inner());
    let Some(intake) = map.get_mut(&normalise_code(&code), now) else {
        return Err(Problem::NoSuchIntake);
    };
    // The key is the one the entry names: checked against the entry itself.
    let key = match policy::parse_event(&intake.entry) {
        Ok(Event::ParticipantEnrolled(e)) => decode_key(&e.public_key),
        _ => None,
    };
    let ok = key.is_some_and(|k| {
        k.verify_strict(&intake.entry, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    });
    if !ok {
        return Err(Problem::BadIntakeSignature);
    }
    intake.signature = Some(sig);
    Ok(Json(json!({"intake": normalise_code(&code), "status": "signed"})).into_response())
}

/// The intake, for the staff member's tool and the waiting browser. Its
/// status is `waiting-for-participant`, `waiting-for-agency` or `enrolled`.
async fn show(
    State(g): State<Arc<Participants>>,
    Path(code): Path<String>,
) -> Result<Response, Problem> {
    let now = g.clock.now();
    let code = normalise_code(&code);
    let map = g.intakes.map.lock().unwrap_or_else(|p| p.into_inner());
    // An enrolled intake stays readable until it expires, so that the
    // waiting browser learns the outcome; an unfinished one just ends.
    let Some(i) = map.get(&code, now) else {
        return Err(Problem::NoSuchIntake);
    };
    let (enrolled, agency_name) = {
        let state = g.dep.state()?;
        (
            state.participant_key_id(&i.participant) == Some(i.key_id.as_str()),
            state.agency(&i.agency).map(|a| a.enrolled.name),
        )
    };
    let status = match (enrolled, i.signature.is_some()) {
        (true, _) => "enrolled",
        (false, true) => "waiting-for-agency",
        (false, false) => "waiting-for-participant",
    };
    Ok(Json(json!({
        "intake": code,
        "status": status,
        "participant": i.participant,
        "key_id": i.key_id,
        "agency": i.agency,
        "agency_name": agency_name,
        "entry": B64.encode(&i.entry),
        "signature": i.signature.map(|s| B64.encode(s)),
        "expires_at": i.expires_at,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_however_they_are_typed() {
        let c = new_code();
        assert_eq!(c.len(), 11);
        assert_eq!(normalise_code(&c), c);
        assert_eq!(normalise_code(&c.to_lowercase().replace('-', " ")), c);
        assert_eq!(normalise_code("abcdo-il123"), "ABCD0-11123");
        assert_ne!(new_code(), new_code());
    }
}
