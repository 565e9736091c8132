//! Ledger entry formats: the serde types of every event and `parse_event`.
//!
//! The ledger stores the exact JSON bytes an author signed; these types only
//! read them (and write new ones for authors). Every entry has a `type` and
//! `"v": 1`; times are unix seconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{ID_BYTES_MAX, LIST_ITEMS_MAX, STRING_BYTES_MAX};
use crate::rules::Rules;
use crate::vocab::{is_valid_code, Vocabulary};
use crate::words::{Basis, GrievanceOutcome, GrievanceReason, Language, Outcome, Reason};

/// Why bytes are not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("entry is not valid json: {0}")]
    Json(String),
    #[error("unknown entry type {0:?}")]
    UnknownType(String),
    #[error("unsupported entry format version {0}")]
    UnsupportedVersion(u64),
    #[error("field {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
}

/// The format version marker: serialises as `1` and accepts nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == 1 {
            Ok(V1)
        } else {
            Err(serde::de::Error::custom("unsupported format version"))
        }
    }
}

/// The format version of an entry type that has a second format: `1` or
/// `2`. Readers accept both, so that old logs replay unchanged; writers
/// write 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum V1or2 {
    V1,
    V2,
}

impl Serialize for V1or2 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            V1or2::V1 => 1,
            V1or2::V2 => 2,
        })
    }
}

impl<'de> Deserialize<'de> for V1or2 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            1 => Ok(V1or2::V1),
            2 => Ok(V1or2::V2),
            _ => Err(serde::de::Error::custom("unsupported format version")),
        }
    }
}

/// What an enrolled agency may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Requests and holds participants' records.
    Agency,
    /// Reads the log and verifies it; never receives records.
    Auditor,
    /// Cosigns the log's checkpoints (C2SP `tlog-cosignature`, named by
    /// the organisation's id, with its current key); never receives
    /// records.
    Witness,
}

/// Who may disclose or receive: specific agencies and/or classes of agencies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parties {
    #[serde(default)]
    pub agencies: Vec<String>,
    #[serde(default)]
    pub classes: Vec<String>,
}

impl Parties {
    pub fn agencies(ids: &[&str]) -> Self {
        Parties {
            agencies: ids.iter().map(|s| (*s).to_owned()).collect(),
            classes: Vec::new(),
        }
    }
    pub fn classes(codes: &[&str]) -> Self {
        Parties {
            agencies: Vec::new(),
            classes: codes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty() && self.classes.is_empty()
    }
}

/// `governance.rules`: the vocabulary and rules in force from this entry on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceRules {
    pub v: V1,
    pub version: u32,
    pub vocabulary: Vocabulary,
    pub rules: Rules,
    pub at: i64,
}

/// `agency.enrolled`, signed by the governance key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyEnrolled {
    pub v: V1,
    pub agency: String,
    pub name: String,
    pub key_id: String,
    /// Base64 of the 32-byte Ed25519 public key; policy does no crypto.
    pub public_key: String,
    pub upstream: String,
    /// Whether the holder's upstream asks for the gateway's client
    /// certificate (mTLS): part of the holder's entry, like its URL.
    /// Absent in entries from before it existed: no.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upstream_client_certificate: bool,
    pub classes: Vec<String>,
    pub roles: Vec<Role>,
    pub at: i64,
}

/// `agency.key_rotated`, signed by the governance key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyKeyRotated {
    pub v: V1,
    pub agency: String,
    pub key_id: String,
    pub public_key: String,
    pub at: i64,
}

/// `agency.retired`, signed by the governance key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyRetired {
    pub v: V1,
    pub agency: String,
    pub at: i64,
}

/// One board member's governance key, in the trust roots or a
/// `board.changed` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardMember {
    pub key_id: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// `board.changed`, signed by a quorum of the board in force before it
/// (a member it removes does not count toward it): members added and
/// removed, and the quorum from this entry on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardChanged {
    pub v: V1,
    #[serde(default)]
    pub add: Vec<BoardMember>,
    /// Key ids of current members.
    #[serde(default)]
    pub remove: Vec<String>,
    pub quorum: u32,
    pub at: i64,
}

/// Members one `board.changed` may add or remove.
pub const BOARD_CHANGES_MAX: usize = 32;

/// `participant.enrolled`, signed by the very key it enrols and co-signed
/// by the enrolling agency: so that the agency can link the pseudonym to
/// its own intake record, and nobody enrols a stranger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantEnrolled {
    pub v: V1,
    pub participant: String,
    pub key_id: String,
    pub public_key: String,
    pub at: i64,
    /// The enrolled agency whose intake this was; its current key co-signs.
    pub enrolled_by: String,
}

