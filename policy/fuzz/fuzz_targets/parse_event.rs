#![no_main]
//! Any bytes: parse must not panic; whatever parses must re-serialise and
//! parse to the same event, and applying it to a state must not panic.

use libfuzzer_sys::fuzz_target;
use policy::{parse_event, ConsentState, Trust};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = parse_event(data) else { return };
    let bytes = event.to_json().expect("a parsed event serialises");
    assert_eq!(parse_event(&bytes).expect("round trip"), event);
    let mut state = ConsentState::new(Trust {
        governance_key_id: "gov".into(),
        governance_public_key: "AA==".into(),
        gateway_key_id: "gw".into(),
        gateway_public_key: "AA==".into(),
        board: Vec::new(),
        quorum: 1,
    });
    let _ = state.apply(1, &event, &["gov", "gw"]);
});
