//! `consentry participant …` against the real binary and a running demo:
//! enrol (recovery code printed, key owner-only), grant (sentence first,
//! signed only with --yes), an agency request allowed, consents and
//! disclosures checked against the checkpoint, revoke (twice: a no-op),
//! the next request denied, a grievance, an export, and a restore from the
//! recovery code that signs in as the same person; and the demo's own
//! participants, through the profiles the demo writes beside their keys.

use crate::common;

use common::consentry;

#[test]
fn a_participant_manages_their_consent_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (_demo, _) = common::demo(&dir);
    let d = dir.to_str().unwrap();
    let key = tmp.path().join("me.key");
    let k = key.to_str().unwrap();

    let (code, out) = consentry(&[
        "participant",
        "enrol",
        "--dir",
        d,
        "--at",
        "hope-clinic",
        "--key",
        k,
    ]);
    assert_eq!(code, 0, "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Your participant id: "))
        .expect("the id is printed")
        .to_string();
    assert!(id.len() >= 2 + 20, "a long random id: {id}");
    let code_lines: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Your recovery code"))
        .skip(2)
        .take(2)
        .collect();
    let recovery = code_lines.join("-").replace(' ', "");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is readable by its owner only");

    let grant = [
        "participant",
        "grant",
        "--key",
        k,
        "--holders",
        "hope-clinic",
        "--recipients",
        "riverside-housing",
        "--categories",
        "health.sud.treatment",
        "--purposes",
        "housing-placement",
        "--days",
        "30",
        "--lang",
        "es",
    ];
    let (code, out) = consentry(&grant);
    assert_eq!(code, 2, "nothing signed without --yes: {out}");
    assert!(out.contains("para conseguirle vivienda"), "{out}");
    // The agencies by the registry's names, as every other page names them.
    assert!(
        out.contains("Hope Recovery Clinic puede dar a Riverside Housing "),
        "{out}"
    );
    assert!(!out.contains("hope-clinic"), "{out}");
    let mut yes = grant.to_vec();
    yes.push("--yes");
    let (code, out) = consentry(&yes);
    assert_eq!(code, 0, "{out}");
    let consent = out
        .split_whitespace()
        .find(|w| w.starts_with("c-"))
        .unwrap()
        .to_string();

    let ask = [
        "request",
        "--dir",
        d,
        "--as",
        "riverside-housing",
        "--holder",
        "hope-clinic",
        "--participant",
        &id,
        "--purpose",
        "housing-placement",
        "--categories",
        "health.sud.treatment",
    ];
    let (code, out) = consentry(&ask);
    assert_eq!(code, 0, "{out}");

    let (code, out) = consentry(&["participant", "consents", "--key", k]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{consent} [active]")), "{out}");
    assert!(
        out.contains("checked against the signed checkpoint"),
        "{out}"
    );
    let (code, out) = consentry(&["participant", "disclosures", "--key", k]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Riverside Housing asked Hope Recovery Clinic"),
        "{out}"
    );
    assert!(out.contains(": allowed"), "{out}");
    // Every line in the language asked for, the last one too.
    for page in ["consents", "disclosures"] {
        let (code, out) = consentry(&["participant", page, "--key", k, "--lang", "es"]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(
                "(cada elemento comprobado con el punto de control firmado del registro, de "
            ),
            "{out}"
        );
        assert!(!out.contains("checked against"), "{out}");
    }

    let (code, out) = consentry(&["participant", "revoke", "--key", k, "--consent", &consent]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("Revoked"), "{out}");
    let (code, out) = consentry(&["participant", "revoke", "--key", k, "--consent", &consent]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already revoked"), "{out}");
    let (code, out) = consentry(&ask);
    assert_eq!(code, 2, "{out}");
    let decision = out.split_whitespace().nth(3).unwrap().to_string();
    assert!(decision.starts_with("d-"), "{out}");
    let (_, out) = consentry(&["participant", "disclosures", "--key", k, "--limit", "1"]);
    assert!(out.contains("denied. The consent was revoked."), "{out}");

    let (code, out) = consentry(&[
        "participant",
        "grievance",
        "--key",
        k,
        "--decision",
        &decision,
        "--reason",
        "wrongly-denied",
    ]);
    assert_eq!(code, 0, "{out}");
    let (_, out) = consentry(&["participant", "grievance", "--key", k]);
    assert!(out.contains(&decision) && out.contains("[open]"), "{out}");

    let (code, out) = consentry(&["participant", "export", "--key", k, "--consent", &consent]);
    assert_eq!(code, 0, "{out}");
    let fhir: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fhir["resourceType"], "Consent");
    assert_eq!(fhir["status"], "inactive");
    // Granted in Spanish: the receipt's notice is the Spanish sentence,
    // tagged es, whatever language the rest of the receipt is asked in.
    for lang in ["en", "es"] {
        let (code, out) = consentry(&[
            "participant",
            "export",
            "--key",
            k,
            "--consent",
            &consent,
            "--format",
            "receipt",
            "--lang",
            lang,
        ]);
        assert_eq!(code, 0, "{out}");
        let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(receipt["language"], lang, "{receipt}");
        let notice = &receipt["notice"];
        assert_eq!(notice["language"], "es", "{receipt}");
        let text = notice["text"].as_str().unwrap();
        assert!(
            text.starts_with("Riverside Housing puede ver ")
                && text.contains("para conseguirle vivienda"),
            "{text}"
        );
    }

    // A new device: the recovery code restores the key; a typo is caught.
    let new = tmp.path().join("new.key");
    let mut typo = recovery.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'0' { b'1' } else { b'0' };
    let (code, out) = consentry(&[
        "participant",
        "restore",
        "--dir",
        d,
        "--participant",
        &id,
        "--code",
        std::str::from_utf8(&typo).unwrap(),
        "--key",
        new.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mistyped") || out.contains("checksum"),
        "{out}"
    );
    let (code, out) = consentry(&[
        "participant",
        "restore",
        "--dir",
        d,
        "--participant",
        &id,
        "--code",
        &recovery,
        "--key",
        new.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = consentry(&["participant", "consents", "--key", new.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{consent} [revoked]")), "{out}");

    // The key is lost: a new one, at the enrolling agency in person. It
    // waits (72 hours by default); the old key is warned at its next
    // sign-in and cancels it.
    let rotated = tmp.path().join("rotated.key");
    let (code, out) = consentry(&[
        "participant",
        "rotate",
        "--dir",
        d,
        "--at",
        "hope-clinic",
        "--participant",
        &id,
        "--key-id",
        &format!("{id}:1"),
        "--key",
        rotated.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("waiting period"), "{out}");
    let (code, out) = consentry(&[
        "participant",
        "consents",
        "--key",
        rotated.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the pending key is not yet the person's: {out}");
    let (code, out) = consentry(&["participant", "consents", "--key", k]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("WARNING: a move of your account"), "{out}");
    let (code, out) = consentry(&["participant", "cancel-rotation", "--key", k]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Cancelled the move"), "{out}");
    let (code, out) = consentry(&["participant", "consents", "--key", k]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("WARNING"), "{out}");
}

/// The demo's own participants use the participant CLI with nothing but
/// their key file, as the issue tried it: from the folder holding the
/// demo, `--key demo/keys/p-0001.key`. Their consent, granted in English,
/// exports a receipt whose notice is English whatever it is asked in.
#[test]
fn the_demos_participants_use_the_participant_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (_demo, _) = common::demo(&dir);
    let url = std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE)).unwrap();
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keys/p-0001.key.json")).unwrap())
            .unwrap();
    assert_eq!(profile["participant"], "p-0001");
    assert_eq!(profile["key_id"], "p-0001:1");
    assert_eq!(profile["gateway"], url.trim());
    assert!(profile.get("ca").is_none(), "plain HTTP: no CA {profile}");
    let in_tmp = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    };
    let p1 = "demo/keys/p-0001.key";
    let (code, out) = in_tmp(&[
        "participant",
        "export",
        "--key",
        p1,
        "--consent",
        gateway::demo::DEMO_CONSENT,
    ]);
    assert_eq!(code, 0, "{out}");
    let fhir: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fhir["resourceType"], "Consent");
    assert_eq!(fhir["status"], "active");
    let (code, out) = in_tmp(&[
        "participant",
        "export",
        "--key",
        p1,
        "--consent",
        gateway::demo::DEMO_CONSENT,
        "--format",
        "receipt",
        "--lang",
        "es",
    ]);
    assert_eq!(code, 0, "{out}");
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["language"], "es");
    assert_eq!(receipt["notice"]["language"], "en", "{receipt}");
    assert!(
        receipt["notice"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Riverside Housing may see "),
        "{receipt}"
    );
    let (code, out) = in_tmp(&["participant", "consents", "--key", p1]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("c-demo-0001 [active]"), "{out}");
    let (code, out) = in_tmp(&[
        "participant",
        "disclosures",
        "--key",
        "demo/keys/p-0002.key",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nobody has asked for your records."), "{out}");
    let (code, out) = in_tmp(&["participant", "grievance", "--key", p1]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = in_tmp(&[
        "participant",
        "revoke",
        "--key",
        p1,
        "--consent",
        gateway::demo::DEMO_CONSENT,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("Revoked c-demo-0001"), "{out}");
}

/// `consentry intake`: the staff member's side of an enrolment whose key
/// was made elsewhere (in the portal). The tool co-signs only an intake
/// that enrols at its own agency and that the person has signed.
#[test]
fn the_agency_confirms_an_intake_from_the_command_line() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ed25519_dalek::Signer;
    use serde_json::json;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (_demo, _) = common::demo(&dir);
    let d = dir.to_str().unwrap();
    let url = std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // What the portal does in the browser: a key, the intake, a signature.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let web = gateway::participant::client::ParticipantClient::new(
        url.trim(),
        "p-unused",
        "p-unused:1",
        key.clone(),
    )
    .unwrap();
    let started = rt
        .block_on(web.post_json(
            "/v1/participant/intakes",
            &json!({"agency": "hope-clinic", "public_key": B64.encode(key.verifying_key().as_bytes())}),
        ))
        .unwrap();
    assert_eq!(started.status, 201, "{:?}", started.body);
    let code = started.body["intake"].as_str().unwrap().to_string();
    let participant = started.body["participant"].as_str().unwrap().to_string();

    // Before the person signs, there is nothing to confirm.
    let (status, out) = consentry(&["intake", "--dir", d, "--as", "hope-clinic", "--code", &code]);
    assert_ne!(status, 0);
    assert!(out.contains("not signed yet"), "{out}");

    let entry = B64.decode(started.body["entry"].as_str().unwrap()).unwrap();
    let signed = rt
        .block_on(web.post_json(
            &format!("/v1/participant/intakes/{code}/signature"),
            &json!({"signature": B64.encode(key.sign(&entry).to_bytes())}),
        ))
        .unwrap();
    assert_eq!(signed.status, 200);

    // Another agency's staff cannot confirm it.
    let (status, out) = consentry(&[
        "intake",
        "--dir",
        d,
        "--as",
        "riverside-housing",
        "--code",
        &code,
    ]);
    assert_ne!(status, 0);
    assert!(out.contains("enrols at hope-clinic"), "{out}");

    let (status, out) = consentry(&["intake", "--dir", d, "--as", "hope-clinic", "--code", &code]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains(&format!("Enrolled {participant}")), "{out}");
}

/// With a witness policy, the participant's pages are believed only
/// against a checkpoint enough trusted witnesses cosigned: refused before
/// the witnesses ran (and the reason said), shown after two of three did.
#[test]
fn pages_wait_for_the_witness_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (_demo, _) = common::demo_with(&dir, &["--witnesses"]);
    let d = dir.to_str().unwrap();
    let key = tmp.path().join("me.key");
    let k = key.to_str().unwrap();
    let (code, out) = consentry(&[
        "participant",
        "enrol",
        "--dir",
        d,
        "--at",
        "hope-clinic",
        "--key",
        k,
    ]);
    assert_eq!(code, 0, "{out}");
    let policy = dir.join(gateway::demo::WITNESS_POLICY_FILE);
    let p = policy.to_str().unwrap();
    let (code, out) = consentry(&["participant", "consents", "--key", k, "--witnesses", p]);
    assert_ne!(code, 0, "no witness has cosigned yet: {out}");
    assert!(out.contains("fewer than the 2 of 3"), "{out}");
    let url = std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE)).unwrap();
    for i in 1..=2 {
        let wkey = dir.join(format!("keys/witness-{i}.key"));
        let state = tmp.path().join(format!("w{i}.json"));
        let (code, out) = consentry(&[
            "witness",
            "--gateway",
            url.trim(),
            "--name",
            &format!("witness-{i}"),
            "--key",
            wkey.to_str().unwrap(),
            "--vkey",
            dir.join("keys/log.vkey").to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--once",
        ]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("cosigned the checkpoint"), "{out}");
    }
    let (code, out) = consentry(&["participant", "consents", "--key", k, "--witnesses", p]);
    assert_eq!(code, 0, "two of three witnesses cosigned: {out}");
}
