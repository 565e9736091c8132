use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

// --- RFC 9421 Appendix B.1.4: test-key-ed25519 -----------------------------

/// PKCS#8 private key body from B.1.4.
const B14_PRIVATE_PEM: &str = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
/// SubjectPublicKeyInfo body from B.1.4.
const B14_PUBLIC_PEM: &str = "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";
/// The same key as a JWK (`d` and `x`).
const B14_JWK_D: &str = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU";
const B14_JWK_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";

fn rfc_key() -> SigningKey {
    let der = STANDARD.decode(B14_PRIVATE_PEM).unwrap();
    // OneAsymmetricKey: version 0, algorithm id-Ed25519 (1.3.101.112),
    // privateKey OCTET STRING wrapping a 32-byte OCTET STRING.
    let prefix = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    assert_eq!(der.len(), 48);
    assert_eq!(der[..16], prefix);
    let seed: [u8; 32] = der[16..].try_into().unwrap();
    SigningKey::from_bytes(&seed)
}

#[test]
fn rfc9421_b14_key_forms_agree() {
    let key = rfc_key();
    assert_eq!(URL_SAFE_NO_PAD.encode(key.to_bytes()), B14_JWK_D);
    let public = key.verifying_key();
    assert_eq!(URL_SAFE_NO_PAD.encode(public.to_bytes()), B14_JWK_X);
    let spki = STANDARD.decode(B14_PUBLIC_PEM).unwrap();
    assert_eq!(spki.len(), 44);
    assert_eq!(spki[12..], public.to_bytes());
}

// --- RFC 9421 Appendix B.2: the test request ------------------------------

