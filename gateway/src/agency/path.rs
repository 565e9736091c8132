//! What an agency may ask the holder's record system for: a grammar, not
//! a pass-through. The FHIR path after `/v1/records/{holder}/{participant}/`
//! is the agency's, so it must never name another person, climb out of
//! the FHIR base, or smuggle a query.
//!
//! Accepted: `ResourceType` (a search) or `ResourceType/id` (a read), the
//! type from [`RESOURCE_TYPES`], the id in FHIR's id grammar; a search may
//! carry parameters named in [`SEARCH_PARAMS`]. Refused: any `%` in the
//! path (so no encoded `/`, `?`, `#` or `.`), `..`, empty segments, a query
//! on a read, and every parameter not on the list: above all `patient`,
//! `subject`, `identifier`, chains, modifiers, `_include`, `_revinclude`,
//! `_has`. The gateway itself adds the patient parameter, naming the
//! decided participant by their pseudonym ([`PARTICIPANT_SYSTEM`]).
//!
//! What was asked for is logged in `access.decided` without health data:
//! the type and parameter names in clear, the id and the values only as
//! HMAC-SHA-256 under a secret the gateway holds ([`ForwardMac`]), so that
//! a claimed request can be confirmed by the gateway's operator but not
//! guessed from the log.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The identifier system of Consentry's pseudonyms, as record systems name
/// the person.
pub const PARTICIPANT_SYSTEM: &str = "https://consentry.dev/participant";

/// FHIR R4 resource types an agency may ask for: clinical and social
/// records that sit in the Patient compartment. Not `Patient` (it links
/// the pseudonym to a real identity) nor anything administrative.
pub const RESOURCE_TYPES: [&str; 16] = [
    "AllergyIntolerance",
    "Appointment",
    "CarePlan",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "Goal",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "QuestionnaireResponse",
    "ServiceRequest",
];

/// Search parameters an agency may set; none of them can name a person.
pub const SEARCH_PARAMS: [&str; 9] = [
    "_count",
    "_lastUpdated",
    "_sort",
    "category",
    "code",
    "date",
    "period",
    "status",
    "type",
];

/// Most search parameters one request may carry.
pub const PARAMS_MAX: usize = 16;
/// Longest value of one search parameter, in bytes.
pub const PARAM_VALUE_BYTES_MAX: usize = 256;
/// Longest FHIR id (FHIR R4: 1 to 64 characters).
const ID_BYTES_MAX: usize = 64;

/// Why a forwarded path is refused: a reason code and the detail an
/// agency's developer needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the FHIR path must not contain percent-encoding")]
    Encoded,
    #[error("the FHIR path must be ResourceType or ResourceType/id")]
    Shape,
    #[error("resource type {0:?} cannot be asked for through the gateway")]
    ResourceType(String),
    #[error("the id must be 1-64 letters, digits, '-' or '.'")]
    Id,
    #[error("a read (ResourceType/id) takes no search parameters")]
    QueryOnRead,
    #[error(
        "search parameter {0:?} cannot be set by an agency (the gateway sets the patient itself)"
    )]
    Param(String),
    #[error("a search parameter value is empty, over 256 bytes, or holds control characters")]
    Value,
    #[error("more than {PARAMS_MAX} search parameters")]
    TooMany,
}

impl PathError {
    /// The reason code logged and answered.
    pub fn code(&self) -> &'static str {
        "forward-path-not-allowed"
    }
}

/// A forwarded request the grammar accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPath {
    pub resource_type: &'static str,
    pub id: Option<String>,
    /// Name and (decoded) value, in the agency's order.
    pub params: Vec<(&'static str, String)>,
}

fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Parses the raw (not yet percent-decoded) path after the participant
/// segment and the raw query.
pub fn parse(raw_path: &str, raw_query: Option<&str>) -> Result<ForwardPath, PathError> {
    if raw_path.contains('%') {
        return Err(PathError::Encoded);
    }
    let mut segments = raw_path.split('/');
    let kind = segments.next().unwrap_or("");
    let id = segments.next();
    if segments.next().is_some() || kind.is_empty() || id == Some("") {
        return Err(PathError::Shape);
    }
    let resource_type = RESOURCE_TYPES
        .iter()
        .find(|t| **t == kind)
        .copied()
        .ok_or_else(|| PathError::ResourceType(kind.chars().take(64).collect()))?;
    if let Some(id) = id {
        if id == ".." || id == "." || !is_fhir_id(id) {
            return Err(PathError::Id);
        }
    }
    let query = raw_query.unwrap_or("");
    if id.is_some() && !query.is_empty() {
        return Err(PathError::QueryOnRead);
    }
    let mut params = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params.len() == PARAMS_MAX {
            return Err(PathError::TooMany);
        }
        let name = SEARCH_PARAMS
            .iter()
            .find(|p| **p == name)
            .copied()
            .ok_or_else(|| PathError::Param(name.chars().take(64).collect()))?;
        if value.is_empty()
            || value.len() > PARAM_VALUE_BYTES_MAX
            || value.chars().any(char::is_control)
        {
            return Err(PathError::Value);
        }
        params.push((name, value.into_owned()));
    }
    Ok(ForwardPath {
        resource_type,
        id: id.map(str::to_string),
        params,
    })
}

impl ForwardPath {
    /// The path and query the gateway sends to the holder, appended to its
    /// FHIR base: the agency's parameters re-encoded by us, and the patient
    /// set to the decided participant by pseudonym. A read gets no query;
    /// the filter ties what comes back to the participant.
    pub fn upstream_path(&self, participant: &str) -> String {
        match &self.id {
            Some(id) => format!("{}/{id}", self.resource_type),
            None => {
                let mut q = form_urlencoded::Serializer::new(String::new());
                for (name, value) in &self.params {
                    q.append_pair(name, value);
                }
                q.append_pair(
                    "patient:identifier",
                    &format!("{PARTICIPANT_SYSTEM}|{participant}"),
                );
                format!("{}?{}", self.resource_type, q.finish())
            }
        }
    }

