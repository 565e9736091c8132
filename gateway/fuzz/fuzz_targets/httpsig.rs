//! Feeds arbitrary bytes to the HTTP message signature and Content-Digest
//! parsers. Run with `cargo +nightly fuzz run httpsig` from gateway/.
//!
//! The input is split at the first two 0x00 bytes into Signature-Input,
//! Signature and Content-Digest values (the rest is also the body); every
//! call must return, never panic.
#![no_main]

use ed25519_dalek::SigningKey;
use gateway::httpsig::{
    check_content_digest, verify, Component, LabelPolicy, MessageView, VerifyPolicy,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let input = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let rest = parts.next().unwrap_or_default();
    let digest = String::from_utf8_lossy(rest).into_owned();

    let _ = check_content_digest(&digest, rest);
    let _ = Component::parse(&input);

    let headers = vec![
        ("host".to_owned(), "gateway.example".to_owned()),
        ("consentry-purpose".to_owned(), "research".to_owned()),
        ("content-digest".to_owned(), digest.clone()),
        ("signature-input".to_owned(), input),
        ("signature".to_owned(), sig),
    ];
    let msg = MessageView {
        method: "POST",
        target_uri: "https://gateway.example/v1/x?y=z",
        headers: &headers,
        body: rest,
    };
    let key = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
    let lookup = |_: &str| Some(key);
    for policy in [VerifyPolicy::gateway(), VerifyPolicy::permissive()] {
        let _ = verify(&msg, LabelPolicy::First, lookup, 1_700_000_000, &policy);
        let _ = verify(&msg, LabelPolicy::Exact("sig1"), lookup, i64::MAX, &policy);
    }
});