const B2_BODY: &[u8] = br#"{"hello": "world"}"#;
const B26_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
\"@method\": POST\n\
\"@path\": /foo\n\
\"@authority\": example.com\n\
\"content-type\": application/json\n\
\"content-length\": 18\n\
\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \
\"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
const B26_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \
\"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
const B26_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v\
9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn b2_headers() -> Vec<(String, String)> {
    vec![
        h("Host", "example.com"),
        h("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        h("Content-Type", "application/json"),
        h(
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        h("Content-Length", "18"),
    ]
}

const B2_URI: &str = "https://example.com/foo?param=Value&Pet=dog";

fn b26_params() -> SignatureParams {
    let components = [
        "date",
        "@method",
        "@path",
        "@authority",
        "content-type",
        "content-length",
    ]
    .iter()
    .map(|n| Component::parse(n).unwrap())
    .collect();
    SignatureParams::new(components, 1618884473, "test-key-ed25519")
}

#[test]
fn rfc9421_b26_signature_base_and_value() {
    let headers = b2_headers();
    let msg = MessageView {
        method: "POST",
        target_uri: B2_URI,
        headers: &headers,
        body: B2_BODY,
    };
    let params = b26_params();
    assert_eq!(signature_base(&msg, &params).unwrap(), B26_BASE);
    let (input, sig) = sign(&msg, &params, "sig-b26", &rfc_key()).unwrap();
    assert_eq!(input, B26_INPUT);
    assert_eq!(sig, B26_SIGNATURE);
}

#[test]
fn rfc9421_b26_verifies() {
    let mut headers = b2_headers();
    headers.push(h("Signature-Input", B26_INPUT));
    headers.push(h("Signature", B26_SIGNATURE));
    let msg = MessageView {
        method: "POST",
        target_uri: B2_URI,
        headers: &headers,
        body: B2_BODY,
    };
    let public = rfc_key().verifying_key();
    let lookup = |k: &str| (k == "test-key-ed25519").then_some(public);
    let v = verify(
        &msg,
        LabelPolicy::Exact("sig-b26"),
        lookup,
        1_700_000_000,
        &VerifyPolicy::permissive(),
    )
    .unwrap();
    assert_eq!(v.keyid(), "test-key-ed25519");
    assert_eq!(v.label(), "sig-b26");
    assert_eq!(v.created(), Some(1618884473));
    assert_eq!(v.expires(), None);
    assert_eq!(v.nonce(), None);
    assert_eq!(v.signature_base(), B26_BASE);
    assert_eq!(v.components().len(), 6);
    assert_eq!(v.request_digest().len(), 64);
    // The strict policy refuses the same signature: no expires, no nonce.
    let err = verify(
        &msg,
        LabelPolicy::First,
        lookup,
        1618884473,
        &VerifyPolicy::strict(vec![]),
    )
    .unwrap_err();
    assert_eq!(err, HttpSigError::MissingParameter("expires"));
}

// --- RFC 9530 ---------------------------------------------------------------

#[test]
fn rfc9530_content_digest() {
    let value = content_digest_sha256(B2_BODY);
    assert_eq!(
        value,
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    check_content_digest(&value, B2_BODY).unwrap();
    // Both RFC example digests at once (sha-512 from RFC 9421 B.2).
    let both = format!("{value}, {}", &b2_headers()[3].1);
    check_content_digest(&both, B2_BODY).unwrap();
    assert_eq!(
        check_content_digest(&value, b"{\"hello\": \"world!\"}"),
        Err(HttpSigError::ContentDigestMismatch)
    );
    let bad512 = format!("{value}, sha-512=:AAAA:");
    assert_eq!(
        check_content_digest(&bad512, B2_BODY),
        Err(HttpSigError::ContentDigestMismatch)
    );
    assert_eq!(
        check_content_digest(&b2_headers()[3].1, B2_BODY),
        Err(HttpSigError::UnsupportedDigestAlgorithm)
    );
    for bad in [
        "sha-256",
        "sha-256=\"x\"",
        "sha-256=:!!:",
        "garbage here",
        "sha-256=(:AA:)",
    ] {
        let e = check_content_digest(bad, B2_BODY).unwrap_err();
        assert_eq!(e.code(), "malformed-content-digest", "{bad}: {e}");
    }
    let huge = format!("sha-256=:{}:", "A".repeat(HEADER_BYTES_MAX));
    assert_eq!(
        check_content_digest(&huge, B2_BODY),
        Err(HttpSigError::HeaderTooLarge("content-digest"))
    );
}

// --- Gateway-style round trips ------------------------------------------------

const NOW: i64 = 1_750_000_000;
const KEYID: &str = "agency-1";
const BODY: &[u8] = br#"{"query":"status"}"#;

fn agency_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[9u8; 32])
}

fn base_headers(body: &[u8]) -> Vec<(String, String)> {
    let mut v = vec![
        h("Host", "gateway.example"),
        h("Consentry-Participant", "p-123"),
        h("Consentry-Purpose", "benefit-eligibility"),
        h("Consentry-Categories", "income"),
        h("Consentry-Categories", " address "),
        h("Consentry-Holder", "tax-office"),
    ];
    if !body.is_empty() {
        v.push(h("Content-Type", "application/json"));
        v.push(h("Content-Digest", &content_digest_sha256(body)));
    }
    v
}

fn gateway_params(created: i64, nonce: &str, with_digest: bool) -> SignatureParams {
    let mut components = vec![
        Component::Method,
        Component::TargetUri,
        Component::field("Consentry-Participant"),
        Component::field("consentry-purpose"),
        Component::field("consentry-categories"),
        Component::field("consentry-holder"),
    ];
    if with_digest {
        components.push(Component::field("content-digest"));
    }
    SignatureParams {
        components,
        created,
        expires: Some(created + 120),
        nonce: Some(nonce.to_owned()),
        keyid: KEYID.to_owned(),
        include_alg: true,
        tag: Some("consentry".to_owned()),
    }
}

/// A signed request: (method, uri, headers incl. signature fields).
fn signed(
    method: &str,
    uri: &str,
    body: &[u8],
    params: &SignatureParams,
    key: &SigningKey,
) -> Vec<(String, String)> {
    let mut headers = base_headers(body);
    let msg = MessageView {
        method,
        target_uri: uri,
        headers: &headers,
        body,
    };
    let (input, sig) = sign(&msg, params, "sig1", key).unwrap();
    headers.push(h("Signature-Input", &input));
    headers.push(h("Signature", &sig));
    headers
}

const URI: &str = "https://gateway.example/v1/records?participant=p-123";

fn lookup(k: &str) -> Option<VerifyingKey> {
    (k == KEYID).then(|| agency_key().verifying_key())
}

fn check(
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<Verified, HttpSigError> {
    let msg = MessageView {
        method,
        target_uri: uri,
        headers,
        body,
    };
    verify(
        &msg,
        LabelPolicy::Exact("sig1"),
        lookup,
        now,
        &VerifyPolicy::gateway(),
    )
}

fn good_headers() -> Vec<(String, String)> {
    signed(
        "POST",
        URI,
        BODY,
        &gateway_params(NOW, "0123456789abcdef-1", true),
        &agency_key(),
    )
}

#[test]
fn round_trip() {
    let headers = good_headers();
    let v = check("POST", URI, &headers, BODY, NOW + 5).unwrap();
    assert_eq!(v.keyid(), KEYID);
    assert_eq!(v.nonce(), Some("0123456789abcdef-1"));
    assert_eq!(v.created(), Some(NOW));
    assert_eq!(v.expires(), Some(NOW + 120));
    assert_eq!(v.tag(), Some("consentry"));
    assert_eq!(v.components().len(), 7);
    assert!(v
        .signature_base()
        .contains("\"consentry-categories\": income, address\n"));
    assert!(v
        .signature_base()
        .contains(&format!("\"@target-uri\": {URI}\n")));
    // Deterministic, and bound to the signature.
    let again = check("POST", URI, &headers, BODY, NOW + 6).unwrap();
    assert_eq!(v.request_digest(), again.request_digest());
    let mut expected = Sha256::new();
    expected.update(v.signature_base().as_bytes());
    let sig_b64 = headers.last().unwrap().1.trim_start_matches("sig1=:");
    expected.update(STANDARD.decode(sig_b64.trim_end_matches(':')).unwrap());
    assert_eq!(v.request_digest(), hex(&expected.finalize()));
    // First-label policy finds the same signature.
    let msg = MessageView {
        method: "POST",
        target_uri: URI,
        headers: &headers,
        body: BODY,
    };
    let first = verify(
        &msg,
        LabelPolicy::First,
        lookup,
        NOW,
        &VerifyPolicy::gateway(),
    )
    .unwrap();
    assert_eq!(first, v);
}

#[test]
fn round_trip_without_body() {
    let headers = signed(
        "GET",
        URI,
        b"",
        &gateway_params(NOW, "0123456789abcdef-2", false),
        &agency_key(),
    );
    check("GET", URI, &headers, b"", NOW).unwrap();
    // A body appears that the signature does not cover: refused.
    assert_eq!(
        check("GET", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::RequiredComponentNotCovered("content-digest".into())
    );
}

#[test]
fn tampered_header_refused() {
    let mut headers = good_headers();
    for (n, v) in headers.iter_mut() {
        if n == "Consentry-Purpose" {
            *v = "marketing".into();
        }
    }
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
    // Adding a second line of a covered field changes its value too.
    let mut headers = good_headers();
    headers.push(h("consentry-holder", "someone-else"));
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
    // Uncovered headers may change.
    let mut headers = good_headers();
    headers.push(h("X-Trace", "abc"));
    check("POST", URI, &headers, BODY, NOW).unwrap();
}

#[test]
fn tampered_method_or_uri_refused() {
    let headers = good_headers();
    assert_eq!(
        check("PUT", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
    for uri in [
        "https://gateway.example/v1/records?participant=p-124",
        "https://gateway.example/v1/other?participant=p-123",
        "http://gateway.example/v1/records?participant=p-123",
        "https://evil.example/v1/records?participant=p-123",
    ] {
        assert_eq!(
            check("POST", uri, &headers, BODY, NOW).unwrap_err(),
            HttpSigError::SignatureInvalid,
            "{uri}"
        );
    }
}

#[test]
fn tampered_body_refused() {
    let headers = good_headers();
    assert_eq!(
        check("POST", URI, &headers, b"{\"query\":\"all\"}", NOW).unwrap_err(),
        HttpSigError::ContentDigestMismatch
    );
}

#[test]
fn wrong_key_and_unknown_keyid() {
    let headers = signed(
        "POST",
        URI,
        BODY,
        &gateway_params(NOW, "0123456789abcdef-3", true),
        &other_key(),
    );
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
    let mut params = gateway_params(NOW, "0123456789abcdef-4", true);
    params.keyid = "agency-2".into();
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    let err = check("POST", URI, &headers, BODY, NOW).unwrap_err();
    assert_eq!(err, HttpSigError::UnknownKeyId);
    assert_eq!(err.to_string(), "unknown key id");
    assert_eq!(err.code(), "unknown-key-id");
}

#[test]
fn time_window() {
    let headers = good_headers(); // created NOW, expires NOW + 120
    let skew = VerifyPolicy::gateway().max_skew_secs;
    check("POST", URI, &headers, BODY, NOW + 120 + skew).unwrap();
    let err = check("POST", URI, &headers, BODY, NOW + 121 + skew).unwrap_err();
    assert_eq!(err, HttpSigError::Expired);
    assert_eq!(err.to_string(), "signature expired");
    check("POST", URI, &headers, BODY, NOW - skew).unwrap();
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW - skew - 1).unwrap_err(),
        HttpSigError::CreatedInFuture
    );
    // Lifetime over the maximum.
    let mut params = gateway_params(NOW, "0123456789abcdef-5", true);
    params.expires = Some(NOW + DEFAULT_MAX_LIFETIME_SECS + 1);
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::LifetimeTooLong
    );
    // Expires before created.
    params.expires = Some(NOW - 1);
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::InvalidParameter("expires")
    );
    // Missing expires / nonce.
    let mut params = gateway_params(NOW, "0123456789abcdef-6", true);
    params.expires = None;
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::MissingParameter("expires")
    );
    let mut params = gateway_params(NOW, "x", true);
    params.nonce = None;
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::MissingParameter("nonce")
    );
    let headers = signed(
        "POST",
        URI,
        BODY,
        &gateway_params(NOW, "short", true),
        &agency_key(),
    );
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::InvalidParameter("nonce")
    );
    // Extreme clocks do not overflow.
    assert_eq!(
        check("POST", URI, &good_headers(), BODY, i64::MAX).unwrap_err(),
        HttpSigError::Expired
    );
    assert_eq!(
        check("POST", URI, &good_headers(), BODY, i64::MIN).unwrap_err(),
        HttpSigError::CreatedInFuture
    );
}