/// `participant.key_rotated`, for a lost or leaked key: signed by the new
/// key and co-signed by the current key of the organisation with the
/// `agency` role that enrolled the person (named in `assisted_by`), or by
/// the board's governance key when that agency is retired. It only
/// *requests* the move: the new key becomes current through a later
/// gateway-signed [`ParticipantKeyActivated`], after the waiting period of
/// the rules in force, unless the current key cancels it first. While it is
/// pending neither key may grant, and both may revoke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantKeyRotated {
    pub v: V1,
    pub participant: String,
    pub key_id: String,
    pub public_key: String,
    pub at: i64,
    pub assisted_by: String,
}

/// `grievance.filed`, signed by the participant: a decision they dispute,
/// and why, as a code (no free text enters the log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrievanceFiled {
    pub v: V1,
    pub grievance_id: String,
    pub participant: String,
    pub decision_id: String,
    pub reason: GrievanceReason,
    pub at: i64,
}

/// `grievance.resolved`, signed by the governance key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrievanceResolved {
    pub v: V1,
    pub grievance_id: String,
    pub outcome: GrievanceOutcome,
    pub at: i64,
}

/// `consent.granted`, signed by the participant: every element of
/// 42 CFR Part 2 §2.31.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentGranted {
    pub v: V1,
    pub consent_id: String,
    pub participant: String,
    /// Who may disclose.
    pub holders: Parties,
    /// Who may receive.
    pub recipients: Parties,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub effective_at: i64,
    /// `None`: until revoked, where the rules allow it.
    pub expires_at: Option<i64>,
    pub signed_at: i64,
    /// The language the consent was shown in.
    pub language: Language,
}

/// `consent.revoked`, signed by the participant; or, when an agency helped
/// the participant revoke, by that agency (named in `assisted_by`), which
/// must be a party to the consent: a holder or recipient by name, or a
/// member of a holder or recipient class. Any other agency is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRevoked {
    pub v: V1,
    pub consent_id: String,
    pub participant: String,
    pub at: i64,
    #[serde(default)]
    pub assisted_by: Option<String>,
}

/// `access.decided`, signed by the gateway before any record is released.
///
/// Version 1 carries the request's digest in `request_digest`; version 2
/// carries the lawful `basis` of an allow, the `evidence` of how the
/// agency was authenticated (which holds the digest) and what was
/// `forwarded`. Readers accept both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessDecided {
    pub v: V1or2,
    pub decision_id: String,
    pub at: i64,
    pub requester: String,
    pub holder: String,
    pub participant: String,
    /// As requested (possibly including codes the vocabulary lacks).
    pub categories: Vec<String>,
    pub purpose: String,
    pub outcome: Outcome,
    pub released: Vec<String>,
    /// Consent ids relied on, sorted.
    pub consents: Vec<String>,
    /// The precise reasons (not the agency's view).
    pub reasons: Vec<Reason>,
    pub break_glass: bool,
    pub rules_version: u32,
    /// Version 1: the digest of the agency's signed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    /// Version 2: what an allow rests on; `None` for a deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// Version 2: how the requester was authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Version 2: what the request asks the holder for (and, on an allow,
    /// what is forwarded), without its values in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<Forwarded>,
}

impl AccessDecided {
    /// The digest of what authenticated the request, in either version.
    pub fn evidence_digest(&self) -> &str {
        match (&self.evidence, &self.request_digest) {
            (Some(e), _) => &e.digest,
            (None, Some(d)) => d,
            (None, None) => "",
        }
    }
}

/// How a requester was authenticated. Later methods (a token) add values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceMethod {
    /// An RFC 9421 HTTP message signature; the digest is that of the
    /// signature base (the agency cannot later deny having asked).
    Rfc9421,
}

/// The evidence an agency's request was authenticated by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub method: EvidenceMethod,
    pub digest: String,
}

/// One search parameter as forwarded: its name in clear, its value as a
/// keyed hash (HMAC-SHA-256 under a secret the gateway holds, lowercase
/// hex), so that a claimed request can be confirmed but not guessed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedParam {
    pub name: String,
    pub value_mac: String,
}

/// What the gateway asks (or would ask) the holder's record system for:
/// a FHIR resource type, optionally one id, and search parameters. The
/// patient parameter is the gateway's own and is not listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forwarded {
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_mac: Option<String>,
    #[serde(default)]
    pub params: Vec<ForwardedParam>,
}

