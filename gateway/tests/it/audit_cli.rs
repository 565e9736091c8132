//! `consentry audit export` and `verify` as an auditor runs them: on the
//! demo's log, a clean bundle exits 0; the same bundle with one byte
//! changed exits 1 and names the entry.

use crate::common;

use common::consentry;

#[test]
fn export_then_verify_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    {
        let (_demo, _) = common::demo(&dir);
        // Dropped here: the demo stops, and its store can be read.
    }
    let d = dir.to_str().unwrap();
    let bundle = tmp.path().join("bundle");
    let b = bundle.to_str().unwrap();
    let (code, out) = consentry(&["audit", "export", "--dir", d, "-o", b]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("entries, with the checkpoint and public keys"),
        "{out}"
    );
    // A bundle is never written over.
    let (code, out) = consentry(&["audit", "export", "--dir", d, "-o", b]);
    assert_ne!(code, 0);
    assert!(out.contains("already exists"), "{out}");

    let state = tmp.path().join("auditor.json");
    let s = state.to_str().unwrap();
    let (code, out) = consentry(&["audit", "verify", b, "--state", s]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    let (code, out) = consentry(&["audit", "verify", b, "--state", s, "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"], serde_json::json!([]));

    // One byte of the first entry changed.
    let tile = std::fs::read_dir(bundle.join("tile/entries"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let tile = if tile.is_dir() {
        std::fs::read_dir(&tile)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    } else {
        tile
    };
    let mut bytes = std::fs::read(&tile).unwrap();
    let at = bytes.iter().position(|b| *b == b'{').unwrap() + 3;
    bytes[at] ^= 0x01;
    std::fs::write(&tile, bytes).unwrap();
    let (code, out) = consentry(&["audit", "verify", b]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("#0: "), "the first entry is named: {out}");
    assert!(out.contains("FAILED"), "{out}");
}