#[test]
fn skew_is_bounded() {
    let mut policy = VerifyPolicy::gateway();
    policy.max_skew_secs = i64::MAX;
    let headers = good_headers();
    let msg = MessageView {
        method: "POST",
        target_uri: URI,
        headers: &headers,
        body: BODY,
    };
    let at = |now| verify(&msg, LabelPolicy::First, lookup, now, &policy);
    at(NOW + 120 + SKEW_SECS_MAX).unwrap();
    assert_eq!(
        at(NOW + 121 + SKEW_SECS_MAX).unwrap_err(),
        HttpSigError::Expired
    );
}

#[test]
fn missing_required_component() {
    let mut params = gateway_params(NOW, "0123456789abcdef-7", true);
    params
        .components
        .retain(|c| *c != Component::field("consentry-purpose"));
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    let err = check("POST", URI, &headers, BODY, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "covered component missing: consentry-purpose"
    );
    assert_eq!(err.code(), "component-not-covered");

    let mut params = gateway_params(NOW, "0123456789abcdef-8", true);
    params.components.retain(|c| *c != Component::TargetUri);
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::RequiredComponentNotCovered("@target-uri".into())
    );

    // With a body, content-digest must be covered.
    let params = gateway_params(NOW, "0123456789abcdef-9", false);
    let headers = signed("POST", URI, BODY, &params, &agency_key());
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::RequiredComponentNotCovered("content-digest".into())
    );
}