/// `access.refused`: requests the gateway did not decide; never replayed.
///
/// Version 1 is one unauthenticated request: its digest and the key id it
/// claimed. Version 2 is either a summary of the unauthenticated requests
/// refused for one reason over an interval (`from`..`at`, a `count`, and
/// the key ids they *claimed*, never trusted, with counts), so that
/// strangers cannot grow the log one entry per request; or one
/// authenticated request refused before any decision (a forbidden path,
/// a malformed purpose), with the `verified_key_id` that signed it and its
/// digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRefused {
    pub v: V1or2,
    pub decision_id: String,
    pub at: i64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    /// Version 1: the key id an unauthenticated request claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_key_id: Option<String>,
    /// Version 2: the start of the interval a summary covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Version 2: how many requests it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Version 2, summaries: key ids the refused requests claimed, with
    /// counts; `*` counts the claims past the list's bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claimed: Vec<ClaimedKey>,
    /// Version 2, one authenticated request: the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_key_id: Option<String>,
}

impl AccessRefused {
    /// How many requests this entry stands for.
    pub fn requests(&self) -> u64 {
        self.count.unwrap_or(1)
    }
}

/// A key id unauthenticated requests claimed, and how many did: a claim,
/// never a finding about the organisation that key belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimedKey {
    pub key_id: String,
    pub count: u64,
}

/// How many resources of one category were kept or dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryCount {
    pub category: String,
    pub count: u32,
}

/// `access.released`, signed by the gateway after the holder's upstream
/// answered and the answer was filtered, and durable before any byte of it
/// reaches the requester: the log commits to what left, not only to what
/// was allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessReleased {
    pub v: V1,
    /// The `access.decided` entry this release follows.
    pub decision_id: String,
    /// Whose records: so that the participant finds every release about
    /// them by the same index as the decisions.
    pub participant: String,
    pub at: i64,
    /// The upstream's HTTP status; 0 when it could not be reached.
    pub upstream_status: u16,
    /// Lowercase hex SHA-256 of exactly the bytes sent to the requester;
    /// empty when nothing was released.
    pub released_sha256: String,
    pub released_bytes: u64,
    /// Resources kept, by the released category that covered them.
    pub kept: Vec<CategoryCount>,
    /// Resources dropped, by their label (`unlabelled` for none).
    pub dropped: Vec<CategoryCount>,
    /// Why nothing was released, when nothing was (a reason code).
    #[serde(default)]
    pub problem: Option<String>,
}

/// `participant.notice`, signed by the gateway: something the participant
/// must be told, e.g. an emergency access to their records or a request to
/// move their key. Version 1 always names a decision; version 2 names one
/// when the notice is about one, and otherwise the log index of the entry
/// it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantNotice {
    pub v: V1or2,
    pub participant: String,
    pub at: i64,
    /// What happened, as a code ([`NoticeKind`]).
    pub kind: String,
    /// The decision it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// Version 2: the log index of the entry it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_index: Option<u64>,
}

/// The kinds of [`ParticipantNotice`] the gateway writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// An emergency access without consent (§2.51).
    BreakGlass,
    /// Someone asked to move the person's key to a new one; it becomes
    /// current only after the waiting period, unless cancelled.
    KeyRotationRequested,
    /// The person's current key cancelled a pending move.
    KeyRotationCancelled,
    /// The waiting period passed: the new key is now the person's key.
    KeyRotationActivated,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 4] = [
        NoticeKind::BreakGlass,
        NoticeKind::KeyRotationRequested,
        NoticeKind::KeyRotationCancelled,
        NoticeKind::KeyRotationActivated,
    ];

    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::BreakGlass => "break-glass",
            NoticeKind::KeyRotationRequested => "key-rotation-requested",
            NoticeKind::KeyRotationCancelled => "key-rotation-cancelled",
            NoticeKind::KeyRotationActivated => "key-rotation-activated",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// `participant.key_activated`, signed by the gateway when a pending
/// rotation's waiting period has passed on its own clock: from this entry
/// on the new key is the participant's key and the old one signs nothing
/// that is accepted. No signer of the rotation can backdate it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantKeyActivated {
    pub v: V1,
    pub participant: String,
    /// The pending key that becomes current.
    pub key_id: String,
    /// The log index of the `participant.key_rotated` entry.
    pub rotation_index: u64,
    pub at: i64,
}

/// `participant.rotation_cancelled`, signed by the participant's current
/// key: the pending move to `key_id` will never happen. The board sees
/// every cancellation (someone tried to take the person's key, or the
/// person changed their mind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantRotationCancelled {
    pub v: V1,
    pub participant: String,
    pub key_id: String,
    pub at: i64,
}

