//! A consent as others read it: a FHIR R4 `Consent` resource, and a
//! consent receipt with the elements of ISO/IEC TS 27560's consent record.
//!
//! Codes are FHIR's where one exists: scope `patient-privacy`, category
//! LOINC 59284-0 ("Patient Consent"), purposes as HL7 v3 ActReason where a
//! code means the same, actors with v3 ParticipationType roles. Everything
//! else is Consentry's own code system, named by URL, never left unnamed.

use policy::{ConsentState, ConsentStatus, ConsentView, Kind, Language};
use serde_json::{json, Value};

pub const PARTICIPANT_SYSTEM: &str = "https://consentry.dev/fhir/NamingSystem/participant";
pub const AGENCY_SYSTEM: &str = "https://consentry.dev/fhir/NamingSystem/agency";
pub const AGENCY_CLASS_SYSTEM: &str = "https://consentry.dev/fhir/CodeSystem/agency-class";
pub const PURPOSE_SYSTEM: &str = "https://consentry.dev/fhir/CodeSystem/purpose";
pub const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const PARTICIPATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub const SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
pub const LOINC: &str = "http://loinc.org";
/// 42 CFR Part 2, the rule a consent here follows.
pub const POLICY_URI: &str = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2";

/// The HL7 v3 ActReason code meaning the same as one of our purposes.
pub fn act_reason(purpose: &str) -> Option<&'static str> {
    Some(match purpose {
        "treatment" => "TREAT",
        "care-coordination" => "CAREMGT",
        "payment" => "HPAYMT",
        "research" => "HRESCH",
        "medical-emergency" => "ETREAT",
        "program-audit" => "HOPERAT",
        _ => return None,
    })
}

/// RFC 3339 in UTC, as FHIR's `dateTime` and `instant` want.
pub fn instant(unix: i64) -> String {
    let (y, m, d) = policy::explain::civil_date(unix);
    let secs = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn status_code(status: ConsentStatus) -> &'static str {
    match status {
        // Signed and in force, or signed and waiting for its start: the
        // period says which.
        ConsentStatus::Active | ConsentStatus::NotYetEffective => "active",
        ConsentStatus::Expired | ConsentStatus::Revoked => "inactive",
    }
}

fn agency_actor(role: &str, agency: &str) -> Value {
    json!({
        "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": role}]},
        "reference": {"identifier": {"system": AGENCY_SYSTEM, "value": agency}}
    })
}

fn class_actor(role: &str, class: &str, state: &ConsentState) -> Value {
    let label = state
        .vocabulary()
        .label(Kind::Class, class, Language::En)
        .to_string();
    json!({
        "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": role}]},
        "reference": {
            "identifier": {"system": AGENCY_CLASS_SYSTEM, "value": class},
            "display": label
        }
    })
}

/// The consent as a FHIR R4 `Consent` resource.
pub fn consent_resource(state: &ConsentState, c: &ConsentView, now: i64) -> Value {
    let g = &c.granted;
    let mut actors = Vec::new();
    // CST: custodian (who holds and may disclose); IRCP: information
    // recipient.
    for a in &g.holders.agencies {
        actors.push(agency_actor("CST", a));
    }
    for k in &g.holders.classes {
        actors.push(class_actor("CST", k, state));
    }
    for a in &g.recipients.agencies {
        actors.push(agency_actor("IRCP", a));
    }
    for k in &g.recipients.classes {
        actors.push(class_actor("IRCP", k, state));
    }
    let purposes: Vec<Value> = g
        .purposes
        .iter()
        .map(|p| {
            let display = state
                .vocabulary()
                .label(Kind::Purpose, p, Language::En)
                .to_string();
            match act_reason(p) {
                Some(code) => {
                    json!({"system": ACT_REASON_SYSTEM, "code": code, "display": display})
                }
                None => json!({"system": PURPOSE_SYSTEM, "code": p, "display": display}),
            }
        })
        .collect();
    let classes: Vec<Value> = g
        .categories
        .iter()
        .map(|k| {
            json!({
                "system": crate::words::CATEGORY_SYSTEM,
                "code": k,
                "display": state.vocabulary().label(Kind::Category, k, Language::En)
            })
        })
        .collect();
    let end = match &c.revocation {
        Some(r) => r.at.min(c.ends_at),
        None => c.ends_at,
    };
    json!({
        "resourceType": "Consent",
        "id": g.consent_id,
        "meta": {"lastUpdated": instant(c.revocation.as_ref().map_or(g.signed_at, |r| r.at))},
        "status": status_code(c.status(now)),
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": {"system": PARTICIPANT_SYSTEM, "value": g.participant}},
        "dateTime": instant(g.signed_at),
        "performer": [{"identifier": {"system": PARTICIPANT_SYSTEM, "value": g.participant}}],
        "policy": [{"uri": POLICY_URI}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": {"start": instant(g.effective_at), "end": instant(end)},
            "actor": actors,
            "purpose": purposes,
            "class": classes
        }
    })
}

