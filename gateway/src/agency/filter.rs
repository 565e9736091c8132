//! Minimum necessary, applied to what the holder answered: keep only the
//! FHIR resources labelled with a released category; drop the rest.
//!
//! Labels live in each resource's `meta.security`, the way HL7 DS4P labels
//! sensitivity: a coding with `system` = [`CATEGORY_SYSTEM`] and `code` = a
//! Consentry category code (e.g. `health.sud.treatment`). A resource is kept
//! when one of its category labels is at or under a released code; it is
//! dropped when it has no category label (unlabelled means dropped), or when
//! any of its labels is outside what was released (a resource labelled with
//! both `social.housing` and `health.mental` is not released for
//! `social.housing` alone). A response that is not FHIR JSON releases
//! nothing.
//!
//! Only the decided participant's records leave. A resource is kept only
//! when its `subject` (or `patient`) names the participant, either by the
//! pseudonym identifier ([`PARTICIPANT_SYSTEM`]) or by a local reference
//! `Patient/{id}` to a `Patient` resource of the same answer whose
//! identifiers hold that pseudonym; and when no other reference to a
//! patient anywhere in it (contained resources included) names anyone
//! else. Anything that cannot be tied is dropped as
//! [`NOT_THE_PARTICIPANT`]. Every `contained` resource must itself be
//! labelled within the release (a contained `Patient` must be the
//! participant), else the resource is dropped as
//! [`CONTAINED_NOT_RELEASED`].
//!
//! What is released is always a FHIR `Bundle` of type `searchset` holding
//! the kept resources, serialised once: those exact bytes are hashed into
//! `access.released` and sent.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The code system of Consentry's data-category security labels.
pub use crate::words::CATEGORY_SYSTEM;
/// The drop bucket for a resource with no category label.
pub const UNLABELLED: &str = "unlabelled";
/// The drop bucket for a resource not tied to the decided participant.
pub const NOT_THE_PARTICIPANT: &str = "not-the-participant";
/// The drop bucket for a resource with a contained resource outside the
/// release.
pub const CONTAINED_NOT_RELEASED: &str = "contained-not-released";
pub use super::path::PARTICIPANT_SYSTEM;
/// How deep the search for patient references goes: FHIR resources are
/// shallow; a deeper answer is dropped rather than walked without end.
const DEPTH_MAX: usize = 32;
/// Most resources one answer may hold.
pub const RESOURCES_MAX: usize = 10_000;

/// What the filter kept and dropped, and the bytes to release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The serialised Bundle of kept resources: exactly what is sent.
    pub body: Vec<u8>,
    /// Kept resources by the released code that covered them.
    pub kept: BTreeMap<String, u32>,
    /// Dropped resources by their first label outside what was released
    /// (or [`UNLABELLED`]).
    pub dropped: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the upstream's answer is not JSON")]
    NotJson,
    #[error("the upstream's answer is not a FHIR resource")]
    NotFhir,
    #[error("the upstream's answer holds more than {RESOURCES_MAX} resources")]
    TooMany,
}

impl FilterError {
    /// A reason code for the log and the problem document.
    pub fn code(&self) -> &'static str {
        match self {
            FilterError::NotJson => "upstream-not-json",
            FilterError::NotFhir => "upstream-not-fhir",
            FilterError::TooMany => "upstream-too-large",
        }
    }
}

/// True if `label` is `released` or under it (`health.sud` covers
/// `health.sud.treatment`, never `health`).
pub fn covers(released: &str, label: &str) -> bool {
    label == released
        || (label.len() > released.len()
            && label.starts_with(released)
            && label.as_bytes()[released.len()] == b'.')
}