/// Every entry the log holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "governance.rules")]
    GovernanceRules(GovernanceRules),
    #[serde(rename = "agency.enrolled")]
    AgencyEnrolled(AgencyEnrolled),
    #[serde(rename = "agency.key_rotated")]
    AgencyKeyRotated(AgencyKeyRotated),
    #[serde(rename = "agency.retired")]
    AgencyRetired(AgencyRetired),
    #[serde(rename = "participant.enrolled")]
    ParticipantEnrolled(ParticipantEnrolled),
    #[serde(rename = "consent.granted")]
    ConsentGranted(ConsentGranted),
    #[serde(rename = "consent.revoked")]
    ConsentRevoked(ConsentRevoked),
    #[serde(rename = "access.decided")]
    AccessDecided(AccessDecided),
    #[serde(rename = "access.refused")]
    AccessRefused(AccessRefused),
    #[serde(rename = "access.released")]
    AccessReleased(AccessReleased),
    #[serde(rename = "participant.notice")]
    ParticipantNotice(ParticipantNotice),
    #[serde(rename = "participant.key_rotated")]
    ParticipantKeyRotated(ParticipantKeyRotated),
    #[serde(rename = "grievance.filed")]
    GrievanceFiled(GrievanceFiled),
    #[serde(rename = "grievance.resolved")]
    GrievanceResolved(GrievanceResolved),
    #[serde(rename = "participant.key_activated")]
    ParticipantKeyActivated(ParticipantKeyActivated),
    #[serde(rename = "participant.rotation_cancelled")]
    ParticipantRotationCancelled(ParticipantRotationCancelled),
    #[serde(rename = "board.changed")]
    BoardChanged(BoardChanged),
}

const EVENT_TYPES: [&str; 17] = [
    "governance.rules",
    "agency.enrolled",
    "agency.key_rotated",
    "agency.retired",
    "participant.enrolled",
    "consent.granted",
    "consent.revoked",
    "access.decided",
    "access.refused",
    "access.released",
    "participant.notice",
    "participant.key_rotated",
    "grievance.filed",
    "grievance.resolved",
    "participant.key_activated",
    "participant.rotation_cancelled",
    "board.changed",
];

/// The entry types with a second format version (see [`V1or2`]).
const TYPES_WITH_V2: [&str; 3] = ["access.decided", "access.refused", "participant.notice"];

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    v: u64,
}

/// Parses and bounds-checks one ledger entry.
///
/// `bytes` is a ledger entry, which the ledger has already bounded by
/// `ledger::entry::ENTRY_BYTES_MAX` (16 KiB); policy keeps no entry limit
/// of its own. The field limits of [`crate::limits`] keep what the state
/// holds from it bounded.
pub fn parse_event(bytes: &[u8]) -> Result<Event, ParseError> {
    // Read the header first so that an unknown type or version gets its own
    // error rather than a serde message about some field.
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    if !EVENT_TYPES.contains(&header.kind.as_str()) {
        return Err(ParseError::UnknownType(header.kind));
    }
    let v_max = if TYPES_WITH_V2.contains(&header.kind.as_str()) {
        2
    } else {
        1
    };
    if header.v == 0 || header.v > v_max {
        return Err(ParseError::UnsupportedVersion(header.v));
    }
    let event: Event =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    event.validate()?;
    Ok(event)
}

fn invalid(field: &'static str, problem: &'static str) -> ParseError {
    ParseError::Invalid { field, problem }
}

/// Identifiers: printable ASCII without spaces or quotes, so they are safe
/// in logs, URLs and signed notes.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
}

fn check_id(field: &'static str, id: &str) -> Result<(), ParseError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be 1-128 bytes of letters, digits, '-', '_', '.', ':', '@'",
        ))
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), ParseError> {
    if text.is_empty() || text.len() > STRING_BYTES_MAX {
        Err(invalid(field, "must be 1-256 bytes"))
    } else {
        Ok(())
    }
}

fn check_key(field: &'static str, key: &str) -> Result<(), ParseError> {
    let base64 = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    if key.is_empty() || key.len() > STRING_BYTES_MAX || !base64 {
        Err(invalid(field, "must be base64, at most 256 bytes"))
    } else {
        Ok(())
    }
}

fn check_list<T>(
    field: &'static str,
    items: &[T],
    nonempty: bool,
    each: impl Fn(&T) -> bool,
) -> Result<(), ParseError> {
    if items.len() > LIST_ITEMS_MAX {
        return Err(invalid(field, "has more than 64 items"));
    }
    if nonempty && items.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if !items.iter().all(each) {
        return Err(invalid(field, "has a malformed item"));
    }
    Ok(())
}

