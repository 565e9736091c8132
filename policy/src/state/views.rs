//! What readers of the state get: keys, agencies, consents, rotations and
//! grievances as owned values, built from the records on demand.

use crate::event::{AgencyEnrolled, ConsentGranted, GrievanceFiled, GrievanceResolved};

use super::records::PendingRec;

/// Whose key it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwner {
    Governance,
    Gateway,
    Agency(String),
    Participant(String),
}

/// A key in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub public_key: String,
    pub owner: KeyOwner,
    /// False once rotated away or once its agency is retired. Signatures
    /// made before that stay verifiable with it.
    pub current: bool,
}

/// An enrolled agency, as the gateway and portal read it: its enrolment
/// entry, and what later entries changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyInfo {
    /// The `agency.enrolled` entry as applied (classes and roles without
    /// repeats, classes in the state's order); its key is the first key.
    pub enrolled: AgencyEnrolled,
    /// The key it signs with now, after any rotations.
    pub current_key_id: String,
    pub retired: bool,
}

impl AgencyInfo {
    pub fn id(&self) -> &str {
        &self.enrolled.agency
    }
}

/// Where a consent stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentStatus {
    Active,
    NotYetEffective,
    Expired,
    Revoked,
}

impl ConsentStatus {
    pub fn code(self) -> &'static str {
        match self {
            ConsentStatus::Active => "active",
            ConsentStatus::NotYetEffective => "not-yet-effective",
            ConsentStatus::Expired => "expired",
            ConsentStatus::Revoked => "revoked",
        }
    }
}

/// How and where a consent was revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Ledger index of the revoke entry: it takes effect from there.
    pub index: u64,
    pub at: i64,
    pub assisted_by: Option<String>,
}

/// A consent, as the portal, the explanations and the auditor read it: the
/// grant, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentView {
    /// The `consent.granted` entry as applied (lists without repeats, in
    /// the participant's order; `expires_at: None` for "until revoked").
    pub granted: ConsentGranted,
    /// Ledger index of the grant entry.
    pub granted_index: u64,
    /// The first instant the consent is no longer active (unless revoked
    /// before): its expiry, or for an until-revoked consent its effective
    /// date plus the maximum duration of the rules it was granted under.
    pub ends_at: i64,
    pub revocation: Option<Revocation>,
}

impl ConsentView {
    pub fn status(&self, at: i64) -> ConsentStatus {
        status_of(
            self.revocation.is_some(),
            self.granted.effective_at,
            self.ends_at,
            at,
        )
    }
}

pub(super) fn status_of(revoked: bool, effective_at: i64, ends_at: i64, at: i64) -> ConsentStatus {
    if revoked {
        ConsentStatus::Revoked
    } else if at < effective_at {
        ConsentStatus::NotYetEffective
    } else if at >= ends_at {
        ConsentStatus::Expired
    } else {
        ConsentStatus::Active
    }
}

/// A key rotation that is pending, as the participant, the gateway's
/// activation task and the board read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationView {
    pub participant: String,
    pub key_id: String,
    pub index: u64,
    pub requested_at: i64,
    pub ready_at: i64,
    /// The organisation that co-signed the request.
    pub assisted_by: String,
}

/// A rotation the person's current key cancelled: flagged to the board,
/// since either someone tried to take the key or the person changed their
/// mind, and both deserve a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelledRotation {
    pub rotation: RotationView,
    /// Ledger index of the `participant.rotation_cancelled` entry.
    pub cancelled_index: u64,
    pub cancelled_at: i64,
}

/// A grievance as the participant and the auditor read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrievanceView {
    pub filed: GrievanceFiled,
    /// Ledger index of the `grievance.filed` entry.
    pub filed_index: u64,
    /// The answer, with the ledger index of its entry.
    pub resolution: Option<(GrievanceResolved, u64)>,
}

pub(super) fn rotation_view(participant: &str, r: &PendingRec) -> RotationView {
    RotationView {
        participant: participant.to_owned(),
        key_id: r.key_id.to_string(),
        index: r.index,
        requested_at: r.requested_at,
        ready_at: r.ready_at,
        assisted_by: r.assisted_by.to_string(),
    }
}
