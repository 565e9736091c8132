//! The newcomer's first minute, as a script against the real binary:
//! `consentry demo` starts, and the steps it prints (the same as README's
//! walkthrough) are run exactly as printed: an allowed request, a denied
//! one, a revoke, the first request again (now denied), the log in plain
//! words; then the demo stops and `consentry fsck` verifies the whole log.

use crate::common;

use std::process::Command;

const PREFIX: &str = "cargo run --release --bin consentry -- ";

/// A plain GET over a fresh connection: the whole answer.
fn get(authority: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn consentry(args: &str) -> (i32, String) {
    common::consentry(&args.split_whitespace().collect::<Vec<_>>())
}

#[test]
fn the_printed_walkthrough_works_when_pasted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (demo, printed) = common::demo(&dir);
    let steps: Vec<String> = printed
        .iter()
        .filter_map(|l| l.trim().strip_prefix(PREFIX).map(str::to_string))
        .collect();
    // Five pasteable steps, then the intake command whose code comes from
    // the portal in a browser (run by cmd/participant.rs).
    assert_eq!(
        steps.len(),
        6,
        "five pasteable steps and the intake:\n{}",
        printed.join("\n")
    );
    assert!(steps[5].starts_with("intake ") && steps[5].ends_with("--code CODE"));

    // README shows the same steps (for the default folder `demo`).
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for s in &steps {
        let as_in_readme = s.replace(&dir.display().to_string(), "demo");
        assert!(
            readme.contains(&as_in_readme),
            "README lacks the step: {as_in_readme}"
        );
    }

    let (code, out) = consentry(&steps[0]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("200 OK"), "{out}");
    assert!(
        out.contains("attendance") && out.contains("peer-support"),
        "{out}"
    );
    assert!(
        !out.contains("mental-health") && !out.contains("intake"),
        "{out}"
    );
    assert!(out.contains("42 CFR part 2"), "{out}");

    let (code, out) = consentry(&steps[1]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("403 Forbidden"), "{out}");

    let (code, out) = consentry(&steps[2]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("revoked consent c-demo-0001"), "{out}");

    let (code, out) = consentry(&steps[3]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("403 Forbidden"), "{out}");

    let (code, out) = consentry(&steps[4]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "Riverside Housing (riverside-housing) asked Hope Recovery Clinic (hope-clinic) for p-0001's",
        ": allowed health.sud.treatment, social.peer-support (consent c-demo-0001)",
        "released 2 record(s)",
        "p-0002's",
        "denied (no-consent)",
        "p-0001 revoked consent c-demo-0001",
        "denied (consent-revoked)",
    ] {
        assert!(out.contains(want), "log tail lacks {want:?}:\n{out}");
    }

    // Metrics where the demo says, and not on the public listener.
    let metrics = printed
        .iter()
        .find_map(|l| l.strip_prefix("metrics (for the operator, on loopback only): http://"))
        .unwrap_or_else(|| panic!("no metrics line:\n{}", printed.join("\n")));
    let (authority, path) = metrics.split_once('/').unwrap();
    let counted = get(authority, &format!("/{path}"));
    assert!(counted.starts_with("HTTP/1.1 200"), "{counted}");
    assert!(
        counted.contains("consentry_requests_total{outcome=\"allow\",reason=\"\"} 1"),
        "{counted}"
    );
    let public = std::fs::read_to_string(dir.join("gateway.url")).unwrap();
    let public = public.trim().strip_prefix("http://").unwrap();
    assert!(get(public, "/metrics").starts_with("HTTP/1.1 404"));

    // A wrong key and an unreachable gateway: one clear line each.
    let wrong = format!(
        "{} --key {}/keys/northside-jobs.key",
        steps[0],
        dir.display()
    );
    let (code, out) = consentry(&wrong);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("401 Unauthorized"), "{out}");
    let (code, out) = consentry(&format!("{} --gateway http://127.0.0.1:9", steps[0]));
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.starts_with("error: cannot reach the gateway"), "{out}");

    // Stop the demo (Ctrl-C), then the whole log verifies.
    let pid = demo.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut demo = demo;
    let status = demo.0.wait().unwrap();
    assert!(
        status.success(),
        "the demo stops cleanly on Ctrl-C: {status}"
    );
    let (code, out) = consentry(&format!("fsck --dir {}", dir.display()));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
}