fn code_ok(c: &str) -> bool {
    is_valid_code(c)
}

fn id_ok(c: &str) -> bool {
    is_valid_id(c)
}

fn bounded(c: &str) -> bool {
    !c.is_empty() && c.len() <= STRING_BYTES_MAX
}

fn check_parties(field: &'static str, parties: &Parties) -> Result<(), ParseError> {
    check_list(field, &parties.agencies, false, |c| id_ok(c))?;
    check_list(field, &parties.classes, false, |c| code_ok(c))?;
    if parties.is_empty() {
        return Err(invalid(field, "must name at least one agency or class"));
    }
    Ok(())
}

impl Event {
    /// The entry's `type` string.
    pub fn kind(&self) -> &'static str {
        let i = match self {
            Event::GovernanceRules(_) => 0,
            Event::AgencyEnrolled(_) => 1,
            Event::AgencyKeyRotated(_) => 2,
            Event::AgencyRetired(_) => 3,
            Event::ParticipantEnrolled(_) => 4,
            Event::ConsentGranted(_) => 5,
            Event::ConsentRevoked(_) => 6,
            Event::AccessDecided(_) => 7,
            Event::AccessRefused(_) => 8,
            Event::AccessReleased(_) => 9,
            Event::ParticipantNotice(_) => 10,
            Event::ParticipantKeyRotated(_) => 11,
            Event::GrievanceFiled(_) => 12,
            Event::GrievanceResolved(_) => 13,
            Event::ParticipantKeyActivated(_) => 14,
            Event::ParticipantRotationCancelled(_) => 15,
            Event::BoardChanged(_) => 16,
        };
        EVENT_TYPES.get(i).copied().unwrap_or("unknown")
    }

    /// The time the entry states.
    pub fn at(&self) -> i64 {
        match self {
            Event::GovernanceRules(e) => e.at,
            Event::AgencyEnrolled(e) => e.at,
            Event::AgencyKeyRotated(e) => e.at,
            Event::AgencyRetired(e) => e.at,
            Event::ParticipantEnrolled(e) => e.at,
            Event::ConsentGranted(e) => e.signed_at,
            Event::ConsentRevoked(e) => e.at,
            Event::AccessDecided(e) => e.at,
            Event::AccessRefused(e) => e.at,
            Event::AccessReleased(e) => e.at,
            Event::ParticipantNotice(e) => e.at,
            Event::ParticipantKeyRotated(e) => e.at,
            Event::GrievanceFiled(e) => e.at,
            Event::GrievanceResolved(e) => e.at,
            Event::ParticipantKeyActivated(e) => e.at,
            Event::ParticipantRotationCancelled(e) => e.at,
            Event::BoardChanged(e) => e.at,
        }
    }

    /// For a self-signed entry (`participant.enrolled`,
    /// `participant.key_rotated`), the key id and public key its signature
    /// must verify under: the state cannot know that key before the entry
    /// is applied.
    pub fn self_signing_key(&self) -> Option<(&str, &str)> {
        match self {
            Event::ParticipantEnrolled(e) => Some((&e.key_id, &e.public_key)),
            Event::ParticipantKeyRotated(e) => Some((&e.key_id, &e.public_key)),
            _ => None,
        }
    }

    /// Serialises a valid event to the JSON bytes an author signs.
    pub fn to_json(&self) -> Result<Vec<u8>, ParseError> {
        self.validate()?;
        // Whether it fits a ledger entry is the ledger's to say, at append.
        serde_json::to_vec(self).map_err(|e| ParseError::Json(e.to_string()))
    }

    /// Bounds and syntax checks that need no state.
    pub fn validate(&self) -> Result<(), ParseError> {
        match self {
            Event::GovernanceRules(_) => Ok(()),
            Event::AgencyEnrolled(e) => {
                check_id("agency", &e.agency)?;
                check_text("name", &e.name)?;
                check_id("key_id", &e.key_id)?;
                check_key("public_key", &e.public_key)?;
                check_text("upstream", &e.upstream)?;
                check_list("classes", &e.classes, false, |c| code_ok(c))?;
                check_list("roles", &e.roles, true, |_| true)
            }
            Event::AgencyKeyRotated(e) => {
                check_id("agency", &e.agency)?;
                check_id("key_id", &e.key_id)?;
                check_key("public_key", &e.public_key)
            }
            Event::AgencyRetired(e) => check_id("agency", &e.agency),
            Event::BoardChanged(e) => {
                if e.add.len() > BOARD_CHANGES_MAX || e.remove.len() > BOARD_CHANGES_MAX {
                    return Err(invalid("add", "changes more members than one entry may"));
                }
                for m in &e.add {
                    check_id("add", &m.key_id)?;
                    check_key("add", &m.public_key)?;
                }
                for id in &e.remove {
                    check_id("remove", id)?;
                }
                if e.quorum == 0 {
                    return Err(invalid("quorum", "must be at least 1"));
                }
                Ok(())
            }
            Event::ParticipantEnrolled(e) => {
                check_id("participant", &e.participant)?;
                check_id("key_id", &e.key_id)?;
                check_key("public_key", &e.public_key)?;
                check_id("enrolled_by", &e.enrolled_by)
            }
            Event::ParticipantKeyRotated(e) => {
                check_id("participant", &e.participant)?;
                check_id("key_id", &e.key_id)?;
                check_key("public_key", &e.public_key)?;
                check_id("assisted_by", &e.assisted_by)
            }
            Event::GrievanceFiled(e) => {
                check_id("grievance_id", &e.grievance_id)?;
                check_id("participant", &e.participant)?;
                check_id("decision_id", &e.decision_id)
            }
            Event::GrievanceResolved(e) => check_id("grievance_id", &e.grievance_id),
            Event::ConsentGranted(e) => check_consent_granted(e),
            Event::ConsentRevoked(e) => {
                check_id("consent_id", &e.consent_id)?;
                check_id("participant", &e.participant)?;
                match &e.assisted_by {
                    Some(a) => check_id("assisted_by", a),
                    None => Ok(()),
                }
            }
            Event::AccessDecided(e) => check_access_decided(e),
            Event::AccessRefused(e) => check_access_refused(e),
            Event::AccessReleased(e) => check_access_released(e),
            Event::ParticipantNotice(e) => check_notice(e),
            Event::ParticipantKeyActivated(e) => {
                check_id("participant", &e.participant)?;
                check_id("key_id", &e.key_id)
            }
            Event::ParticipantRotationCancelled(e) => {
                check_id("participant", &e.participant)?;
                check_id("key_id", &e.key_id)
            }
        }
    }
}