/// A consent receipt: the elements of an ISO/IEC TS 27560 consent record,
/// named as in W3C DPV's guide to it, for this one consent.
pub fn receipt(
    state: &ConsentState,
    c: &ConsentView,
    now: i64,
    gateway_origin: &str,
    language: Language,
) -> Value {
    let g = &c.granted;
    let label = |kind: Kind, code: &str| state.vocabulary().label(kind, code, language).to_string();
    let agency_name = |id: &str| {
        state
            .agency(id)
            .map_or_else(|| id.to_string(), |a| a.enrolled.name.clone())
    };
    let mut events = vec![json!({
        "event_time": instant(g.signed_at),
        "event_type": "expressed",
        "event_by": "pii-principal",
        "event_state": "given",
        "event_duration": {"start": instant(g.effective_at), "end": instant(c.ends_at)},
        "ledger_index": c.granted_index
    })];
    if let Some(r) = &c.revocation {
        events.push(json!({
            "event_time": instant(r.at),
            "event_type": "expressed",
            "event_by": if r.assisted_by.is_some() { "pii-principal-assisted" } else { "pii-principal" },
            "event_state": "withdrawn",
            "assisted_by": r.assisted_by,
            "ledger_index": r.index
        }));
    }
    let state_now = match c.status(now) {
        ConsentStatus::Active => "given",
        ConsentStatus::NotYetEffective => "given-not-yet-effective",
        ConsentStatus::Expired => "expired",
        ConsentStatus::Revoked => "withdrawn",
    };
    json!({
        "schema_version": "ISO/IEC TS 27560:2023",
        "record_id": g.consent_id,
        "pii_principal_id": g.participant,
        "language": language.code(),
        // The notice is what the person read when they signed, in the
        // language they signed in, whatever language the rest is asked in:
        // its tag and its text say the same language.
        "notice": {
            "text": policy::consent_summary(state, c, g.language),
            "language": g.language.code(),
            "policy_uri": POLICY_URI
        },
        "pii_controllers": g.holders.agencies.iter().map(|a| json!({"id": a, "name": agency_name(a)}))
            .chain(g.holders.classes.iter().map(|k| json!({"class": k, "name": label(Kind::Class, k)})))
            .collect::<Vec<_>>(),
        "purposes": g.purposes.iter().map(|p| json!({
            "purpose_id": p,
            "purpose": label(Kind::Purpose, p),
            "lawful_basis": "consent",
            "pii_categories": g.categories.iter().map(|k| json!({"id": k, "name": label(Kind::Category, k)})).collect::<Vec<_>>(),
            "recipients": g.recipients.agencies.iter().map(|a| json!({"id": a, "name": agency_name(a)}))
                .chain(g.recipients.classes.iter().map(|k| json!({"class": k, "name": label(Kind::Class, k)})))
                .collect::<Vec<_>>(),
            "storage_duration": {"end": instant(c.ends_at)}
        })).collect::<Vec<_>>(),
        "consent_type": "explicit",
        "collection_method": "signed-electronically",
        "consent_state": state_now,
        "events": events,
        "withdrawal": {
            "method": "a consent.revoked entry signed with your key, sent to the gateway; it takes effect on the next request",
            "where": format!("{gateway_origin}/v1/entries")
        },
        "record_integrity": {
            "ledger": gateway_origin,
            "grant_index": c.granted_index,
            "proof": "inclusion proof against the signed checkpoint: GET /v1/me/consents"
        }
    })
}
