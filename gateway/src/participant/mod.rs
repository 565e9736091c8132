//! The participant's API: sign in with a key, then read (only) one's own
//! consents, disclosures and grievances, each with the log index and an
//! inclusion proof against the signed checkpoint, so that the device can
//! check that what it is shown is in the audited log; export a consent as
//! FHIR R4 and as a consent receipt.
//!
//! Reading needs a session; changing anything (grant, revoke, grievance)
//! is an entry the participant's key signs, posted to `POST /v1/entries`.
//! Every route takes the participant from the session, never from the
//! request, and a consent that is not the caller's is answered exactly as
//! one that does not exist.
//!
//! Routes (JSON; README, "The participant's API"):
//! - `POST /v1/participant/challenge` `{"participant"}` → `{"challenge", "expires_at"}`
//! - `POST /v1/participant/session` `{"participant", "challenge", "signature"}` → `{"token", "expires_at"}` and an HttpOnly SameSite=Strict cookie
//! - `DELETE /v1/participant/session` signs out
//! - `GET /v1/me`, `/v1/me/consents`, `/v1/me/disclosures`, `/v1/me/grievances`
//! - `GET /v1/me/agencies`: the agencies a consent may name, with their names
//! - `GET /v1/me/consents/{id}/fhir`, `/v1/me/consents/{id}/receipt`

pub mod client;
pub mod fhir;
pub mod intake;
pub mod portal;
pub mod recovery;
pub mod session;
pub mod state;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::participant::state::Participants;
use crate::problem::Problem;
use crate::source::ClientSource;
use audit::decode_key;
use policy::{ConsentState, Event, Language};

pub const SESSION_COOKIE: &str = "consentry_session";
/// The session cookie's name when the gateway is reached over HTTPS: the
/// `__Host-` prefix makes browsers refuse it unless it is `Secure`, has
/// `Path=/` and no `Domain`, so no other host can set or shadow it.
pub const SESSION_COOKIE_HOST: &str = "__Host-consentry_session";
/// Most items one page of disclosures holds.
pub const PAGE_ITEMS_MAX: usize = 100;
/// Most index entries one page may look at to fill itself (the index also
/// holds the participant's own consents and grievances).
const PAGE_SCAN_MAX: usize = 1000;

/// A fresh pseudonymous participant id: `p-` and 26 base32 letters, 130
/// random bits, so that nobody can find an enrolled person by trying ids.
pub fn new_participant_id() -> String {
    format!(
        "p-{}",
        random_base32(b"abcdefghijklmnopqrstuvwxyz234567", 26)
    )
}