/// A grant: ids, parties, codes, and an expiry after its start.
fn check_consent_granted(e: &ConsentGranted) -> Result<(), ParseError> {
    check_id("consent_id", &e.consent_id)?;
    check_id("participant", &e.participant)?;
    check_parties("holders", &e.holders)?;
    check_parties("recipients", &e.recipients)?;
    check_list("categories", &e.categories, true, |c| code_ok(c))?;
    check_list("purposes", &e.purposes, true, |c| code_ok(c))?;
    if let Some(expires_at) = e.expires_at {
        if expires_at <= e.effective_at {
            return Err(invalid("expires_at", "must be after effective_at"));
        }
    }
    Ok(())
}

/// A decision: version 1 keeps the request digest at the top; version 2
/// keeps it in `evidence`, and has a basis exactly when it allows.
fn check_access_decided(e: &AccessDecided) -> Result<(), ParseError> {
    check_id("decision_id", &e.decision_id)?;
    check_text("requester", &e.requester)?;
    check_text("holder", &e.holder)?;
    check_text("participant", &e.participant)?;
    check_list("categories", &e.categories, false, |c| bounded(c))?;
    check_text("purpose", &e.purpose)?;
    check_list("released", &e.released, false, |c| bounded(c))?;
    check_list("consents", &e.consents, false, |c| bounded(c))?;
    check_list("reasons", &e.reasons, false, |_| true)?;
    match e.v {
        V1or2::V1 => {
            if e.basis.is_some() || e.evidence.is_some() || e.forwarded.is_some() {
                return Err(invalid(
                    "v",
                    "version 1 has no basis, evidence or forwarded",
                ));
            }
            check_text("request_digest", e.request_digest.as_deref().unwrap_or(""))
        }
        V1or2::V2 => {
            if e.request_digest.is_some() {
                return Err(invalid("request_digest", "version 2 keeps it in evidence"));
            }
            let Some(evidence) = &e.evidence else {
                return Err(invalid("evidence", "is required in version 2"));
            };
            check_text("evidence.digest", &evidence.digest)?;
            if (e.outcome == Outcome::Allow) != e.basis.is_some() {
                return Err(invalid("basis", "is set exactly when the outcome is allow"));
            }
            match &e.forwarded {
                Some(f) => check_forwarded(f),
                None => Ok(()),
            }
        }
    }
}

