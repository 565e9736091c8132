//! The crate's shared words: the languages people read, the outcome of a
//! decision and the reason codes. They are what every other module speaks,
//! so this module imports nothing from the crate (see the module order in
//! the crate docs).

use serde::{Deserialize, Serialize};

/// A language the participant reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Es,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Language::En),
            "es" => Some(Language::Es),
            _ => None,
        }
    }
}

/// `allow` or `deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Deny,
}

/// The lawful basis an allow rests on (42 CFR part 2): a consent
/// (§2.31) or a medical emergency (§2.51). Later bases add values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    Consent,
    Emergency,
}

impl Basis {
    pub fn code(self) -> &'static str {
        match self {
            Basis::Consent => "consent",
            Basis::Emergency => "emergency",
        }
    }
}

/// A stable reason code. The order of the variants is the order reasons are
/// listed in, so that a decision's reasons are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The request is malformed (no categories, oversized fields).
    InvalidRequest,
    /// The requester or holder is not an enrolled agency.
    UnknownAgency,
    /// The requester or holder has been retired.
    AgencyRetired,
    /// The requester's roles do not allow it to receive records.
    RequesterNotPermitted,
    /// The holder's roles do not make it a record holder.
    HolderNotPermitted,
    UnknownPurpose,
    /// No consent can authorise this purpose.
    PurposeForbidden,
    UnknownCategory,
    /// Internal only: the agency is told `no-consent`.
    UnknownParticipant,
    NoConsent,
    /// The participant's consents do not name this recipient.
    RecipientNotCovered,
    /// The category needs a consent naming the recipient itself, not its class.
    SpecificRecipientRequired,
    HolderNotCovered,
    CategoryNotCovered,
    PurposeNotCovered,
    ConsentNotYetEffective,
    ConsentExpired,
    ConsentRevoked,
    /// Not a denial: released under medical-emergency access.
    BreakGlass,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::InvalidRequest,
        Reason::UnknownAgency,
        Reason::AgencyRetired,
        Reason::RequesterNotPermitted,
        Reason::HolderNotPermitted,
        Reason::UnknownPurpose,
        Reason::PurposeForbidden,
        Reason::UnknownCategory,
        Reason::UnknownParticipant,
        Reason::NoConsent,
        Reason::RecipientNotCovered,
        Reason::SpecificRecipientRequired,
        Reason::HolderNotCovered,
        Reason::CategoryNotCovered,
        Reason::PurposeNotCovered,
        Reason::ConsentNotYetEffective,
        Reason::ConsentExpired,
        Reason::ConsentRevoked,
        Reason::BreakGlass,
    ];

    /// The kebab-case code, as logged.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidRequest => "invalid-request",
            Reason::UnknownAgency => "unknown-agency",
            Reason::AgencyRetired => "agency-retired",
            Reason::RequesterNotPermitted => "requester-not-permitted",
            Reason::HolderNotPermitted => "holder-not-permitted",
            Reason::UnknownPurpose => "unknown-purpose",
            Reason::PurposeForbidden => "purpose-forbidden",
            Reason::UnknownCategory => "unknown-category",
            Reason::UnknownParticipant => "unknown-participant",
            Reason::NoConsent => "no-consent",
            Reason::RecipientNotCovered => "recipient-not-covered",
            Reason::SpecificRecipientRequired => "specific-recipient-required",
            Reason::HolderNotCovered => "holder-not-covered",
            Reason::CategoryNotCovered => "category-not-covered",
            Reason::PurposeNotCovered => "purpose-not-covered",
            Reason::ConsentNotYetEffective => "consent-not-yet-effective",
            Reason::ConsentExpired => "consent-expired",
            Reason::ConsentRevoked => "consent-revoked",
            Reason::BreakGlass => "break-glass",
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// True if the reason depends on who the participant is or what they
    /// consented to: the agency is never told these precisely.
    pub fn is_about_participant(self) -> bool {
        matches!(
            self,
            Reason::UnknownParticipant
                | Reason::NoConsent
                | Reason::RecipientNotCovered
                | Reason::SpecificRecipientRequired
                | Reason::HolderNotCovered
                | Reason::CategoryNotCovered
                | Reason::PurposeNotCovered
                | Reason::ConsentNotYetEffective
                | Reason::ConsentExpired
                | Reason::ConsentRevoked
        )
    }

    /// A sentence a person can read.
    pub fn sentence(self, language: Language) -> &'static str {
        use Language::{En, Es};
        match (self, language) {
            (Reason::InvalidRequest, En) => "The request was malformed.",
            (Reason::InvalidRequest, Es) => "La solicitud estaba mal formada.",
            (Reason::UnknownAgency, En) => "The agency is not enrolled.",
            (Reason::UnknownAgency, Es) => "La agencia no está inscrita.",
            (Reason::AgencyRetired, En) => "The agency is no longer enrolled.",
            (Reason::AgencyRetired, Es) => "La agencia ya no está inscrita.",
            (Reason::RequesterNotPermitted, En) => "This agency may not receive records.",
            (Reason::RequesterNotPermitted, Es) => "Esta agencia no puede recibir expedientes.",
            (Reason::HolderNotPermitted, En) => "The named holder does not hold records.",
            (Reason::HolderNotPermitted, Es) => "El titular indicado no guarda expedientes.",
            (Reason::UnknownPurpose, En) => "The stated purpose is not one we know.",
            (Reason::UnknownPurpose, Es) => "El propósito indicado no es uno que conozcamos.",
            (Reason::PurposeForbidden, En) => {
                "Records are never shared for this purpose, whatever the consent."
            }
            (Reason::PurposeForbidden, Es) => {
                "Los expedientes nunca se comparten para este propósito, sea cual sea el consentimiento."
            }
            (Reason::UnknownCategory, En) => "A requested kind of record is not one we know.",
            (Reason::UnknownCategory, Es) => {
                "Un tipo de expediente solicitado no es uno que conozcamos."
            }
            (Reason::UnknownParticipant, En) => "The person is not enrolled.",
            (Reason::UnknownParticipant, Es) => "La persona no está inscrita.",
            (Reason::NoConsent, En) => "There is no consent that allows this.",
            (Reason::NoConsent, Es) => "No hay ningún consentimiento que lo permita.",
            (Reason::RecipientNotCovered, En) => {
                "No consent allows this agency to receive these records."
            }
            (Reason::RecipientNotCovered, Es) => {
                "Ningún consentimiento permite que esta agencia reciba estos expedientes."
            }
            (Reason::SpecificRecipientRequired, En) => {
                "These records need a consent that names this agency itself, not just its kind."
            }
            (Reason::SpecificRecipientRequired, Es) => {
                "Estos expedientes requieren un consentimiento que nombre a esta agencia, no solo su tipo."
            }
            (Reason::HolderNotCovered, En) => {
                "No consent allows this agency to share these records."
            }
            (Reason::HolderNotCovered, Es) => {
                "Ningún consentimiento permite que esta agencia comparta estos expedientes."
            }
            (Reason::CategoryNotCovered, En) => "No consent covers this kind of record.",
            (Reason::CategoryNotCovered, Es) => {
                "Ningún consentimiento cubre este tipo de expediente."
            }
            (Reason::PurposeNotCovered, En) => "No consent covers this purpose.",
            (Reason::PurposeNotCovered, Es) => "Ningún consentimiento cubre este propósito.",
            (Reason::ConsentNotYetEffective, En) => "The consent has not taken effect yet.",
            (Reason::ConsentNotYetEffective, Es) => "El consentimiento aún no ha entrado en vigor.",
            (Reason::ConsentExpired, En) => "The consent has expired.",
            (Reason::ConsentExpired, Es) => "El consentimiento ha vencido.",
            (Reason::ConsentRevoked, En) => "The consent was revoked.",
            (Reason::ConsentRevoked, Es) => "El consentimiento fue revocado.",
            (Reason::BreakGlass, En) => {
                "Shared without consent because of a medical emergency; you are being told."
            }
            (Reason::BreakGlass, Es) => {
                "Se compartió sin consentimiento por una emergencia médica; se le está avisando."
            }
        }
    }
}

