#![no_main]
//! Any text: the vocabulary and rules loaders must not panic, and what
//! loads must survive a JSON round trip (the form governance entries use).

use libfuzzer_sys::fuzz_target;
use policy::{Rules, Vocabulary};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Vocabulary::from_toml(text) {
        let json = serde_json::to_string(&v).expect("serialises");
        let back: Vocabulary = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, v);
        if let Ok(r) = Rules::from_toml(text) {
            let _ = r.validate(&v);
        }
    }
    if let Ok(r) = Rules::from_toml(text) {
        let json = serde_json::to_string(&r).expect("serialises");
        let back: Rules = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, r);
    }
});
