//! The FHIR filter reads whatever a holder's upstream answers: it must
//! never panic, and must release only resources whose every category label
//! is covered by a released code and whose subject is the decided
//! participant.
#![no_main]

use gateway::agency::filter::{covers, filter, CATEGORY_SYSTEM, PARTICIPANT_SYSTEM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let released = vec!["health.sud".to_string(), "social".to_string()];
    if let Ok(f) = filter(data, &released, "p-0001") {
        let v: serde_json::Value = serde_json::from_slice(&f.body).expect("the filter emits JSON");
        for e in v["entry"].as_array().into_iter().flatten() {
            let labels: Vec<&str> = e["resource"]["meta"]["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["system"] == CATEGORY_SYSTEM)
                .filter_map(|c| c["code"].as_str())
                .collect();
            assert!(!labels.is_empty(), "an unlabelled resource left");
            let r = &e["resource"];
            let tied = ["subject", "patient"].iter().any(|f| {
                r[*f]["identifier"]["system"] == PARTICIPANT_SYSTEM
                    && r[*f]["identifier"]["value"] == "p-0001"
                    || r[*f]["reference"].as_str().is_some_and(|s| s.contains("Patient/"))
            });
            assert!(tied, "a resource not tied to the participant left");
            for l in labels {
                assert!(released.iter().any(|r| covers(r, l)), "{l} left");
            }
        }
    }
});