#[test]
fn covered_component_absent_from_message() {
    let headers = base_headers(b"");
    let msg = MessageView {
        method: "GET",
        target_uri: URI,
        headers: &headers,
        body: b"",
    };
    let params = SignatureParams::new(vec![Component::field("date")], NOW, KEYID);
    assert_eq!(
        sign(&msg, &params, "sig1", &agency_key()).unwrap_err(),
        HttpSigError::ComponentAbsent("date".into())
    );
    // Removing a covered header after signing.
    let mut headers = good_headers();
    headers.retain(|(n, _)| n != "Consentry-Holder");
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::ComponentAbsent("consentry-holder".into())
    );
}

#[test]
fn replayed_nonce_refused() {
    let cache = NonceCache::new(100, VerifyPolicy::gateway().max_skew_secs);
    let headers = good_headers();
    let accept = |now: i64| -> Result<(), String> {
        let v = check("POST", URI, &headers, BODY, now).map_err(|e| e.to_string())?;
        let expires = v.expires().ok_or("no expires")?;
        cache
            .check_and_insert(v.keyid(), v.nonce().ok_or("no nonce")?, expires, now)
            .map_err(|e| e.to_string())
    };
    accept(NOW).unwrap();
    assert_eq!(accept(NOW + 1).unwrap_err(), "nonce already used");
    assert_eq!(Replay::Duplicate.code(), "nonce-replayed");
    // After the signature's window the request fails as expired instead.
    assert_eq!(accept(NOW + 1000).unwrap_err(), "signature expired");
}

