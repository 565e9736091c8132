//! `consentry fsck` against a stopped deployment: it needs only public keys
//! (every private key file is deleted first), writes nothing (every file
//! under the data folder is byte for byte the same after it), and names the
//! damaged entry when there is one.

use std::path::Path;
use std::process::Command;

fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn fsck(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["fsck", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn fsck_needs_public_keys_only_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let keys = gateway::demo::keys(dir.path()).unwrap();
        let dep = gateway::deployment::Deployment::open(
            &dir.path().join("data"),
            keys.gateway.clone(),
            gateway::demo::trust(&keys),
        )
        .unwrap();
        gateway::demo::seed(
            &dep,
            dir.path(),
            &keys,
            1_800_000_000,
            &gateway::demo::Upstreams::nowhere(),
        )
        .await
        .unwrap();
        dep.close();
    });
    let mut removed = 0;
    for e in std::fs::read_dir(dir.path().join("keys")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "key") {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 8, "every private key file is gone ({removed})");
    let before = files(&dir.path().join("data"));

    let (ok, text) = fsck(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("ok: 7 entries verified"), "{text}");
    assert!(
        files(&dir.path().join("data")) == before,
        "fsck changed the store"
    );
    assert!(
        !dir.path().join("keys/governance.key").exists(),
        "fsck made no key"
    );

    // A flipped byte inside the consent grant's JSON (entry 5: four
    // agencies, then p-0001's enrolment) is named by its index.
    let seg = dir.path().join("data").join(ledger::store::SEGMENT_FILE);
    let mut bytes = std::fs::read(&seg).unwrap();
    let needle = br#""type":"consent.granted""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 3] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let (ok, text) = fsck(dir.path());
    assert!(!ok, "a damaged log must fail: {text}");
    assert!(text.contains("entry 5"), "{text}");
}
