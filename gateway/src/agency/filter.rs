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
//! What is released is always a FHIR `Bundle` of type `searchset` holding
//! the kept resources, serialised once: those exact bytes are hashed into
//! `access.released` and sent.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The code system of Consentry's data-category security labels.
pub const CATEGORY_SYSTEM: &str = "https://consentry.dev/fhir/CodeSystem/data-category";
/// The drop bucket for a resource with no category label.
pub const UNLABELLED: &str = "unlabelled";
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

/// Filters the upstream's answer down to the resources `released` covers.
pub fn filter(upstream_body: &[u8], released: &[String]) -> Result<Filtered, FilterError> {
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
    let mut kept_resources = Vec::new();
    let mut kept = BTreeMap::new();
    let mut dropped = BTreeMap::new();
    for r in resources {
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

    fn res(kind: &str, id: &str, labels: &[&str]) -> Value {
        let security: Vec<Value> = labels
            .iter()
            .map(|c| json!({"system": CATEGORY_SYSTEM, "code": c}))
            .collect();
        json!({"resourceType": kind, "id": id, "meta": {"security": security}})
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
            json!({"resourceType": "Observation", "id": "bare"}),
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
