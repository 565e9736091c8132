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