/// The category codes in a resource's `meta.security`.
fn labels(resource: &Value) -> Vec<&str> {
    resource
        .get("meta")
        .and_then(|m| m.get("security"))
        .and_then(Value::as_array)
        .map(|codings| {
            codings
                .iter()
                .filter(|c| c.get("system").and_then(Value::as_str) == Some(CATEGORY_SYSTEM))
                .filter_map(|c| c.get("code").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn is_resource(v: &Value) -> bool {
    v.get("resourceType").and_then(Value::as_str).is_some()
}

fn kind_of(v: &Value) -> &str {
    v.get("resourceType").and_then(Value::as_str).unwrap_or("")
}

/// Whose record it is, as this answer says it.
struct Person<'a> {
    pseudonym: &'a str,
    /// `Patient/{id}` of the answer's Patient resources with the pseudonym.
    local: Vec<String>,
    /// The `fullUrl` of each Patient entry of the answer, and whether it is
    /// the person: a reference may name a patient by it (`urn:uuid:…`).
    full_urls: Vec<(String, bool)>,
}

/// True if `identifiers` (one Identifier or a list) holds the pseudonym.
fn has_pseudonym(identifiers: Option<&Value>, pseudonym: &str) -> bool {
    let one = |i: &Value| {
        i.get("system").and_then(Value::as_str) == Some(PARTICIPANT_SYSTEM)
            && i.get("value").and_then(Value::as_str) == Some(pseudonym)
    };
    match identifiers {
        Some(Value::Array(list)) => list.iter().any(one),
        Some(i @ Value::Object(_)) => one(i),
        _ => false,
    }
}

impl Person<'_> {
    /// For a FHIR Reference: `Some(true)` if it names the person,
    /// `Some(false)` if it names a patient who may be someone else, `None`
    /// if it names no patient (a practitioner, a contained resource, …).
    fn names(&self, r: &serde_json::Map<String, Value>) -> Option<bool> {
        if let Some(i) = r.get("identifier") {
            if i.get("system").and_then(Value::as_str) == Some(PARTICIPANT_SYSTEM) {
                return Some(has_pseudonym(Some(i), self.pseudonym));
            }
        }
        let reference = r.get("reference").and_then(Value::as_str);
        let typed_patient = r.get("type").and_then(Value::as_str) == Some("Patient");
        match reference {
            Some(s) if s.starts_with('#') => None,
            Some(s) => {
                if let Some((_, mine)) = self.full_urls.iter().find(|(u, _)| u == s) {
                    return Some(*mine);
                }
                // `Patient/x`, `Patient/x/_history/2`, or an absolute URL
                // holding either: the id follows the last `Patient`.
                let segments: Vec<&str> = s.split('/').collect();
                match segments.iter().rposition(|x| *x == "Patient") {
                    Some(i) => Some(segments.get(i + 1).is_some_and(|id| {
                        self.local.iter().any(|l| *l == format!("Patient/{id}"))
                    })),
                    None if typed_patient => Some(false),
                    None => None,
                }
            }
            None if typed_patient => Some(false),
            None => None,
        }
    }

    /// True if no patient reference anywhere under `v` names anyone but
    /// the person (and the walk stayed within its depth).
    fn only_them(&self, v: &Value, depth: usize) -> bool {
        if depth > DEPTH_MAX {
            return false;
        }
        match v {
            Value::Object(map) => {
                if self.names(map) == Some(false) {
                    return false;
                }
                map.values().all(|x| self.only_them(x, depth + 1))
            }
            Value::Array(list) => list.iter().all(|x| self.only_them(x, depth + 1)),
            _ => true,
        }
    }

    /// Why resource `r` is not the person's, if it is not.
    fn refuse(&self, r: &Value) -> Option<&'static str> {
        let tied = if kind_of(r) == "Patient" {
            has_pseudonym(r.get("identifier"), self.pseudonym)
        } else {
            ["subject", "patient"].iter().any(|f| {
                r.get(*f)
                    .and_then(Value::as_object)
                    .and_then(|m| self.names(m))
                    == Some(true)
            })
        };
        if !tied || !self.only_them(r, 0) {
            return Some(NOT_THE_PARTICIPANT);
        }
        None
    }
}

/// True if every contained resource of `r` may leave with it: labelled
/// within the release (a contained Patient: the person themself).
fn contained_ok(r: &Value, released: &[String], person: &Person<'_>) -> bool {
    let Some(contained) = r.get("contained") else {
        return true;
    };
    let Some(list) = contained.as_array() else {
        return false;
    };
    list.iter().all(|c| {
        if kind_of(c) == "Patient" {
            return has_pseudonym(c.get("identifier"), person.pseudonym);
        }
        let ls = labels(c);
        !ls.is_empty() && ls.iter().all(|l| released.iter().any(|rel| covers(rel, l)))
    })
}

/// Filters the upstream's answer down to the resources of `participant`
/// that `released` covers.
pub fn filter(
    upstream_body: &[u8],
    released: &[String],
    participant: &str,
) -> Result<Filtered, FilterError> {
    let doc: Value = serde_json::from_slice(upstream_body).map_err(|_| FilterError::NotJson)?;
    if !is_resource(&doc) {
        return Err(FilterError::NotFhir);
    }
    let resources: Vec<&Value> = if doc["resourceType"] == "Bundle" {
        match doc.get("entry") {
            None => Vec::new(),
            Some(Value::Array(entries)) => entries
                .iter()
                .map(|e| e.get("resource").filter(|r| is_resource(r)))
                .collect::<Option<Vec<_>>>()
                .ok_or(FilterError::NotFhir)?,
            Some(_) => return Err(FilterError::NotFhir),
        }
    } else {
        vec![&doc]
    };
    if resources.len() > RESOURCES_MAX {
        return Err(FilterError::TooMany);
    }
    let person = Person {
        pseudonym: participant,
        local: resources
            .iter()
            .filter(|r| kind_of(r) == "Patient" && has_pseudonym(r.get("identifier"), participant))
            .filter_map(|r| r.get("id").and_then(Value::as_str))
            .map(|id| format!("Patient/{id}"))
            .collect(),
        full_urls: doc
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let r = e.get("resource").filter(|r| kind_of(r) == "Patient")?;
                let url = e.get("fullUrl").and_then(Value::as_str)?;
                Some((
                    url.to_string(),
                    has_pseudonym(r.get("identifier"), participant),
                ))
            })
            .collect(),
    };
    let mut kept_resources = Vec::new();
    let mut kept = BTreeMap::new();
    let mut dropped = BTreeMap::new();
    for r in resources {
        if let Some(why) = person.refuse(r) {
            *dropped.entry(why.to_string()).or_insert(0) += 1;
            continue;
        }
        if !contained_ok(r, released, &person) {
            *dropped
                .entry(CONTAINED_NOT_RELEASED.to_string())
                .or_insert(0) += 1;
            continue;
        }
        let labels = labels(r);
        let outside = labels
            .iter()
            .find(|l| !released.iter().any(|rel| covers(rel, l)));
        match (labels.first(), outside) {
            (None, _) => *dropped.entry(UNLABELLED.to_string()).or_insert(0) += 1,
            (Some(_), Some(l)) => *dropped.entry(l.to_string()).or_insert(0) += 1,
            (Some(l), None) => {
                let by = released
                    .iter()
                    .find(|rel| covers(rel, l))
                    .cloned()
                    .unwrap_or_default();
                *kept.entry(by).or_insert(0) += 1;
                kept_resources.push(json!({ "resource": r }));
            }
        }
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": kept_resources.len(),
        "entry": kept_resources,
    });
    // Serialising a Value built from parsed JSON cannot fail.
    let body = serde_json::to_vec(&bundle).unwrap_or_default();
    Ok(Filtered {
        body,
        kept,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decided participant of these tests.
    const P: &str = "p-0001";

    fn res(kind: &str, id: &str, labels: &[&str]) -> Value {
        let security: Vec<Value> = labels
            .iter()
            .map(|c| json!({"system": CATEGORY_SYSTEM, "code": c}))
            .collect();
        json!({
            "resourceType": kind,
            "id": id,
            "meta": {"security": security},
            "subject": {"identifier": {"system": PARTICIPANT_SYSTEM, "value": P}},
        })
    }

    fn filter(body: &[u8], released: &[String]) -> Result<Filtered, FilterError> {
        super::filter(body, released, P)
    }

    fn bundle(rs: Vec<Value>) -> Vec<u8> {
        let entry: Vec<Value> = rs.into_iter().map(|r| json!({"resource": r})).collect();
        serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "collection", "entry": entry}))
            .unwrap()
    }

    fn ids(f: &Filtered) -> Vec<String> {
        let v: Value = serde_json::from_slice(&f.body).unwrap();
        v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn keeps_only_what_is_covered() {
        let body = bundle(vec![
            res("Observation", "attendance", &["health.sud.treatment"]),
            res("Condition", "diagnosis", &["health.mental"]),
            res("Observation", "housing", &["social.housing"]),
            res("Observation", "mixed", &["social.housing", "health.mental"]),
            json!({"resourceType": "Observation", "id": "bare",
                "subject": {"identifier": {"system": PARTICIPANT_SYSTEM, "value": P}}}),
            res("Observation", "parent-label", &["health"]),
        ]);
        let released = vec!["health.sud".to_string(), "social.housing".to_string()];
        let f = filter(&body, &released).unwrap();
        assert_eq!(ids(&f), vec!["attendance", "housing"]);
        assert_eq!(f.kept.get("health.sud"), Some(&1));
        assert_eq!(f.kept.get("social.housing"), Some(&1));
        assert_eq!(f.dropped.get("health.mental"), Some(&2));
        assert_eq!(f.dropped.get(UNLABELLED), Some(&1));
        assert_eq!(
            f.dropped.get("health"),
            Some(&1),
            "a parent label is not covered by a child"
        );
    }

    #[test]
    fn labels_from_other_systems_do_not_count() {
        let mut r = res("Observation", "x", &[]);
        r["meta"]["security"] = json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "social.housing"}]);
        let f = filter(&bundle(vec![r]), &["social.housing".to_string()]).unwrap();
        assert!(ids(&f).is_empty());
        assert_eq!(f.dropped.get(UNLABELLED), Some(&1));
    }

    #[test]
    fn a_single_resource_is_wrapped_and_not_fhir_is_refused() {
        let one = serde_json::to_vec(&res("Observation", "one", &["social.housing"])).unwrap();
        let f = filter(&one, &["social".to_string()]).unwrap();
        assert_eq!(ids(&f), vec!["one"]);
        assert_eq!(filter(b"<html>", &[]), Err(FilterError::NotJson));
        assert_eq!(filter(b"{\"a\":1}", &[]), Err(FilterError::NotFhir));
        assert_eq!(
            filter(br#"{"resourceType":"Bundle","entry":[{"x":1}]}"#, &[]),
            Err(FilterError::NotFhir)
        );
        // Nothing released: an empty Bundle, every resource dropped.
        let f = filter(&one, &[]).unwrap();
        assert!(ids(&f).is_empty());
    }

    #[test]
    fn only_the_decided_participants_resources_leave() {
        let released = vec!["health.sud".to_string()];
        let mine = res("Observation", "mine", &["health.sud.treatment"]);
        let mut theirs = mine.clone();
        theirs["id"] = json!("theirs");
        theirs["subject"]["identifier"]["value"] = json!("p-0002");
        let mut nobody = mine.clone();
        nobody["id"] = json!("nobody");
        nobody.as_object_mut().unwrap().remove("subject");
        // Tied through the answer's own Patient resource.
        let me_local = json!({"resourceType": "Patient", "id": "local-7",
            "identifier": [{"system": "urn:mrn", "value": "12345"}, {"system": PARTICIPANT_SYSTEM, "value": P}]});
        let other_local = json!({"resourceType": "Patient", "id": "local-8",
            "identifier": [{"system": PARTICIPANT_SYSTEM, "value": "p-0002"}]});
        let mut by_local = mine.clone();
        by_local["id"] = json!("by-local");
        by_local["subject"] = json!({"reference": "Patient/local-7"});
        let mut by_other_local = mine.clone();
        by_other_local["id"] = json!("by-other-local");
        by_other_local["subject"] =
            json!({"reference": "https://ehr.example/fhir/Patient/local-8"});
        let mut unknown_local = mine.clone();
        unknown_local["id"] = json!("unknown-local");
        unknown_local["subject"] = json!({"reference": "Patient/local-9"});
        // Subject is the person, but another patient hides deeper in.
        let mut smuggled = mine.clone();
        smuggled["id"] = json!("smuggled");
        smuggled["focus"] = json!([{"reference": "Patient/local-8"}]);
        // A contained resource labelled outside the release, and one inside.
        let mut contained_out = mine.clone();
        contained_out["id"] = json!("contained-out");
        contained_out["contained"] = json!([res("Condition", "c", &["health.mental"])]);
        let mut contained_in = mine.clone();
        contained_in["id"] = json!("contained-in");
        contained_in["contained"] = json!([res("Medication", "m", &["health.sud.medication"])]);
        let mut contained_patient = mine.clone();
        contained_patient["id"] = json!("contained-patient");
        contained_patient["contained"] = json!([{"resourceType": "Patient", "id": "x",
            "identifier": [{"system": PARTICIPANT_SYSTEM, "value": "p-0002"}]}]);
        let body = bundle(vec![
            mine,
            theirs,
            nobody,
            me_local,
            other_local,
            by_local,
            by_other_local,
            unknown_local,
            smuggled,
            contained_out,
            contained_in,
            contained_patient,
        ]);
        let f = filter(&body, &released).unwrap();
        assert_eq!(ids(&f), vec!["mine", "by-local", "contained-in"]);
        assert_eq!(
            f.dropped.get(NOT_THE_PARTICIPANT),
            Some(&6),
            "{:?}",
            f.dropped
        );
        assert_eq!(
            f.dropped.get(CONTAINED_NOT_RELEASED),
            Some(&2),
            "{:?}",
            f.dropped
        );
        // The person's own Patient resource is theirs, but unlabelled.
        assert_eq!(f.dropped.get(UNLABELLED), Some(&1), "{:?}", f.dropped);
    }

    #[test]
    fn a_patient_named_by_its_full_url_is_tied_or_refused_like_any_other() {
        let released = vec!["health.sud".to_string()];
        let patient = |value: &str| {
            json!({"resourceType": "Patient", "id": "x",
                "identifier": [{"system": PARTICIPANT_SYSTEM, "value": value}]})
        };
        let mut by_url = res("Observation", "by-url", &["health.sud.treatment"]);
        by_url["subject"] = json!({"reference": "urn:uuid:aaaa"});
        let mut other_by_url = res("Observation", "other-by-url", &["health.sud.treatment"]);
        other_by_url["performer"] = json!([{"reference": "urn:uuid:bbbb"}]);
        let body = serde_json::to_vec(
            &json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "urn:uuid:aaaa", "resource": patient(P)},
                {"fullUrl": "urn:uuid:bbbb", "resource": patient("p-0002")},
                {"resource": by_url},
                {"resource": other_by_url},
            ]}),
        )
        .unwrap();
        let f = filter(&body, &released).unwrap();
        assert_eq!(ids(&f), vec!["by-url"]);
    }

    /// Every code a generated resource may carry.
    const CODES: &[&str] = &[
        "health",
        "health.sud",
        "health.sud.treatment",
        "health.mental",
        "social",
        "social.housing",
        "justice",
        "healthy",
    ];

    proptest::proptest! {
        /// Nothing leaves that is unlabelled or carries a label outside
        /// what was released; whatever the input, no panic.
        #[test]
        fn releases_only_covered_resources(
            resources in proptest::collection::vec(proptest::collection::vec(0..CODES.len(), 0..4), 0..12),
            released in proptest::collection::vec(0..CODES.len(), 0..4),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let released: Vec<String> = released.iter().map(|&i| CODES[i].to_string()).collect();
            let rs: Vec<Value> = resources
                .iter()
                .enumerate()
                .map(|(n, ls)| {
                    let ls: Vec<&str> = ls.iter().map(|&i| CODES[i]).collect();
                    res("Observation", &format!("r{n}"), &ls)
                })
                .collect();
            let f = filter(&bundle(rs), &released).unwrap();
            let out: Value = serde_json::from_slice(&f.body).unwrap();
            let mut kept = 0u32;
            for e in out["entry"].as_array().unwrap() {
                let ls = labels(&e["resource"]);
                proptest::prop_assert!(!ls.is_empty());
                for l in ls {
                    proptest::prop_assert!(released.iter().any(|r| covers(r, l)));
                }
                kept += 1;
            }
            let dropped: u32 = f.dropped.values().sum();
            proptest::prop_assert_eq!(kept + dropped, resources.len() as u32);
            proptest::prop_assert_eq!(f.kept.values().sum::<u32>(), kept);
            let _ = filter(&noise, &released);
        }
    }

    #[test]
    fn covers_respects_code_boundaries() {
        assert!(covers("health", "health.sud"));
        assert!(covers("health.sud", "health.sud"));
        assert!(!covers("health.sud", "health"));
        assert!(!covers("health.s", "health.sud"));
        assert!(!covers("social", "socialx"));
    }
}
