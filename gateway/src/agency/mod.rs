//! The agency path: every inter-agency request takes it, in this order and
//! nothing else:
//!
//! 1. verify the RFC 9421 signature (a failure is a 401, counted and
//!    logged in a per-reason `access.refused` summary, trusting no claim
//!    in the request: [`refusals`]); then check what it asks to have
//!    forwarded ([`path`]) and the headers it is decided on (a failure is
//!    a 400, logged as `access.refused` under the verified key);
//! 2. `decide` against the state at the log position of
//! 3. `access.decided`, durable before anything else happens (a deny is a
//!    403 with only the agency's view);
//! 4. forward to the holder's upstream, signed by the gateway;
//! 5. keep only the decided participant's resources labelled with a
//!    released category ([`filter`]);
//! 6. `access.released` with the SHA-256 of exactly the bytes to send,
//!    durable;
//! 7. answer, with the decision id and the §2.32 redisclosure notice.
//!
//! No byte of record data leaves without both entries durable.
//!
//! The request: `GET /v1/records/{holder}/{participant}/{fhir-path}` with
//! `Consentry-Purpose` and `Consentry-Categories` headers, signed by the
//! agency's key (README, "An agency's request").

pub mod filter;
pub mod forward;
pub mod metrics;
pub mod path;
pub mod refusals;
pub mod replay;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::deployment::{decode_key, Deciding, Deployment};
use crate::httpsig::{self, HttpSigError, LabelPolicy, NonceCache, OwnedMessage, VerifyPolicy};
use crate::origin::Origin;
use crate::problem::Problem;
pub use forward::UpstreamTls;
use forward::{ForwardError, Forwarder, Outgoing};
use metrics::Metrics;
use policy::{
    AccessRefused, AccessReleased, CategoryCount, ConsentState, Event, KeyOwner, Role, V1,
};

pub use crate::words::{CATEGORIES_HEADER, DECISION_HEADER, NOTICE_HEADER, PURPOSE_HEADER};
/// The notice 42 CFR §2.32 requires with every disclosure.
pub const REDISCLOSURE_NOTICE: &str = "This record which has been disclosed to you is protected by federal confidentiality rules (42 CFR part 2). These rules prohibit you from using or disclosing this record, or testimony that describes the information contained in this record, in any civil, criminal, administrative, or legislative proceedings by any Federal, State, or local authority, against the patient, unless authorized by the consent of the patient, except as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In addition, the federal rules prohibit you from making any other use or disclosure of this record unless at least one of the following applies: (i) disclosure is expressly permitted by the written consent of the individual whose information is being disclosed in this record or as otherwise permitted by 42 CFR part 2; (ii) you are a covered entity or business associate and have received the record for treatment, payment, or health care operations; or (iii) you have received the record from a covered entity or business associate as permitted by 45 CFR part 164, subparts A and E. A general authorization for the release of medical or other information is NOT sufficient to meet the required elements of written consent to further use or redisclose the record (see 42 CFR 2.31).";
/// Most categories one request may name.
pub const CATEGORIES_MAX: usize = 32;

/// The limits of the agency path.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Nonces remembered per agency: one agency cannot push the others'
    /// out, since each has its own share. With signatures valid for `L`
    /// seconds and the 30 s skew, an agency can sustain `max / (L + 30)`
    /// requests a second (100,000 and L = 60: about 1,100/s); a full share
    /// refuses, never forgets.
    pub nonces_per_agency_max: usize,
    /// Agencies with a nonce share; the registry is bounded too.
    pub agencies_max: usize,
    /// How long a holder's upstream may take to answer a forwarded request.
    pub upstream_timeout: std::time::Duration,
    /// The largest answer read from a holder's upstream.
    pub upstream_body_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            nonces_per_agency_max: 100_000,
            agencies_max: 4096,
            upstream_timeout: std::time::Duration::from_secs(10),
            upstream_body_bytes_max: 4 * 1024 * 1024,
        }
    }
}

