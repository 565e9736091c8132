//! `consentry participant …` against the real binary and a running demo:
//! enrol (recovery code printed, key owner-only), grant (sentence first,
//! signed only with --yes), an agency request allowed, consents and
//! disclosures checked against the checkpoint, revoke (twice: a no-op),
//! the next request denied, a grievance, an export, and a restore from the
//! recovery code that signs in as the same person.

mod common;

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

    // The key is lost: a new one, at an agency in person; the old one
    // then cannot even sign in.
    let rotated = tmp.path().join("rotated.key");
    let (code, out) = consentry(&[
        "participant",
        "rotate",
        "--dir",
        d,
        "--at",
        "riverside-housing",
        "--participant",
        &id,
        "--key-id",
        &format!("{id}:1"),
        "--key",
        rotated.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = consentry(&[
        "participant",
        "consents",
        "--key",
        rotated.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = consentry(&["participant", "consents", "--key", k]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sign-in refused"), "{out}");
}