/// A refusal: version 1 is one request with its digest; version 2 is a
/// summary of unauthenticated requests over an interval, or one
/// authenticated request named by its verified key and digest.
fn check_access_refused(e: &AccessRefused) -> Result<(), ParseError> {
    check_id("decision_id", &e.decision_id)?;
    check_text("reason", &e.reason)?;
    if let Some(d) = &e.request_digest {
        check_text("request_digest", d)?;
    }
    if let Some(k) = &e.claimed_key_id {
        check_text("claimed_key_id", k)?;
    }
    if let Some(k) = &e.verified_key_id {
        check_id("verified_key_id", k)?;
    }
    check_list("claimed", &e.claimed, false, |c| bounded(&c.key_id))?;
    let summary = e.count.is_some() && e.from.is_some_and(|f| f <= e.at);
    match e.v {
        V1or2::V1 => {
            if e.request_digest.is_none()
                || e.from.is_some()
                || e.count.is_some()
                || !e.claimed.is_empty()
                || e.verified_key_id.is_some()
            {
                return Err(invalid("v", "version 1 is one request with its digest"));
            }
            Ok(())
        }
        V1or2::V2 if e.claimed_key_id.is_some() => Err(invalid(
            "claimed_key_id",
            "version 2 lists claims in claimed",
        )),
        V1or2::V2 if !summary => Err(invalid("count", "version 2 has a count and an interval")),
        V1or2::V2 if e.verified_key_id.is_some() => {
            if e.count != Some(1) || !e.claimed.is_empty() || e.request_digest.is_none() {
                return Err(invalid(
                    "verified_key_id",
                    "names one authenticated request with its digest",
                ));
            }
            Ok(())
        }
        V1or2::V2 => Ok(()),
    }
}