/// What the agency path holds: the gateway's key, the forwarder, the
/// nonce caches, the refusals counted, and the deployment it decides on.
/// The participants' sessions live in their own room
/// (`participant::state`), not here.
pub struct Gateway {
    pub dep: Arc<Deployment>,
    pub clock: Arc<dyn Clock>,
    /// The gateway's key: signs its log entries and forwarded requests.
    key: ed25519_dalek::SigningKey,
    /// `scheme://authority` agencies sign against: the configured one,
    /// never the client's `Host` header.
    origin: Origin,
    forwarder: Forwarder,
    /// Keys the hashes of forwarded values in `access.decided`.
    forward_mac: path::ForwardMac,
    /// Unauthenticated refusals counted since the last summary.
    refusals: refusals::Refusals,
    nonces: Mutex<HashMap<String, Arc<NonceCache>>>,
    /// What the gateway processes before this one accepted: the nonce
    /// caches start empty, so this refuses their signatures again.
    earlier: replay::Earlier,
    limits: Limits,
    pub metrics: Metrics,
}

impl Gateway {
    /// Built by the server's state (`server::state::AppState`), once, from
    /// its settings; `dep`'s clock is set to `clock` there.
    pub fn new(
        dep: Arc<Deployment>,
        clock: Arc<dyn Clock>,
        key: ed25519_dalek::SigningKey,
        origin: Origin,
        limits: Limits,
        upstream_tls: &UpstreamTls,
    ) -> Result<Self, StartError> {
        let key_id = dep.state()?.trust().gateway_key_id.clone();
        // The start, on the injected clock, and what was accepted before
        // it: see `replay` for why this makes a replay across a restart
        // impossible. The window is the longest a signature the agency
        // path accepts can stay valid after its decision.
        let policy = VerifyPolicy::gateway();
        let skew = policy.max_skew_secs.clamp(0, httpsig::SKEW_SECS_MAX);
        let window = policy
            .max_lifetime_secs
            .unwrap_or(httpsig::DEFAULT_MAX_LIFETIME_SECS)
            .saturating_add(2 * skew);
        let earlier = replay::Earlier::scan(&dep.log, clock.now(), window)?;
        Ok(Self {
            forwarder: Forwarder::new(
                key_id.clone(),
                key.clone(),
                limits.upstream_timeout,
                limits.upstream_body_bytes_max,
                upstream_tls,
            )?,
            forward_mac: path::ForwardMac::from_gateway_key(&key),
            refusals: refusals::Refusals::default(),
            dep,
            clock,
            key,
            origin,
            nonces: Mutex::new(HashMap::new()),
            earlier,
            limits,
            metrics: Metrics::default(),
        })
    }

    /// `scheme://authority`, as agencies and participants sign it.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    fn nonce_share(&self, agency: &str) -> Option<Arc<NonceCache>> {
        let mut map = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(agency) {
            return Some(c.clone());
        }
        if map.len() >= self.limits.agencies_max {
            return None;
        }
        // A nonce is kept until its signature's expiry plus the clock skew
        // the policy allows: replays are impossible after that anyway.
        let c = Arc::new(NonceCache::new(
            self.limits.nonces_per_agency_max,
            VerifyPolicy::gateway().max_skew_secs,
        ));
        map.insert(agency.to_string(), c.clone());
        Some(c)
    }
}