#[test]
fn nonce_cache_cap() {
    let cache = NonceCache::new(2, 0);
    cache.check_and_insert(KEYID, "n1", NOW + 10, NOW).unwrap();
    cache.check_and_insert(KEYID, "n2", NOW + 10, NOW).unwrap();
    assert_eq!(
        cache.check_and_insert(KEYID, "n3", NOW + 10, NOW),
        Err(Replay::CacheFull)
    );
    assert_eq!(
        cache.check_and_insert(KEYID, "n1", NOW + 10, NOW),
        Err(Replay::Duplicate)
    );
    assert_eq!(cache.entries_max(), 2);
    cache
        .check_and_insert(KEYID, "n3", NOW + 30, NOW + 11)
        .unwrap();
}

#[test]
fn algorithm_checks() {
    let headers = good_headers();
    let swap = |from: &str, to: &str| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.clone(), v.replace(from, to)))
            .collect()
    };
    let h2 = swap("alg=\"ed25519\"", "alg=\"rsa-pss-sha512\"");
    assert_eq!(
        check("POST", URI, &h2, BODY, NOW).unwrap_err(),
        HttpSigError::UnsupportedAlgorithm("rsa-pss-sha512".into())
    );
    let h3 = swap("alg=\"ed25519\"", "alg=ed25519");
    assert_eq!(
        check("POST", URI, &h3, BODY, NOW).unwrap_err(),
        HttpSigError::InvalidParameter("alg")
    );
    // Dropping alg changes the signed parameters, so the signature fails.
    let h4 = swap(";alg=\"ed25519\"", "");
    assert_eq!(
        check("POST", URI, &h4, BODY, NOW).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
    // Tag policy.
    let mut policy = VerifyPolicy::gateway();
    policy.required_tag = Some("other-app".into());
    let msg = MessageView {
        method: "POST",
        target_uri: URI,
        headers: &headers,
        body: BODY,
    };
    assert_eq!(
        verify(&msg, LabelPolicy::First, lookup, NOW, &policy).unwrap_err(),
        HttpSigError::TagMismatch
    );
}

fn with_sig_fields(input: &str, sig: &str) -> Vec<(String, String)> {
    let mut headers = base_headers(BODY);
    headers.push(h("Signature-Input", input));
    headers.push(h("Signature", sig));
    headers
}