/// A release: the hash of exactly the bytes sent, and what was kept and
/// dropped.
fn check_access_released(e: &AccessReleased) -> Result<(), ParseError> {
    check_id("decision_id", &e.decision_id)?;
    check_id("participant", &e.participant)?;
    let hex_ok = e.released_sha256.is_empty()
        || (e.released_sha256.len() == 64
            && e.released_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if !hex_ok {
        return Err(invalid(
            "released_sha256",
            "must be 64 lowercase hex digits",
        ));
    }
    for (field, list) in [("kept", &e.kept), ("dropped", &e.dropped)] {
        check_list(field, list, false, |c| bounded(&c.category))?;
    }
    match &e.problem {
        Some(p) => check_text("problem", p),
        None => Ok(()),
    }
}

/// A notice: version 1 names a decision; version 2 names a known kind.
fn check_notice(e: &ParticipantNotice) -> Result<(), ParseError> {
    check_id("participant", &e.participant)?;
    check_text("kind", &e.kind)?;
    if let Some(d) = &e.decision_id {
        check_id("decision_id", d)?;
    }
    match e.v {
        V1or2::V1 if e.decision_id.is_none() => {
            Err(invalid("decision_id", "is required in version 1"))
        }
        V1or2::V1 if e.entry_index.is_some() => Err(invalid("entry_index", "is not in version 1")),
        V1or2::V1 => Ok(()),
        V1or2::V2 if NoticeKind::from_code(&e.kind).is_none() => {
            Err(invalid("kind", "is not a notice kind"))
        }
        V1or2::V2 => Ok(()),
    }
}

/// The entry fields the log indexes, as `(index kind, field)` pairs for
/// the ledger's field indexer: what a participant's timeline, a consent's
/// history and an agency's entries are found by. Each field is a
/// top-level string of some entry format above.
pub const INDEXED_FIELDS: [(&str, &str); 6] = [
    ("participant", "participant"),
    ("consent", "consent_id"),
    ("agency", "agency"),
    ("agency", "requester"),
    ("agency", "holder"),
    ("agency", "assisted_by"),
];

/// Names and keyed hashes only: a FHIR resource type, and hex MACs.
fn check_forwarded(f: &Forwarded) -> Result<(), ParseError> {
    let is_type =
        |t: &str| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric());
    let is_mac = |m: &str| {
        m.len() == 64
            && m.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let is_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    if !is_type(&f.resource_type) {
        return Err(invalid(
            "forwarded.resource_type",
            "must be a FHIR resource type",
        ));
    }
    if f.id_mac.as_deref().is_some_and(|m| !is_mac(m)) {
        return Err(invalid(
            "forwarded.id_mac",
            "must be 64 lowercase hex digits",
        ));
    }
    check_list("forwarded.params", &f.params, false, |p| {
        is_name(&p.name) && is_mac(&p.value_mac)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{json_len, RULES_JSON_BYTES_MAX, VOCABULARY_JSON_BYTES_MAX};
    use serde_json::{json, Value};

    /// `ledger::entry::ENTRY_BYTES_MAX`: the ledger's one entry limit,
    /// written out because policy does not depend on the ledger crate.
    const LEDGER_ENTRY_BYTES_MAX: usize = 16 * 1024;

    fn vocabulary_of_exactly(bytes: usize) -> Value {
        let mut lists: [Vec<Value>; 3] = Default::default();
        let names = ["categories", "purposes", "classes"];
        let value = |lists: &[Vec<Value>; 3]| json!({ names[0]: lists[0], names[1]: lists[1], names[2]: lists[2] });
        // As many small terms as fit, then labels lengthened to the byte.
        'fill: for i in 0.. {
            for k in 0..3 {
                if lists[k].len() == crate::limits::VOCABULARY_TERMS_MAX {
                    continue;
                }
                lists[k].push(json!({"code": format!("{k}c{i}"), "en": "x", "es": "x"}));
                if json_len(&value(&lists)).unwrap() > bytes {
                    lists[k].pop();
                    break 'fill;
                }
            }
        }
        for k in 0..3 {
            for t in 0..lists[k].len() {
                for label in ["en", "es"] {
                    let gap = bytes - json_len(&value(&lists)).unwrap();
                    let text = lists[k][t][label].as_str().unwrap().to_owned();
                    let add = gap.min(crate::limits::LABEL_BYTES_MAX - text.len());
                    lists[k][t][label] = Value::String(text + &"x".repeat(add));
                }
            }
        }
        value(&lists)
    }

    fn rules_of_exactly(bytes: usize) -> Value {
        let mut forbidden: Vec<String> = Vec::new();
        let value = |forbidden: &[String]| {
            json!({
                "forbidden_purposes": forbidden,
                "consent_duration_days_max": 36500,
                "allow_until_revoked": false,
                "specific_recipient_categories": [],
                "break_glass": {"purpose": "emergency", "agencies": [], "classes": [], "categories": []},
                "participant_key_rotation_wait_hours": 720,
            })
        };
        loop {
            let gap = bytes - json_len(&value(&forbidden)).unwrap();
            if gap == 0 {
                break;
            }
            match forbidden
                .iter_mut()
                .find(|c| c.len() < crate::limits::CODE_BYTES_MAX)
            {
                Some(code) => {
                    let add = gap.min(crate::limits::CODE_BYTES_MAX - code.len());
                    code.push_str(&"a".repeat(add));
                }
                None => forbidden.push(format!("f{}", forbidden.len())),
            }
        }
        value(&forbidden)
    }

    #[test]
    fn the_largest_governance_entry_fits_a_ledger_entry() {
        let vocabulary: Vocabulary =
            serde_json::from_value(vocabulary_of_exactly(VOCABULARY_JSON_BYTES_MAX)).unwrap();
        let rules: Rules = serde_json::from_value(rules_of_exactly(RULES_JSON_BYTES_MAX)).unwrap();
        assert_eq!(json_len(&vocabulary), Some(VOCABULARY_JSON_BYTES_MAX));
        assert_eq!(json_len(&rules), Some(RULES_JSON_BYTES_MAX));
        let largest = Event::GovernanceRules(GovernanceRules {
            v: V1,
            version: u32::MAX,
            vocabulary,
            rules,
            at: i64::MIN,
        });
        let bytes = largest.to_json().unwrap();
        assert!(
            bytes.len() <= LEDGER_ENTRY_BYTES_MAX,
            "the largest governance entry is {} bytes",
            bytes.len()
        );
        assert_eq!(parse_event(&bytes).unwrap(), largest);

        // One byte more, in either, is refused.
        let over: Result<Vocabulary, _> =
            serde_json::from_value(vocabulary_of_exactly(VOCABULARY_JSON_BYTES_MAX + 1));
        assert!(over.unwrap_err().to_string().contains("bytes as json"));
        let over: Result<Rules, _> =
            serde_json::from_value(rules_of_exactly(RULES_JSON_BYTES_MAX + 1));
        assert!(over.unwrap_err().to_string().contains("bytes as json"));
    }

    #[test]
    fn the_default_governance_entry_is_small() {
        let default = Event::GovernanceRules(GovernanceRules {
            v: V1,
            version: 1,
            vocabulary: Vocabulary::default_recovery(),
            rules: Rules::default_recovery(),
            at: 1_775_001_600,
        });
        let bytes = default.to_json().unwrap();
        assert!(bytes.len() < LEDGER_ENTRY_BYTES_MAX / 4, "{}", bytes.len());
    }
}