/// A random decision id: 128 bits, so ids never collide nor are guessed.
pub fn new_decision_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    format!("d-{}", hex(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decision_header(id: &str, index: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("{id}; index={index}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `r` with the `Consentry-Decision` header naming the decision and the
/// log index of its entry.
fn with_decision(mut r: Response, id: &str, index: u64) -> Response {
    r.headers_mut()
        .insert(DECISION_HEADER, decision_header(id, index));
    r
}

/// The organisation an (enrolled, current, not retired) key with `role`
/// belongs to.
fn agency_key(
    state: &ConsentState,
    key_id: &str,
    role: Role,
) -> Option<(String, ed25519_dalek::VerifyingKey)> {
    let info = state.key(key_id)?;
    let KeyOwner::Agency(agency) = info.owner else {
        return None;
    };
    let a = state.agency(&agency)?;
    if !info.current || a.retired || !a.enrolled.roles.contains(&role) {
        return None;
    }
    Some((agency, decode_key(&info.public_key)?))
}

/// What an unauthenticated request claimed, as a bounded printable
/// string: recorded as a claim, never trusted.
fn claimed_key_id(headers: &HeaderMap) -> Option<String> {
    let input = headers.get("signature-input")?.to_str().ok()?;
    let rest = &input[input.find("keyid=\"")? + 7..];
    let id = &rest[..rest.find('"')?];
    (id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then(|| id.to_string())
}

/// Digest of what an unauthenticated request showed: method, target and
/// its signature fields.
fn refused_digest(method: &str, target: &str, headers: &HeaderMap) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(target.as_bytes());
    for name in ["signature-input", "signature"] {
        for v in headers.get_all(name) {
            h.update(b"\n");
            h.update(v.as_bytes());
        }
    }
    hex(&h.finalize())
}

impl Gateway {
    /// The verified signature and the organisation whose current key with
    /// `role` made it, its nonce unseen before, by this process and by any
    /// before it (`digests` says whether the caller's path logs each
    /// accepted signature's digest before it has an effect; see
    /// [`replay`]); or the reason code of the refusal.
    pub(crate) fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        now: i64,
        role: Role,
        policy: &VerifyPolicy,
        digests: replay::Digests,
    ) -> Result<(httpsig::Verified, String), AuthFailure> {
        // The target is always the configured authority's: an
        // absolute-form request line naming another is refused here.
        let msg = OwnedMessage::from_http(
            &parts.method,
            &parts.uri,
            &parts.headers,
            self.origin.scheme(),
            Some(self.origin.authority()),
        )
        .map_err(|e| AuthFailure::Refused(e.code()))?;
        let state = self.dep.state()?;
        // The agency is noted when its key is looked up, not looked up twice.
        let agency = std::cell::RefCell::new(None);
        let verified = httpsig::verify(
            &msg.view(body),
            LabelPolicy::First,
            |kid| {
                agency_key(&state, kid, role).map(|(a, k)| {
                    *agency.borrow_mut() = Some(a);
                    k
                })
            },
            now,
            policy,
        )
        .map_err(|e| AuthFailure::Refused(e.code()))?;
        drop(state);
        let agency = agency
            .into_inner()
            .ok_or(AuthFailure::Refused(HttpSigError::UnknownKeyId.code()))?;
        // `created` is required by every policy this is called with; a
        // signature without one counts as created before the start.
        let created = verified.created().unwrap_or(i64::MIN);
        self.earlier
            .check(
                created,
                verified.request_digest(),
                now,
                policy.max_skew_secs.clamp(0, httpsig::SKEW_SECS_MAX),
                policy.max_lifetime_secs,
                digests,
            )
            .map_err(|e| AuthFailure::Refused(e.code()))?;
        let replay = match (
            self.nonce_share(&agency),
            verified.nonce(),
            verified.expires(),
        ) {
            (Some(cache), Some(nonce), Some(expires)) => cache
                .check_and_insert(verified.keyid(), nonce, expires, now)
                .err()
                .map(|e| e.code()),
            _ => Some("nonce-cache-full"),
        };
        match replay {
            Some(reason) => Err(AuthFailure::Refused(reason)),
            None => Ok((verified, agency)),
        }
    }

    /// Counts an unauthenticated refusal (logged in the next summary, not
    /// one entry per request: see [`refusals`]) and answers 401.
    fn refuse(&self, failure: AuthFailure, claimed: Option<String>) -> Problem {
        let reason = match failure {
            AuthFailure::Refused(reason) => reason,
            AuthFailure::Stopped(e) => return e.into(),
        };
        self.metrics.refused(reason);
        self.refusals
            .count(reason, claimed.as_deref(), self.clock.now());
        Problem::Unauthenticated {
            detail: "the request's signature was not accepted",
            reason,
        }
    }

    /// Appends one `access.refused` summary per reason for what was
    /// counted since the last call; answers their log indexes once
    /// durable. What could not be logged is counted again next time.
    pub async fn flush_refusals(&self) -> Result<Vec<u64>, crate::deployment::SubmitError> {
        let summaries = self.refusals.take(new_decision_id);
        let mut done = Vec::with_capacity(summaries.len());
        let mut left = summaries.into_iter();
        while let Some(s) = left.next() {
            match self
                .dep
                .submit_own(&Event::AccessRefused(s.clone()), &self.key)
                .await
            {
                Ok(index) => done.push(index),
                Err(e) => {
                    self.refusals
                        .restore(std::iter::once(s).chain(left).collect());
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// An authenticated request the gateway will not decide (what it asks
    /// to forward breaks the grammar): logged as `access.refused` with the
    /// verified key id, answered 400 with the precise reason.
    async fn refuse_invalid(
        &self,
        reason: &'static str,
        detail: String,
        key_id: &str,
        digest: String,
    ) -> Result<Response, Problem> {
        let id = new_decision_id();
        let at = self.clock.now();
        let event = Event::AccessRefused(AccessRefused {
            v: policy::V1or2::V2,
            decision_id: id.clone(),
            at,
            reason: reason.to_string(),
            request_digest: Some(digest),
            claimed_key_id: None,
            from: Some(at),
            count: Some(1),
            claimed: Vec::new(),
            verified_key_id: Some(key_id.to_string()),
        });
        self.metrics.refused(reason);
        let index = self
            .dep
            .submit_own(&event, &self.key)
            .await
            .map_err(unlogged)?;
        Ok(with_decision(
            Problem::BadAsk { reason, detail }.into_response(),
            &id,
            index,
        ))
    }

    /// Logs `access.released` (durably); the answer waits for it.
    async fn log_release(&self, release: AccessReleased) -> Result<u64, Problem> {
        let event = Event::AccessReleased(release);
        self.dep
            .submit_own(&event, &self.key)
            .await
            .map_err(unlogged)
    }
}

/// Why the agency path could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Stopped(#[from] crate::deployment::Stopped),
    #[error("reading what the log accepted before this start: {0}")]
    Earlier(#[from] replay::ScanError),
    #[error("the upstream client's TLS: {0}")]
    UpstreamTls(#[from] crate::tls::TlsError),
}

/// Why [`Gateway::authenticate`] did not accept a request.
#[derive(Debug)]
pub(crate) enum AuthFailure {
    /// The signature's refusal code: answered 401 and counted.
    Refused(&'static str),
    /// The consent state cannot be read: answered 503, never a 401.
    Stopped(crate::deployment::Stopped),
}

impl From<crate::deployment::Stopped> for AuthFailure {
    fn from(e: crate::deployment::Stopped) -> Self {
        AuthFailure::Stopped(e)
    }
}

/// A decision or release that could not be logged: nothing leaves.
fn unlogged(e: crate::deployment::SubmitError) -> Problem {
    Problem::LogUnavailable(format!(
        "the decision could not be logged durably, so nothing was released: {e}"
    ))
}

fn counts(map: &std::collections::BTreeMap<String, u32>) -> Vec<CategoryCount> {
    map.iter()
        .map(|(c, n)| CategoryCount {
            category: c.clone(),
            count: *n,
        })
        .collect()
}

/// Why the headers a request is decided on were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A signature covers a field's lines joined with ", "; a decision on
    /// one of them would rest on less than was signed.
    #[error("the {0} header appears more than once; send it once, on one line")]
    Repeated(&'static str),
    #[error("consentry-purpose must be one purpose code (lowercase letters, digits and '-', in '.'-separated segments) of at most {CODE_BYTES_MAX} bytes", CODE_BYTES_MAX = policy::limits::CODE_BYTES_MAX)]
    Purpose,
    #[error("each of consentry-categories must be a category code (lowercase letters, digits and '-', in '.'-separated segments) of at most {CODE_BYTES_MAX} bytes", CODE_BYTES_MAX = policy::limits::CODE_BYTES_MAX)]
    Category,
    #[error("consentry-categories names more than {CATEGORIES_MAX} categories")]
    TooManyCategories,
}

impl HeaderError {
    pub fn code(&self) -> &'static str {
        match self {
            HeaderError::Repeated(_) => "repeated-header",
            HeaderError::Purpose => "invalid-purpose",
            HeaderError::Category => "invalid-category",
            HeaderError::TooManyCategories => "too-many-categories",
        }
    }
}

/// The purpose and the categories of a request, each header on one line
/// and each value shaped as a vocabulary code within policy's bound, so
/// that every request that reaches `decide` can also be logged. Whether a
/// code is in the vocabulary is for the decision (a deny, logged). Empty
/// items of the list are skipped, as before; an empty list is decided.
pub fn decision_headers(headers: &HeaderMap) -> Result<(String, Vec<String>), HeaderError> {
    let one = |name: &'static str| -> Result<&str, HeaderError> {
        let mut lines = headers.get_all(name).iter();
        let first = lines.next();
        if lines.next().is_some() {
            return Err(HeaderError::Repeated(name));
        }
        // Absent or not text: the signature covers both headers, so this
        // is only reached for a value that is no code at all.
        Ok(first.and_then(|v| v.to_str().ok()).unwrap_or_default())
    };
    let purpose = one(PURPOSE_HEADER)?.trim();
    let list = one(CATEGORIES_HEADER)?;
    if !policy::vocab::is_valid_code(purpose) {
        return Err(HeaderError::Purpose);
    }
    let mut categories = Vec::new();
    for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if categories.len() == CATEGORIES_MAX {
            return Err(HeaderError::TooManyCategories);
        }
        if !policy::vocab::is_valid_code(c) {
            return Err(HeaderError::Category);
        }
        categories.push(c.to_string());
    }
    Ok((purpose.to_string(), categories))
}

/// The raw path after `/v1/records/{holder}/{participant}/`, before any
/// percent-decoding: the grammar reads what the agency sent.
fn raw_fhir_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/records/")?;
    let (_, rest) = rest.split_once('/')?;
    let (_, rest) = rest.split_once('/')?;
    Some(rest)
}

/// `GET /v1/records/{holder}/{participant}/{*fhir_path}`, in the order
/// the module's docs give.
pub async fn records(
    State(g): State<Arc<Gateway>>,
    Path((holder, participant, _fhir_path)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // The route's body limit layer bounds this.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| Problem::BodyTooLarge)?;

    // 1. Authenticate.
    let now = g.clock.now();
    let (verified, requester) = g
        .authenticate(
            &parts,
            &body,
            now,
            Role::Agency,
            &VerifyPolicy::gateway(),
            replay::Digests::Logged,
        )
        .map_err(|failure| g.refuse(failure, claimed_key_id(&parts.headers)))?;
    let (forward, (purpose, categories)) = match checked_ask(&parts) {
        Ok(c) => c,
        Err((code, detail)) => {
            let target = format!(
                "{}{}",
                g.origin,
                parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
            );
            let digest = refused_digest(parts.method.as_str(), &target, &parts.headers);
            return g
                .refuse_invalid(code, detail, verified.keyid(), digest)
                .await;
        }
    };

    // 2–3. Decide at this position and log it durably.
    let request = policy::Request {
        requester,
        holder: holder.clone(),
        participant: participant.clone(),
        categories,
        purpose,
    };
    let decision_id = new_decision_id();
    let logged = g
        .dep
        .decide_and_log(&Deciding {
            request: &request,
            now,
            decision_id: &decision_id,
            evidence: policy::Evidence {
                method: policy::EvidenceMethod::Rfc9421,
                digest: verified.request_digest().to_owned(),
            },
            forwarded: Some(forward.describe(&g.forward_mac)),
            key: &g.key,
        })
        .await
        .map_err(unlogged)?;
    g.metrics.decided(&logged.decision, started.elapsed());
    let allow = match &logged.decision {
        policy::Decision::Allow(a) => a.clone(),
        policy::Decision::Deny(_) => {
            let view = logged.decision.agency_view();
            let reasons: Vec<&str> = view.reasons.iter().map(|r| r.code()).collect();
            let denied = Problem::Denied {
                reasons: serde_json::json!(reasons),
            };
            return Ok(with_decision(
                denied.into_response(),
                &decision_id,
                logged.index,
            ));
        }
    };
    let released = Released {
        decision_id: &decision_id,
        decided_index: logged.index,
        participant: &participant,
        categories: allow.released(),
        now,
    };
    // 4–5. Forward and filter; 6–7. log what leaves, then answer.
    let outcome = fetch(&g, &holder, &forward, &released).await;
    release(&g, &released, outcome).await
}

/// What an authenticated request asks to have forwarded (a grammar) and
/// the headers it is decided on (once each, well formed), checked before
/// anything is decided: a refusal is a 400 logged against the verified
/// key, never a 503 from the log's own bounds nor a decision on part of
/// what was signed.
#[allow(clippy::type_complexity)]
fn checked_ask(
    parts: &http::request::Parts,
) -> Result<(path::ForwardPath, (String, Vec<String>)), (&'static str, String)> {
    raw_fhir_path(parts.uri.path())
        .ok_or(path::PathError::Shape)
        .and_then(|rest| path::parse(rest, parts.uri.query()))
        .map_err(|e| (e.code(), e.to_string()))
        .and_then(|forward| {
            decision_headers(&parts.headers)
                .map(|headers| (forward, headers))
                .map_err(|e| (e.code(), e.to_string()))
        })
}

/// An allow, as the release steps need it.
struct Released<'a> {
    decision_id: &'a str,
    /// The index of its `access.decided` entry.
    decided_index: u64,
    participant: &'a str,
    categories: &'a [String],
    now: i64,
}

/// Why nothing could be released: the answer's status, the reason code,
/// and the holder's status (0 if none came).
struct Nothing {
    status: StatusCode,
    reason: String,
    upstream_status: u16,
}

impl Nothing {
    fn new(status: StatusCode, reason: &str, upstream_status: u16) -> Self {
        Self {
            status,
            reason: reason.to_string(),
            upstream_status,
        }
    }
}

/// Steps 4 and 5: forward to the holder's upstream, signed by the
/// gateway; keep only what the released categories cover.
async fn fetch(
    g: &Gateway,
    holder: &str,
    forward: &path::ForwardPath,
    r: &Released<'_>,
) -> Result<(u16, filter::Filtered), Nothing> {
    let upstream = g
        .dep
        .state()
        .map_err(|_| Nothing::new(StatusCode::SERVICE_UNAVAILABLE, "deployment-stopped", 0))?
        .agency(holder)
        .map(|a| (a.enrolled.upstream, a.enrolled.upstream_client_certificate));
    let Some((base, identify)) = upstream else {
        return Err(Nothing::new(
            StatusCode::BAD_GATEWAY,
            "holder-has-no-upstream",
            0,
        ));
    };
    let up_started = Instant::now();
    let answer = g
        .forwarder
        .get(
            &Outgoing {
                url: format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    forward.upstream_path(r.participant)
                ),
                participant: r.participant,
                decision_id: r.decision_id,
                released: r.categories,
                now: r.now,
            },
            identify,
        )
        .await;
    g.metrics.upstream(up_started.elapsed());
    match answer {
        Err(e @ ForwardError::Timeout(_)) => {
            Err(Nothing::new(StatusCode::GATEWAY_TIMEOUT, e.code(), 0))
        }
        Err(e) => Err(Nothing::new(StatusCode::BAD_GATEWAY, e.code(), 0)),
        Ok(a) if !(200..300).contains(&a.status) => Err(Nothing::new(
            StatusCode::BAD_GATEWAY,
            "upstream-error",
            a.status,
        )),
        Ok(a) => filter::filter(&a.body, r.categories, r.participant)
            .map(|f| (a.status, f))
            .map_err(|e| Nothing::new(StatusCode::BAD_GATEWAY, e.code(), a.status)),
    }
}

/// Steps 6 and 7: `access.released` with the SHA-256 of exactly the bytes
/// to send (or of nothing), durable; only then the answer.
async fn release(
    g: &Gateway,
    r: &Released<'_>,
    outcome: Result<(u16, filter::Filtered), Nothing>,
) -> Result<Response, Problem> {
    let base = AccessReleased {
        v: V1,
        decision_id: r.decision_id.to_owned(),
        participant: r.participant.to_owned(),
        at: r.now,
        upstream_status: 0,
        released_sha256: String::new(),
        released_bytes: 0,
        kept: Vec::new(),
        dropped: Vec::new(),
        problem: None,
    };
    let (upstream_status, f) = match outcome {
        Err(nothing) => {
            g.metrics.released(false);
            let index = g
                .log_release(AccessReleased {
                    upstream_status: nothing.upstream_status,
                    problem: Some(nothing.reason.clone()),
                    ..base
                })
                .await?;
            let problem = Problem::Upstream {
                status: nothing.status,
                reason: serde_json::json!(nothing.reason),
            };
            return Ok(with_decision(problem.into_response(), r.decision_id, index));
        }
        Ok(released) => released,
    };
    g.log_release(AccessReleased {
        upstream_status,
        released_sha256: hex(&Sha256::digest(&f.body)),
        released_bytes: f.body.len() as u64,
        kept: counts(&f.kept),
        dropped: counts(&f.dropped),
        ..base
    })
    .await?;
    g.metrics.released(true);
    let mut answer = with_decision(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/fhir+json")],
            f.body,
        )
            .into_response(),
        r.decision_id,
        r.decided_index,
    );
    let h = answer.headers_mut();
    h.insert(NOTICE_HEADER, HeaderValue::from_static(REDISCLOSURE_NOTICE));
    if let Ok(v) = HeaderValue::from_str(&r.categories.join(", ")) {
        h.insert(crate::words::RELEASED_HEADER, v);
    }
    Ok(answer)
}