#[test]
fn malformed_headers_give_typed_errors() {
    let good = good_headers();
    let good_input = good[good.len() - 2].1.clone();
    let good_sig = good[good.len() - 1].1.clone();

    let no_fields = base_headers(BODY);
    assert_eq!(
        check("POST", URI, &no_fields, BODY, NOW).unwrap_err(),
        HttpSigError::MissingSignatureInput
    );
    let mut only_input = base_headers(BODY);
    only_input.push(h("Signature-Input", &good_input));
    assert_eq!(
        check("POST", URI, &only_input, BODY, NOW).unwrap_err(),
        HttpSigError::MissingSignature
    );

    let cases: Vec<(String, String, &str)> = vec![
        ("garbage".into(), good_sig.clone(), "label-not-found"),
        (
            "%%garbage \\x01".into(),
            good_sig.clone(),
            "malformed-signature-input",
        ),
        (
            "sig1=(\"@method\"".into(),
            good_sig.clone(),
            "malformed-signature-input",
        ),
        (
            "sig1=\"@method\"".into(),
            good_sig.clone(),
            "malformed-signature-input",
        ),
        (
            "sig1=(@method)".into(),
            good_sig.clone(),
            "malformed-signature-input",
        ),
        (good_input.clone(), "sig1=abc".into(), "malformed-signature"),
        (
            good_input.clone(),
            "sig1=:AAAA:".into(),
            "malformed-signature",
        ),
        (
            good_input.clone(),
            "sig1=:!!!:".into(),
            "malformed-signature",
        ),
        (
            good_input.clone(),
            "sig2=:AAAA:".into(),
            "signature-not-found",
        ),
        ("sig2=()".into(), good_sig.clone(), "label-not-found"),
        (
            "sig1=(\"@method\");created=1".into(),
            good_sig.clone(),
            "missing-parameter",
        ),
        (
            "sig1=(\"@method\");keyid=1".into(),
            good_sig.clone(),
            "invalid-parameter",
        ),
        (
            "sig1=(\"@method\");created=\"now\";keyid=\"k\"".into(),
            good_sig.clone(),
            "invalid-parameter",
        ),
        (
            "sig1=(\"@status\");keyid=\"k\"".into(),
            good_sig.clone(),
            "unsupported-component",
        ),
        (
            "sig1=(\"@query-param\";name=\"a\");keyid=\"k\"".into(),
            good_sig.clone(),
            "unsupported-component",
        ),
        (
            "sig1=(\"content-type\";sf);keyid=\"k\"".into(),
            good_sig.clone(),
            "unsupported-component",
        ),
        (
            "sig1=(\"Content-Type\");keyid=\"k\"".into(),
            good_sig.clone(),
            "invalid-component",
        ),
        (
            "sig1=(\"bad header\");keyid=\"k\"".into(),
            good_sig.clone(),
            "invalid-component",
        ),
        (
            "sig1=(\"signature\");keyid=\"k\"".into(),
            good_sig.clone(),
            "unsupported-component",
        ),
        (
            "sig1=(\"@method\" \"@method\");keyid=\"k\"".into(),
            good_sig.clone(),
            "duplicate-component",
        ),
        (
            format!("sig1=({});keyid=\"k\"", vec!["\"a\""; 17].join(" ")),
            good_sig.clone(),
            "too-many-components",
        ),
        (
            format!(
                "sig1=(\"@method\"){};keyid=\"k\"",
                (0..20).map(|i| format!(";p{i}")).collect::<String>()
            ),
            good_sig.clone(),
            "too-many-parameters",
        ),
        (
            "a=(), b=(), c=(), d=(), e=()".into(),
            good_sig.clone(),
            "too-many-signatures",
        ),
        (
            format!(
                "sig1=(\"@method\");keyid=\"{}\"",
                "k".repeat(HEADER_BYTES_MAX)
            ),
            good_sig.clone(),
            "header-too-large",
        ),
        (
            good_input.clone(),
            format!("sig1=:{}:", "A".repeat(9000)),
            "header-too-large",
        ),
    ];
    for (input, sig, code) in cases {
        let headers = with_sig_fields(&input, &sig);
        let err = check("POST", URI, &headers, BODY, NOW).unwrap_err();
        assert_eq!(err.code(), code, "{input} / {sig}: {err}");
        // Messages are printable; their fixed part is lowercase (what
        // follows ": " may echo the sender's own bounded input).
        let text = err.to_string();
        assert!(text.chars().all(|c| (' '..='~').contains(&c)), "{text}");
        let fixed = text.split(": ").next().unwrap_or_default();
        assert!(!fixed.chars().any(|c| c.is_ascii_uppercase()), "{text}");
    }

    // Many lines that together exceed the cap.
    let mut headers = good_headers();
    for _ in 0..200 {
        headers.push(h("Signature-Input", &"x".repeat(50)));
    }
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::HeaderTooLarge("signature-input")
    );
}

#[test]
fn header_value_injection_refused() {
    let mut headers = good_headers();
    for (n, v) in headers.iter_mut() {
        if n == "Consentry-Purpose" {
            v.push_str("\n\"@method\": GET");
        }
    }
    assert_eq!(
        check("POST", URI, &headers, BODY, NOW).unwrap_err(),
        HttpSigError::InvalidComponentValue("consentry-purpose".into())
    );
}

#[test]
fn derived_components() {
    let headers: Vec<(String, String)> = vec![];
    let value = |uri: &str, c: Component| {
        let msg = MessageView {
            method: "GET",
            target_uri: uri,
            headers: &headers,
            body: b"",
        };
        component_value(&msg, &c)
    };
    let u = "HTTPS://WWW.Example.com:443/path/x?param=value&b";
    assert_eq!(value(u, Component::Scheme).unwrap(), "https");
    assert_eq!(value(u, Component::Authority).unwrap(), "www.example.com");
    assert_eq!(value(u, Component::Path).unwrap(), "/path/x");
    assert_eq!(value(u, Component::Query).unwrap(), "?param=value&b");
    assert_eq!(
        value(u, Component::RequestTarget).unwrap(),
        "/path/x?param=value&b"
    );
    assert_eq!(value(u, Component::TargetUri).unwrap(), u);
    assert_eq!(
        value("http://a:8080", Component::Authority).unwrap(),
        "a:8080"
    );
    assert_eq!(value("http://a:8080", Component::Path).unwrap(), "/");
    assert_eq!(value("http://a:8080", Component::Query).unwrap(), "?");
    assert_eq!(value("http://a?", Component::Query).unwrap(), "?");
    assert_eq!(
        value("http://[::1]:80/", Component::Authority).unwrap(),
        "[::1]"
    );
    for bad in [
        "/relative",
        "https://",
        "https://user@host/",
        "https://host/#frag",
        "https://host/a b",
        "1http://host/",
        "",
    ] {
        assert_eq!(
            value(bad, Component::Path).unwrap_err().code(),
            "invalid-target-uri",
            "{bad}"
        );
    }
    let msg = MessageView {
        method: "GET\n",
        target_uri: "https://a/",
        headers: &headers,
        body: b"",
    };
    assert_eq!(
        component_value(&msg, &Component::Method).unwrap_err(),
        HttpSigError::InvalidMethod
    );
}