/// Why a participant disputes a disclosure or a denial: a closed set of
/// codes, so that no free text (which could name a person or a condition)
/// enters the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrievanceReason {
    /// "I never agreed to this sharing."
    NotConsented,
    /// "It was shared for a purpose I did not agree to."
    WrongPurpose,
    /// "It went to an agency I did not agree to."
    WrongRecipient,
    /// "More was shared than I agreed to."
    TooMuchReleased,
    /// "There was no real emergency."
    EmergencyNotJustified,
    /// "This should have been allowed: my care was held up."
    WronglyDenied,
    /// "Something else; please contact me through my agency."
    Other,
}

impl GrievanceReason {
    pub const ALL: [GrievanceReason; 7] = [
        GrievanceReason::NotConsented,
        GrievanceReason::WrongPurpose,
        GrievanceReason::WrongRecipient,
        GrievanceReason::TooMuchReleased,
        GrievanceReason::EmergencyNotJustified,
        GrievanceReason::WronglyDenied,
        GrievanceReason::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            GrievanceReason::NotConsented => "not-consented",
            GrievanceReason::WrongPurpose => "wrong-purpose",
            GrievanceReason::WrongRecipient => "wrong-recipient",
            GrievanceReason::TooMuchReleased => "too-much-released",
            GrievanceReason::EmergencyNotJustified => "emergency-not-justified",
            GrievanceReason::WronglyDenied => "wrongly-denied",
            GrievanceReason::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<GrievanceReason> {
        GrievanceReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The participant's words for it.
    pub fn sentence(self, language: Language) -> &'static str {
        use Language::{En, Es};
        match (self, language) {
            (GrievanceReason::NotConsented, En) => "I never agreed to this sharing.",
            (GrievanceReason::NotConsented, Es) => "Nunca acepté que se compartiera esto.",
            (GrievanceReason::WrongPurpose, En) => {
                "It was shared for a purpose I did not agree to."
            }
            (GrievanceReason::WrongPurpose, Es) => "Se compartió para un propósito que no acepté.",
            (GrievanceReason::WrongRecipient, En) => "It went to an agency I did not agree to.",
            (GrievanceReason::WrongRecipient, Es) => "Llegó a una agencia que no acepté.",
            (GrievanceReason::TooMuchReleased, En) => "More was shared than I agreed to.",
            (GrievanceReason::TooMuchReleased, Es) => "Se compartió más de lo que acepté.",
            (GrievanceReason::EmergencyNotJustified, En) => "There was no real emergency.",
            (GrievanceReason::EmergencyNotJustified, Es) => "No hubo una emergencia real.",
            (GrievanceReason::WronglyDenied, En) => {
                "This should have been allowed: my care was held up."
            }
            (GrievanceReason::WronglyDenied, Es) => {
                "Esto debió permitirse: mi atención se retrasó."
            }
            (GrievanceReason::Other, En) => "Something else; please contact me through my agency.",
            (GrievanceReason::Other, Es) => {
                "Otro motivo; por favor contácteme a través de mi agencia."
            }
        }
    }
}

/// How the governance body answered a grievance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrievanceOutcome {
    /// The participant was right; the body acted on it.
    Upheld,
    /// Looked into; the sharing (or denial) followed the consent and rules.
    NotUpheld,
}

impl GrievanceOutcome {
    pub fn code(self) -> &'static str {
        match self {
            GrievanceOutcome::Upheld => "upheld",
            GrievanceOutcome::NotUpheld => "not-upheld",
        }
    }

    pub fn sentence(self, language: Language) -> &'static str {
        use Language::{En, Es};
        match (self, language) {
            (GrievanceOutcome::Upheld, En) => "Upheld: you were right, and it was acted on.",
            (GrievanceOutcome::Upheld, Es) => "Aceptada: tenía razón y se actuó en consecuencia.",
            (GrievanceOutcome::NotUpheld, En) => {
                "Not upheld: the sharing followed your consent and the rules."
            }
            (GrievanceOutcome::NotUpheld, Es) => {
                "No aceptada: se siguió su consentimiento y las reglas."
            }
        }
    }
}