/// `n` random letters of a 32-letter `alphabet` (5 bits each, uniform).
pub(crate) fn random_base32(alphabet: &[u8; 32], n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b.iter()
        .map(|x| alphabet[(x & 31) as usize] as char)
        .collect()
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Participants>: FromRef<S>,
{
    Router::new()
        .route("/v1/participant/challenge", post(challenge))
        .route("/v1/participant/session", post(sign_in).delete(sign_out))
        .route("/v1/me", get(me))
        .route("/v1/me/consents", get(consents))
        .route("/v1/me/consents/{id}/fhir", get(consent_fhir))
        .route("/v1/me/consents/{id}/receipt", get(consent_receipt))
        .route("/v1/me/disclosures", get(disclosures))
        .route("/v1/me/grievances", get(grievances))
        .route("/v1/me/agencies", get(agencies))
        .merge(intake::routes())
}

fn bad_request(detail: &str) -> Problem {
    Problem::MalformedRequest(detail.into())
}

/// The log could not be read: the page must not say "nothing" when it
/// does not know.
fn gone(detail: impl ToString) -> Problem {
    Problem::LogUnavailable(detail.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeBody {
    participant: String,
}

async fn challenge(
    State(g): State<Arc<Participants>>,
    ClientSource(source): ClientSource,
    body: Bytes,
) -> Result<Response, Problem> {
    let Ok(b) = serde_json::from_slice::<ChallengeBody>(&body) else {
        return Err(bad_request("want {\"participant\": \"<your id>\"}"));
    };
    if !policy::is_valid_id(&b.participant) {
        return Err(bad_request("that is not a participant id"));
    }
    let (c, expires_at) = g
        .sessions
        .challenge(source, &b.participant, g.clock.now())
        .map_err(|e| e.problem("sign-in challenges"))?;
    Ok(Json(json!({
        "challenge": c,
        "expires_at": expires_at,
        "sign": session::signin_message(&g.origin(), &b.participant, &c),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    participant: String,
    challenge: String,
    /// Base64 Ed25519 signature over [`session::signin_message`].
    signature: String,
}

async fn sign_in(
    State(g): State<Arc<Participants>>,
    ClientSource(source): ClientSource,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    // Login CSRF: a page elsewhere must not sign a browser in (as someone
    // else). A cross-site form can send only text/plain and the like, and
    // a browser names the page's origin: JSON only, and only from here.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    let foreign = headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() != g.origin().as_bytes());
    if !json || foreign {
        return Err(Problem::CrossSiteSignIn);
    }
    let now = g.clock.now();
    // Counted before any work: the signature check is what a flood of
    // attempts would cost.
    g.sessions
        .attempt(source, now)
        .map_err(|e| e.problem("sign-in attempts"))?;
    let Ok(b) = serde_json::from_slice::<SignInBody>(&body) else {
        return Err(bad_request(
            "want {\"participant\", \"challenge\", \"signature\"}",
        ));
    };
    // Redeemed first: a challenge is single use whatever follows. One
    // answer for every failed sign-in: unknown person, wrong key, a
    // challenge used, expired or issued to someone else.
    if !g.sessions.redeem(&b.challenge, &b.participant, now) {
        return Err(Problem::SignInRefused);
    }
    let (key_id, key) = {
        let state = g.dep.state()?;
        let key_id = state
            .participant_key_id(&b.participant)
            .map(str::to_string)
            .unwrap_or_default();
        let key = state
            .key(&key_id)
            .filter(|k| k.current)
            .and_then(|k| decode_key(&k.public_key));
        (key_id, key)
    };
    let signature = B64
        .decode(b.signature.as_bytes())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
        .map(|s| ed25519_dalek::Signature::from_bytes(&s));
    let message = session::signin_message(&g.origin(), &b.participant, &b.challenge);
    // An unknown participant or key costs a verification too (against a
    // key nobody holds): the time must not tell who is enrolled.
    let ok = signature
        .is_some_and(|sig| crate::httpsig::verify_or_dummy(key.as_ref(), message.as_bytes(), &sig));
    if !ok {
        return Err(Problem::SignInRefused);
    }
    let (token, expires_at) = g
        .sessions
        .open(&b.participant, &key_id, now)
        .map_err(|e| e.problem("sessions"))?;
    let (name, secure) = session_cookie(&g);
    let cookie = format!(
        "{name}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        g.sessions.limits().session_secs
    );
    let mut r = Json(json!({
        "participant": b.participant,
        "token": token,
        "expires_at": expires_at,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The session token a request carries: its bearer token, else the
/// session cookie of this origin's name. Under https only the `__Host-`
/// one: a plain `consentry_session` could have been planted over plain
/// HTTP before HSTS applied, or by a sibling domain (session fixation).
pub(crate) fn token_of(g: &Participants, headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        return v
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(|t| t.trim().to_string());
    }
    cookie(headers, session_cookie(g).0).map(str::to_string)
}

/// The session cookie's name at this origin, and its `Secure` attribute.
fn session_cookie(g: &Participants) -> (&'static str, &'static str) {
    if g.origin().starts_with("https://") {
        (SESSION_COOKIE_HOST, "; Secure")
    } else {
        (SESSION_COOKIE, "")
    }
}

/// The `Set-Cookie` that ends the session cookie in use at this origin
/// (a `__Host-` one is only accepted back with `Secure`).
pub(crate) fn cleared_session_cookie(g: &Participants) -> HeaderValue {
    let (name, secure) = session_cookie(g);
    HeaderValue::from_str(&format!(
        "{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(
        "consentry_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
    ))
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The browser's first choice of language, else English.
pub(crate) fn browser_language(headers: &HeaderMap) -> Language {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim_start().to_ascii_lowercase().starts_with("es") {
        Language::Es
    } else {
        Language::En
    }
}

/// The participant a request's session belongs to.
fn signed_in(g: &Participants, headers: &HeaderMap) -> Result<String, Problem> {
    let token = token_of(g, headers).ok_or(Problem::NotSignedIn)?;
    live_session(g, &token)?.ok_or(Problem::NotSignedIn)
}

/// The participant of session `token`, while it lives and its key is
/// still theirs.
pub(crate) fn live_session(
    g: &Participants,
    token: &str,
) -> Result<Option<String>, crate::deployment::Stopped> {
    let state = g.dep.state()?;
    Ok(g.sessions.participant(token, g.clock.now(), |p| {
        state.participant_key_id(p).map(str::to_string)
    }))
}

/// The participant of a request's live session, if any (for the portal).
pub fn session_participant(g: &Participants, headers: &HeaderMap) -> Option<String> {
    signed_in(g, headers).ok()
}

async fn sign_out(State(g): State<Arc<Participants>>, headers: HeaderMap) -> Response {
    if let Some(t) = token_of(&g, &headers) {
        g.sessions.close(&t);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cleared_session_cookie(&g));
    r
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// `?lang=` first, then the browser's first choice, then English.
fn language(q: &LangQuery, headers: &HeaderMap) -> Language {
    q.lang
        .as_deref()
        .and_then(Language::from_code)
        .unwrap_or_else(|| browser_language(headers))
}

/// The signed checkpoint the proofs of `indexes` are against: the latest,
/// or a fresh one when an index is newer than it.
async fn checkpoint_covering(
    g: &Participants,
    newest: Option<u64>,
) -> Result<(String, u64), Problem> {
    let latest = |g: &Participants| -> Result<(String, u64), Problem> {
        let (note, _) = g.dep.log.checkpoint_with_cosignatures().map_err(gone)?;
        let size = ledger::note::split_note(&note)
            .ok()
            .and_then(|(text, _)| ledger::Checkpoint::parse(text).ok())
            .map(|c| c.size)
            .ok_or_else(|| gone("the stored checkpoint does not parse"))?;
        Ok((note, size))
    };
    let (note, size) = latest(g)?;
    match newest {
        Some(i) if i >= size => {
            let dep = g.dep.clone();
            // Signing and syncing block: off the request workers.
            tokio::task::spawn_blocking(move || dep.log.publish_checkpoint())
                .await
                .map_err(gone)?
                .map_err(gone)?;
            latest(g)
        }
        _ => Ok((note, size)),
    }
}

/// The proof of `entry` at `index` in a tree of `size`, as pages carry it.
fn proof_of(g: &Participants, index: u64, entry: &[u8], size: u64) -> Result<Value, Problem> {
    let proof = g.dep.log.inclusion_proof(index, size).map_err(gone)?;
    Ok(json!({
        "index": index,
        "entry": B64.encode(entry),
        "inclusion": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    }))
}

/// The entry at `index` with its inclusion proof in a tree of `size`.
fn proven(g: &Participants, index: u64, size: u64) -> Result<Value, Problem> {
    let env = g
        .dep
        .log
        .entry(index)
        .map_err(gone)?
        .ok_or_else(|| gone("an indexed entry is missing"))?;
    proof_of(g, index, &env.entry, size)
}

fn agency_name(state: &ConsentState, id: &str) -> String {
    state
        .agency(id)
        .map_or_else(|| id.to_string(), |a| a.enrolled.name)
}

/// The organisations a person may name in a consent, as (id, name): the
/// registry's current `agency`-role organisations, the list the portal's
/// forms show.
pub(crate) fn agency_choices(state: &ConsentState) -> Vec<(String, String)> {
    state
        .agencies()
        .into_iter()
        .filter(|a| !a.retired && a.enrolled.roles.contains(&policy::Role::Agency))
        .map(|a| (a.enrolled.agency, a.enrolled.name))
        .collect()
}

/// [`agency_choices`], for a client that shows a consent before it is
/// signed (`consentry participant grant`): the sentence names agencies as
/// every page does, by the registry's names.
async fn agencies(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    signed_in(&g, &headers)?;
    let state = g.dep.state()?;
    let items: Vec<Value> = agency_choices(&state)
        .into_iter()
        .map(|(agency, name)| json!({"agency": agency, "name": name}))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn me(State(g): State<Arc<Participants>>, headers: HeaderMap) -> Result<Response, Problem> {
    let me = signed_in(&g, &headers)?;
    let state = g.dep.state()?;
    let enrolled_by = state.participant_enrolled_by(&me).map(str::to_string);
    let rotation = state.pending_rotation(&me).map(|r| {
        json!({
            "key_id": r.key_id,
            "rotation_index": r.index,
            "requested_at": r.requested_at,
            "ready_at": r.ready_at,
            "assisted_by": r.assisted_by,
            "assisted_by_name": agency_name(&state, &r.assisted_by),
        })
    });
    Ok(Json(json!({
        "participant": me,
        "key_id": state.participant_key_id(&me),
        // First thing a client shows: a move of the key the person may not
        // have asked for.
        "pending_rotation": rotation,
        "enrolled_by": enrolled_by,
        "enrolled_at_name": enrolled_by.as_deref().map(|a| agency_name(&state, a)),
    }))
    .into_response())
}

async fn consents(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
    q: Query<LangQuery>,
) -> Result<Response, Problem> {
    let me = signed_in(&g, &headers)?;
    let lang = language(&q, &headers);
    let now = g.clock.now();
    let views = {
        let state = g.dep.state()?;
        state
            .consents_of(&me, now)
            .into_iter()
            .map(|(v, s)| {
                let summary = policy::consent_summary(&state, &v, lang);
                (v, s, summary)
            })
            .collect::<Vec<_>>()
    };
    let newest = views
        .iter()
        .map(|(v, _, _)| {
            v.revocation
                .as_ref()
                .map_or(v.granted_index, |r| r.index.max(v.granted_index))
        })
        .max();
    let (note, size) = checkpoint_covering(&g, newest).await?;
    let mut items = Vec::new();
    for (v, s, summary) in views {
        let grant = proven(&g, v.granted_index, size)?;
        let revocation = match &v.revocation {
            Some(r) => {
                let p = proven(&g, r.index, size)?;
                Some(json!({"at": r.at, "assisted_by": r.assisted_by, "proof": p}))
            }
            None => None,
        };
        items.push(json!({
            "consent_id": v.granted.consent_id,
            "status": s.code(),
            "summary": summary,
            "effective_at": v.granted.effective_at,
            "ends_at": v.ends_at,
            "grant": grant,
            "revocation": revocation,
        }));
    }
    Ok(Json(json!({
        "participant": me,
        "language": lang.code(),
        "checkpoint": note,
        "items": items,
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
struct PageQuery {
    before: Option<u64>,
    limit: Option<usize>,
    lang: Option<String>,
}

/// Who asked, by decision id, for the decisions among `found`: a release
/// or notice names the agency rather than an id nobody can read.
fn requesters(
    state: &ConsentState,
    found: &[Disclosure],
) -> std::collections::HashMap<String, String> {
    found
        .iter()
        .filter_map(|(_, e, _)| match e {
            Event::AccessDecided(d) => {
                Some((d.decision_id.clone(), agency_name(state, &d.requester)))
            }
            _ => None,
        })
        .collect()
}

/// A decision, release or notice about a participant: its log index, the
/// event and the exact entry bytes.
pub type Disclosure = (u64, Event, Vec<u8>);

/// Up to `limit` disclosures about `me` below `before`, newest first, and
/// whether the index has nothing older.
fn collect_disclosures(
    g: &Participants,
    me: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<Disclosure>, bool), Problem> {
    let mut before = before.unwrap_or(u64::MAX);
    let mut found: Vec<Disclosure> = Vec::new();
    let mut scanned = 0usize;
    let mut exhausted = false;
    while found.len() < limit && scanned < PAGE_SCAN_MAX {
        let idx = g
            .dep
            .log
            .lookup("participant", me, before, 64)
            .map_err(gone)?;
        if idx.is_empty() {
            exhausted = true;
            break;
        }
        for i in idx {
            scanned += 1;
            before = i;
            let Some(env) = g.dep.log.entry(i).map_err(gone)? else {
                continue;
            };
            let Ok(event) = policy::parse_event(&env.entry) else {
                continue;
            };
            if matches!(
                event,
                Event::AccessDecided(_) | Event::AccessReleased(_) | Event::ParticipantNotice(_)
            ) {
                found.push((i, event, env.entry));
                if found.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok((found, exhausted))
}

/// When a decision, release or notice happened.
fn disclosed_at(e: &Event) -> i64 {
    match e {
        Event::AccessDecided(d) => d.at,
        Event::AccessReleased(r) => r.at,
        Event::ParticipantNotice(n) => n.at,
        _ => 0,
    }
}

/// One line of the portal's timeline.
pub struct TimelineItem {
    pub index: u64,
    /// `allowed`, `denied`, `emergency`, `released` or `notice`.
    pub kind: &'static str,
    pub text: String,
    /// The decision a grievance would be about (decisions only).
    pub decision_id: Option<String>,
    /// When it happened (Unix seconds).
    pub at: i64,
}

/// The participant's recent disclosures in their words, newest first, for
/// the portal.
pub fn recent_disclosures(
    g: &Participants,
    me: &str,
    lang: Language,
    limit: usize,
) -> Option<Vec<TimelineItem>> {
    // `None` when the log cannot be read: the page must not say "nobody
    // asked" when it does not know.
    let (found, _) = collect_disclosures(g, me, None, limit.clamp(1, PAGE_ITEMS_MAX)).ok()?;
    let state = g.dep.state().ok()?;
    let asked_by = requesters(&state, &found);
    Some(
        found
            .iter()
            .filter_map(|(i, e, _)| {
                policy::timeline_sentence(&state, e, lang, |d| asked_by.get(d).cloned()).map(
                    |(kind, text)| TimelineItem {
                        index: *i,
                        kind,
                        text,
                        decision_id: match e {
                            Event::AccessDecided(d) => Some(d.decision_id.clone()),
                            _ => None,
                        },
                        at: disclosed_at(e),
                    },
                )
            })
            .collect(),
    )
}

async fn disclosures(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
    q: Query<PageQuery>,
) -> Result<Response, Problem> {
    let me = signed_in(&g, &headers)?;
    let lang = language(
        &LangQuery {
            lang: q.lang.clone(),
        },
        &headers,
    );
    let limit = q.limit.unwrap_or(20).clamp(1, PAGE_ITEMS_MAX);
    let (found, exhausted) = collect_disclosures(&g, &me, q.before, limit)?;
    let (note, size) = checkpoint_covering(&g, found.first().map(|f| f.0)).await?;
    let mut items = Vec::new();
    {
        let state = g.dep.state()?;
        let asked_by = requesters(&state, &found);
        for (i, event, entry) in &found {
            let Some((kind, text)) =
                policy::timeline_sentence(&state, event, lang, |d| asked_by.get(d).cloned())
            else {
                continue;
            };
            let proof = proof_of(&g, *i, entry, size)?;
            let mut item = json!({
                "kind": kind,
                "text": text,
                "at": disclosed_at(event),
                "event": serde_json::from_slice::<Value>(entry).unwrap_or(Value::Null),
                "proof": proof,
            });
            if let Event::AccessDecided(e) = event {
                item["requester_name"] = json!(agency_name(&state, &e.requester));
                item["holder_name"] = json!(agency_name(&state, &e.holder));
                item["decision_id"] = json!(e.decision_id);
            }
            items.push(item);
        }
    }
    let next_before = (!exhausted && found.len() >= limit)
        .then(|| found.last().map(|f| f.0))
        .flatten();
    Ok(Json(json!({
        "participant": me,
        "language": lang.code(),
        "checkpoint": note,
        "items": items,
        "next_before": next_before,
    }))
    .into_response())
}

async fn grievances(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
    q: Query<LangQuery>,
) -> Result<Response, Problem> {
    let me = signed_in(&g, &headers)?;
    let lang = language(&q, &headers);
    let state = g.dep.state()?;
    let items: Vec<Value> = state
        .grievances_of(&me)
        .into_iter()
        .map(|v| {
            json!({
                "grievance_id": v.filed.grievance_id,
                "decision_id": v.filed.decision_id,
                "reason": v.filed.reason.code(),
                "reason_text": v.filed.reason.sentence(lang),
                "filed_at": v.filed.at,
                "filed_index": v.filed_index,
                "status": if v.resolution.is_some() { "resolved" } else { "open" },
                "outcome": v.resolution.as_ref().map(|(r, _)| r.outcome.code()),
                "outcome_text": v.resolution.as_ref().map(|(r, _)| r.outcome.sentence(lang)),
                "resolved_index": v.resolution.as_ref().map(|(_, i)| i),
            })
        })
        .collect();
    Ok(Json(json!({"participant": me, "language": lang.code(), "items": items})).into_response())
}

/// The caller's own consent `id`, or the answer an unknown id gets.
fn own_consent(
    g: &Participants,
    headers: &HeaderMap,
    id: &str,
    render: impl FnOnce(&ConsentState, &policy::ConsentView) -> Value,
) -> Result<Response, Problem> {
    let me = signed_in(g, headers)?;
    let state = g.dep.state()?;
    match state.consent(id) {
        Some(v) if v.granted.participant == me => Ok(Json(render(&state, &v)).into_response()),
        _ => Err(Problem::NoSuchConsent),
    }
}

async fn consent_fhir(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let now = g.clock.now();
    let mut r = own_consent(&g, &headers, &id, |state, v| {
        fhir::consent_resource(state, v, now)
    })?;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    Ok(r)
}

async fn consent_receipt(
    State(g): State<Arc<Participants>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Query<LangQuery>,
) -> Result<Response, Problem> {
    let now = g.clock.now();
    let lang = language(&q, &headers);
    let origin = g.origin();
    own_consent(&g, &headers, &id, |state, v| {
        fhir::receipt(state, v, now, &origin, lang)
    })
}