    /// What `access.decided` records of it.
    pub fn describe(&self, mac: &ForwardMac) -> policy::Forwarded {
        policy::Forwarded {
            resource_type: self.resource_type.to_string(),
            id_mac: self.id.as_deref().map(|id| mac.of("id", id)),
            params: self
                .params
                .iter()
                .map(|(name, value)| policy::ForwardedParam {
                    name: name.to_string(),
                    value_mac: mac.of(name, value),
                })
                .collect(),
        }
    }
}

/// The keyed hash of forwarded values: derived from the gateway's own key,
/// so that it needs no file of its own and only the gateway's holder can
/// confirm a claimed value.
#[derive(Clone)]
pub struct ForwardMac {
    key: [u8; 32],
}

impl ForwardMac {
    pub fn from_gateway_key(key: &ed25519_dalek::SigningKey) -> Self {
        let mut h = hmac_of(key.as_bytes());
        h.update(b"consentry/forwarded-values/v1");
        Self {
            key: h.finalize().into_bytes().into(),
        }
    }

    /// Lowercase hex HMAC-SHA-256 of `name` and `value`, bound together so
    /// that a value cannot be moved to another parameter.
    pub fn of(&self, name: &str, value: &str) -> String {
        let mut h = hmac_of(&self.key);
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(value.as_bytes());
        h.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// HMAC-SHA-256 keyed with a 32-byte key: padded to the hash's block, as
/// HMAC itself pads it, so that construction cannot fail.
fn hmac_of(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_accepts_searches_and_reads_and_refuses_everything_else() {
        let ok = [
            ("Observation", None),
            ("Observation", Some("category=social-history&_count=10")),
            ("Condition/abc-1.2", None),
            ("MedicationStatement", Some("status=active")),
        ];
        for (path, query) in ok {
            assert!(parse(path, query).is_ok(), "{path} {query:?}");
        }
        let refused: [(&str, Option<&str>, PathError); 15] = [
            (
                "..%2F..%2Fadmin%2Fexport%3Fpatient%3Dp-0002",
                None,
                PathError::Encoded,
            ),
            ("../../admin/export", None, PathError::Shape),
            ("../export", None, PathError::ResourceType("..".into())),
            ("Observation/..", None, PathError::Id),
            ("Observation/a/b", None, PathError::Shape),
            ("Observation/", None, PathError::Shape),
            ("", None, PathError::Shape),
            ("Patient", None, PathError::ResourceType("Patient".into())),
            ("Observation%23x", None, PathError::Encoded),
            (
                "Observation/1",
                Some("status=final"),
                PathError::QueryOnRead,
            ),
            (
                "Observation",
                Some("patient=p-0002"),
                PathError::Param("patient".into()),
            ),
            (
                "Observation",
                Some("subject:identifier=x"),
                PathError::Param("subject:identifier".into()),
            ),
            (
                "Observation",
                Some("_include=Observation:subject"),
                PathError::Param("_include".into()),
            ),
            ("Observation", Some("code="), PathError::Value),
            ("Observation", Some("code=a%00b"), PathError::Value),
        ];
        for (path, query, want) in refused {
            assert_eq!(parse(path, query), Err(want), "{path} {query:?}");
        }
        let many = vec!["code=x"; PARAMS_MAX + 1].join("&");
        assert_eq!(parse("Observation", Some(&many)), Err(PathError::TooMany));
        let long = format!("code={}", "x".repeat(PARAM_VALUE_BYTES_MAX + 1));
        assert_eq!(parse("Observation", Some(&long)), Err(PathError::Value));
    }

    #[test]
    fn the_gateway_sets_the_patient_and_re_encodes_what_the_agency_asked() {
        let p = parse("Observation", Some("code=a%26patient%3Dp-2&status=final")).unwrap();
        assert_eq!(
            p.upstream_path("p-0001"),
            "Observation?code=a%26patient%3Dp-2&status=final&patient%3Aidentifier=https%3A%2F%2Fconsentry.dev%2Fparticipant%7Cp-0001"
        );
        assert_eq!(
            parse("Condition/c1", None).unwrap().upstream_path("p-1"),
            "Condition/c1"
        );
    }

    #[test]
    fn the_log_gets_names_in_clear_and_values_under_a_keyed_hash() {
        let mac = ForwardMac::from_gateway_key(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        let other = ForwardMac::from_gateway_key(&ed25519_dalek::SigningKey::from_bytes(&[8; 32]));
        let p = parse("Observation", Some("code=opioid-use")).unwrap();
        let d = p.describe(&mac);
        assert_eq!(d.resource_type, "Observation");
        assert_eq!(d.params[0].name, "code");
        assert_eq!(d.params[0].value_mac, mac.of("code", "opioid-use"));
        assert_ne!(d.params[0].value_mac, other.of("code", "opioid-use"));
        assert_ne!(d.params[0].value_mac, mac.of("category", "opioid-use"));
        assert!(!serde_json::to_string(&d).unwrap().contains("opioid"));
        let read = parse("Condition/secret-id", None).unwrap().describe(&mac);
        assert_eq!(
            read.id_mac.as_deref(),
            Some(mac.of("id", "secret-id").as_str())
        );
        // It is a valid access.decided field.
        assert!(read.id_mac.unwrap().len() == 64);
    }
}