#[test]
fn sign_rejects_bad_inputs() {
    let headers = base_headers(b"");
    let msg = MessageView {
        method: "GET",
        target_uri: URI,
        headers: &headers,
        body: b"",
    };
    let params = gateway_params(NOW, "0123456789abcdef", false);
    assert_eq!(
        sign(&msg, &params, "Sig1", &agency_key()).unwrap_err(),
        HttpSigError::InvalidLabel
    );
    let mut p = params.clone();
    p.keyid = "bad\u{7f}".into();
    assert_eq!(
        sign(&msg, &p, "sig1", &agency_key()).unwrap_err(),
        HttpSigError::InvalidParameter("keyid")
    );
    let mut p = params.clone();
    p.components.push(Component::Method);
    assert_eq!(
        sign(&msg, &p, "sig1", &agency_key()).unwrap_err(),
        HttpSigError::DuplicateComponent("@method".into())
    );
    let mut p = params;
    p.components = (0..17)
        .map(|i| Component::field(&format!("h{i}")))
        .collect();
    assert_eq!(
        sign(&msg, &p, "sig1", &agency_key()).unwrap_err(),
        HttpSigError::TooManyComponents
    );
}

#[test]
fn owned_message_from_http() {
    let mut map = http::HeaderMap::new();
    map.insert("host", http::HeaderValue::from_static("gateway.example"));
    map.append(
        "consentry-categories",
        http::HeaderValue::from_static("income"),
    );
    map.append(
        "consentry-categories",
        http::HeaderValue::from_static("address"),
    );
    let uri: http::Uri = "/v1/records?participant=p-123".parse().unwrap();
    let owned = OwnedMessage::from_http(&http::Method::POST, &uri, &map, "https", None).unwrap();
    assert_eq!(owned.target_uri, URI);
    assert_eq!(owned.method, "POST");
    let view = owned.view(b"");
    assert_eq!(
        view.field("consentry-categories").unwrap().as_deref(),
        Some("income, address")
    );
    let pinned = OwnedMessage::from_http(
        &http::Method::GET,
        &uri,
        &map,
        "https",
        Some("gw.internal:8443"),
    )
    .unwrap();
    assert_eq!(
        pinned.target_uri,
        "https://gw.internal:8443/v1/records?participant=p-123"
    );
    let abs: http::Uri = "http://upstream.example/x?y".parse().unwrap();
    let out = OwnedMessage::from_http(&http::Method::GET, &abs, &map, "https", None).unwrap();
    assert_eq!(out.target_uri, "http://upstream.example/x?y");
    let out = OwnedMessage::from_parts("GET", "https://upstream.example/x", &map).unwrap();
    assert_eq!(out.headers.len(), 3);

    let mut bad = http::HeaderMap::new();
    bad.insert("x-bin", http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    assert_eq!(
        OwnedMessage::from_http(&http::Method::GET, &uri, &bad, "https", Some("a")).unwrap_err(),
        HttpSigError::HeaderNotText("x-bin".into())
    );
    let empty = http::HeaderMap::new();
    assert_eq!(
        OwnedMessage::from_http(&http::Method::GET, &uri, &empty, "https", None).unwrap_err(),
        HttpSigError::InvalidTargetUri("no authority")
    );
}

/// Deterministic mutation fuzzing of the parsers: never panic, and never
/// accept a mutated signature field.
#[test]
fn mutated_headers_never_panic() {
    let good = good_headers();
    let input = good[good.len() - 2].1.clone();
    let sig = good[good.len() - 1].1.clone();
    let digest = content_digest_sha256(BODY);
    let alphabet = b" \t\",;=():?*-_@%\\\x7f\x00abcAZ019/+";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4000 {
        let target = round % 3;
        let mut bytes = match target {
            0 => input.clone().into_bytes(),
            1 => sig.clone().into_bytes(),
            _ => digest.clone().into_bytes(),
        };
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % (bytes.len() + 1);
            let ch = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 if pos < bytes.len() => bytes[pos] = ch,
                1 if pos < bytes.len() => {
                    bytes.remove(pos);
                }
                _ => bytes.insert(pos, ch),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match target {
            0 => {
                if let Ok(v) = check("POST", URI, &with_sig_fields(&text, &sig), BODY, NOW) {
                    // Only semantically irrelevant edits (whitespace) may pass.
                    assert_eq!(
                        v.signature_base(),
                        check("POST", URI, &good, BODY, NOW)
                            .unwrap()
                            .signature_base()
                    );
                }
            }
            1 => {
                if check("POST", URI, &with_sig_fields(&input, &text), BODY, NOW).is_ok() {
                    // Same signature bytes re-encoded is the only way through.
                    assert!(text.contains("sig1=:"), "{text}");
                }
            }
            _ => {
                let _ = check_content_digest(&text, BODY);
            }
        }
    }
}

/// A server passes its configured authority: the target is always built
/// from it, and an absolute-form request line naming another scheme or
/// authority is refused, never used as the target (issue 21, item 7).
#[test]
fn a_configured_authority_is_the_target_whatever_the_request_line_says() {
    let map = http::HeaderMap::new();
    let ours = |uri: &str| {
        let uri: http::Uri = uri.parse().unwrap();
        OwnedMessage::from_http(
            &http::Method::GET,
            &uri,
            &map,
            "https",
            Some("gw.example:8443"),
        )
    };
    let want = "https://gw.example:8443/v1/records/a/b/Observation?x=1";
    assert_eq!(
        ours("/v1/records/a/b/Observation?x=1").unwrap().target_uri,
        want
    );
    // The same authority in absolute form, in any case.
    assert_eq!(
        ours("https://GW.example:8443/v1/records/a/b/Observation?x=1")
            .unwrap()
            .target_uri,
        want
    );
    for other in [
        "http://other-gateway.example:8700/v1/records/a/b/Observation",
        "https://other-gateway.example:8443/v1/records/a/b/Observation",
        "https://gw.example/v1/records/a/b/Observation",
        "http://gw.example:8443/v1/records/a/b/Observation",
    ] {
        assert_eq!(
            ours(other).unwrap_err(),
            HttpSigError::ForeignAuthority,
            "{other}"
        );
        assert_eq!(
            HttpSigError::ForeignAuthority.code(),
            "foreign-target-authority"
        );
    }
    // A default port is the same authority, as RFC 9421 derives it.
    let uri: http::Uri = "https://gw.example:443/x".parse().unwrap();
    let m = OwnedMessage::from_http(&http::Method::GET, &uri, &map, "https", Some("gw.example"))
        .unwrap();
    assert_eq!(m.target_uri, "https://gw.example/x");
}

/// An unknown key id costs a signature verification, as a known one does
/// (against a key nobody holds), so that the time of a refusal does not
/// tell which key ids are enrolled (issue 21, item 8).
#[test]
fn an_unknown_key_id_costs_a_verification_like_a_known_one() {
    let headers = good_headers();
    let count = |lookup: &dyn Fn(&str) -> Option<VerifyingKey>| {
        let before = verifications();
        let msg = MessageView {
            method: "POST",
            target_uri: URI,
            headers: &headers,
            body: BODY,
        };
        let r = verify(
            &msg,
            LabelPolicy::Exact("sig1"),
            lookup,
            NOW,
            &VerifyPolicy::gateway(),
        );
        (r.map(|v| v.keyid().to_owned()), verifications() - before)
    };
    assert_eq!(count(&lookup), (Ok(KEYID.to_owned()), 1), "known");
    assert_eq!(
        count(&|_| Some(other_key().verifying_key())),
        (Err(HttpSigError::SignatureInvalid), 1),
        "known, another key"
    );
    assert_eq!(
        count(&|_| None),
        (Err(HttpSigError::UnknownKeyId), 1),
        "unknown"
    );
    // Nothing verifies under the key unknown ids are checked against.
    let sig = agency_key().sign(b"m");
    assert!(!verify_or_dummy(None, b"m", &sig));
    assert!(verify_or_dummy(
        Some(&agency_key().verifying_key()),
        b"m",
        &sig
    ));
}
