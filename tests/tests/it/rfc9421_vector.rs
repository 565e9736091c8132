//! The independent RFC 9421 vector: the request of Appendix B.2 signed as in
//! B.2.6 with the Ed25519 test key of B.1.4 is accepted by the verification
//! code the gateway's agency path runs (`httpsig::verify` on a message built
//! by `OwnedMessage::from_http`, the same conversion), and any change to it
//! is refused. Only the vector's public key is used.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gateway::httpsig::{self, HttpSigError, LabelPolicy, OwnedMessage, VerifyPolicy};

/// SubjectPublicKeyInfo of B.1.4 (`test-key-ed25519`).
const B14_PUBLIC_SPKI: &str = "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";
const B26_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
const B26_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
const BODY: &[u8] = br#"{"hello": "world"}"#;

fn key() -> ed25519_dalek::VerifyingKey {
    let spki = STANDARD.decode(B14_PUBLIC_SPKI).unwrap();
    let raw: [u8; 32] = spki[12..].try_into().unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&raw).unwrap()
}

fn request(date: &str) -> OwnedMessage {
    let mut h = http::HeaderMap::new();
    for (n, v) in [
        ("host", "example.com"),
        ("date", date),
        ("content-type", "application/json"),
        ("content-digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"),
        ("content-length", "18"),
        ("signature-input", B26_INPUT),
        ("signature", B26_SIGNATURE),
    ] {
        h.insert(n, http::HeaderValue::from_str(v).unwrap());
    }
    let uri: http::Uri = "/foo?param=Value&Pet=dog".parse().unwrap();
    OwnedMessage::from_http(&http::Method::POST, &uri, &h, "https", Some("example.com")).unwrap()
}

fn check(msg: &OwnedMessage) -> Result<httpsig::Verified, HttpSigError> {
    let k = key();
    httpsig::verify(
        &msg.view(BODY),
        LabelPolicy::Exact("sig-b26"),
        |id| (id == "test-key-ed25519").then_some(k),
        1_618_884_473,
        &VerifyPolicy::permissive(),
    )
}

#[test]
fn rfc9421_b26_is_accepted_and_any_change_refused() {
    let v =
        check(&request("Tue, 20 Apr 2021 02:07:55 GMT")).expect("the RFC's own vector verifies");
    assert_eq!(v.keyid(), "test-key-ed25519");
    assert_eq!(v.created(), Some(1_618_884_473));
    assert_eq!(
        check(&request("Tue, 20 Apr 2021 02:07:56 GMT")).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
}
